//! Shard planning: the objects of a job's dataset, listed once when the job is
//! first admitted, so that every rank and every generation reads the same rows
//! in the same order.

use std::time::Duration;

use ssl_proto::JobState;
use ssl_proto::v1::JobSpec;
use ssl_storage::list_dataset;

use crate::Error;
use crate::store::{JobRecord, JobStore, ShardRecord};

/// Maximum wait for the dataset's store to list the objects.
const LISTING_TIMEOUT: Duration = Duration::from_secs(30);

/// Outcome of planning, which tells admission what to do with the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Planned {
    /// The job has its shards; admit it.
    Ready,
    /// The dataset cannot be used; the job failed with the reason.
    Failed,
    /// The store failed or timed out; the job waits and the next pass tries again.
    Retry,
}

/// Plans the shards of `job` unless it has a plan already.
pub(super) async fn ensure_planned(store: &JobStore, job: &JobRecord) -> Result<Planned, Error> {
    if !store.shards(&job.id).await?.is_empty() {
        return Ok(Planned::Ready);
    }
    let spec: JobSpec = serde_json::from_str(&job.spec_json)
        .map_err(|error| Error::CorruptRow(format!("job `{}` has an unreadable spec: {error}", job.id)))?;
    let dataset = spec.dataset.unwrap_or_default();

    let message = match tokio::time::timeout(LISTING_TIMEOUT, list_dataset(&dataset.uri, dataset.format.as_deref())).await {
        Ok(Ok(objects)) => {
            let shards: Vec<ShardRecord> = objects
                .into_iter()
                .map(|object| ShardRecord { uri: object.uri, size_bytes: i64::try_from(object.size_bytes).unwrap_or(i64::MAX) })
                .collect();
            store.save_shards(&job.id, &shards).await?;
            tracing::info!(job_id = %job.id, shards = shards.len(), uri = %dataset.uri, "planned the dataset's shards");
            return Ok(Planned::Ready);
        }
        Ok(Err(error)) if !error.is_transient() => {
            let message = format!("dataset.uri: {error}");
            tracing::warn!(job_id = %job.id, error = %message, "the dataset cannot be used; failing the job");
            return match store.transition(&job.id, JobState::Failed, "plan shards", &message).await {
                Ok(_) | Err(Error::InvalidTransition { .. }) => Ok(Planned::Failed),
                Err(other) => Err(other),
            };
        }
        Ok(Err(error)) => format!("cannot list dataset.uri yet, retrying: {error}"),
        Err(_) => format!("listing dataset.uri `{}` took over {} s; retrying", dataset.uri, LISTING_TIMEOUT.as_secs()),
    };
    tracing::warn!(job_id = %job.id, error = %message, "shard planning failed; the job waits");
    store.set_queued_message(&job.id, &message).await?;
    Ok(Planned::Retry)
}
