//! The job store: jobs, their event history, shards and checkpoints, workers,
//! their assignments and peer reports, in PostgreSQL or SQLite.
//!
//! Both databases go through sqlx's `Any` driver with queries written once in the
//! SQL both dialects accept (`$N` placeholders, `ON CONFLICT`, `RETURNING`). Only the
//! migrations differ, one folder per dialect under `migrations/`.

mod assignments;
mod checkpoints;
mod connect;
mod events;
mod generations;
mod jobs;
mod leader;
mod peer_reports;
mod records;
mod shards;
mod snapshot;
mod workers;

pub use connect::Dialect;
pub use jobs::{JobFilter, JobPage, NewJob, Submission};
pub use assignments::{AssignmentView, CurrentAssignment, Member};
pub use generations::{GenerationPlan, RequeuePlan};
pub use peer_reports::PeerReport;
pub use records::{CheckpointRecord, EventKind, EventRecord, JobRecord, Progress};
pub use shards::ShardRecord;
pub use snapshot::{ActiveJob, StoreSnapshot, WorkerLease};
pub use workers::{NewWorker, WorkerRecord, WorkerState};

use std::sync::Arc;

use sqlx::AnyPool;
use tokio::sync::{Notify, broadcast, watch};

/// A transaction on the store's pool.
pub(crate) type Transaction<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// Handle to the job store; cheap to clone.
#[derive(Clone)]
pub struct JobStore {
    pool: AnyPool,
    dialect: Dialect,
    /// Ids of jobs that got a new event from this process, so watchers wake at once.
    /// Watchers also poll, which picks up events written by other coordinators.
    appended: broadcast::Sender<String>,
    /// Counts changes of worker assignments made through this process, so
    /// assignment streams wake at once. They also poll, for other coordinators.
    assignments_version: Arc<watch::Sender<u64>>,
    /// Wakes this process's scheduler early, such as after a submission.
    scheduling_wanted: Arc<Notify>,
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

    /// Receives a new value whenever this process changes a worker's assignment.
    pub fn watch_assignments(&self) -> watch::Receiver<u64> {
        self.assignments_version.subscribe()
    }

    /// Resolves when something happened that the scheduler should act on.
    pub async fn scheduling_requested(&self) {
        self.scheduling_wanted.notified().await;
    }

    /// Asks this process's scheduler to run soon.
    pub fn request_scheduling(&self) {
        self.scheduling_wanted.notify_one();
    }

    fn notify_assignments_changed(&self) {
        self.assignments_version.send_modify(|version| *version += 1);
    }

    fn notify_appended(&self, job_id: &str) {
        // No receivers is the normal case when nobody watches; nothing to do.
        let _ = self.appended.send(job_id.to_owned());
    }
}

/// Current time in microseconds since the Unix epoch, the unit of every stored time.
pub fn now_micros() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}
