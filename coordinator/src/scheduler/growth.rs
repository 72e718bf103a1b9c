//! Growing running jobs: idle workers join a job below its maximum at a new
//! generation.

use ssl_proto::JobState;

use super::task::{take_reachable, worker_range};
use crate::Error;
use crate::jobs::worker_count;
use crate::metrics::CoordinatorMetrics;
use crate::store::{GenerationPlan, JobStore, now_micros};

/// Gives idle workers to running jobs below their maximum, highest priority first.
pub(super) async fn grow_running(store: &JobStore, metrics: &CoordinatorMetrics) -> Result<(), Error> {
    let mut idle = store.idle_workers().await?;
    if idle.is_empty() {
        return Ok(());
    }
    for job in store.jobs_by_priority(&[JobState::Running], None).await? {
        if idle.is_empty() {
            break;
        }
        if job.generation == 0 {
            continue;
        }
        let members = store.members(&job.id, job.generation).await?;
        let now = now_micros();
        // A job with a lost member is for recovery to handle first.
        if members.iter().any(|member| !member.is_live_in(&job.id, now)) {
            continue;
        }
        let (_, max) = worker_range(&job)?;
        if members.len() >= max {
            continue;
        }
        let unreachable = store.unreachable_addresses(&job.id).await?;
        let added = take_reachable(&mut idle, max - members.len(), &unreachable);
        if added.is_empty() {
            continue;
        }
        let mut workers: Vec<String> = members.iter().map(|member| member.worker_id.clone()).collect();
        workers.extend(added.iter().map(|worker| worker.id.clone()));
        let plan = GenerationPlan {
            job_id: job.id.clone(),
            expected_generation: job.generation,
            expected_state: JobState::Running,
            transitions: vec![JobState::Recovering],
            message: format!("adding {}; continuing on {}", worker_count(added.len()), worker_count(workers.len())),
            workers,
        };
        match store.open_generation(&plan).await? {
            Some(generation) => {
                metrics.count_transitions(&plan.transitions);
                tracing::info!(job_id = %job.id, generation, added = added.len(), "job grew");
            }
            None => tracing::debug!(job_id = %job.id, "job changed during the pass; the next pass looks again"),
        }
    }
    Ok(())
}
