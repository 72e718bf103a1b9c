//! The job state machine: which transitions are allowed.
//!
//! `QUEUED → SCHEDULED → RUNNING → SUCCEEDED | FAILED | CANCELLED`, with
//! `RUNNING → RECOVERING → RUNNING` when the worker set changes. Any job that has
//! not ended can fail or be cancelled, and a scheduled or recovering job can fall
//! back to `QUEUED` when its workers go away before training resumes.

use ssl_proto::JobState;

/// States a job may move to `target` from.
pub fn allowed_sources(target: JobState) -> &'static [JobState] {
    use JobState::*;
    match target {
        Unspecified => &[],
        Queued => &[Scheduled, Recovering],
        Scheduled => &[Queued],
        Running => &[Scheduled, Recovering],
        Recovering => &[Running],
        Succeeded => &[Running],
        Failed | Cancelled => &[Queued, Scheduled, Running, Recovering],
    }
}

/// Whether a job in `from` may move to `to`.
pub fn is_allowed(from: JobState, to: JobState) -> bool {
    allowed_sources(to).contains(&from)
}

/// Parses a state as stored in the database (`QUEUED`).
pub fn parse_stored(name: &str) -> Option<JobState> {
    JobState::from_short_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_have_no_exit() {
        for from in JobState::ALL.into_iter().filter(|state| state.is_terminal()) {
            for to in JobState::ALL {
                assert!(!is_allowed(from, to), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn happy_path_is_allowed() {
        let path = [JobState::Queued, JobState::Scheduled, JobState::Running, JobState::Succeeded];
        for pair in path.windows(2) {
            assert!(is_allowed(pair[0], pair[1]), "{:?} -> {:?}", pair[0], pair[1]);
        }
        assert!(is_allowed(JobState::Running, JobState::Recovering));
        assert!(is_allowed(JobState::Recovering, JobState::Running));
    }

    #[test]
    fn shortcuts_are_rejected() {
        assert!(!is_allowed(JobState::Queued, JobState::Running));
        assert!(!is_allowed(JobState::Queued, JobState::Succeeded));
        assert!(!is_allowed(JobState::Running, JobState::Queued));
    }

    #[test]
    fn stored_names_parse() {
        for state in JobState::ALL {
            assert_eq!(parse_stored(state.short_name()), Some(state));
        }
    }
}
