//! Assembles and runs the gRPC server.

use std::future::Future;

use ssl_proto::v1::job_service_server::JobServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;

use crate::Error;
use crate::api::JobApi;
use crate::auth::BearerAuth;
use crate::store::JobStore;

/// Largest request message accepted, in bytes. A job spec is a few kilobytes.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// Name under which the health service reports the job API.
const JOB_SERVICE_NAME: &str = "ssl.v1.JobService";

/// Settings of [`serve`].
pub struct ServerConfig {
    /// `postgres://…` or `sqlite://PATH`.
    pub database_url: String,
    pub auth: AuthConfig,
    /// Serve TLS instead of plain HTTP/2 when set.
    pub tls: Option<TlsConfig>,
}

/// Access policy of the job API. The health service stays open for probes.
pub enum AuthConfig {
    /// Calls must carry `authorization: Bearer TOKEN` with one of these tokens.
    Tokens(Vec<String>),
    /// No authentication.
    Insecure,
}

/// PEM-encoded certificate chain and private key of the server.
pub struct TlsConfig {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

/// Runs migrations, then serves `JobService` and `grpc.health.v1.Health` on
/// `listener` until `shutdown` resolves.
///
/// On shutdown, open watch streams end with `UNAVAILABLE`, in-flight calls finish
/// and the store's connections close.
///
/// # Errors
///
/// [`Error::Database`] or [`Error::Migration`] when the store cannot be opened,
/// [`Error::Transport`] for an invalid TLS identity or a failed listener.
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_service_status(JOB_SERVICE_NAME, ServingStatus::NotServing).await;
    health_reporter.set_service_status("", ServingStatus::NotServing).await;

    let store = JobStore::connect(&config.database_url).await?;

    let (shutdown_sender, shutdown_receiver) = watch::channel(false);
    let auth = match &config.auth {
        AuthConfig::Tokens(tokens) => BearerAuth::tokens(tokens),
        AuthConfig::Insecure => BearerAuth::disabled(),
    };
    let job_service = JobServiceServer::new(JobApi::new(store.clone(), shutdown_receiver.clone()))
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    let job_service = InterceptedService::new(job_service, auth);

    let mut builder = Server::builder();
    if let Some(tls) = &config.tls {
        let identity = Identity::from_pem(&tls.cert_pem, &tls.key_pem);
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity))?;
    }

    health_reporter.set_service_status(JOB_SERVICE_NAME, ServingStatus::Serving).await;
    health_reporter.set_service_status("", ServingStatus::Serving).await;
    let address = listener.local_addr().ok();
    tracing::info!(address = ?address, tls = config.tls.is_some(), "coordinator serving");

    let mut server_shutdown = shutdown_receiver;
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down");
        health_reporter.set_service_status(JOB_SERVICE_NAME, ServingStatus::NotServing).await;
        let _ = shutdown_sender.send(true);
    });

    let result = builder
        .add_service(health_service)
        .add_service(job_service)
        // Without TCP_NODELAY, small responses wait for delayed ACKs (about 40 ms each).
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), async move {
            let _ = server_shutdown.wait_for(|stopping| *stopping).await;
        })
        .await;
    store.close().await;
    tracing::info!("coordinator stopped");
    Ok(result?)
}
