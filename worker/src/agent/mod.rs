//! The worker agent: registers with a coordinator, heartbeats, and trains the
//! generations of jobs that the coordinator assigns, together with its peers.
//!
//! Two parts run side by side. The session ([`session`]) is async: it keeps the
//! registration, sends heartbeats with progress and follows the assignment
//! stream. The runner ([`runner`]) is one plain thread that owns the job's data
//! and trainer and makes the blocking collective calls. The session hands it
//! assignments and releases, and aborts its ring when they arrive mid-step.

pub mod checkpoints;
pub mod client;
pub mod runner;
pub mod session;
pub mod uploads;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::device::DeviceChoice;

pub use session::run_agent;

/// Settings of one agent process.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Coordinator URL, `http://host:port` or `https://host:port`.
    pub coordinator: String,
    /// PEM file of a CA to trust for an `https://` coordinator, besides the
    /// system's roots.
    pub ca_cert: Option<PathBuf>,
    /// Join token sent as `authorization: Bearer TOKEN`.
    pub join_token: String,
    /// Name unique among live workers.
    pub name: String,
    /// Address the data-plane listener binds; port 0 picks a free port.
    pub data_listen: SocketAddr,
    /// Address peers connect to, when it differs from the bound one (such as
    /// behind NAT, or when binding `0.0.0.0`).
    pub data_advertise: Option<SocketAddr>,
    /// Maximum wait for a peer during a collective call before it counts as lost.
    pub peer_timeout: Duration,
    /// Compute device the agent trains on.
    pub device: DeviceChoice,
    /// Address of the Prometheus `/metrics` listener; none serves no metrics.
    pub metrics_listen: Option<SocketAddr>,
}

/// Errors that end the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid agent setting: {0}")]
    InvalidConfig(String),
    #[error("cannot bind the {listener} listener on {address}: {source}")]
    Bind { listener: &'static str, address: SocketAddr, source: std::io::Error },
    #[error("the coordinator refused the join token: {0}")]
    Unauthenticated(String),
    #[error("the coordinator rejected the registration: {0}")]
    Rejected(String),
    #[error("cannot connect to the coordinator over TLS: {reason}; {hint}")]
    Tls { reason: String, hint: &'static str },
}
