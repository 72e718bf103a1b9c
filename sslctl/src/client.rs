//! Connecting to the coordinator: endpoint, TLS and the bearer-token interceptor.

use std::time::Duration;

use ssl_proto::v1::job_service_client::JobServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use ssl_proto::tls::CaFileError;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

use crate::cli::{ConnectionArgs, Token};
use crate::error::{Error, error_chain};
use crate::local::{StackDir, default_dev_dir, running_stack};

/// Maximum time to establish the connection before `sslctl` gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Interval of HTTP/2 pings that keep a long `watch` stream alive through idle periods.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// A connected `JobService` client that adds the bearer token to every request.
pub struct JobClient {
    /// The endpoint as the user gave it, for error messages.
    pub endpoint: String,
    pub service: JobServiceClient<InterceptedService<Channel, BearerAuth>>,
}

impl JobClient {
    /// Wraps a status from this client's coordinator into an [`Error`].
    pub fn error(&self, status: Status) -> Error {
        Error::rpc(&self.endpoint, status)
    }
}

/// Connects to the coordinator and checks that the connection works.
///
/// # Errors
///
/// [`Error::Usage`] for an invalid URL, token or CA file, and [`Error::Connect`] when
/// the coordinator cannot be reached within 10 seconds or the TLS handshake fails.
pub async fn connect(args: &ConnectionArgs) -> Result<JobClient, Error> {
    ssl_proto::tls::install_crypto_provider();
    let auth = BearerAuth::new(args.token.as_ref().map(|token| token.0.as_str()))?;
    let endpoint = build_endpoint(args)?;

    let channel = endpoint.connect().await.map_err(|error| Error::Connect {
        endpoint: args.endpoint().to_owned(),
        reason: error_chain(&error),
    })?;

    Ok(JobClient {
        endpoint: args.endpoint().to_owned(),
        service: JobServiceClient::with_interceptor(channel, auth),
    })
}

/// Fills in the endpoint and token of the local service that `sslctl dev up` started,
/// when no endpoint was given and that service runs.
pub fn with_local_defaults(mut args: ConnectionArgs) -> ConnectionArgs {
    if args.endpoint.is_some() {
        return args;
    }
    let Some(dir) = default_dev_dir() else { return args };
    let Some(state) = running_stack(&dir) else { return args };
    if args.token.is_none() {
        let token_file = StackDir::open(&dir).api_token_file();
        args.token = std::fs::read_to_string(token_file).ok().map(|token| Token(token.trim().to_owned()));
    }
    args.endpoint = Some(state.endpoint);
    args
}

fn build_endpoint(args: &ConnectionArgs) -> Result<Endpoint, Error> {
    let url = args.endpoint().trim();
    let is_tls = url.starts_with("https://");
    if !is_tls && !url.starts_with("http://") {
        return Err(Error::Usage(format!(
            "invalid endpoint {url:?}: expected a URL starting with http:// or https://, such as http://127.0.0.1:50051"
        )));
    }

    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|error| Error::Usage(format!("invalid endpoint {url:?}: {}", error_chain(&error))))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_while_idle(true);
    if !is_tls {
        if args.ca_cert.is_some() {
            return Err(Error::Usage(format!(
                "--ca-cert needs an https:// endpoint, but the endpoint is {url}"
            )));
        }
        return Ok(endpoint);
    }

    endpoint
        .tls_config(tls_config(args)?)
        .map_err(|error| Error::Usage(format!("invalid TLS settings: {}", error_chain(&error))))
}

/// Trusts the system's root certificates plus the CA given with `--ca-cert`.
fn tls_config(args: &ConnectionArgs) -> Result<ClientTlsConfig, Error> {
    ssl_proto::tls::client_tls_config(args.ca_cert.as_deref()).map_err(|error| match error {
        CaFileError::Read { .. } => Error::Usage(format!("{error}; check --ca-cert or SSLCTL_CA_CERT")),
        CaFileError::NotPem { .. } => Error::Usage(error.to_string()),
    })
}

/// Adds `authorization: Bearer TOKEN` to every request when a token is set.
#[derive(Clone)]
pub struct BearerAuth {
    header: Option<MetadataValue<Ascii>>,
}

impl BearerAuth {
    /// Builds the header once. An empty token sends no header.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] when the token contains characters that a gRPC header cannot
    /// carry; the message does not include the token.
    pub fn new(token: Option<&str>) -> Result<Self, Error> {
        let Some(token) = token.map(str::trim).filter(|token| !token.is_empty()) else {
            return Ok(BearerAuth { header: None });
        };
        let mut header: MetadataValue<Ascii> = format!("Bearer {token}").parse().map_err(|_| {
            Error::Usage(
                "invalid token: it contains characters that a gRPC header cannot carry; check --token or SSLCTL_TOKEN"
                    .to_owned(),
            )
        })?;
        // Keeps the value out of HTTP/2 header compression tables.
        header.set_sensitive(true);
        Ok(BearerAuth { header: Some(header) })
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = &self.header {
            request.metadata_mut().insert("authorization", header.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn connection(endpoint: &str) -> ConnectionArgs {
        ConnectionArgs { endpoint: Some(endpoint.to_owned()), ca_cert: None, token: None }
    }

    #[test]
    fn bearer_header_added() {
        let mut auth = BearerAuth::new(Some("abc123")).unwrap();
        let request = auth.call(Request::new(())).unwrap();
        let header = request.metadata().get("authorization").unwrap();
        assert_eq!(header.to_str().unwrap(), "Bearer abc123");
        assert!(header.is_sensitive());
    }

    #[test]
    fn empty_token_sends_no_header() {
        for token in [None, Some(""), Some("  ")] {
            let mut auth = BearerAuth::new(token).unwrap();
            let request = auth.call(Request::new(())).unwrap();
            assert!(request.metadata().get("authorization").is_none(), "{token:?}");
        }
    }

    #[test]
    fn token_with_newline_rejected_without_echo() {
        let Err(error) = BearerAuth::new(Some("abc\ndef")) else { panic!("token with a newline accepted") };
        assert_eq!(error.exit_code(), 2);
        assert!(!error.to_string().contains("abc"), "{error}");
    }

    #[test]
    fn endpoint_without_scheme_rejected() {
        let error = build_endpoint(&connection("127.0.0.1:50051")).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().starts_with("invalid endpoint \"127.0.0.1:50051\""), "{error}");
    }

    #[test]
    fn ca_cert_with_plain_http_rejected() {
        let mut args = connection("http://127.0.0.1:50051");
        args.ca_cert = Some(PathBuf::from("ca.pem"));
        let error = build_endpoint(&args).unwrap_err();
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn missing_ca_cert_file_rejected() {
        let mut args = connection("https://127.0.0.1:50051");
        args.ca_cert = Some(PathBuf::from("/nonexistent/ca.pem"));
        args.token = Some(Token("t".to_owned()));
        let error = build_endpoint(&args).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().starts_with("cannot read CA certificate /nonexistent/ca.pem"), "{error}");
    }
}
