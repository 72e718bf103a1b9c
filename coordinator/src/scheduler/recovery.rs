//! Jobs that lost workers: a new generation with the survivors, or back to
//! the queue when fewer than the job's minimum remain.

use ssl_proto::JobState;

use super::task::{path_to_queued, worker_range};
use crate::Error;
use crate::jobs::worker_count;
use crate::metrics::CoordinatorMetrics;
use crate::store::{GenerationPlan, JobRecord, JobStore, Member, PeerReport, RequeuePlan};

/// Checks every admitted job for members that are no longer live and replaces
/// its generation.
pub(super) async fn replace_lost_workers(store: &JobStore, metrics: &CoordinatorMetrics) -> Result<(), Error> {
    let active = store.jobs_by_priority(&[JobState::Scheduled, JobState::Running, JobState::Recovering], None).await?;
    for job in active.iter().filter(|job| job.generation > 0) {
        let members = store.members(&job.id, job.generation).await?;
        let now = crate::store::now_micros();
        let (survivors, lost): (Vec<&Member>, Vec<&Member>) = members.iter().partition(|member| member.is_live_in(&job.id, now));
        if lost.is_empty() {
            continue;
        }
        let reports = store.peer_reports(&job.id).await?;
        let lost_names = lost.iter().map(|member| describe_lost(member, &members, &reports)).collect::<Vec<_>>().join(", ");
        let (min, _) = worker_range(job)?;
        if survivors.len() >= min {
            continue_without(store, metrics, job, &survivors, &lost_names).await?;
        } else {
            requeue(store, metrics, job, survivors.len(), min, &lost_names).await?;
        }
    }
    Ok(())
}

async fn continue_without(
    store: &JobStore,
    metrics: &CoordinatorMetrics,
    job: &JobRecord,
    survivors: &[&Member],
    lost_names: &str,
) -> Result<(), Error> {
    let state = job.state()?;
    let plan = GenerationPlan {
        job_id: job.id.clone(),
        expected_generation: job.generation,
        expected_state: state,
        transitions: if state == JobState::Running { vec![JobState::Recovering] } else { Vec::new() },
        message: format!("lost worker {lost_names}; continuing on {}", worker_count(survivors.len())),
        workers: survivors.iter().map(|member| member.worker_id.clone()).collect(),
    };
    match store.open_generation(&plan).await? {
        Some(generation) => {
            metrics.count_transitions(&plan.transitions);
            tracing::info!(job_id = %job.id, generation, world_size = survivors.len(), "opened a generation without lost workers");
        }
        None => tracing::debug!(job_id = %job.id, "job changed during the pass; the next pass looks again"),
    }
    Ok(())
}

async fn requeue(
    store: &JobStore,
    metrics: &CoordinatorMetrics,
    job: &JobRecord,
    survivors: usize,
    min: usize,
    lost_names: &str,
) -> Result<(), Error> {
    let state = job.state()?;
    let plan = RequeuePlan {
        job_id: job.id.clone(),
        expected_generation: job.generation,
        expected_state: state,
        transitions: path_to_queued(state),
        message: format!("lost worker {lost_names}; {survivors} left of the {min} the job needs, waiting for workers"),
    };
    if store.requeue(&plan).await? {
        metrics.count_transitions(&plan.transitions);
        tracing::info!(job_id = %job.id, generation = job.generation, survivors, min, "job back in the queue");
    }
    Ok(())
}

/// Names a lost member and, when a peer reported it, who could not reach it and why.
fn describe_lost(member: &Member, members: &[Member], reports: &[PeerReport]) -> String {
    let name = format!("`{}` (rank {})", member.worker_name, member.rank);
    let Some(report) = reports.iter().find(|report| report.unreachable_id == member.worker_id) else {
        return name;
    };
    let reporter = match members.iter().find(|other| other.worker_id == report.reporter_id) {
        Some(reporter) => format!("rank {} (`{}`)", reporter.rank, reporter.worker_name),
        None => format!("rank {}", report.reporter_rank),
    };
    format!("{name}, which {reporter} could not reach at {}: {}", report.data_address, report.message)
}
