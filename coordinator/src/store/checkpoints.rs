//! The `checkpoints` table: rank 0 of a job records each checkpoint once its
//! manifest is written.

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

impl JobStore {
    /// Records a committed checkpoint. Returns false, writing nothing, when the
    /// job already has a checkpoint at this step, so a retried report is harmless.
    #[tracing::instrument(name = "store.record_checkpoint", skip_all, fields(job_id = %checkpoint.job_id, step = checkpoint.step))]
    pub async fn record_checkpoint(&self, checkpoint: &CheckpointRecord) -> Result<bool, Error> {
        let inserted = sqlx::query(
            "INSERT INTO checkpoints (job_id, step, epoch, uri, loss, committed_at_us) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (job_id, step) DO NOTHING",
        )
        .bind(&checkpoint.job_id)
        .bind(checkpoint.step)
        .bind(checkpoint.epoch)
        .bind(&checkpoint.uri)
        .bind(checkpoint.loss)
        .bind(checkpoint.committed_at_us)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted > 0)
    }
}
