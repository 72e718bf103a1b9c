//! Timing settings of the scheduler and of worker leases.

use std::time::Duration;

use crate::Error;

/// Timing of leases and scheduler passes.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How long a worker's lease lasts after its last heartbeat; a worker that
    /// misses it is lost. Default 5 s.
    pub worker_lease: Duration,
    /// How often workers are told to heartbeat. Default 1 s; keep it well under
    /// `worker_lease` so one late heartbeat does not lose a worker.
    pub heartbeat_interval: Duration,
    /// Time between scheduler passes when nothing wakes the scheduler earlier.
    /// Default 500 ms.
    pub pass_interval: Duration,
    /// How long the scheduler's leader lease lasts without renewal; after a
    /// leader dies, another coordinator takes over within this time. Default 5 s.
    pub leader_lease: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            worker_lease: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(1),
            pass_interval: Duration::from_millis(500),
            leader_lease: Duration::from_secs(5),
        }
    }
}

impl SchedulerConfig {
    /// Checks that heartbeats fit in a lease and passes renew the leader lease in time.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the setting to change.
    pub fn validate(&self) -> Result<(), Error> {
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= self.worker_lease {
            return Err(Error::InvalidArgument(format!(
                "heartbeat_interval: {:?} must be above zero and below worker_lease ({:?})",
                self.heartbeat_interval, self.worker_lease
            )));
        }
        if self.pass_interval.is_zero() || self.pass_interval * 2 > self.leader_lease {
            return Err(Error::InvalidArgument(format!(
                "pass_interval: {:?} must be above zero and at most half of leader_lease ({:?})",
                self.pass_interval, self.leader_lease
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_valid() {
        assert!(SchedulerConfig::default().validate().is_ok());
    }

    #[test]
    fn heartbeat_longer_than_lease_rejected() {
        let config = SchedulerConfig { heartbeat_interval: Duration::from_secs(6), ..Default::default() };
        let error = config.validate().unwrap_err().to_string();
        assert!(error.starts_with("heartbeat_interval:"), "{error}");
    }
}
