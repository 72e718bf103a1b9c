//! Assembles and runs the gRPC server.

use std::future::Future;
use std::sync::Arc;

use ssl_proto::v1::job_service_server::JobServiceServer;
use ssl_proto::v1::worker_service_server::WorkerServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;

use crate::Error;
use crate::api::{JobApi, RequestMetricsLayer, WorkerApi};
use crate::auth::BearerAuth;
use crate::checkpoints::CheckpointRoot;
use crate::metrics::CoordinatorMetrics;
use crate::scheduler::{self, SchedulerConfig};
use crate::store::JobStore;

/// Largest request message accepted, in bytes. A job spec is a few kilobytes.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// Name under which the health service reports the job API.
const JOB_SERVICE_NAME: &str = "ssl.v1.JobService";
/// Name under which the health service reports the worker API.
const WORKER_SERVICE_NAME: &str = "ssl.v1.WorkerService";

/// Settings of [`serve`].
pub struct ServerConfig {
    /// `postgres://…` or `sqlite://PATH`.
    pub database_url: String,
    pub auth: AuthConfig,
    /// Access policy of `WorkerService`, whose tokens are join tokens, separate
    /// from the API tokens. `Tokens` with no token rejects every worker.
    pub join_auth: AuthConfig,
    /// Lease and scheduler timing.
    pub scheduler: SchedulerConfig,
    /// Serve TLS instead of plain HTTP/2 when set.
    pub tls: Option<TlsConfig>,
    /// Storage URI under which workers write checkpoints, one folder per job.
    /// Every assignment names the job's folder.
    pub checkpoint_root: CheckpointRoot,
    /// Listener for Prometheus scrapes of `GET /metrics`; none serves no metrics.
    pub metrics_listener: Option<TcpListener>,
}

/// Access policy of an API. The health service stays open for probes.
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

/// Runs migrations, starts the scheduler, then serves `JobService`,
/// `WorkerService` and `grpc.health.v1.Health` on `listener` until `shutdown`
/// resolves.
///
/// On shutdown, open watch and assignment streams end with `UNAVAILABLE`,
/// in-flight calls finish, the scheduler gives up its leader lease and the
/// store's connections close.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for invalid scheduler timing, [`Error::Database`]
/// or [`Error::Migration`] when the store cannot be opened, [`Error::Transport`]
/// for an invalid TLS identity or a failed listener.
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    ssl_proto::tls::install_crypto_provider();
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_service_status(JOB_SERVICE_NAME, ServingStatus::NotServing).await;
    health_reporter.set_service_status(WORKER_SERVICE_NAME, ServingStatus::NotServing).await;
    health_reporter.set_service_status("", ServingStatus::NotServing).await;

    config.scheduler.validate()?;
    let store = JobStore::connect(&config.database_url).await?;

    let metrics = Arc::new(CoordinatorMetrics::new(config.scheduler.worker_lease));
    let (shutdown_sender, shutdown_receiver) = watch::channel(false);
    let job_service = JobServiceServer::new(JobApi::new(store.clone(), shutdown_receiver.clone()))
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    let job_service = InterceptedService::new(job_service, bearer_auth(&config.auth));
    let worker_api = WorkerApi::new(
        store.clone(),
        config.scheduler.clone(),
        config.checkpoint_root.clone(),
        metrics.clone(),
        shutdown_receiver.clone(),
    );
    let worker_service = WorkerServiceServer::new(worker_api).max_decoding_message_size(MAX_REQUEST_BYTES);
    let worker_service = InterceptedService::new(worker_service, bearer_auth(&config.join_auth));

    let mut builder = Server::builder();
    if let Some(tls) = &config.tls {
        let identity = Identity::from_pem(&tls.cert_pem, &tls.key_pem);
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity))?;
    }

    let scheduler_task = scheduler::spawn(store.clone(), config.scheduler.clone(), metrics.clone(), shutdown_receiver.clone());
    let metrics_task = config.metrics_listener.map(|listener| spawn_metrics_server(listener, store.clone(), metrics.clone(), shutdown_receiver.clone()));
    health_reporter.set_service_status(JOB_SERVICE_NAME, ServingStatus::Serving).await;
    health_reporter.set_service_status(WORKER_SERVICE_NAME, ServingStatus::Serving).await;
    health_reporter.set_service_status("", ServingStatus::Serving).await;
    let address = listener.local_addr().ok();
    tracing::info!(address = ?address, tls = config.tls.is_some(), checkpoint_root = %config.checkpoint_root, "coordinator serving");

    let mut server_shutdown = shutdown_receiver;
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down");
        health_reporter.set_service_status(JOB_SERVICE_NAME, ServingStatus::NotServing).await;
        health_reporter.set_service_status(WORKER_SERVICE_NAME, ServingStatus::NotServing).await;
        let _ = shutdown_sender.send(true);
    });

    let result = builder
        .layer(RequestMetricsLayer::new(metrics))
        .add_service(health_service)
        .add_service(job_service)
        .add_service(worker_service)
        // Without TCP_NODELAY, small responses wait for delayed ACKs (about 40 ms each).
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), async move {
            let _ = server_shutdown.wait_for(|stopping| *stopping).await;
        })
        .await;
    if result.is_err() {
        // The shutdown signal may never come; stop the scheduler here instead.
        scheduler_task.abort();
        if let Some(task) = &metrics_task {
            task.abort();
        }
    }
    if let Err(error) = scheduler_task.await
        && error.is_panic()
    {
        tracing::error!(error = %error, "scheduler task panicked");
    }
    store.close().await;
    tracing::info!("coordinator stopped");
    Ok(result?)
}

/// Serves the metrics on `listener` until `shutdown` turns true.
fn spawn_metrics_server(
    listener: TcpListener,
    store: JobStore,
    metrics: Arc<CoordinatorMetrics>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving metrics on /metrics");
    }
    let render = move || {
        let store = store.clone();
        let metrics = metrics.clone();
        async move { metrics.render(&store).await }
    };
    tokio::spawn(async move {
        ssl_telemetry::serve_metrics(listener, render, async move {
            let _ = shutdown.wait_for(|stopping| *stopping).await;
        })
        .await;
    })
}

fn bearer_auth(config: &AuthConfig) -> BearerAuth {
    match config {
        AuthConfig::Tokens(tokens) => BearerAuth::tokens(tokens),
        AuthConfig::Insecure => BearerAuth::disabled(),
    }
}
