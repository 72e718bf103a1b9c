//! `ssl-worker --coordinator URL …`: the worker agent's command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::agent::{AgentConfig, AgentError};

/// Flags of the agent mode, used when no subcommand is given.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Coordinator URL, such as `http://127.0.0.1:50051`. Runs this process as a
    /// worker agent that trains the jobs the coordinator assigns.
    #[arg(long, env = "SSL_COORDINATOR")]
    pub coordinator: Option<String>,
    /// Join token that the coordinator accepts for workers.
    #[arg(long, env = "SSL_JOIN_TOKEN", hide_env_values = true, conflicts_with = "join_token_file")]
    pub join_token: Option<String>,
    /// File whose first line is the join token.
    #[arg(long)]
    pub join_token_file: Option<PathBuf>,
    /// Address of the data-plane listener that peers connect to for gradient
    /// exchange; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub data_listen: SocketAddr,
    /// Address announced to peers instead of the bound one.
    #[arg(long)]
    pub data_advertise: Option<SocketAddr>,
    /// Worker name, unique among live workers. Default: `HOSTNAME-PID`.
    #[arg(long)]
    pub name: Option<String>,
    /// Seconds to wait for a peer during an exchange before reporting it unreachable.
    #[arg(long, default_value_t = 30)]
    pub peer_timeout_secs: u64,
}

impl AgentArgs {
    /// Turns the flags into the agent's settings.
    ///
    /// # Errors
    ///
    /// [`AgentError::InvalidConfig`] when no coordinator or no join token is
    /// given, or the token file cannot be read.
    pub fn to_config(&self) -> Result<AgentConfig, AgentError> {
        let coordinator = self.coordinator.clone().ok_or_else(|| {
            AgentError::InvalidConfig("pass --coordinator URL to run as a worker agent, or use `ssl-worker train`".to_owned())
        })?;
        let join_token = match (&self.join_token, &self.join_token_file) {
            (Some(token), _) => token.trim().to_owned(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|error| AgentError::InvalidConfig(format!("--join-token-file {}: {error}", path.display())))?
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned(),
            (None, None) => return Err(AgentError::InvalidConfig("pass --join-token, SSL_JOIN_TOKEN or --join-token-file".to_owned())),
        };
        if join_token.is_empty() {
            return Err(AgentError::InvalidConfig("the join token is empty".to_owned()));
        }
        if self.peer_timeout_secs == 0 {
            return Err(AgentError::InvalidConfig("--peer-timeout-secs must be at least 1".to_owned()));
        }
        Ok(AgentConfig {
            coordinator,
            join_token,
            name: self.name.clone().unwrap_or_else(default_name),
            data_listen: self.data_listen,
            data_advertise: self.data_advertise,
            peer_timeout: Duration::from_secs(self.peer_timeout_secs),
        })
    }
}

fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Runs the agent until Ctrl-C or SIGTERM.
///
/// # Errors
///
/// As [`crate::agent::run_agent`].
pub fn run(args: &AgentArgs) -> Result<(), AgentError> {
    let config = args.to_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| AgentError::InvalidConfig(format!("cannot start the async runtime: {error}")))?;
    runtime.block_on(crate::agent::run_agent(config, shutdown_signal()))
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
