//! The gRPC client of the coordinator's `WorkerService`, with the join token on
//! every call.

use std::time::Duration;

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
/// coordinator retries instead of failing.
///
/// # Errors
///
/// [`AgentError::InvalidConfig`] for a malformed URL or a token that is not a
/// valid header value.
pub fn worker_client(coordinator: &str, join_token: &str) -> Result<WorkerClient, AgentError> {
    if coordinator.starts_with("https://") {
        // NOTE: the agent speaks plain HTTP/2 only; TLS to the coordinator is not built yet.
        return Err(AgentError::InvalidConfig(format!(
            "--coordinator {coordinator}: TLS is not supported by the worker agent yet; use an http:// URL"
        )));
    }
    let endpoint = Endpoint::from_shared(coordinator.to_owned())
        .map_err(|error| AgentError::InvalidConfig(format!("--coordinator {coordinator}: {error}")))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    let header = format!("Bearer {join_token}")
        .parse()
        .map_err(|_| AgentError::InvalidConfig("--join-token: contains characters not allowed in an HTTP header".to_owned()))?;
    Ok(WorkerServiceClient::with_interceptor(endpoint.connect_lazy(), JoinToken { header }))
}
