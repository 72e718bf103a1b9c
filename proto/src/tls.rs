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
