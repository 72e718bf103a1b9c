//! The gRPC client of the coordinator's `WorkerService`, with the join token on
//! every call.

use std::path::Path;
use std::time::Duration;

use ssl_proto::tls::client_tls_config;
use ssl_proto::v1::worker_service_client::WorkerServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use super::AgentError;

/// `WorkerService` client; cheap to clone.
pub type WorkerClient = WorkerServiceClient<InterceptedService<Channel, JoinToken>>;

/// Adds `authorization: Bearer JOIN_TOKEN` to every request.
#[derive(Clone)]
pub struct JoinToken {
    header: MetadataValue<Ascii>,
}

impl Interceptor for JoinToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.header.clone());
        Ok(request)
    }
}

/// Builds a client that connects lazily, so an agent started before its
/// coordinator retries instead of failing. An `https://` URL speaks TLS and trusts
/// the system's roots plus the CA in `ca_cert`.
///
/// # Errors
///
/// [`AgentError::InvalidConfig`] for a malformed URL, a CA file that cannot be
/// used or is given for a plain `http://` URL, or a token that is not a valid
/// header value.
pub fn worker_client(coordinator: &str, ca_cert: Option<&Path>, join_token: &str) -> Result<WorkerClient, AgentError> {
    let invalid = |message: String| AgentError::InvalidConfig(format!("--coordinator {coordinator}: {message}"));
    let is_tls = coordinator.starts_with("https://");
    if !is_tls && !coordinator.starts_with("http://") {
        return Err(invalid("expected a URL starting with http:// or https://, such as http://127.0.0.1:50051".to_owned()));
    }
    let mut endpoint = Endpoint::from_shared(coordinator.to_owned())
        .map_err(|error| invalid(error.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    match (is_tls, ca_cert) {
        (true, _) => {
            ssl_proto::tls::install_crypto_provider();
            let tls = client_tls_config(ca_cert).map_err(|error| AgentError::InvalidConfig(format!("--ca-cert: {error}")))?;
            endpoint = endpoint.tls_config(tls).map_err(|error| invalid(format!("invalid TLS settings: {error}")))?;
        }
        (false, Some(path)) => {
            return Err(AgentError::InvalidConfig(format!(
                "--ca-cert {} needs an https:// coordinator URL, but the URL is {coordinator}",
                path.display()
            )));
        }
        (false, None) => {}
    }
    let header = format!("Bearer {join_token}")
        .parse()
        .map_err(|_| AgentError::InvalidConfig("--join-token: contains characters not allowed in an HTTP header".to_owned()))?;
    Ok(WorkerServiceClient::with_interceptor(endpoint.connect_lazy(), JoinToken { header }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_error(coordinator: &str, ca_cert: Option<&Path>) -> String {
        match worker_client(coordinator, ca_cert, "token") {
            Err(AgentError::InvalidConfig(message)) => message,
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("{coordinator} with {ca_cert:?} was accepted"),
        }
    }

    #[test]
    fn ca_cert_with_plain_http_rejected() {
        let message = config_error("http://127.0.0.1:50051", Some(Path::new("ca.pem")));
        assert!(message.contains("--ca-cert ca.pem needs an https:// coordinator URL"), "{message}");
    }

    #[test]
    fn unreadable_ca_cert_named() {
        let message = config_error("https://127.0.0.1:50051", Some(Path::new("/nonexistent/ca.pem")));
        assert!(message.starts_with("--ca-cert: cannot read CA certificate /nonexistent/ca.pem"), "{message}");
    }

    #[test]
    fn other_schemes_rejected() {
        let message = config_error("grpc://127.0.0.1:50051", None);
        assert!(message.contains("expected a URL starting with http:// or https://"), "{message}");
    }
}
