//! A coordinator served in-process on 127.0.0.1 with SQLite in a temporary folder, and a
//! runner for the real `sslctl` binary.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ssl_coordinator::checkpoints::CheckpointRoot;
use ssl_coordinator::server::{AuthConfig, ServerConfig, TlsConfig, serve};
use ssl_coordinator::store::JobStore;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The only token the test coordinator accepts.
pub const TOKEN: &str = "sslctl-test-token";

/// Maximum time one `sslctl` run may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Path of a file under the repository's `examples/` folder.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name)
}

/// A running coordinator; dropping it shuts the server down.
pub struct Coordinator {
    pub endpoint: String,
    database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<Result<(), ssl_coordinator::Error>>,
    _data_dir: TempDir,
}

impl Coordinator {
    /// Starts a plain-HTTP coordinator that accepts [`TOKEN`].
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Starts a coordinator that serves TLS with the given certificate and accepts [`TOKEN`].
    pub async fn start_tls(tls: TlsConfig) -> Self {
        Self::start_with(Some(tls)).await
    }

    async fn start_with(tls: Option<TlsConfig>) -> Self {
        let data_dir = tempfile::tempdir().expect("create a temporary folder for the job store");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("read the bound address");
        let scheme = if tls.is_some() { "https" } else { "http" };

        let database_url = format!("sqlite://{}", data_dir.path().join("jobs.db").display());
        let config = ServerConfig {
            database_url: database_url.clone(),
            auth: AuthConfig::Tokens(vec![TOKEN.to_owned()]),
            join_auth: AuthConfig::Tokens(Vec::new()),
            scheduler: Default::default(),
            tls,
            checkpoint_root: CheckpointRoot::parse(&format!("file://{}/checkpoints", data_dir.path().display()))
                .expect("the temporary folder is a valid checkpoint root"),
            metrics_listener: None,
        };
        let (shutdown, shutdown_signal) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, config, async move {
            let _ = shutdown_signal.await;
        }));

        Coordinator {
            endpoint: format!("{scheme}://{address}"),
            database_url,
            shutdown: Some(shutdown),
            server,
            _data_dir: data_dir,
        }
    }

    /// Opens a second handle on the coordinator's job store, to move jobs through the
    /// states and progress that workers would report. The server's watch streams poll
    /// the store, so they see these writes.
    pub async fn store(&self) -> JobStore {
        JobStore::connect(&self.database_url).await.expect("open the coordinator's job store")
    }

    /// Runs `sslctl` against this coordinator with the valid token.
    pub async fn sslctl(&self, args: &[&str]) -> Output {
        run(self.command(args)).await
    }

    /// Builds an `sslctl` command for this coordinator with the valid token, to spawn.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = sslctl_command(args);
        command.env("SSLCTL_ENDPOINT", &self.endpoint).env("SSLCTL_TOKEN", TOKEN);
        command
    }

    /// Submits an example spec and returns the new job's id.
    pub async fn submit_example(&self, name: &str) -> String {
        let path = example(name);
        let output = self.sslctl(&["submit", "-f", path.to_str().unwrap()]).await;
        assert_eq!(output.code, 0, "{output}");
        output.stdout.trim().to_owned()
    }

    /// Returns the ids of all stored jobs, newest first.
    pub async fn job_ids(&self) -> Vec<String> {
        let output = self.sslctl(&["list", "-o", "json"]).await;
        assert_eq!(output.code, 0, "{output}");
        let jobs: serde_json::Value = serde_json::from_str(&output.stdout).expect("list -o json prints JSON");
        let jobs = jobs.as_array().expect("list -o json prints a list");
        jobs.iter().map(|job| job["id"].as_str().expect("job id is a string").to_owned()).collect()
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.server.abort();
    }
}

/// Builds an `sslctl` command with no `SSLCTL_*` variables inherited from the test's
/// environment.
pub fn sslctl_command(args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sslctl"));
    command
        .args(args)
        .env_remove("SSLCTL_ENDPOINT")
        .env_remove("SSLCTL_TOKEN")
        .env_remove("SSLCTL_CA_CERT")
        // A local stack the user left running must not become the default endpoint.
        .env("SSLCTL_DEV_DIR", "/nonexistent/sslctl-dev")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs a command to completion, failing the test after [`COMMAND_TIMEOUT`].
pub async fn run(mut command: tokio::process::Command) -> Output {
    let child = command.spawn().expect("start the sslctl binary");
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("sslctl did not exit within {COMMAND_TIMEOUT:?}"))
        .expect("wait for sslctl");
    Output::from(output)
}

/// What one `sslctl` run printed, and its exit status.
pub struct Output {
    /// Exit status; -1 when a signal ended the process.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(output: std::process::Output) -> Self {
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit status {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}
