//! The gRPC API of the SSL training service (`ssl.v1`), and the job spec rules, job
//! result format, text tables and TLS settings that `sslctl`, the coordinator and the
//! workers share.

pub mod result;
pub mod spec;
pub mod table;
pub mod tls;

/// Code generated from `proto/ssl/v1/*.proto`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("ssl.v1");
}

pub use v1::JobState;

impl JobState {
    /// Every state a job can be in, in lifecycle order; `Unspecified` is left out.
    pub const ALL: [JobState; 7] = [
        JobState::Queued,
        JobState::Scheduled,
        JobState::Running,
        JobState::Recovering,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// Returns the state's short name as users see it, such as `QUEUED`.
    pub fn short_name(self) -> &'static str {
        self.as_str_name().trim_start_matches("JOB_STATE_")
    }

    /// Parses a short (`queued`) or full (`JOB_STATE_QUEUED`) state name, in any case.
    pub fn from_short_name(name: &str) -> Option<Self> {
        let upper = name.to_ascii_uppercase();
        let full = if upper.starts_with("JOB_STATE_") { upper } else { format!("JOB_STATE_{upper}") };
        Self::from_str_name(&full).filter(|state| *state != JobState::Unspecified)
    }

    /// Whether the job has ended and will change no more.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::JobState;

    #[test]
    fn state_names_round_trip() {
        assert_eq!(JobState::Queued.short_name(), "QUEUED");
        assert_eq!(JobState::from_short_name("queued"), Some(JobState::Queued));
        assert_eq!(JobState::from_short_name("JOB_STATE_RUNNING"), Some(JobState::Running));
        assert_eq!(JobState::from_short_name("unspecified"), None);
        assert_eq!(JobState::from_short_name("done"), None);
    }
}
