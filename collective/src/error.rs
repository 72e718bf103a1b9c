//! Errors of collective operations.

use std::net::SocketAddr;

/// A failed collective call. After any error the ring is unusable: the caller must
/// join a new generation.
#[derive(Debug, thiserror::Error)]
pub enum CollectiveError {
    #[error("cannot connect to rank {rank} at {address}: {source}")]
    Connect { rank: usize, address: SocketAddr, source: std::io::Error },
    #[error("rank {rank} did not connect within {seconds} s")]
    AcceptTimeout { rank: usize, seconds: u64 },
    #[error("peer at {address} is in generation {theirs}, this rank in {ours}")]
    GenerationMismatch { address: SocketAddr, ours: u64, theirs: u64 },
    #[error("peer at {address} sent a bad handshake: {reason}")]
    Handshake { address: SocketAddr, reason: String },
    #[error("exchange with rank {rank} failed: {}", describe_io(source))]
    Peer { rank: usize, source: std::io::Error },
    #[error("exchange with rank {rank} timed out after {seconds} s")]
    Timeout { rank: usize, seconds: u64 },
    #[error("collective aborted")]
    Aborted,
    #[error("invalid collective call: {0}")]
    InvalidCall(String),
}

impl CollectiveError {
    /// Maps an I/O error on the link to `rank`, telling timeouts and aborts apart.
    pub(crate) fn from_io(rank: usize, source: std::io::Error, timeout_seconds: u64, aborted: bool) -> Self {
        if aborted {
            return CollectiveError::Aborted;
        }
        match source.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                CollectiveError::Timeout { rank, seconds: timeout_seconds }
            }
            _ => CollectiveError::Peer { rank, source },
        }
    }

    /// The rank whose link failed, when the error names one.
    pub fn failed_rank(&self) -> Option<usize> {
        match self {
            CollectiveError::Connect { rank, .. }
            | CollectiveError::AcceptTimeout { rank, .. }
            | CollectiveError::Peer { rank, .. }
            | CollectiveError::Timeout { rank, .. } => Some(*rank),
            _ => None,
        }
    }
}

/// Describes a link's I/O error in plain words, because a closed or reset
/// connection is the usual sign of a peer that stopped.
fn describe_io(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::BrokenPipe => "the peer closed the connection".to_owned(),
        std::io::ErrorKind::ConnectionReset => "the peer reset the connection".to_owned(),
        _ => error.to_string(),
    }
}
