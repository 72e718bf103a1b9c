//! The `shards` table: the objects of each job's dataset, in row order.

use super::JobStore;
use crate::Error;

/// One object of a job's dataset as planned at admission.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ShardRecord {
    pub uri: String,
    pub size_bytes: i64,
}

impl JobStore {
    /// Stores the shard plan of `job_id`, index by index. A plan stored before is
    /// kept, so a job's data never changes once planned.
    #[tracing::instrument(name = "store.save_shards", skip_all, fields(job_id, shards = shards.len()))]
    pub async fn save_shards(&self, job_id: &str, shards: &[ShardRecord]) -> Result<(), Error> {
        let mut transaction = self.pool.begin().await?;
        for (index, shard) in shards.iter().enumerate() {
            sqlx::query(
                "INSERT INTO shards (job_id, shard_index, uri, size_bytes) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (job_id, shard_index) DO NOTHING",
            )
            .bind(job_id)
            .bind(index as i64)
            .bind(&shard.uri)
            .bind(shard.size_bytes)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Returns the shard plan of `job_id` in index order; empty before admission.
    pub async fn shards(&self, job_id: &str) -> Result<Vec<ShardRecord>, Error> {
        let shards = sqlx::query_as::<_, ShardRecord>("SELECT uri, size_bytes FROM shards WHERE job_id = $1 ORDER BY shard_index")
            .bind(job_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(shards)
    }
}
