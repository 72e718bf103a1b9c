//! Gang admission: a queued job starts only when at least its minimum number of
//! workers is idle, and takes up to its maximum. Its shards are planned first.

use std::sync::Arc;

use ssl_proto::JobState;

use super::shard_plan::ShardPlanner;
use super::task::{count_reachable, take_reachable, worker_range};
use crate::Error;
use crate::jobs::worker_count;
use crate::store::{GenerationPlan, JobStore};

/// Admits queued jobs, highest priority first and oldest first within a
/// priority, and returns whether a queued job is left waiting.
///
/// NOTE: admission is strict: a job that does not fit blocks the jobs behind it,
/// even smaller ones that would fit, so a large job is never starved by a stream
/// of small ones. A job whose minimum exceeds the whole fleet waits until
/// cancelled or until enough workers register.
pub(super) async fn admit_queued(store: &JobStore, planner: &Arc<ShardPlanner>) -> Result<bool, Error> {
    let mut idle = store.idle_workers().await?;
    // Each admitted job takes at least one worker, so at most `idle.len()` jobs can
    // start; one more tells whether a job is left waiting. Reading only those keeps
    // a pass cheap when thousands of jobs are queued.
    let queued = store.jobs_by_priority(&[JobState::Queued], Some(idle.len() as u32 + 1)).await?;
    if queued.is_empty() {
        return Ok(false);
    }

    for job in &queued {
        let (min, max) = worker_range(job)?;
        let unreachable = store.unreachable_addresses(&job.id).await?;
        let available = count_reachable(&idle, &unreachable);
        if available < min {
            tracing::debug!(job_id = %job.id, idle = available, min, "not enough idle workers; the job waits");
            let workers = if min == 1 { "worker" } else { "workers" };
            let mut message = format!("waiting for {min} idle {workers} (workers.min); {available} idle now");
            if available < idle.len() {
                message.push_str(&format!(
                    ", not counting {} at addresses that a peer of this job could not reach",
                    idle.len() - available
                ));
            }
            store.set_queued_message(&job.id, &message).await?;
            return Ok(true);
        }
        if !planner.is_planned(store, job).await? {
            // Admission is strict, so the jobs behind this one wait for its listing too.
            return Ok(true);
        }
        let chosen = take_reachable(&mut idle, max, &unreachable);
        let plan = GenerationPlan {
            job_id: job.id.clone(),
            expected_generation: job.generation,
            expected_state: JobState::Queued,
            transitions: vec![JobState::Scheduled],
            message: format!("admitted on {}", worker_count(chosen.len())),
            workers: chosen.iter().map(|worker| worker.id.clone()).collect(),
        };
        let Some(generation) = store.open_generation(&plan).await? else {
            // A worker or the job changed since the read; start over next pass.
            tracing::debug!(job_id = %job.id, "admission raced with another change; the next pass retries");
            return Ok(true);
        };
        tracing::info!(job_id = %job.id, generation, world_size = chosen.len(), "job admitted");
    }
    Ok(false)
}
