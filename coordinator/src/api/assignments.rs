//! The `WatchAssignments` stream: a worker's current assignment, then every
//! change to it, derived from the store.

use std::time::Duration;

use futures::Stream;
use ssl_proto::v1::{self, JobSpec, assignment_update};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::Error;
use crate::checkpoints::CheckpointRoot;
use crate::store::{AssignmentView, CheckpointRecord, CurrentAssignment, JobStore, ShardRecord};

/// How often a stream reads the store for changes that another coordinator made.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Streams `worker_id`'s assignments.
///
/// The first message is the current assignment, if any. Later messages follow
/// changes: an `Assignment` for each new generation, and a `Release` when the
/// worker leaves its job. When the worker is lost, the stream sends a release for
/// its job and ends with `FAILED_PRECONDITION`; on shutdown it ends with `UNAVAILABLE`.
///
/// Each assignment names the job's checkpoint folder under `checkpoint_root` and
/// the job's latest committed checkpoint at the time it is sent.
pub(crate) fn watch_assignments(
    store: JobStore,
    checkpoint_root: CheckpointRoot,
    worker_id: String,
    mut shutdown: watch::Receiver<bool>,
) -> impl Stream<Item = Result<v1::AssignmentUpdate, Status>> {
    let (sender, receiver) = mpsc::channel(16);
    // Subscribe before the first read so no change slips between read and wait.
    let mut changes = store.watch_assignments();

    tokio::spawn(async move {
        // Job and generation of the last assignment sent, while it lasts.
        let mut sent: Option<(String, i64)> = None;
        loop {
            changes.mark_unchanged();
            let updates = match next_updates(&store, &checkpoint_root, &worker_id, &mut sent).await {
                Ok(updates) => updates,
                Err(status) => {
                    let _ = sender.send(Err(status)).await;
                    return;
                }
            };
            for update in updates {
                let ends = update.is_err();
                if sender.send(update).await.is_err() || ends {
                    return;
                }
            }

            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                () = sender.closed() => return,
                _ = shutdown.changed() => {
                    let _ = sender.send(Err(Status::unavailable("coordinator is shutting down; watch again to resume"))).await;
                    return;
                }
            }
        }
    });
    ReceiverStream::new(receiver)
}

/// Compares the worker's situation with what the stream sent and returns the
/// messages that bring the worker up to date; an `Err` item ends the stream.
async fn next_updates(
    store: &JobStore,
    checkpoint_root: &CheckpointRoot,
    worker_id: &str,
    sent: &mut Option<(String, i64)>,
) -> Result<Vec<Result<v1::AssignmentUpdate, Status>>, Status> {
    let view = store.assignment_view(worker_id).await?;
    let mut updates = Vec::new();
    let current = match &view {
        AssignmentView::Assigned(assignment) => Some((assignment.job_id.clone(), assignment.generation)),
        AssignmentView::Idle | AssignmentView::Lost => None,
    };
    if let Some((job_id, _)) = sent.as_ref()
        && current.as_ref().is_none_or(|(current_job, _)| current_job != job_id)
    {
        let release = if view == AssignmentView::Lost {
            release_message(job_id, "this worker lost its lease or a peer reported it unreachable".to_owned())
        } else {
            release_for_job_state(store, job_id).await?
        };
        updates.push(Ok(release));
        *sent = None;
    }

    match view {
        AssignmentView::Lost => updates.push(Err(Status::from(Error::WorkerLost(worker_id.to_owned())))),
        AssignmentView::Idle => {}
        AssignmentView::Assigned(assignment) => {
            if *sent != current {
                tracing::debug!(worker_id, job_id = %assignment.job_id, generation = assignment.generation, "sending assignment");
                let resume_from = store.latest_checkpoint(&assignment.job_id).await?;
                let shards = store.shards(&assignment.job_id).await?;
                updates.push(Ok(assignment_message(assignment, checkpoint_root, resume_from, shards)?));
                *sent = current;
            }
        }
    }
    Ok(updates)
}

/// Releases the worker from `job_id` with the job's state and message as the reason.
async fn release_for_job_state(store: &JobStore, job_id: &str) -> Result<v1::AssignmentUpdate, Status> {
    let job = store.get(job_id).await?;
    let state = job.state()?.short_name();
    let reason = if job.message.is_empty() { format!("job is {state}") } else { format!("job is {state}: {}", job.message) };
    Ok(release_message(job_id, reason))
}

fn release_message(job_id: &str, reason: String) -> v1::AssignmentUpdate {
    let release = v1::Release { job_id: job_id.to_owned(), reason };
    v1::AssignmentUpdate { kind: Some(assignment_update::Kind::Release(release)) }
}

fn assignment_message(
    assignment: CurrentAssignment,
    checkpoint_root: &CheckpointRoot,
    resume_from: Option<CheckpointRecord>,
    shards: Vec<ShardRecord>,
) -> Result<v1::AssignmentUpdate, Status> {
    let spec: JobSpec = serde_json::from_str(&assignment.spec_json).map_err(|error| {
        Status::from(Error::CorruptRow(format!("job `{}` has an unreadable spec: {error}", assignment.job_id)))
    })?;
    let checkpoint_uri = checkpoint_root.job_folder(&assignment.job_id);
    let resume_from = resume_from.map(|checkpoint| v1::CheckpointRef { step: checkpoint.step, uri: checkpoint.uri });
    let message = v1::Assignment {
        job_id: assignment.job_id,
        generation: assignment.generation,
        rank: assignment.rank as i32,
        world_size: assignment.world_size as i32,
        peer_addresses: assignment.peer_addresses,
        spec: Some(spec),
        checkpoint_uri,
        resume_from,
        shards: shards.into_iter().map(|shard| v1::Shard { uri: shard.uri, size_bytes: shard.size_bytes }).collect(),
    };
    Ok(v1::AssignmentUpdate { kind: Some(assignment_update::Kind::Assignment(message)) })
}
