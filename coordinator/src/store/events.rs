//! Reads of the `job_events` history.

use super::JobStore;
use super::records::{EventRecord, EventRow};
use crate::Error;

/// Most events returned by one [`JobStore::events_after`] call.
const EVENTS_PER_READ: i64 = 1000;

impl JobStore {
    /// Returns up to 1000 events of a job with a sequence above `after_sequence`, oldest first.
    pub async fn events_after(&self, job_id: &str, after_sequence: i64) -> Result<Vec<EventRecord>, Error> {
        let rows = sqlx::query_as::<_, EventRow>(
            "SELECT job_id, sequence, created_at_us, kind, from_state, to_state, message, progress_json, generation, world_size \
             FROM job_events WHERE job_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3",
        )
        .bind(job_id)
        .bind(after_sequence)
        .bind(EVENTS_PER_READ)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(EventRecord::try_from).collect()
    }
}
