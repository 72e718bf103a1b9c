//! The job store: jobs, their event history and checkpoints, in PostgreSQL or SQLite.
//!
//! Both databases go through sqlx's `Any` driver with queries written once in the
//! SQL both dialects accept (`$N` placeholders, `ON CONFLICT`, `RETURNING`). Only the
//! migrations differ, one folder per dialect under `migrations/`.

mod checkpoints;
mod connect;
mod events;
mod jobs;
mod records;

pub use connect::Dialect;
pub use jobs::{JobFilter, JobPage, NewJob, Submission};
pub use records::{CheckpointRecord, EventKind, EventRecord, JobRecord, Progress};

use sqlx::AnyPool;
use tokio::sync::broadcast;

/// Handle to the job store; cheap to clone.
#[derive(Clone)]
pub struct JobStore {
    pool: AnyPool,
    dialect: Dialect,
    /// Ids of jobs that got a new event from this process, so watchers wake at once.
    /// Watchers also poll, which picks up events written by other coordinators.
    appended: broadcast::Sender<String>,
}

impl JobStore {
    /// Which database this store talks to.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Receives the id of every job that gets a new event through this handle or
    /// its clones.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.appended.subscribe()
    }

    /// Closes the connection pool, waiting for checked-out connections to return.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn notify_appended(&self, job_id: &str) {
        // No receivers is the normal case when nobody watches; nothing to do.
        let _ = self.appended.send(job_id.to_owned());
    }
}

/// Current time in microseconds since the Unix epoch, the unit of every stored time.
pub(crate) fn now_micros() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}
