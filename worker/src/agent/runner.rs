//! The runner thread: trains the generations of the job this worker is
//! assigned to, keeping the job's data and trainer in memory across
//! generations so that survivors of a lost peer continue where they were.

use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use ssl_collective::{AbortHandle, CollectiveError, Ring, RingConfig};
use ssl_proto::result::JobResult;
use ssl_proto::v1::{self, Assignment, report_failure_request::Failure};
use tokio::runtime::Handle;
use tonic::Code;
use tracing::{Span, info, info_span, warn};

use super::checkpoints::{Manifest, TRAINER_STATE, read_checkpoint_file};
use super::uploads::{Upload, Uploader};
use super::client::WorkerClient;
use crate::checkpoint::{export_encoder, read_header};
use crate::data::dataset::TableSource;
use crate::data::encode::EncodedRows;
use crate::data::profile::{DEFAULT_MAX_CATEGORIES, DatasetProfile, ProfilePartial};
use crate::error::WorkerError;
use crate::job::{JobData, evaluate_trainer};
use crate::metrics::{StepFigures, WorkerMetrics, bus_bandwidth};
use crate::trainers::{AnyTrainer, StepReport, StepTimings, shard_rows};

/// One step in this many gets a span of its own, so that traces show the step
/// time without a span per step.
const TRACED_STEP_EVERY: u64 = 50;

/// A request from the session to the runner.
pub enum Command {
    /// A new registration: report with this client and worker id from now on.
    /// Boxed because the client is large and registrations are rare.
    Session { client: Box<WorkerClient>, worker_id: String },
    /// Train this generation.
    Assign(Box<Assignment>),
    /// Leave this job and drop its state.
    Release { job_id: String },
    /// The registration was lost: drop everything.
    Reset,
}

/// State the session reads while the runner works.
#[derive(Default)]
struct Shared {
    progress: Mutex<Option<v1::AssignmentProgress>>,
    ring: Mutex<Option<AbortHandle>>,
    /// Job and generation last handed to the runner, and when.
    assigned: Mutex<Option<Assigned>>,
}

/// The job and generation last handed to the runner.
#[derive(Debug, Clone)]
pub struct Assigned {
    pub job_id: String,
    pub generation: i64,
    pub at: Instant,
}

/// The session's side of the runner.
pub struct RunnerHandle {
    commands: Sender<Command>,
    shared: Arc<Shared>,
}

impl RunnerHandle {
    /// Starts the runner thread. `listener` accepts peers' data-plane links;
    /// `runtime` runs the runner's RPCs and storage calls.
    pub fn spawn(
        listener: TcpListener,
        runtime: Handle,
        peer_timeout: Duration,
        device: Device,
        metrics: Arc<WorkerMetrics>,
    ) -> RunnerHandle {
        let (commands, receiver) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared::default());
        let runner = Runner {
            commands: receiver,
            pending: None,
            listener,
            runtime,
            peer_timeout,
            shared: shared.clone(),
            session: None,
            job: None,
            device,
            metrics,
        };
        std::thread::Builder::new()
            .name("runner".to_owned())
            .spawn(move || runner.run())
            .expect("the runner thread starts");
        RunnerHandle { commands, shared }
    }

    pub fn start_session(&self, client: WorkerClient, worker_id: String) {
        let _ = self.commands.send(Command::Session { client: Box::new(client), worker_id });
    }

    /// Hands over an assignment, unless it repeats the last one (a reopened
    /// stream resends the current assignment).
    pub fn assign(&self, assignment: Assignment) {
        let mut assigned = self.shared.assigned.lock().expect("lock");
        if assigned.as_ref().is_some_and(|last| last.job_id == assignment.job_id && last.generation == assignment.generation) {
            return;
        }
        *assigned = Some(Assigned { job_id: assignment.job_id.clone(), generation: assignment.generation, at: Instant::now() });
        drop(assigned);
        self.interrupt(Command::Assign(Box::new(assignment)));
    }

    pub fn release(&self, job_id: String) {
        *self.shared.assigned.lock().expect("lock") = None;
        self.interrupt(Command::Release { job_id });
    }

    pub fn reset(&self) {
        *self.shared.assigned.lock().expect("lock") = None;
        self.interrupt(Command::Reset);
    }

    /// Job and generation last handed to the runner.
    pub fn assigned(&self) -> Option<Assigned> {
        self.shared.assigned.lock().expect("lock").clone()
    }

    /// Progress of the current assignment, for the next heartbeat.
    pub fn progress(&self) -> Option<v1::AssignmentProgress> {
        self.shared.progress.lock().expect("lock").clone()
    }

    /// Ends the collective call in progress, which belongs to a generation that
    /// `command` replaces, then queues `command`. In the other order the runner
    /// could take the command and connect its new ring before the abort, which
    /// would then end the new ring.
    fn interrupt(&self, command: Command) {
        if let Some(ring) = self.shared.ring.lock().expect("lock").take() {
            ring.abort();
        }
        let _ = self.commands.send(command);
    }
}

/// The end of a generation's run without an error.
enum Outcome {
    /// Training and, on rank 0, evaluation and the result report are done.
    Finished,
    /// A newer command arrived.
    Interrupted,
}

/// The cause of a failed generation run.
enum RunError {
    /// The job cannot succeed on any workers, such as a missing dataset.
    Job(String),
    /// A peer of the generation did not respond. `stalled` is set when its link
    /// was up but a read or write on it timed out.
    Peer { rank: usize, message: String, stalled: bool },
    /// A newer command arrived during a collective call.
    Interrupted,
}

impl From<WorkerError> for RunError {
    fn from(error: WorkerError) -> Self {
        match error {
            WorkerError::Collective(error) => RunError::from(error),
            other => RunError::Job(other.to_string()),
        }
    }
}

impl From<CollectiveError> for RunError {
    fn from(error: CollectiveError) -> Self {
        match (&error, error.failed_rank()) {
            (CollectiveError::Aborted, _) => RunError::Interrupted,
            (_, Some(rank)) => RunError::Peer {
                rank,
                message: error.to_string(),
                stalled: matches!(error, CollectiveError::Timeout { .. }),
            },
            (_, None) => RunError::Job(error.to_string()),
        }
    }
}

/// The report client of the current registration.
#[derive(Clone)]
struct Session {
    client: WorkerClient,
    worker_id: String,
}

/// A job's state on this worker, kept across its generations.
struct JobRun {
    job_id: String,
    data: JobData,
    /// Pretraining rows encoded with the trainer's profile.
    encoded: Option<(DatasetProfile, Arc<EncodedRows>)>,
    trainer: Option<AnyTrainer>,
    /// Step of the last checkpoint this worker handed to storage.
    last_checkpoint: Option<u64>,
    /// Rank 0's checkpoint uploads still in flight.
    uploader: Option<Uploader>,
}

impl JobRun {
    fn rows_for(&mut self, profile: &DatasetProfile) -> Result<Arc<EncodedRows>, WorkerError> {
        if let Some((encoded_with, rows)) = &self.encoded
            && encoded_with == profile
        {
            return Ok(rows.clone());
        }
        let rows = Arc::new(self.data.encode(profile)?);
        self.encoded = Some((profile.clone(), rows.clone()));
        Ok(rows)
    }

    /// Replaces the trainer by the one in checkpoint `bytes`.
    fn restore(&mut self, bytes: &[u8], device: &Device) -> Result<(), WorkerError> {
        let header = read_header(bytes)?;
        let rows = self.rows_for(&header.profile)?;
        self.trainer = Some(AnyTrainer::from_checkpoint(bytes, rows, device)?);
        Ok(())
    }
}

struct Runner {
    commands: Receiver<Command>,
    /// A command received while checking for interruptions, handled next.
    pending: Option<Command>,
    listener: TcpListener,
    runtime: Handle,
    peer_timeout: Duration,
    shared: Arc<Shared>,
    session: Option<Session>,
    job: Option<JobRun>,
    device: Device,
    metrics: Arc<WorkerMetrics>,
}

impl Runner {
    fn run(mut self) {
        while let Some(command) = self.next_command() {
            match command {
                Command::Session { client, worker_id } => {
                    self.metrics.set_worker_id(&worker_id);
                    self.session = Some(Session { client: *client, worker_id });
                }
                Command::Assign(assignment) => self.run_assignment(&assignment),
                Command::Release { job_id } => {
                    if self.job.as_ref().is_some_and(|job| job.job_id == job_id) {
                        info!(job_id, "released from the job; dropping its state");
                        self.drop_job();
                    }
                }
                Command::Reset => {
                    self.drop_job();
                    self.session = None;
                }
            }
        }
    }

    /// Returns the next command to act on, or `None` once the session is gone.
    /// Of several queued assignments only the last one counts.
    fn next_command(&mut self) -> Option<Command> {
        let mut command = match self.pending.take() {
            Some(command) => command,
            None => self.commands.recv().ok()?,
        };
        loop {
            match self.commands.try_recv() {
                Ok(next @ Command::Assign(_)) if matches!(command, Command::Assign(_)) => command = next,
                Ok(next) => {
                    self.pending = Some(next);
                    return Some(command);
                }
                Err(_) => return Some(command),
            }
        }
    }

    fn interrupted(commands: &Receiver<Command>, pending: &mut Option<Command>) -> bool {
        if pending.is_some() {
            return true;
        }
        match commands.try_recv() {
            Ok(command) => {
                *pending = Some(command);
                true
            }
            Err(TryRecvError::Empty) => false,
            Err(TryRecvError::Disconnected) => true,
        }
    }

    fn set_progress(&self, progress: Option<v1::AssignmentProgress>) {
        *self.shared.progress.lock().expect("lock") = progress;
    }

    /// Forgets the job: its data, trainer, progress and metrics.
    fn drop_job(&mut self) {
        self.job = None;
        self.set_progress(None);
        self.metrics.clear_job();
    }

    fn run_assignment(&mut self, assignment: &Assignment) {
        let span = info_span!("assignment", job_id = %assignment.job_id, generation = assignment.generation, rank = assignment.rank);
        let _entered = span.enter();
        if self.job.as_ref().is_some_and(|job| job.job_id != assignment.job_id) {
            self.drop_job();
        }
        info!(world_size = assignment.world_size, "starting generation");
        let result = self.train_generation(assignment);
        *self.shared.ring.lock().expect("lock") = None;
        match result {
            Ok(Outcome::Finished) => info!("generation finished; waiting for the release"),
            Ok(Outcome::Interrupted) | Err(RunError::Interrupted) => info!("generation interrupted by a newer assignment"),
            Err(RunError::Peer { rank, message, stalled }) => {
                // When one rank dies, its neighbours' links fail, they abort, and
                // then the links of their other neighbours fail too. A peer whose
                // listener still accepts is alive: the rank next to the dead one
                // reports that one, and a new generation follows. The same holds
                // when a live left neighbour never connected: it cannot reach this
                // rank, so it reports this rank instead.
                let address = assignment.peer_addresses.get(rank).and_then(|address| address.parse::<SocketAddr>().ok());
                if !stalled && address.is_some_and(peer_is_alive) {
                    info!(peer_rank = rank, error = %message, "the link to a live peer broke; waiting for the next generation");
                    if self.wait_for_command(self.peer_timeout) {
                        return;
                    }
                }
                warn!(peer_rank = rank, error = %message, "peer unreachable; reporting it");
                let failure = Failure::Peer(v1::PeerFailure { unreachable_rank: rank as i32, message });
                self.report_failure(assignment, failure);
            }
            Err(RunError::Job(message)) => {
                warn!(error = %message, "job failed");
                self.report_failure(assignment, Failure::Job(v1::JobFailure { message }));
                self.drop_job();
            }
        }
    }

    /// Waits up to `timeout` for a command and keeps it for the main loop;
    /// returns whether one came.
    fn wait_for_command(&mut self, timeout: Duration) -> bool {
        if self.pending.is_some() {
            return true;
        }
        match self.commands.recv_timeout(timeout) {
            Ok(command) => {
                self.pending = Some(command);
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        }
    }

    /// Reports the job's result. Only a `RUNNING` job accepts it, and the first
    /// heartbeat with progress starts the job, so a heartbeat goes first. The
    /// report is retried while the coordinator is unreachable. It is dropped when
    /// a newer generation has taken over, because that generation reports it.
    fn report_result(&mut self, session: &Session, assignment: &Assignment, result_json: String) {
        let request = v1::ReportResultRequest {
            worker_id: session.worker_id.clone(),
            job_id: assignment.job_id.clone(),
            generation: assignment.generation,
            result_json,
        };
        let mut client = session.client.clone();
        let started = Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            let heartbeat = v1::HeartbeatRequest { worker_id: session.worker_id.clone(), progress: self.shared.progress.lock().expect("lock").clone() };
            if let Ok(response) = self.runtime.block_on(client.heartbeat(heartbeat)) {
                let response = response.into_inner();
                if response.job_id != assignment.job_id || response.generation != assignment.generation {
                    info!("a newer generation took over the job; it reports the result");
                    return;
                }
            }
            let status = match self.runtime.block_on(client.report_result(request.clone())) {
                Ok(_) => {
                    info!("result reported");
                    return;
                }
                Err(status) => status,
            };
            let retry = matches!(status.code(), Code::Unavailable | Code::Unknown | Code::FailedPrecondition);
            if !retry || started.elapsed() > Duration::from_secs(120) || Self::interrupted(&self.commands, &mut self.pending) {
                warn!(error = %status.message(), "result report not accepted");
                return;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    fn report_failure(&self, assignment: &Assignment, failure: Failure) {
        let Some(session) = self.session.clone() else { return };
        let request = v1::ReportFailureRequest {
            worker_id: session.worker_id.clone(),
            job_id: assignment.job_id.clone(),
            generation: assignment.generation,
            failure: Some(failure),
        };
        let mut client = session.client;
        if let Err(status) = self.runtime.block_on(client.report_failure(request)) {
            warn!(error = %status.message(), "failure report not accepted");
        }
    }

    fn train_generation(&mut self, assignment: &Assignment) -> Result<Outcome, RunError> {
        let spec = assignment.spec.clone().ok_or_else(|| RunError::Job("the assignment carries no job spec".to_owned()))?;
        let rank = usize::try_from(assignment.rank).map_err(|_| RunError::Job(format!("invalid rank {}", assignment.rank)))?;
        let peers = assignment
            .peer_addresses
            .iter()
            .map(|address| address.parse::<SocketAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| RunError::Job(format!("invalid peer address in the assignment: {error}")))?;
        let base_progress = v1::AssignmentProgress {
            job_id: assignment.job_id.clone(),
            generation: assignment.generation,
            rank: assignment.rank,
            ..Default::default()
        };

        self.metrics.start_generation();
        let link_id = ring_id(&assignment.job_id, assignment.generation);
        let config = RingConfig { timeout: self.peer_timeout, ..RingConfig::new(rank, peers, link_id) };
        let mut ring = Ring::connect(&self.listener, config)?;
        *self.shared.ring.lock().expect("lock") = Some(ring.abort_handle());
        if Self::interrupted(&self.commands, &mut self.pending) {
            return Ok(Outcome::Interrupted);
        }

        if self.job.is_none() {
            // NOTE: every rank reads every shard and keeps the whole table in memory,
            // so a dataset must fit in each worker's memory. Ranks then train on
            // their slice of each global batch.
            let shards: Vec<TableSource> = assignment
                .shards
                .iter()
                .map(|shard| TableSource { uri: shard.uri.clone(), size_bytes: u64::try_from(shard.size_bytes).ok() })
                .collect();
            let data = JobData::load(&spec, &shards)?;
            info!(pretraining_rows = data.train.num_rows(), shards = shards.len(), "dataset loaded");
            self.job = Some(JobRun { job_id: assignment.job_id.clone(), data, encoded: None, trainer: None, last_checkpoint: None, uploader: None });
        }
        let job = self.job.as_mut().expect("set above");
        synchronise_state(job, &mut ring, assignment.resume_from.as_ref(), &self.device, &self.runtime)?;

        let session = self.session.clone().ok_or(RunError::Interrupted)?;
        let every_steps = spec.checkpoint.as_ref().and_then(|policy| policy.every_steps).unwrap_or(500).max(1) as u64;
        let global_batch = job.data.config.batch_size.min(job.data.train.num_rows());
        let mut all_reduced = AllReduceTotals::default();
        let mut window = Instant::now();
        let mut window_steps = 0u64;
        while !job.trainer.as_ref().expect("synchronised above").is_finished() {
            if Self::interrupted(&self.commands, &mut self.pending) {
                return Ok(Outcome::Interrupted);
            }
            let trainer = job.trainer.as_mut().expect("synchronised above");
            let next_step = trainer.state().global_step;
            let span = if next_step.is_multiple_of(TRACED_STEP_EVERY) {
                info_span!("train.step", job_id = %assignment.job_id, generation = assignment.generation, rank, step = next_step)
            } else {
                Span::none()
            };
            let report = span.in_scope(|| trainer.data_parallel_step(&mut ring))?;
            all_reduced.add(&report);
            window_steps += 1;
            let elapsed = window.elapsed().as_secs_f64();
            let samples_per_second = (window_steps * global_batch as u64) as f64 / elapsed;
            let progress = progress_of(&base_progress, trainer, &report, samples_per_second, &all_reduced);
            let figures = StepFigures {
                epoch: report.epoch + 1,
                steps: trainer.state().global_step,
                loss: report.loss,
                samples_per_second,
                timings: report.timings,
                bus_bandwidth: bus_bandwidth(report.all_reduce_bytes, report.timings.all_reduce, ring.world_size()),
            };
            self.metrics.record_step(&assignment.job_id, rank, &figures);
            if elapsed > 5.0 {
                window = Instant::now();
                window_steps = 0;
            }
            *self.shared.progress.lock().expect("lock") = Some(progress);
            let step = report.step + 1;
            if rank == 0 && step.is_multiple_of(every_steps) {
                save_checkpoint(job, &report, assignment, &session, &self.runtime, &self.metrics)?;
            }
        }

        if rank != 0 {
            return Ok(Outcome::Finished);
        }
        let state = job.trainer.as_ref().expect("synchronised above").state();
        if job.last_checkpoint != Some(state.global_step) {
            // After the last step the state has moved on to the next epoch.
            let report = StepReport {
                epoch: state.epoch.saturating_sub(1),
                step: state.global_step.saturating_sub(1),
                loss: last_loss(&self.shared),
                learning_rate: 0.0,
                gradient_norm: 0.0,
                timings: StepTimings::default(),
                all_reduce_bytes: 0,
            };
            save_checkpoint(job, &report, assignment, &session, &self.runtime, &self.metrics)?;
        }
        // Every checkpoint is committed before the job can succeed.
        if let Some(uploader) = job.uploader.take() {
            uploader.finish(&self.runtime).map_err(|error| RunError::Job(format!("checkpoint storage failed: {error}")))?;
        }
        let result_json = evaluation_json(job, &self.device)?;
        self.report_result(&session, assignment, result_json);
        Ok(Outcome::Finished)
    }
}

/// Brings every rank of a new generation to the same trainer state: the
/// in-memory state of the rank that got furthest, else the job's latest
/// checkpoint, else fresh weights from rank 0 with a profile computed across
/// the ranks.
fn synchronise_state(
    job: &mut JobRun,
    ring: &mut Ring,
    resume_from: Option<&v1::CheckpointRef>,
    device: &Device,
    runtime: &Handle,
) -> Result<(), RunError> {
    let rank = ring.rank();
    let world_size = ring.world_size();
    let mine = job.trainer.as_ref().map(|trainer| trainer.state().global_step);
    let mut status = vec![u8::from(mine.is_some())];
    status.extend_from_slice(&mine.unwrap_or(0).to_le_bytes());
    let statuses = ring.all_gather_bytes(&status)?;
    let freshest = statuses
        .iter()
        .enumerate()
        .filter(|(_, status)| status.first() == Some(&1))
        .map(|(rank, status)| (u64::from_le_bytes(status[1..9].try_into().expect("nine status bytes")), rank))
        .max_by_key(|&(step, rank)| (step, std::cmp::Reverse(rank)));

    if let Some((step, source)) = freshest {
        let mut bytes = if rank == source { job.trainer.as_ref().expect("the source has state").to_checkpoint()? } else { Vec::new() };
        ring.broadcast_bytes(source, &mut bytes)?;
        if rank != source {
            job.restore(&bytes, device)?;
        }
        info!(step, source_rank = source, "continuing from the in-memory state of a rank");
        return Ok(());
    }
    if let Some(checkpoint) = resume_from {
        let bytes = runtime.block_on(read_checkpoint_file(&checkpoint.uri, TRAINER_STATE))?;
        job.restore(&bytes, device)?;
        info!(step = checkpoint.step, uri = %checkpoint.uri, "resuming from the latest checkpoint");
        return Ok(());
    }

    // Fresh start: each rank profiles a slice of the rows, and the merged profile
    // is the same on every rank.
    let slice = shard_rows(job.data.train.num_rows(), rank, world_size);
    let partial = serde_json::to_vec(&job.data.profile_partial(slice)).expect("a profile serialises");
    let mut merged: Option<ProfilePartial> = None;
    for bytes in ring.all_gather_bytes(&partial)? {
        let partial: ProfilePartial =
            serde_json::from_slice(&bytes).map_err(|error| RunError::Job(format!("a peer sent an unreadable profile: {error}")))?;
        match merged.as_mut() {
            Some(merged) => merged.merge(partial)?,
            None => merged = Some(partial),
        }
    }
    let profile = merged.expect("at least one rank").finish(DEFAULT_MAX_CATEGORIES);
    let mut bytes = Vec::new();
    if rank == 0 {
        let rows = job.rows_for(&profile)?;
        let trainer = AnyTrainer::new(job.data.config.clone(), profile, rows, device)?;
        bytes = trainer.to_checkpoint()?;
        job.trainer = Some(trainer);
    }
    // Rank 0's initial weights and optimizer state go to every rank.
    ring.broadcast_bytes(0, &mut bytes)?;
    if rank != 0 {
        job.restore(&bytes, device)?;
    }
    info!("starting from fresh weights");
    Ok(())
}

/// Snapshots `trainer` after the step `report` describes and queues its upload.
fn save_checkpoint(
    job: &mut JobRun,
    report: &StepReport,
    assignment: &Assignment,
    session: &Session,
    runtime: &Handle,
    metrics: &Arc<WorkerMetrics>,
) -> Result<(), RunError> {
    let trainer = job.trainer.as_ref().expect("trained");
    let state = trainer.state();

    let export_dir = tempfile::tempdir().map_err(|error| RunError::Job(format!("cannot create a temporary folder: {error}")))?;
    let exported = export_encoder(&trainer.encoder(), &trainer.encoder_config(), trainer.profile(), export_dir.path())?;
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|error| RunError::Job(format!("cannot read `{}`: {error}", path.display())))
    };
    let files = vec![
        (TRAINER_STATE.to_owned(), trainer.to_checkpoint()?),
        ("encoder.safetensors".to_owned(), read(&exported.weights)?),
        ("encoder_config.json".to_owned(), read(&exported.config)?),
        ("profile.json".to_owned(), read(&exported.profile)?),
    ];

    let manifest = Manifest {
        format: 1,
        job_id: job.job_id.clone(),
        step: state.global_step,
        epoch: report.epoch + 1,
        loss: report.loss,
        files: Vec::new(),
    };
    let report = v1::ReportCheckpointRequest {
        worker_id: session.worker_id.clone(),
        job_id: job.job_id.clone(),
        generation: assignment.generation,
        step: state.global_step as i64,
        epoch: report.epoch as i32 + 1,
        uri: String::new(),
        loss: report.loss,
    };

    let uploader = job.uploader.get_or_insert_with(|| Uploader::start(runtime, session.client.clone(), metrics.clone()));
    uploader.submit(Upload { checkpoints_uri: assignment.checkpoint_uri.clone(), manifest, files, report });
    job.last_checkpoint = Some(state.global_step);
    Ok(())
}

/// Identifies one generation of one job in the ring handshake, so a late link
/// from another job's generation with the same number is refused too.
fn ring_id(job_id: &str, generation: i64) -> u64 {
    // FNV-1a over the job id, then the generation.
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in job_id.bytes().chain(generation.to_le_bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Checks whether a peer's data-plane listener accepts connections, which means its process lives.
fn peer_is_alive(address: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
}

fn last_loss(shared: &Shared) -> f64 {
    shared.progress.lock().expect("lock").as_ref().map_or(0.0, |progress| progress.loss)
}

/// Evaluates the trained encoder and builds the result stored on the job: steps and the evaluation.
fn evaluation_json(job: &mut JobRun, device: &Device) -> Result<String, RunError> {
    let trainer = job.trainer.as_ref().expect("trained");
    let profile = trainer.profile().clone();
    let rows = job.rows_for(&profile)?;
    let trainer = job.trainer.as_ref().expect("trained");
    let evaluation = match job.data.evaluation_plan(&profile, &rows)? {
        Some(plan) => {
            let report = evaluate_trainer(trainer, &plan, device)?;
            info!("evaluation finished\n{}", report.to_table());
            Some(report)
        }
        None => None,
    };
    Ok(JobResult { steps: trainer.state().global_step, evaluation }.to_json())
}

fn progress_of(
    base: &v1::AssignmentProgress,
    trainer: &AnyTrainer,
    report: &StepReport,
    samples_per_second: f64,
    all_reduced: &AllReduceTotals,
) -> v1::AssignmentProgress {
    v1::AssignmentProgress {
        // Counted from 1, as the job spec's `training.epochs` counts them.
        epoch: report.epoch as i32 + 1,
        step: trainer.state().global_step as i64,
        total_steps: trainer.total_steps() as i64,
        loss: report.loss,
        samples_per_second,
        allreduce_bytes_per_second: all_reduced.bytes_per_second(),
        ..base.clone()
    }
}

/// Bytes and time of the gradient all-reduces of a generation, for the heartbeat's
/// bandwidth figure.
#[derive(Debug, Default)]
struct AllReduceTotals {
    bytes: u64,
    seconds: f64,
}

impl AllReduceTotals {
    fn add(&mut self, report: &StepReport) {
        self.bytes += report.all_reduce_bytes;
        self.seconds += report.timings.all_reduce.as_secs_f64();
    }

    fn bytes_per_second(&self) -> f64 {
        if self.seconds > 0.0 { self.bytes as f64 / self.seconds } else { 0.0 }
    }
}
