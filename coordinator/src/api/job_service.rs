//! `ssl.v1.JobService`.

use std::pin::Pin;

use futures::Stream;
use ssl_proto::JobState;
use ssl_proto::spec::normalize;
use ssl_proto::v1::{self, job_service_server::JobService};
use tokio::sync::watch as shutdown_watch;
use tonic::{Request, Response, Status};

use super::convert::{check_request_id, checkpoint_to_proto, job_to_proto, parse_job_id, parse_state_filter};
use crate::Error;
use crate::store::{JobFilter, JobStore, NewJob};

/// Jobs per `ListJobs` page when the request sets no page size.
const DEFAULT_PAGE_SIZE: i32 = 100;
const MAX_PAGE_SIZE: i32 = 1000;
/// Maximum cancellation message length stored, in bytes.
const MAX_MESSAGE_LEN: usize = 1024;

/// Implementation of `JobService` over a [`JobStore`].
#[derive(Clone)]
pub struct JobApi {
    store: JobStore,
    /// Turns true when the server shuts down, which ends open watch streams.
    shutdown: shutdown_watch::Receiver<bool>,
}

impl JobApi {
    pub fn new(store: JobStore, shutdown: shutdown_watch::Receiver<bool>) -> Self {
        JobApi { store, shutdown }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<v1::JobEvent, Status>> + Send>>;

#[tonic::async_trait]
impl JobService for JobApi {
    type WatchJobStream = EventStream;

    #[tracing::instrument(name = "rpc.submit_job", skip_all)]
    async fn submit_job(&self, request: Request<v1::SubmitJobRequest>) -> Result<Response<v1::SubmitJobResponse>, Status> {
        let request = request.into_inner();
        check_request_id(&request.request_id)?;
        let spec = request
            .spec
            .ok_or_else(|| Error::InvalidArgument("spec: missing; send the job spec to run".to_owned()))?;
        let spec = normalize(spec).map_err(|invalid| Error::InvalidArgument(invalid.to_string()))?;

        let new_job = NewJob {
            request_id: request.request_id,
            name: spec.name.clone(),
            priority: spec.priority.unwrap_or_default(),
            spec_json: serde_json::to_string(&spec).expect("job spec serializes to JSON"),
        };
        let submission = self.store.submit(new_job).await?;
        let job = job_to_proto(&submission.job)?;
        Ok(Response::new(v1::SubmitJobResponse { job: Some(job), created: submission.created }))
    }

    #[tracing::instrument(name = "rpc.get_job", skip_all)]
    async fn get_job(&self, request: Request<v1::GetJobRequest>) -> Result<Response<v1::Job>, Status> {
        let id = parse_job_id("id", &request.get_ref().id)?;
        let record = self.store.get(&id).await?;
        let mut job = job_to_proto(&record)?;
        job.shards = self.store.shards(&id).await?.into_iter().map(|shard| v1::Shard { uri: shard.uri, size_bytes: shard.size_bytes }).collect();
        Ok(Response::new(job))
    }

    #[tracing::instrument(name = "rpc.list_jobs", skip_all)]
    async fn list_jobs(&self, request: Request<v1::ListJobsRequest>) -> Result<Response<v1::ListJobsResponse>, Status> {
        let request = request.into_inner();
        let page_size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            size if (1..=MAX_PAGE_SIZE).contains(&size) => size,
            size => {
                return Err(Error::InvalidArgument(format!(
                    "page_size: {size} is out of range; expected 1 to {MAX_PAGE_SIZE}, or 0 for {DEFAULT_PAGE_SIZE}"
                ))
                .into());
            }
        };
        let filter = JobFilter {
            states: parse_state_filter(&request.states)?,
            name: Some(request.name).filter(|name| !name.is_empty()),
        };
        let page_token = Some(request.page_token.as_str()).filter(|token| !token.is_empty());

        let page = self.store.list(&filter, page_size as u32, page_token).await?;
        let jobs = page.jobs.iter().map(job_to_proto).collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(v1::ListJobsResponse { jobs, next_page_token: page.next_page_token.unwrap_or_default() }))
    }

    #[tracing::instrument(name = "rpc.cancel_job", skip_all)]
    async fn cancel_job(&self, request: Request<v1::CancelJobRequest>) -> Result<Response<v1::Job>, Status> {
        let request = request.into_inner();
        let id = parse_job_id("id", &request.id)?;
        if request.message.len() > MAX_MESSAGE_LEN {
            return Err(Error::InvalidArgument(format!(
                "message: has {} bytes, more than the maximum of {MAX_MESSAGE_LEN}",
                request.message.len()
            ))
            .into());
        }
        let message = if request.message.is_empty() { "cancelled by user".to_owned() } else { request.message };
        let record = self.store.transition(&id, JobState::Cancelled, "cancel", &message).await?;
        Ok(Response::new(job_to_proto(&record)?))
    }

    #[tracing::instrument(name = "rpc.watch_job", skip_all)]
    async fn watch_job(&self, request: Request<v1::WatchJobRequest>) -> Result<Response<Self::WatchJobStream>, Status> {
        let request = request.into_inner();
        let id = parse_job_id("id", &request.id)?;
        if request.after_sequence < 0 {
            return Err(Error::InvalidArgument(format!(
                "after_sequence: {} is negative; pass 0 for the whole history",
                request.after_sequence
            ))
            .into());
        }
        // Fail now rather than inside the stream when the job does not exist.
        self.store.get(&id).await?;
        let stream = super::watch::watch_events(self.store.clone(), id, request.after_sequence, self.shutdown.clone());
        Ok(Response::new(Box::pin(stream)))
    }

    #[tracing::instrument(name = "rpc.list_checkpoints", skip_all)]
    async fn list_checkpoints(
        &self,
        request: Request<v1::ListCheckpointsRequest>,
    ) -> Result<Response<v1::ListCheckpointsResponse>, Status> {
        let id = parse_job_id("job_id", &request.get_ref().job_id)?;
        self.store.get(&id).await?;
        let checkpoints = self.store.checkpoints(&id).await?;
        Ok(Response::new(v1::ListCheckpointsResponse {
            checkpoints: checkpoints.iter().map(checkpoint_to_proto).collect(),
        }))
    }
}
