//! Test harness: fresh databases, an in-process coordinator and authenticated clients.
#![allow(dead_code)]

pub mod fake_worker;

use std::net::SocketAddr;
use std::time::Duration;

use sqlx::Connection;
use ssl_coordinator::checkpoints::CheckpointRoot;
use ssl_coordinator::scheduler::SchedulerConfig;
use ssl_coordinator::server::{AuthConfig, ServerConfig, serve};
use ssl_proto::v1::job_service_client::JobServiceClient;
use ssl_proto::v1::{DatasetSpec, JobSpec, SubmitJobRequest};
use tokio::sync::oneshot;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Server that the PostgreSQL tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("SSL_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists for one test and is dropped afterwards.
pub struct TestDatabase {
    pub url: String,
    postgres_name: Option<String>,
    _sqlite_dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// Creates a fresh PostgreSQL database on [`postgres_admin_url`].
    pub async fn postgres() -> Self {
        let admin_url = postgres_admin_url();
        let name = format!("ssl_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|error| {
            panic!(
                "cannot connect to PostgreSQL at {admin_url}: {error}; start one on 127.0.0.1:5432 \
                 or set SSL_TEST_POSTGRES_URL (`.ci/run` does both)"
            )
        });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.expect("create test database");
        let (base, _) = admin_url.rsplit_once('/').expect("database URL has a path");
        TestDatabase { url: format!("{base}/{name}"), postgres_name: Some(name), _sqlite_dir: None }
    }

    /// Creates a SQLite file in a temporary folder.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
        TestDatabase { url, postgres_name: None, _sqlite_dir: Some(dir) }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else { return };
        // Drop runs outside async code, so the cleanup gets its own runtime thread.
        let admin_url = postgres_admin_url();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut admin).await;
                }
            });
        })
        .join();
    }
}

/// The token every test server accepts.
pub const TOKEN: &str = "test-token-0123456789";

/// The join token every test server accepts from workers.
pub const JOIN_TOKEN: &str = "test-join-token-9876543210";

/// A coordinator serving in this process on an ephemeral 127.0.0.1 port.
pub struct TestServer {
    pub address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), ssl_coordinator::Error>>>,
}

impl TestServer {
    pub async fn start(database_url: &str) -> Self {
        Self::start_with(ServerConfig {
            database_url: database_url.to_owned(),
            auth: AuthConfig::Tokens(vec![TOKEN.to_owned()]),
            join_auth: AuthConfig::Tokens(vec![JOIN_TOKEN.to_owned()]),
            scheduler: Default::default(),
            tls: None,
            checkpoint_root: checkpoint_root(),
            metrics_listener: None,
        })
        .await
    }

    /// Starts a server with leases and scheduler passes short enough for tests:
    /// a 1 s worker lease, 100 ms heartbeats and passes.
    pub async fn start_fast(database_url: &str) -> Self {
        Self::start_with(fast_config(database_url)).await
    }

    pub async fn start_with(config: ServerConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let address = listener.local_addr().unwrap();
        let (shutdown, shutdown_receiver) = oneshot::channel();
        let task = tokio::spawn(serve(listener, config, async move {
            let _ = shutdown_receiver.await;
        }));
        TestServer { address, shutdown: Some(shutdown), task: Some(task) }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops the server and returns what `serve` returned.
    pub async fn stop(mut self) -> Result<(), ssl_coordinator::Error> {
        let _ = self.shutdown.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task.take().unwrap())
            .await
            .expect("server stops within 10 s")
            .expect("server task does not panic")
    }
}

/// Settings of [`TestServer::start_fast`].
pub fn fast_config(database_url: &str) -> ServerConfig {
    ServerConfig {
        database_url: database_url.to_owned(),
        auth: AuthConfig::Tokens(vec![TOKEN.to_owned()]),
        join_auth: AuthConfig::Tokens(vec![JOIN_TOKEN.to_owned()]),
        scheduler: SchedulerConfig {
            worker_lease: Duration::from_millis(1000),
            heartbeat_interval: Duration::from_millis(100),
            pass_interval: Duration::from_millis(100),
            leader_lease: Duration::from_millis(1000),
        },
        tls: None,
        checkpoint_root: checkpoint_root(),
        metrics_listener: None,
    }
}

/// Checkpoint root of every test server. The coordinator only names folders under
/// it and never writes there.
pub const CHECKPOINT_ROOT: &str = "file:///ckpt";

pub fn checkpoint_root() -> CheckpointRoot {
    CheckpointRoot::parse(CHECKPOINT_ROOT).expect("valid checkpoint root")
}

pub type AuthClient = JobServiceClient<InterceptedService<Channel, BearerToken>>;

/// Adds a fixed `authorization` header, or none.
#[derive(Clone)]
pub struct BearerToken(pub Option<String>);

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        Ok(request)
    }
}

/// Connects with `token`, retrying while the server starts.
pub async fn client_with_token(endpoint: &str, token: Option<&str>) -> AuthClient {
    let channel = Channel::from_shared(endpoint.to_owned()).unwrap().connect_timeout(Duration::from_secs(5));
    for _ in 0..50 {
        if let Ok(channel) = channel.connect().await {
            return JobServiceClient::with_interceptor(channel, BearerToken(token.map(str::to_owned)));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot connect to {endpoint}");
}

pub async fn client(endpoint: &str) -> AuthClient {
    client_with_token(endpoint, Some(TOKEN)).await
}

/// Returns the URI of a small CSV file that exists for the whole test process,
/// because admission lists a job's dataset.
pub fn dataset_uri() -> String {
    static DATASET: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DATASET.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train.csv"), "age,city\n30,a\n40,b\n").unwrap();
        dir
    });
    format!("file://{}/train.csv", dir.path().display())
}

/// Builds a minimal valid spec.
pub fn spec(name: &str) -> JobSpec {
    JobSpec {
        name: name.to_owned(),
        dataset: Some(DatasetSpec { uri: dataset_uri(), ..Default::default() }),
        ..Default::default()
    }
}

pub fn submit_request(request_id: &str, spec: JobSpec) -> SubmitJobRequest {
    SubmitJobRequest { request_id: request_id.to_owned(), spec: Some(spec) }
}

/// Runs `future` with a 30 s limit, so a hung call fails the test instead of CI.
pub async fn timed<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future).await.expect("finished within 30 s")
}
