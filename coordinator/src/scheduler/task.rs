//! The scheduler's loop: take the leader lease, run a pass, wait.

use std::collections::HashSet;

use ssl_proto::JobState;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::SchedulerConfig;
use super::shard_plan::ShardPlanner;
use super::{admission, growth, recovery};
use std::sync::Arc;

use crate::Error;
use crate::metrics::CoordinatorMetrics;
use crate::store::JobStore;

/// Name of the scheduler's row in `leader_leases`.
pub const LEADER_LEASE_NAME: &str = "scheduler";

/// Wait between a request for a pass and the pass. Every submission requests one,
/// so a burst of submissions then shares one pass instead of running one each,
/// which would keep the database busy with scheduler writes.
const REQUESTED_PASS_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

/// Consecutive failed passes between two repeated warnings.
const FAILURE_LOG_EVERY: u64 = 100;

/// Starts the scheduler. It runs a pass every `config.pass_interval`, or sooner
/// when the store asks for one, while this coordinator holds the leader lease.
/// When `shutdown` turns true it gives up the lease and the task ends.
pub fn spawn(
    store: JobStore,
    config: SchedulerConfig,
    metrics: Arc<CoordinatorMetrics>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let holder = Uuid::new_v4().to_string();
    let planner = Arc::new(ShardPlanner::default());
    tokio::spawn(async move {
        let mut leading = false;
        let mut failures: u64 = 0;
        loop {
            match lead_and_pass(&store, &config, &metrics, &planner, &holder, &mut leading).await {
                Ok(()) => failures = 0,
                Err(error) => {
                    failures += 1;
                    if failures % FAILURE_LOG_EVERY == 1 {
                        tracing::warn!(error = %error, failures, "scheduler pass failed; retrying");
                    }
                }
            }
            let requested = tokio::select! {
                () = tokio::time::sleep(config.pass_interval) => false,
                () = store.scheduling_requested() => true,
                _ = shutdown.wait_for(|stopping| *stopping) => break,
            };
            if requested {
                tokio::time::sleep(REQUESTED_PASS_DELAY).await;
            }
        }
        if leading && let Err(error) = store.release_lease(LEADER_LEASE_NAME, &holder).await {
            tracing::warn!(error = %error, "cannot release the scheduler lease; another coordinator takes over when it expires");
        }
    })
}

async fn lead_and_pass(
    store: &JobStore,
    config: &SchedulerConfig,
    metrics: &CoordinatorMetrics,
    planner: &Arc<ShardPlanner>,
    holder: &str,
    leading: &mut bool,
) -> Result<(), Error> {
    let acquired = store.try_acquire_lease(LEADER_LEASE_NAME, holder, config.leader_lease).await?;
    if acquired != *leading {
        tracing::info!(holder, leading = acquired, "scheduler leadership changed");
        *leading = acquired;
    }
    if !acquired {
        return Ok(());
    }
    run_pass(store, metrics, planner).await
}

/// One pass: expire leases, repair jobs that lost workers, admit queued jobs,
/// then grow running jobs with the idle workers left.
#[tracing::instrument(name = "scheduler.pass", skip_all)]
async fn run_pass(store: &JobStore, metrics: &CoordinatorMetrics, planner: &Arc<ShardPlanner>) -> Result<(), Error> {
    let expired = store.expire_leases().await?;
    metrics.count_lost_workers(expired.len());
    for worker in expired {
        tracing::info!(worker_id = %worker.id, name = %worker.name, job_id = ?worker.job_id, "worker lease expired");
    }
    recovery::replace_lost_workers(store, metrics).await?;
    let queued_waiting = admission::admit_queued(store, planner).await?;
    // Idle workers go to queued jobs first; a running job only grows when no
    // queued job is waiting for them.
    if !queued_waiting {
        growth::grow_running(store, metrics).await?;
    }
    Ok(())
}

/// Fewest and most workers of a job, from its normalized spec.
pub(super) fn worker_range(job: &crate::store::JobRecord) -> Result<(usize, usize), Error> {
    let spec = job.spec()?;
    let range = spec.workers.unwrap_or_default();
    let min = range.min.unwrap_or(1).max(1) as usize;
    let max = range.max.map_or(min, |max| max.max(0) as usize).max(min);
    Ok((min, max))
}

/// Takes up to `count` workers from `idle`, in order, skipping those at a data
/// address in `unreachable`: a peer of the job could not reach them before.
pub(super) fn take_reachable(
    idle: &mut Vec<crate::store::WorkerRecord>,
    count: usize,
    unreachable: &HashSet<String>,
) -> Vec<crate::store::WorkerRecord> {
    let mut chosen = Vec::new();
    idle.retain(|worker| {
        if chosen.len() < count && !unreachable.contains(&worker.data_address) {
            chosen.push(worker.clone());
            false
        } else {
            true
        }
    });
    chosen
}

/// Number of workers in `idle` that [`take_reachable`] may take.
pub(super) fn count_reachable(idle: &[crate::store::WorkerRecord], unreachable: &HashSet<String>) -> usize {
    idle.iter().filter(|worker| !unreachable.contains(&worker.data_address)).count()
}

/// The states a job in `state` passes through to reach `QUEUED`.
pub(super) fn path_to_queued(state: JobState) -> Vec<JobState> {
    match state {
        JobState::Running => vec![JobState::Recovering, JobState::Queued],
        _ => vec![JobState::Queued],
    }
}
