//! TLS settings shared by the programs: the rustls crypto provider and the CA
//! file that clients of the coordinator trust.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig};

/// Selects ring as rustls's process-wide crypto provider, once.
///
/// No rustls dependency of the programs bundles a default provider, and a build
/// where one also enabled `aws-lc-rs` would leave rustls unable to pick, so it
/// would panic at the first handshake. Every program calls this before it opens
/// a TLS connection or an S3 store; a provider installed earlier is kept.
pub fn install_crypto_provider() {
    #[allow(deprecated)] // `ring`'s provider lacks post-quantum key exchange; tonic's TLS uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A CA file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("cannot read CA certificate {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid CA certificate {path}: expected a PEM file with a `BEGIN CERTIFICATE` block")]
    NotPem { path: PathBuf },
}

/// Client TLS settings that trust the system's root certificates, plus the CA in
/// the PEM file `ca_file` when one is given.
///
/// # Errors
///
/// [`CaFileError`] when `ca_file` cannot be read or contains no PEM certificate.
pub fn client_tls_config(ca_file: Option<&Path>) -> Result<ClientTlsConfig, CaFileError> {
    let config = ClientTlsConfig::new().with_native_roots();
    let Some(path) = ca_file else { return Ok(config) };
    let pem = std::fs::read(path).map_err(|source| CaFileError::Read { path: path.to_owned(), source })?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(CaFileError::NotPem { path: path.to_owned() });
    }
    Ok(config.ca_certificate(Certificate::from_pem(pem)))
}

/// Appends the texts of `source` and of its own sources to `text`, each after `: `,
/// leaving out those that `text` already contains. The result is the reason that
/// [`connection_hint`] reads.
pub fn with_sources(mut text: String, source: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut source = source;
    while let Some(error) = source {
        let part = error.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = error.source();
    }
    text
}

/// Returns what to do about a failed connection to the coordinator at `url`,
/// when `reason` (the error and its sources) shows a TLS setup problem.
pub fn connection_hint(url: &str, reason: &str) -> Option<&'static str> {
    if reason.contains("CaUsedAsEndEntity") {
        return Some(
            "the coordinator presents a CA certificate as its own; serve a certificate signed by a CA, \
             and pass that CA's PEM file with --ca-cert",
        );
    }
    if reason.contains("invalid peer certificate") {
        return Some("the coordinator's certificate is not trusted; pass the PEM file of the CA that signed it with --ca-cert");
    }
    if url.starts_with("http://") && (reason.contains("h2 protocol error") || reason.contains("http2 error")) {
        return Some("the coordinator may serve TLS; use an https:// URL");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a message and an optional cause.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|cause| cause as &(dyn std::error::Error + 'static))
        }
    }

    #[test]
    fn sources_join_without_repeats() {
        let root = Layer("connection refused", None);
        let connect = Layer("tcp connect error: connection refused", Some(Box::new(root)));
        let transport = Layer("transport error", Some(Box::new(connect)));
        let text = with_sources("unavailable".to_owned(), Some(&transport));
        assert_eq!(text, "unavailable: transport error: tcp connect error: connection refused");
        assert_eq!(with_sources("unavailable".to_owned(), None), "unavailable");
    }

    #[test]
    fn certificate_errors_get_hints() {
        let self_signed = connection_hint("https://127.0.0.1:1", "invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))");
        assert!(self_signed.unwrap().contains("serve a certificate signed by a CA"));
        let unknown = connection_hint("https://127.0.0.1:1", "invalid peer certificate: UnknownIssuer");
        assert!(unknown.unwrap().contains("--ca-cert"));
    }

    #[test]
    fn plain_http_to_tls_gets_hint() {
        assert_eq!(connection_hint("http://127.0.0.1:1", "h2 protocol error: http2 error"), Some("the coordinator may serve TLS; use an https:// URL"));
        assert_eq!(connection_hint("https://127.0.0.1:1", "h2 protocol error: http2 error"), None);
        assert_eq!(connection_hint("http://127.0.0.1:1", "connection refused"), None);
    }
}
