//! The `checkpoints` table: rank 0 of a job records each checkpoint once its
//! manifest is written, and retention removes the rows the job no longer keeps.

use super::JobStore;
use super::records::CheckpointRecord;
use crate::Error;
use crate::checkpoints::{RetentionPolicy, expired_checkpoints};

/// Columns of `checkpoints` in [`CheckpointRecord`]'s order.
const CHECKPOINT_COLUMNS: &str = "job_id, step, epoch, uri, loss, committed_at_us";

impl JobStore {
    /// Returns a job's committed checkpoints, newest step first.
    pub async fn checkpoints(&self, job_id: &str) -> Result<Vec<CheckpointRecord>, Error> {
        let checkpoints = sqlx::query_as::<_, CheckpointRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE job_id = $1 ORDER BY step DESC"
        )))
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(checkpoints)
    }

    /// Returns the job's committed checkpoint with the highest step, if any.
    pub async fn latest_checkpoint(&self, job_id: &str) -> Result<Option<CheckpointRecord>, Error> {
        let checkpoint = sqlx::query_as::<_, CheckpointRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE job_id = $1 ORDER BY step DESC LIMIT 1"
        )))
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(checkpoint)
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
        .await?;
        Ok(inserted.rows_affected() > 0)
    }

    /// Deletes the job's checkpoints that `policy` no longer keeps, in one
    /// transaction, and returns them, newest step first.
    ///
    /// # Errors
    ///
    /// [`Error::JobNotFound`] when the job does not exist. Nothing is deleted then.
    #[tracing::instrument(name = "store.expire_checkpoints", skip_all, fields(job_id = %job_id, expired = tracing::field::Empty))]
    pub async fn expire_checkpoints(&self, job_id: &str, policy: RetentionPolicy) -> Result<Vec<CheckpointRecord>, Error> {
        let mut transaction = self.pool.begin().await?;
        // Writing the job row first locks it, so concurrent retention of one job
        // runs one at a time on PostgreSQL, and SQLite takes its write lock before
        // the read below instead of failing the transaction at the first delete.
        let locked = sqlx::query("UPDATE jobs SET updated_at_us = updated_at_us WHERE id = $1")
            .bind(job_id)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if locked == 0 {
            transaction.rollback().await?;
            return Err(Error::JobNotFound(job_id.to_owned()));
        }

        let checkpoints = sqlx::query_as::<_, CheckpointRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE job_id = $1 ORDER BY step DESC"
        )))
        .bind(job_id)
        .fetch_all(&mut *transaction)
        .await?;
        let expired: Vec<CheckpointRecord> = expired_checkpoints(&checkpoints, policy).into_iter().cloned().collect();
        for checkpoint in &expired {
            sqlx::query("DELETE FROM checkpoints WHERE job_id = $1 AND step = $2")
                .bind(job_id)
                .bind(checkpoint.step)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;

        tracing::Span::current().record("expired", expired.len() as u64);
        Ok(expired)
    }
}
