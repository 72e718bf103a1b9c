//! Jobs: their state machine, and the wording of the messages in their history.

pub mod state;

/// Returns `count` with `worker` or `workers`, for job messages.
pub fn worker_count(count: usize) -> String {
    if count == 1 { "1 worker".to_owned() } else { format!("{count} workers") }
}
