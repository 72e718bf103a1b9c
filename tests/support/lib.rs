//! A whole service on 127.0.0.1 for end-to-end tests: a fresh PostgreSQL
//! database, an S3 server (s3s-fs, checking signatures) in this process, one
//! `ssl-coordinator` process and `ssl-worker` agent processes.
//!
//! The binaries come from the same target folder as the test; `cargo test
//! --workspace` builds them before any test runs.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use sqlx::Connection;
use ssl_proto::v1::job_service_client::JobServiceClient;
use ssl_proto::v1::{self, Job, JobState};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

pub const API_TOKEN: &str = "e2e-api-token-0123456789";
pub const JOIN_TOKEN: &str = "e2e-join-token-9876543210";
pub const S3_ACCESS_KEY: &str = "e2e-access-key";
pub const S3_SECRET_KEY: &str = "e2e-secret-key-0123456789";
/// Bucket that checkpoints go to.
pub const BUCKET: &str = "checkpoints";
/// File names, in a cluster's folder, of the coordinator's TLS certificate and key.
const TLS_CERT: &str = "tls-cert.pem";
const TLS_KEY: &str = "tls-key.pem";

/// Path of a built binary of the workspace, beside the test's own `deps/` folder.
pub fn binary(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let path = test_binary.parent().and_then(Path::parent).expect("target/PROFILE/deps/TEST").join(name);
    assert!(path.exists(), "{} is missing; build it with `cargo build -p {name}` or run `cargo test --workspace`", path.display());
    path
}

/// Path of a file under the repository's `examples/data/adult/`.
pub fn adult_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/adult").join(name)
}

/// Writes the header and every `step`-th row (up to `max_rows`) of an Adult split as plain CSV.
pub fn write_adult_sample(split: &str, step: usize, max_rows: usize, target: &Path) {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(adult_path(split)).unwrap()).read_to_string(&mut text).unwrap();
    let mut lines = text.lines();
    let mut sample = vec![lines.next().unwrap().to_owned()];
    sample.extend(lines.step_by(step).take(max_rows).map(str::to_owned));
    std::fs::write(target, sample.join("\n") + "\n").unwrap();
}

/// Returns a port on 127.0.0.1 that was free a moment ago, so nothing listens on it.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A PostgreSQL database that exists for one test.
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates a database on `SSL_TEST_POSTGRES_URL` (default: the server on 127.0.0.1:5432).
    pub async fn create() -> Self {
        let admin_url =
            std::env::var("SSL_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("ssl_e2e_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|error| {
            panic!("cannot connect to PostgreSQL at {admin_url}: {error}; start one or set SSL_TEST_POSTGRES_URL (`.ci/run` does both)")
        });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
        let (base, _) = admin_url.rsplit_once('/').unwrap();
        TestDatabase { url: format!("{base}/{name}"), name, admin_url }
    }

    pub async fn drop_database(self) {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))).execute(&mut admin).await;
        }
    }
}

/// Serves the folder `root` as S3 (one subfolder per bucket) on 127.0.0.1
/// until the test process exits.
pub fn start_s3_server(root: &Path) -> SocketAddr {
    let filesystem = s3s_fs::FileSystem::new(root).expect("s3s-fs root");
    let mut builder = s3s::service::S3ServiceBuilder::new(filesystem);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(S3_ACCESS_KEY, S3_SECRET_KEY));
    let service = builder.build();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    // A runtime of its own, so the server outlives the test's runtime.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let connections = ConnectionBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else { continue };
                tokio::spawn(connections.serve_connection(TokioIo::new(socket), service.clone()).into_owned());
            }
        });
    });
    address
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` that can be taken down and
/// brought back, to simulate a storage outage: while down it resets open
/// connections and closes new ones at once.
pub struct OutageProxy {
    pub address: SocketAddr,
    down: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    refused: Arc<AtomicUsize>,
}

impl OutageProxy {
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(AtomicUsize::new(0));
        let (task_down, task_connections, task_refused) = (down.clone(), connections.clone(), refused.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((mut client, _)) = listener.accept().await else { continue };
                    if task_down.load(Ordering::SeqCst) {
                        task_refused.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    task_connections.lock().unwrap().push(task.abort_handle());
                }
            });
        });
        OutageProxy { address, down, connections, refused }
    }

    /// Connections closed at once because the proxy was down.
    pub fn refused_connections(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// Takes the proxy down (resetting every open connection) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            for connection in self.connections.lock().unwrap().drain(..) {
                connection.abort();
            }
        }
    }
}

/// Adds the API token to every request.
#[derive(Clone)]
pub struct ApiToken;

impl Interceptor for ApiToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", MetadataValue::try_from(format!("Bearer {API_TOKEN}")).unwrap());
        Ok(request)
    }
}

pub type JobClient = JobServiceClient<InterceptedService<Channel, ApiToken>>;

/// The processes of one service, killed when dropped. The coordinator serves
/// TLS, as in production, and the workers and the job client verify it.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub s3_root: PathBuf,
    /// The address workers reach S3 at: a proxy that tests can take down.
    pub s3_address: SocketAddr,
    pub s3_proxy: OutageProxy,
    pub database_url: String,
    pub coordinator_port: u16,
    /// Port of the coordinator's `/metrics` listener.
    pub coordinator_metrics_port: u16,
    /// Port of each worker's `/metrics` listener, by worker index.
    pub worker_metrics_ports: Vec<u16>,
    /// Environment variables set on every process this cluster starts.
    environment: Vec<(String, String)>,
    coordinator: Option<Child>,
    workers: Vec<Option<Child>>,
}

impl Cluster {
    /// Starts the S3 server and a coordinator whose checkpoint root is `s3://checkpoints/runs`.
    pub fn start(database_url: &str) -> Self {
        Self::start_with_environment(database_url, &[])
    }

    /// Like [`Cluster::start`], with `environment` set on every process it starts.
    pub fn start_with_environment(database_url: &str, environment: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let s3_root = dir.path().join("s3");
        std::fs::create_dir_all(s3_root.join(BUCKET)).unwrap();
        let s3_proxy = OutageProxy::start(start_s3_server(&s3_root));
        let s3_address = s3_proxy.address;
        std::fs::write(dir.path().join("api-tokens"), format!("{API_TOKEN}\n")).unwrap();
        std::fs::write(dir.path().join("join-tokens"), format!("{JOIN_TOKEN}\n")).unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        std::fs::write(dir.path().join(TLS_CERT), certified.cert.pem()).unwrap();
        std::fs::write(dir.path().join(TLS_KEY), certified.signing_key.serialize_pem()).unwrap();
        let mut cluster = Cluster {
            dir,
            s3_root,
            s3_address,
            s3_proxy,
            database_url: database_url.to_owned(),
            coordinator_port: free_port(),
            coordinator_metrics_port: free_port(),
            worker_metrics_ports: Vec::new(),
            environment: environment.iter().map(|(name, value)| ((*name).to_owned(), value.clone())).collect(),
            coordinator: None,
            workers: Vec::new(),
        };
        cluster.start_coordinator();
        cluster
    }

    /// The coordinator's URL. It serves TLS with a self-signed certificate for
    /// 127.0.0.1, which [`Cluster::ca_cert`] holds.
    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.coordinator_port)
    }

    /// PEM file of the coordinator's certificate, the CA its clients trust.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join(TLS_CERT)
    }

    fn log_file(&self, name: &str) -> std::fs::File {
        std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join(format!("{name}.log"))).unwrap()
    }

    /// Starts (or restarts) the coordinator on its port. It reaches the S3 server
    /// with the workers' settings, to list the datasets there.
    pub fn start_coordinator(&mut self) {
        let mut command = Command::new(binary("ssl-coordinator"));
        self.s3_environment(&mut command);
        let child = command
            .args(["--listen", &format!("127.0.0.1:{}", self.coordinator_port)])
            .args(["--database-url", &self.database_url])
            .arg("--token-file")
            .arg(self.dir.path().join("api-tokens"))
            .arg("--join-token-file")
            .arg(self.dir.path().join("join-tokens"))
            .args(["--checkpoint-root", &format!("s3://{BUCKET}/runs")])
            .arg("--data-dir")
            .arg(self.dir.path().join("coordinator"))
            .args(["--metrics-listen", &format!("127.0.0.1:{}", self.coordinator_metrics_port)])
            .arg("--tls-cert")
            .arg(self.ca_cert())
            .arg("--tls-key")
            .arg(self.dir.path().join(TLS_KEY))
            .envs(self.environment.iter().map(|(name, value)| (name, value)))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(self.log_file("coordinator"))
            .spawn()
            .expect("ssl-coordinator starts");
        self.coordinator = Some(child);
    }

    /// Kills the coordinator with SIGKILL.
    pub fn kill_coordinator(&mut self) {
        if let Some(mut child) = self.coordinator.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn s3_environment(&self, command: &mut Command) {
        command
            .env("AWS_ENDPOINT_URL", format!("http://{}", self.s3_address))
            .env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ALLOW_HTTP", "true");
    }

    /// Builds the command of a worker agent with the given join token, without starting it.
    pub fn worker_command(&self, name: &str, join_token: &str) -> Command {
        let mut command = Command::new(binary("ssl-worker"));
        command
            .args(["--coordinator", &self.endpoint(), "--join-token", join_token, "--name", name])
            .arg("--ca-cert")
            .arg(self.ca_cert())
            .args(["--data-listen", "127.0.0.1:0", "--peer-timeout-secs", "10"])
            .envs(self.environment.iter().map(|(name, value)| (name, value)))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(self.log_file(name));
        self.s3_environment(&mut command);
        command
    }

    /// Starts worker agent `index`, named `worker-INDEX`.
    pub fn start_worker(&mut self) -> usize {
        self.start_worker_with(&[])
    }

    /// Starts worker agent `index`, named `worker-INDEX`, with `extra_args`
    /// after the cluster's own flags.
    pub fn start_worker_with(&mut self, extra_args: &[&str]) -> usize {
        let index = self.workers.len();
        let metrics_port = free_port();
        let child = self
            .worker_command(&format!("worker-{index}"), JOIN_TOKEN)
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
            .args(extra_args)
            .spawn()
            .expect("ssl-worker starts");
        self.workers.push(Some(child));
        self.worker_metrics_ports.push(metrics_port);
        index
    }

    /// Kills worker `index` with SIGKILL.
    pub fn kill_worker(&mut self, index: usize) {
        if let Some(mut child) = self.workers[index].take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Waits until the coordinator has logged `count` worker registrations.
    pub async fn wait_for_registrations(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.log("coordinator").matches("worker registered").count() < count {
            assert!(Instant::now() < deadline, "fewer than {count} workers registered\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Checks whether worker `index` still runs.
    pub fn worker_alive(&mut self, index: usize) -> bool {
        self.workers[index].as_mut().is_some_and(|child| child.try_wait().unwrap().is_none())
    }

    /// Reads the log a process wrote, for assertions and failure messages.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Collects the end of every process's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut names = vec!["coordinator".to_owned()];
        names.extend((0..self.workers.len()).map(|index| format!("worker-{index}")));
        names.iter().map(|name| format!("===== {name} =====\n{}", tail(&self.log(name), 4000))).collect::<Vec<_>>().join("\n")
    }

    /// Connects a client of the coordinator's job API, retrying while the coordinator starts.
    pub async fn client(&self) -> JobClient {
        ssl_proto::tls::install_crypto_provider();
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(std::fs::read(self.ca_cert()).unwrap()));
        let endpoint = Channel::from_shared(self.endpoint()).unwrap().tls_config(tls).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match endpoint.connect().await {
                Ok(channel) => return JobServiceClient::with_interceptor(channel, ApiToken),
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("the coordinator does not answer: {error}\n{}", self.logs()),
            }
        }
    }

    /// Path under the S3 server's root of `key` in the checkpoint bucket.
    pub fn bucket_path(&self, key: &str) -> PathBuf {
        self.s3_root.join(BUCKET).join(key)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.workers.iter_mut().flatten().chain(self.coordinator.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn tail(text: &str, bytes: usize) -> &str {
    let start = text.len().saturating_sub(bytes);
    let start = (start..text.len()).find(|&index| text.is_char_boundary(index)).unwrap_or(text.len());
    &text[start..]
}

/// Submits the YAML spec `yaml` (through the same parsing as `sslctl`) and returns the job id.
pub async fn submit(client: &mut JobClient, yaml: &str, dir: &Path) -> String {
    let path = dir.join(format!("spec-{}.yaml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, yaml).unwrap();
    let spec = ssl_proto::spec::parse_spec_file(&path).unwrap();
    let request = v1::SubmitJobRequest { request_id: uuid::Uuid::new_v4().to_string(), spec: Some(spec) };
    client.submit_job(request).await.unwrap().into_inner().job.unwrap().id
}

pub async fn get_job(client: &mut JobClient, job_id: &str) -> Job {
    client.get_job(v1::GetJobRequest { id: job_id.to_owned() }).await.unwrap().into_inner()
}

/// Polls the job until `done` holds, panicking with every log after `timeout`.
pub async fn wait_for(cluster: &Cluster, client: &mut JobClient, job_id: &str, timeout: Duration, done: impl Fn(&Job) -> bool) -> Job {
    let deadline = Instant::now() + timeout;
    loop {
        // The coordinator may be restarting; a failed call is retried.
        if let Ok(response) = client.get_job(v1::GetJobRequest { id: job_id.to_owned() }).await {
            let job = response.into_inner();
            if done(&job) {
                return job;
            }
            if Instant::now() > deadline {
                panic!("job {job_id} is {:?} after {timeout:?}: {job:?}\n{}", job.state(), cluster.logs());
            }
        } else if Instant::now() > deadline {
            panic!("the coordinator does not answer for job {job_id}\n{}", cluster.logs());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Checks whether the job reached a terminal state.
pub fn is_terminal(job: &Job) -> bool {
    matches!(job.state(), JobState::Succeeded | JobState::Failed | JobState::Cancelled)
}

/// Lists the step folders that contain objects under a job's checkpoint folder in the
/// bucket, with whether each has its manifest. The S3 server keeps a folder
/// on disk after its last object is deleted; such empty folders are skipped.
pub fn checkpoint_folders(cluster: &Cluster, job_id: &str) -> Vec<(String, bool)> {
    let folder = cluster.bucket_path(&format!("runs/jobs/{job_id}/checkpoints"));
    let mut folders: Vec<(String, bool)> = std::fs::read_dir(&folder)
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| std::fs::read_dir(entry.path()).is_ok_and(|mut objects| objects.next().is_some()))
                .map(|entry| (entry.file_name().to_string_lossy().into_owned(), entry.path().join("manifest.json").exists()))
                .collect()
        })
        .unwrap_or_default();
    folders.sort();
    folders
}

/// Fetches `GET /metrics` from 127.0.0.1:`port`, or returns `None` while nothing listens there
/// or the response is not 200.
pub fn scrape_metrics(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}
