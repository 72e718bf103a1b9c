//! The `peer_reports` table: workers that a peer of their generation could not reach.

use std::collections::HashSet;

use super::{JobStore, now_micros};
use crate::Error;

/// A worker's report that it cannot reach a peer of its generation.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PeerReport {
    pub job_id: String,
    pub generation: i64,
    pub reporter_id: String,
    pub reporter_rank: i64,
    pub unreachable_id: String,
    pub unreachable_rank: i64,
    /// Data-plane address the reporter could not reach.
    pub data_address: String,
    /// The reporter's error, such as `connection refused`.
    pub message: String,
}

impl JobStore {
    /// Marks the unreachable worker `LOST` and stores the report in one
    /// transaction, then requests a scheduler pass, which opens a new generation
    /// without the worker. Returns false, storing nothing, when the worker was
    /// lost already.
    #[tracing::instrument(name = "store.record_peer_report", skip_all, fields(job_id = %report.job_id, worker_id = %report.unreachable_id))]
    pub async fn record_peer_report(&self, report: &PeerReport) -> Result<bool, Error> {
        let now = now_micros();
        let mut transaction = self.pool.begin().await?;

        let dropped = sqlx::query("UPDATE workers SET state = 'LOST', updated_at_us = $2 WHERE id = $1 AND state <> 'LOST'")
            .bind(&report.unreachable_id)
            .bind(now)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if dropped == 0 {
            transaction.rollback().await?;
            return Ok(false);
        }

        sqlx::query(
            "INSERT INTO peer_reports (job_id, generation, reporter_id, reporter_rank, unreachable_id, unreachable_rank, \
                 data_address, message, reported_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&report.job_id)
        .bind(report.generation)
        .bind(&report.reporter_id)
        .bind(report.reporter_rank)
        .bind(&report.unreachable_id)
        .bind(report.unreachable_rank)
        .bind(&report.data_address)
        .bind(&report.message)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;

        self.notify_assignments_changed();
        self.request_scheduling();
        Ok(true)
    }

    /// Returns the reports that dropped a worker from `job_id`, oldest first.
    pub async fn peer_reports(&self, job_id: &str) -> Result<Vec<PeerReport>, Error> {
        let reports = sqlx::query_as::<_, PeerReport>(
            "SELECT job_id, generation, reporter_id, reporter_rank, unreachable_id, unreachable_rank, data_address, message \
             FROM peer_reports WHERE job_id = $1 ORDER BY reported_at_us",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(reports)
    }

    /// Returns the data-plane addresses that a peer of `job_id` could not reach.
    /// The job takes no worker at them again.
    pub async fn unreachable_addresses(&self, job_id: &str) -> Result<HashSet<String>, Error> {
        let addresses = sqlx::query_scalar::<_, String>("SELECT data_address FROM peer_reports WHERE job_id = $1")
            .bind(job_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(addresses.into_iter().collect())
    }
}
