//! `ssl-worker --coordinator URL …`: the worker agent's command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::agent::{AgentConfig, AgentError};
use crate::device::DeviceChoice;

/// Flags of the agent mode, used when no subcommand is given.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Coordinator URL, such as `http://127.0.0.1:50051`, or `https://…` when the
    /// coordinator serves TLS. Runs this process as a worker agent that trains the
    /// jobs the coordinator assigns.
    #[arg(long, env = "SSL_COORDINATOR")]
    pub coordinator: Option<String>,
    /// PEM file of the CA that signed the coordinator's certificate, trusted
    /// besides the system's roots. Only with an `https://` coordinator.
    #[arg(long, env = "SSL_WORKER_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
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
    /// Compute device to train on.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
    /// Address to serve Prometheus metrics on, at `/metrics`, such as `0.0.0.0:9465`.
    /// The listener has no authentication. Without it, no metrics are served.
    #[arg(long, env = "SSL_WORKER_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
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
            ca_cert: self.ca_cert.clone(),
            join_token,
            name: self.name.clone().unwrap_or_else(default_name),
            data_listen: self.data_listen,
            data_advertise: self.data_advertise,
            peer_timeout: Duration::from_secs(self.peer_timeout_secs),
            device: self.device,
            metrics_listen: self.metrics_listen,
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        agent: AgentArgs,
    }

    fn config(args: &[&str]) -> Result<AgentConfig, AgentError> {
        let mut argv = vec!["ssl-worker"];
        argv.extend_from_slice(args);
        Command::try_parse_from(argv).unwrap().agent.to_config()
    }

    #[test]
    fn flags_build_the_config() {
        let config = config(&["--coordinator", "http://127.0.0.1:1", "--join-token", " token ", "--name", "w1", "--device", "cpu"]).unwrap();
        assert_eq!(config.join_token, "token");
        assert_eq!(config.name, "w1");
        assert_eq!(config.peer_timeout, Duration::from_secs(30));
        assert_eq!(config.device, DeviceChoice::Cpu);
        assert_eq!(config.data_listen.to_string(), "127.0.0.1:0");
    }

    #[test]
    fn missing_or_empty_settings_are_rejected() {
        let error = config(&["--join-token", "token"]).unwrap_err();
        assert!(error.to_string().contains("--coordinator URL"), "{error}");
        let error = config(&["--coordinator", "http://127.0.0.1:1"]).unwrap_err();
        assert!(error.to_string().contains("--join-token"), "{error}");
        let error = config(&["--coordinator", "http://127.0.0.1:1", "--join-token", " "]).unwrap_err();
        assert!(error.to_string().contains("empty"), "{error}");
        let error = config(&["--coordinator", "http://127.0.0.1:1", "--join-token", "t", "--peer-timeout-secs", "0"]).unwrap_err();
        assert!(error.to_string().contains("--peer-timeout-secs"), "{error}");
    }

    #[test]
    fn token_file_first_line_is_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("join");
        std::fs::write(&path, "from-file\nignored\n").unwrap();
        let config = config(&["--coordinator", "http://127.0.0.1:1", "--join-token-file", path.to_str().unwrap()]).unwrap();
        assert_eq!(config.join_token, "from-file");
    }
}
