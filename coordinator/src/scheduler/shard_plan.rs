//! Shard planning: the objects of a job's dataset, listed once when the job is
//! first admitted, so that every rank and every generation reads the same rows
//! in the same order.
//!
//! Listing runs in a background task, one per job at a time, because a slow
//! store must not hold up a scheduler pass: a pass that outlasted the leader
//! lease would hand the scheduler to another coordinator.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ssl_proto::JobState;
use ssl_storage::list_dataset;

use crate::Error;
use crate::store::{JobRecord, JobStore, ShardRecord};

/// Maximum wait for the dataset's store to list the objects.
const LISTING_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed listing before the job's next attempt.
const RETRY_DELAY: Duration = Duration::from_secs(5);

/// Plans the shards of queued jobs in the background.
#[derive(Default)]
pub(super) struct ShardPlanner {
    /// Ids of the jobs whose listing is running.
    in_flight: Mutex<HashSet<String>>,
}

impl ShardPlanner {
    /// Returns whether `job` has its shards. When it has none, starts listing
    /// its dataset unless that runs already; the task requests a scheduler pass
    /// when it ends.
    pub(super) async fn is_planned(self: &Arc<Self>, store: &JobStore, job: &JobRecord) -> Result<bool, Error> {
        if !store.shards(&job.id).await?.is_empty() {
            return Ok(true);
        }
        if !self.in_flight.lock().expect("lock").insert(job.id.clone()) {
            return Ok(false);
        }
        let planner = self.clone();
        let store = store.clone();
        let job = job.clone();
        tokio::spawn(async move {
            match plan(&store, &job).await {
                Ok(true) => {}
                Ok(false) => tokio::time::sleep(RETRY_DELAY).await,
                Err(error) => {
                    tracing::warn!(job_id = %job.id, error = %error, "shard planning failed; the job waits");
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
            planner.in_flight.lock().expect("lock").remove(&job.id);
            store.request_scheduling();
        });
        Ok(false)
    }
}

/// Lists the dataset of `job` and stores the plan. Fails the job when the
/// dataset cannot be used. Returns false, having set the job's message, when
/// the store failed or timed out.
async fn plan(store: &JobStore, job: &JobRecord) -> Result<bool, Error> {
    let dataset = job.spec()?.dataset.unwrap_or_default();

    let message = match tokio::time::timeout(LISTING_TIMEOUT, list_dataset(&dataset.uri, dataset.format.as_deref())).await {
        Ok(Ok(objects)) => {
            let shards: Vec<ShardRecord> = objects
                .into_iter()
                .map(|object| ShardRecord { uri: object.uri, size_bytes: i64::try_from(object.size_bytes).unwrap_or(i64::MAX) })
                .collect();
            store.save_shards(&job.id, &shards).await?;
            tracing::info!(job_id = %job.id, shards = shards.len(), uri = %dataset.uri, "planned the dataset's shards");
            return Ok(true);
        }
        Ok(Err(error)) if !error.is_transient() => {
            let message = format!("dataset.uri: {error}");
            tracing::warn!(job_id = %job.id, error = %message, "the dataset cannot be used; failing the job");
            return match store.transition(&job.id, JobState::Failed, "plan shards", &message).await {
                // A job cancelled meanwhile stays cancelled.
                Ok(_) | Err(Error::InvalidTransition { .. }) => Ok(true),
                Err(other) => Err(other),
            };
        }
        Ok(Err(error)) => format!("cannot list dataset.uri yet, retrying: {error}"),
        Err(_) => format!("listing dataset.uri `{}` took over {} s; retrying", dataset.uri, LISTING_TIMEOUT.as_secs()),
    };
    tracing::warn!(job_id = %job.id, error = %message, "shard planning failed; the job waits");
    store.set_queued_message(&job.id, &message).await?;
    Ok(false)
}
