//! `ssl.v1.WorkerService`: registration, heartbeats and reports of worker agents.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use ssl_proto::JobState;
use ssl_proto::v1::{self, report_failure_request::Failure, worker_service_server::WorkerService};
use tokio::sync::watch as shutdown_watch;
use tonic::{Request, Response, Status};
use tracing::field::Empty;

use super::convert::parse_job_id;
use super::worker_checks::{check_data_address, check_result_json, check_worker_name, capabilities_json, parse_worker_id};
use crate::Error;
use crate::checkpoints::{CheckpointRoot, RetentionPolicy};
use crate::metrics::CoordinatorMetrics;
use crate::scheduler::SchedulerConfig;
use crate::store::{CheckpointRecord, JobRecord, JobStore, NewWorker, PeerReport, Progress, WorkerState, now_micros};

/// Maximum length of a stored failure message, in bytes.
const MAX_FAILURE_MESSAGE_LEN: usize = 4096;

/// Implementation of `WorkerService` over a [`JobStore`].
#[derive(Clone)]
pub struct WorkerApi {
    store: JobStore,
    config: SchedulerConfig,
    checkpoint_root: CheckpointRoot,
    metrics: Arc<CoordinatorMetrics>,
    /// Turns true when the server shuts down, which ends open assignment streams.
    shutdown: shutdown_watch::Receiver<bool>,
}

impl WorkerApi {
    pub fn new(
        store: JobStore,
        config: SchedulerConfig,
        checkpoint_root: CheckpointRoot,
        metrics: Arc<CoordinatorMetrics>,
        shutdown: shutdown_watch::Receiver<bool>,
    ) -> Self {
        WorkerApi { store, config, checkpoint_root, metrics, shutdown }
    }

    /// Checks that `worker_id` is a live member of `generation` of `job_id`, and
    /// rank 0 when `rank_zero_only`; returns the job.
    async fn require_member(
        &self,
        worker_id: &str,
        job_id: &str,
        generation: i64,
        rank_zero_only: bool,
    ) -> Result<JobRecord, Error> {
        if self.store.worker(worker_id).await?.state()? == WorkerState::Lost {
            return Err(Error::WorkerLost(worker_id.to_owned()));
        }
        let job = self.store.get(job_id).await?;
        if job.generation != generation {
            return Err(Error::StaleGeneration { job_id: job_id.to_owned(), generation, current: job.generation });
        }
        let not_assigned = |reason| Error::NotAssigned {
            worker_id: worker_id.to_owned(),
            job_id: job_id.to_owned(),
            generation,
            reason,
        };
        match self.store.rank_of(job_id, generation, worker_id).await? {
            None => Err(not_assigned("has no rank")),
            Some(rank) if rank_zero_only && rank != 0 => Err(not_assigned("is not rank 0")),
            Some(_) => Ok(job),
        }
    }

    /// Moves a `SCHEDULED` or `RECOVERING` job to `RUNNING` for its current generation.
    /// A job in any other state, or one that moved on meanwhile, stays as it is.
    async fn start_generation(&self, job_id: &str, job: &JobRecord) -> Result<(), Error> {
        let state = job.state()?;
        if state != JobState::Scheduled && state != JobState::Recovering {
            return Ok(());
        }
        let world_size = self.store.members(job_id, job.generation).await?.len();
        let message = format!("generation {} training on {}", job.generation, crate::jobs::worker_count(world_size));
        let recovering_since = match state {
            JobState::Recovering => self.store.state_entered_at(job_id).await?,
            _ => None,
        };
        match self.store.transition_at_generation(job_id, job.generation, JobState::Running, "start", &message, None).await {
            Ok(_) => {}
            Err(Error::StaleGeneration { .. } | Error::InvalidTransition { .. }) => return Ok(()),
            Err(error) => return Err(error),
        }

        let now = now_micros();
        let elapsed_since = |at_us: i64| Duration::from_micros(u64::try_from(now - at_us).unwrap_or(0));
        if let Some(since) = recovering_since {
            self.metrics.observe_recovery(elapsed_since(since));
        } else if state == JobState::Scheduled && job.started_at_us.is_none() {
            self.metrics.observe_scheduling_latency(elapsed_since(job.created_at_us));
        }
        Ok(())
    }

    /// Starts the job on the first progress of rank 0 of its current generation
    /// and records that progress. Other progress is stale and only logged.
    async fn accept_progress(&self, worker_id: &str, progress: &v1::AssignmentProgress) -> Result<(), Error> {
        let job_id = parse_job_id("progress.job_id", &progress.job_id)?;
        let job = self.store.get(&job_id).await?;
        let rank = self.store.rank_of(&job_id, progress.generation, worker_id).await?;
        if job.generation != progress.generation || rank != Some(0) {
            tracing::debug!(job_id = %job_id, generation = progress.generation, ?rank, "progress not from rank 0 of the current generation");
            return Ok(());
        }

        self.start_generation(&job_id, &job).await?;
        let record = Progress {
            epoch: progress.epoch,
            step: progress.step,
            total_steps: progress.total_steps,
            loss: progress.loss,
            samples_per_second: progress.samples_per_second,
        };
        tracing::debug!(
            job_id = %job_id,
            generation = progress.generation,
            step = progress.step,
            allreduce_bytes_per_second = progress.allreduce_bytes_per_second,
            "progress"
        );
        match self.store.record_progress(&job_id, record).await {
            // The job ended or lost a worker since the check; the report is stale.
            Ok(()) | Err(Error::InvalidTransition { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// Names the job and generation on the current RPC's span, for traces.
fn record_job(job_id: &str, generation: i64) {
    let span = tracing::Span::current();
    span.record("job_id", job_id);
    span.record("generation", generation);
}

type AssignmentStream = Pin<Box<dyn Stream<Item = Result<v1::AssignmentUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl WorkerService for WorkerApi {
    type WatchAssignmentsStream = AssignmentStream;

    #[tracing::instrument(name = "rpc.register_worker", skip_all)]
    async fn register_worker(
        &self,
        request: Request<v1::RegisterWorkerRequest>,
    ) -> Result<Response<v1::RegisterWorkerResponse>, Status> {
        let request = request.into_inner();
        check_worker_name(&request.name)?;
        check_data_address(&request.data_address)?;
        let capabilities = capabilities_json(request.capabilities.as_ref())?;

        let new_worker = NewWorker { name: request.name, data_address: request.data_address, capabilities_json: capabilities };
        let worker = self.store.register_worker(new_worker, self.config.worker_lease).await?;
        tracing::info!(worker_id = %worker.id, name = %worker.name, data_address = %worker.data_address, "worker registered");
        Ok(Response::new(v1::RegisterWorkerResponse {
            worker_id: worker.id,
            heartbeat_interval_ms: self.config.heartbeat_interval.as_millis() as i64,
            lease_duration_ms: self.config.worker_lease.as_millis() as i64,
        }))
    }

    #[tracing::instrument(name = "rpc.heartbeat", skip_all, fields(job_id = Empty, generation = Empty))]
    async fn heartbeat(&self, request: Request<v1::HeartbeatRequest>) -> Result<Response<v1::HeartbeatResponse>, Status> {
        let request = request.into_inner();
        let worker_id = parse_worker_id(&request.worker_id)?;
        let worker = self.store.renew_lease(&worker_id, self.config.worker_lease).await?;
        if let Some(progress) = &request.progress {
            record_job(&progress.job_id, progress.generation);
            self.accept_progress(&worker_id, progress).await?;
        }
        let (job_id, generation) = match worker.job_id {
            Some(job_id) if worker.state()? == WorkerState::Busy => {
                let generation = self.store.get(&job_id).await?.generation;
                (job_id, generation)
            }
            _ => (String::new(), 0),
        };
        Ok(Response::new(v1::HeartbeatResponse {
            lease_duration_ms: self.config.worker_lease.as_millis() as i64,
            job_id,
            generation,
        }))
    }

    #[tracing::instrument(name = "rpc.watch_assignments", skip_all)]
    async fn watch_assignments(
        &self,
        request: Request<v1::WatchAssignmentsRequest>,
    ) -> Result<Response<Self::WatchAssignmentsStream>, Status> {
        let worker_id = parse_worker_id(&request.get_ref().worker_id)?;
        // Fail now rather than inside the stream when the worker does not exist.
        self.store.worker(&worker_id).await?;
        let stream = super::assignments::watch_assignments(
            self.store.clone(),
            self.checkpoint_root.clone(),
            worker_id,
            self.shutdown.clone(),
        );
        Ok(Response::new(Box::pin(stream)))
    }

    #[tracing::instrument(name = "rpc.report_checkpoint", skip_all, fields(job_id = Empty, generation = Empty))]
    async fn report_checkpoint(
        &self,
        request: Request<v1::ReportCheckpointRequest>,
    ) -> Result<Response<v1::ReportCheckpointResponse>, Status> {
        let request = request.into_inner();
        let worker_id = parse_worker_id(&request.worker_id)?;
        let job_id = parse_job_id("job_id", &request.job_id)?;
        record_job(&job_id, request.generation);
        if request.step < 0 || request.epoch < 0 {
            return Err(Error::InvalidArgument(format!(
                "step and epoch: {} and {} must not be negative",
                request.step, request.epoch
            ))
            .into());
        }
        if request.uri.is_empty() {
            return Err(Error::InvalidArgument("uri: missing; pass the checkpoint's folder".to_owned()).into());
        }
        if !request.uri.ends_with('/') {
            return Err(Error::InvalidArgument(format!(
                "uri: invalid value {:?}; expected the checkpoint's folder, ending in `/`",
                request.uri
            ))
            .into());
        }
        let job = self.require_member(&worker_id, &job_id, request.generation, true).await?;
        // Read before recording, so that a spec that does not decode fails the call with nothing written.
        let policy = RetentionPolicy::from_spec_json(&job_id, &job.spec_json)?;

        let checkpoint = CheckpointRecord {
            job_id: job_id.clone(),
            step: request.step,
            epoch: i64::from(request.epoch),
            uri: request.uri,
            loss: request.loss,
            committed_at_us: now_micros(),
        };
        if self.store.record_checkpoint(&checkpoint).await? {
            tracing::info!(job_id = %job_id, step = checkpoint.step, "checkpoint recorded");
        }

        // NOTE: when this response is lost, a retried report finds nothing left to
        // expire, so the expired checkpoints' objects stay in storage.
        let expired = self.store.expire_checkpoints(&job_id, policy).await?;
        if !expired.is_empty() {
            let steps: Vec<i64> = expired.iter().map(|checkpoint| checkpoint.step).collect();
            tracing::info!(job_id = %job_id, ?steps, "checkpoints expired by retention");
        }
        let expired_uris = expired.into_iter().map(|checkpoint| checkpoint.uri).collect();
        Ok(Response::new(v1::ReportCheckpointResponse { expired_uris }))
    }

    #[tracing::instrument(name = "rpc.report_result", skip_all, fields(job_id = Empty, generation = Empty))]
    async fn report_result(&self, request: Request<v1::ReportResultRequest>) -> Result<Response<v1::ReportResultResponse>, Status> {
        let request = request.into_inner();
        let worker_id = parse_worker_id(&request.worker_id)?;
        let job_id = parse_job_id("job_id", &request.job_id)?;
        record_job(&job_id, request.generation);
        check_result_json(&request.result_json)?;
        let job = self.require_member(&worker_id, &job_id, request.generation, true).await?;
        // A generation that resumed after the last step reports its result before any
        // progress, so the job may not have started yet.
        self.start_generation(&job_id, &job).await?;

        self.store
            .transition_at_generation(
                &job_id,
                request.generation,
                JobState::Succeeded,
                "report result",
                "",
                Some(&request.result_json),
            )
            .await?;
        Ok(Response::new(v1::ReportResultResponse {}))
    }

    #[tracing::instrument(name = "rpc.report_failure", skip_all, fields(job_id = Empty, generation = Empty))]
    async fn report_failure(
        &self,
        request: Request<v1::ReportFailureRequest>,
    ) -> Result<Response<v1::ReportFailureResponse>, Status> {
        let request = request.into_inner();
        let worker_id = parse_worker_id(&request.worker_id)?;
        let job_id = parse_job_id("job_id", &request.job_id)?;
        record_job(&job_id, request.generation);
        let failure = request
            .failure
            .ok_or_else(|| Error::InvalidArgument("failure: missing; send `job` or `peer`".to_owned()))?;
        self.require_member(&worker_id, &job_id, request.generation, false).await?;

        match failure {
            Failure::Job(failure) => {
                if failure.message.is_empty() || failure.message.len() > MAX_FAILURE_MESSAGE_LEN {
                    return Err(Error::InvalidArgument(format!(
                        "job.message: has {} bytes; expected 1 to {MAX_FAILURE_MESSAGE_LEN}",
                        failure.message.len()
                    ))
                    .into());
                }
                self.store
                    .transition_at_generation(&job_id, request.generation, JobState::Failed, "report failure", &failure.message, None)
                    .await?;
            }
            Failure::Peer(peer) => {
                if peer.message.len() > MAX_FAILURE_MESSAGE_LEN {
                    return Err(Error::InvalidArgument(format!(
                        "peer.message: has {} bytes; expected at most {MAX_FAILURE_MESSAGE_LEN}",
                        peer.message.len()
                    ))
                    .into());
                }
                let members = self.store.members(&job_id, request.generation).await?;
                let Some(unreachable) = members.iter().find(|member| member.rank == i64::from(peer.unreachable_rank)) else {
                    return Err(Error::InvalidArgument(format!(
                        "peer.unreachable_rank: {} is not a rank of generation {} (world size {})",
                        peer.unreachable_rank,
                        request.generation,
                        members.len()
                    ))
                    .into());
                };
                if unreachable.worker_id == worker_id {
                    return Err(Error::InvalidArgument(format!(
                        "peer.unreachable_rank: {} is the reporting worker's own rank",
                        peer.unreachable_rank
                    ))
                    .into());
                }
                let reporter_rank = members.iter().find(|member| member.worker_id == worker_id).map_or(-1, |member| member.rank);
                let report = PeerReport {
                    job_id: job_id.clone(),
                    generation: request.generation,
                    reporter_id: worker_id.clone(),
                    reporter_rank,
                    unreachable_id: unreachable.worker_id.clone(),
                    unreachable_rank: unreachable.rank,
                    data_address: unreachable.data_address.clone(),
                    message: peer.message,
                };
                if self.store.record_peer_report(&report).await? {
                    self.metrics.count_lost_workers(1);
                    tracing::warn!(
                        job_id = %job_id,
                        generation = request.generation,
                        rank = peer.unreachable_rank,
                        worker_id = %unreachable.worker_id,
                        address = %unreachable.data_address,
                        reported_by = %worker_id,
                        error = %report.message,
                        "peer reported unreachable; dropping the worker"
                    );
                }
            }
        }
        Ok(Response::new(v1::ReportFailureResponse {}))
    }
}
