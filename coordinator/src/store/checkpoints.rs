//! Reads of the `checkpoints` table. Workers record checkpoints once the
//! distributed runtime exists; until then every job has none.

use super::JobStore;
use super::records::CheckpointRecord;
use crate::Error;

impl JobStore {
    /// Returns a job's committed checkpoints, newest step first.
    pub async fn checkpoints(&self, job_id: &str) -> Result<Vec<CheckpointRecord>, Error> {
        let checkpoints = sqlx::query_as::<_, CheckpointRecord>(
            "SELECT job_id, step, epoch, uri, loss, committed_at_us FROM checkpoints \
             WHERE job_id = $1 ORDER BY step DESC",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(checkpoints)
    }
}
