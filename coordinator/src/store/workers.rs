//! Writes and reads of the `workers` table: registration, leases and loss.

use std::time::Duration;

use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::{JobStore, now_micros};
use crate::Error;

const WORKER_COLUMNS: &str =
    "id, name, data_address, capabilities_json, state, lease_expires_at_us, job_id, registered_at_us, updated_at_us";

/// A worker to register.
#[derive(Debug, Clone)]
pub struct NewWorker {
    pub name: String,
    /// `host:port` that peers connect to for the data plane.
    pub data_address: String,
    /// The worker's capabilities as JSON.
    pub capabilities_json: String,
}

/// What a worker is doing, as stored in `workers.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Live and free to be admitted to a job.
    Idle,
    /// Member of the current generation of the job in `job_id`.
    Busy,
    /// Lease expired, dropped after a peer report, or replaced by a new
    /// registration with the same name. A lost worker never comes back; the
    /// agent registers again and gets a new id.
    Lost,
}

/// One row of `workers`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WorkerRecord {
    pub id: String,
    pub name: String,
    pub data_address: String,
    pub capabilities_json: String,
    /// Stored state name; see [`WorkerRecord::state`].
    #[sqlx(rename = "state")]
    pub state_name: String,
    pub lease_expires_at_us: i64,
    /// The job whose current generation the worker belongs to, while `BUSY`.
    pub job_id: Option<String>,
    pub registered_at_us: i64,
    pub updated_at_us: i64,
}

impl WorkerRecord {
    /// The worker's state.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptRow`] when the stored name is not a worker state.
    pub fn state(&self) -> Result<WorkerState, Error> {
        match self.state_name.as_str() {
            "IDLE" => Ok(WorkerState::Idle),
            "BUSY" => Ok(WorkerState::Busy),
            "LOST" => Ok(WorkerState::Lost),
            other => Err(Error::CorruptRow(format!("worker `{}` has unknown state `{other}`", self.id))),
        }
    }
}

impl JobStore {
    /// Registers a worker as `IDLE` with a lease of `lease` from now.
    ///
    /// A live worker with the same name makes the call fail; one whose lease has
    /// expired is marked `LOST` and replaced, and the scheduler then treats it as
    /// lost by its job.
    ///
    /// # Errors
    ///
    /// [`Error::WorkerNameTaken`] when a worker with this name holds a live lease.
    #[tracing::instrument(name = "store.register_worker", skip_all, fields(name = %new_worker.name))]
    pub async fn register_worker(&self, new_worker: NewWorker, lease: Duration) -> Result<WorkerRecord, Error> {
        let id = Uuid::new_v4().to_string();
        let now = now_micros();
        let mut transaction = self.pool.begin().await?;

        let replaced = sqlx::query(
            "UPDATE workers SET state = 'LOST', updated_at_us = $2 \
             WHERE name = $1 AND state <> 'LOST' AND lease_expires_at_us <= $2",
        )
        .bind(&new_worker.name)
        .bind(now)
        .execute(&mut *transaction)
        .await?
        .rows_affected();

        let inserted = sqlx::query_as::<_, WorkerRecord>(AssertSqlSafe(format!(
            "INSERT INTO workers (id, name, data_address, capabilities_json, state, lease_expires_at_us, \
                                  registered_at_us, updated_at_us) \
             VALUES ($1, $2, $3, $4, 'IDLE', $5, $6, $6) \
             ON CONFLICT (name) WHERE state <> 'LOST' DO NOTHING \
             RETURNING {WORKER_COLUMNS}"
        )))
        .bind(&id)
        .bind(&new_worker.name)
        .bind(&new_worker.data_address)
        .bind(&new_worker.capabilities_json)
        .bind(now + micros(lease))
        .bind(now)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(worker) = inserted else {
            transaction.rollback().await?;
            return Err(Error::WorkerNameTaken(new_worker.name));
        };
        transaction.commit().await?;

        if replaced > 0 {
            tracing::info!(worker_id = %id, "replaced an expired worker with the same name");
            self.notify_assignments_changed();
        }
        self.request_scheduling();
        Ok(worker)
    }

    /// Extends a live worker's lease to `lease` from now.
    ///
    /// # Errors
    ///
    /// [`Error::WorkerNotFound`] for an unknown id, [`Error::WorkerLost`] when the
    /// lease already expired or the worker was dropped.
    pub async fn renew_lease(&self, worker_id: &str, lease: Duration) -> Result<WorkerRecord, Error> {
        let now = now_micros();
        let renewed = sqlx::query_as::<_, WorkerRecord>(AssertSqlSafe(format!(
            "UPDATE workers SET lease_expires_at_us = $1, updated_at_us = $2 \
             WHERE id = $3 AND state <> 'LOST' AND lease_expires_at_us > $2 \
             RETURNING {WORKER_COLUMNS}"
        )))
        .bind(now + micros(lease))
        .bind(now)
        .bind(worker_id)
        .fetch_optional(&self.pool)
        .await?;
        match renewed {
            Some(worker) => Ok(worker),
            None => {
                self.worker(worker_id).await?;
                Err(Error::WorkerLost(worker_id.to_owned()))
            }
        }
    }

    /// Returns one worker.
    ///
    /// # Errors
    ///
    /// [`Error::WorkerNotFound`] when no worker has this id.
    pub async fn worker(&self, worker_id: &str) -> Result<WorkerRecord, Error> {
        sqlx::query_as::<_, WorkerRecord>(AssertSqlSafe(format!("SELECT {WORKER_COLUMNS} FROM workers WHERE id = $1")))
            .bind(worker_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::WorkerNotFound(worker_id.to_owned()))
    }

    /// Marks every worker whose lease has expired as `LOST` and returns them.
    #[tracing::instrument(name = "store.expire_leases", skip_all)]
    pub async fn expire_leases(&self) -> Result<Vec<WorkerRecord>, Error> {
        let now = now_micros();
        let expired = sqlx::query_as::<_, WorkerRecord>(AssertSqlSafe(format!(
            "UPDATE workers SET state = 'LOST', updated_at_us = $1 \
             WHERE state <> 'LOST' AND lease_expires_at_us <= $1 \
             RETURNING {WORKER_COLUMNS}"
        )))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        if !expired.is_empty() {
            self.notify_assignments_changed();
        }
        Ok(expired)
    }

    /// Returns the live idle workers, longest registered first.
    pub async fn idle_workers(&self) -> Result<Vec<WorkerRecord>, Error> {
        let idle = sqlx::query_as::<_, WorkerRecord>(AssertSqlSafe(format!(
            "SELECT {WORKER_COLUMNS} FROM workers WHERE state = 'IDLE' AND lease_expires_at_us > $1 \
             ORDER BY registered_at_us, id"
        )))
        .bind(now_micros())
        .fetch_all(&self.pool)
        .await?;
        Ok(idle)
    }
}

pub(super) fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}
