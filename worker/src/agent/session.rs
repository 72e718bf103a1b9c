//! The agent's registration with the coordinator: register, heartbeat with
//! progress, follow the assignment stream, and register again when the
//! coordinator declares this worker lost.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ssl_proto::v1::{self, assignment_update};
use tonic::{Code, Status};
use tracing::{Instrument, info, warn};

use super::client::{WorkerClient, worker_client};
use super::runner::RunnerHandle;
use super::{AgentConfig, AgentError};
use crate::device::make_device;
use crate::metrics::WorkerMetrics;

/// Maximum pause between attempts to reach an unavailable coordinator.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs the agent until `shutdown` completes.
///
/// # Errors
///
/// [`AgentError`] for bad settings, a refused join token, or a name that stays
/// taken by another live worker.
pub async fn run_agent(config: AgentConfig, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
    let listener =
        TcpListener::bind(config.data_listen).map_err(|source| AgentError::Bind { listener: "data-plane", address: config.data_listen, source })?;
    let bound = listener.local_addr().map_err(|source| AgentError::Bind { listener: "data-plane", address: config.data_listen, source })?;
    let data_address = config.data_advertise.unwrap_or(bound);
    if data_address.ip().is_unspecified() {
        return Err(AgentError::InvalidConfig(format!(
            "--data-listen {bound} listens on every interface; pass --data-advertise with the address peers connect to"
        )));
    }
    let client = worker_client(&config.coordinator, config.ca_cert.as_deref(), &config.join_token)?;
    let device = make_device(config.device).map_err(|error| AgentError::InvalidConfig(format!("--device: {error}")))?;
    let metrics = Arc::new(WorkerMetrics::new(config.device.backend_name()));
    if let Some(address) = config.metrics_listen {
        let metrics_listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| AgentError::Bind { listener: "metrics", address, source })?;
        info!(address = %metrics_listener.local_addr().unwrap_or(address), "serving metrics on /metrics");
        let metrics = metrics.clone();
        let render = move || {
            let metrics = metrics.clone();
            async move { metrics.render() }
        };
        tokio::spawn(ssl_telemetry::serve_metrics(metrics_listener, render, std::future::pending()));
    }
    let runner = RunnerHandle::spawn(listener, tokio::runtime::Handle::current(), config.peer_timeout, device, metrics);
    info!(name = config.name, coordinator = config.coordinator, %data_address, "worker agent starting");

    tokio::pin!(shutdown);
    loop {
        let registration = tokio::select! {
            registration = register(&client, &config, data_address) => registration?,
            () = &mut shutdown => break,
        };
        let worker_id = registration.worker_id.clone();
        let span = tracing::info_span!("worker", worker_id = %worker_id);
        runner.start_session(client.clone(), worker_id.clone());
        let interval = Duration::from_millis(registration.heartbeat_interval_ms.max(100) as u64);
        let session = async {
            info!("registered");
            tokio::select! {
                reason = heartbeat(client.clone(), &worker_id, interval, &runner) => reason,
                reason = follow_assignments(client.clone(), &worker_id, &runner) => reason,
            }
        };
        let reason = tokio::select! {
            reason = session.instrument(span.clone()) => reason,
            () = &mut shutdown => break,
        };
        span.in_scope(|| warn!(reason, "registration lost; dropping job state and registering again"));
        runner.reset();
    }
    info!("worker agent stopping");
    Ok(())
}

/// Registers, retrying while the coordinator is unavailable and while this
/// name is still held by a lease that has not expired.
async fn register(client: &WorkerClient, config: &AgentConfig, data_address: SocketAddr) -> Result<v1::RegisterWorkerResponse, AgentError> {
    let request = v1::RegisterWorkerRequest {
        name: config.name.clone(),
        data_address: data_address.to_string(),
        capabilities: Some(v1::WorkerCapabilities {
            backend: config.device.backend_name().to_owned(),
            devices: 1,
            memory_bytes: available_memory_bytes(),
        }),
    };
    let started = Instant::now();
    let mut backoff = Duration::from_millis(200);
    loop {
        match client.clone().register_worker(request.clone()).await {
            Ok(response) => return Ok(response.into_inner()),
            Err(status) if status.code() == Code::Unauthenticated || status.code() == Code::PermissionDenied => {
                return Err(AgentError::Unauthenticated(status.message().to_owned()));
            }
            Err(status) if status.code() == Code::InvalidArgument => return Err(AgentError::Rejected(status.message().to_owned())),
            // A restarted agent finds its old lease still live; it expires within
            // seconds. A name that stays taken belongs to another live worker.
            Err(status) if status.code() == Code::AlreadyExists => {
                if started.elapsed() > Duration::from_secs(10) {
                    return Err(AgentError::Rejected(status.message().to_owned()));
                }
                warn!(name = config.name, "name still held by a live lease; retrying");
            }
            Err(status) => {
                let reason = ssl_proto::tls::with_sources(status.message().to_owned(), std::error::Error::source(&status));
                match ssl_proto::tls::connection_hint(&config.coordinator, &reason) {
                    // A certificate that is not trusted stays so; retrying would hide the cause.
                    Some(hint) if reason.contains("invalid peer certificate") => return Err(AgentError::Tls { reason, hint }),
                    Some(hint) => warn!(error = %reason, hint, "cannot reach the coordinator; retrying"),
                    None => warn!(error = %reason, code = ?status.code(), "cannot reach the coordinator; retrying"),
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Checks whether a status means this registration is gone for good.
fn is_lost(status: &Status) -> bool {
    matches!(status.code(), Code::FailedPrecondition | Code::NotFound)
}

/// Sends heartbeats until the coordinator declares the worker lost; returns why.
async fn heartbeat(mut client: WorkerClient, worker_id: &str, interval: Duration, runner: &RunnerHandle) -> String {
    // Heartbeats sent after the current assignment arrived that named another
    // job, in a row. A heartbeat sent earlier may describe the time before the
    // assignment, so it does not count.
    let mut mismatches = 0;
    loop {
        tokio::time::sleep(interval).await;
        let sent_at = Instant::now();
        let request = v1::HeartbeatRequest { worker_id: worker_id.to_owned(), progress: runner.progress() };
        match client.heartbeat(request).await {
            Ok(response) => {
                let response = response.into_inner();
                match runner.assigned() {
                    Some(assigned) if assigned.at < sent_at && assigned.job_id != response.job_id => {
                        mismatches += 1;
                        if mismatches >= 2 {
                            info!(job_id = assigned.job_id, "the coordinator no longer counts this worker in the job; leaving it");
                            runner.release(assigned.job_id);
                            mismatches = 0;
                        }
                    }
                    _ => mismatches = 0,
                }
            }
            Err(status) if is_lost(&status) => return format!("heartbeat refused: {}", status.message()),
            Err(status) => warn!(error = %status.message(), "heartbeat failed; retrying"),
        }
    }
}

/// Follows the assignment stream, reopening it when it breaks, until the
/// coordinator declares the worker lost; returns why.
async fn follow_assignments(mut client: WorkerClient, worker_id: &str, runner: &RunnerHandle) -> String {
    let mut backoff = Duration::from_millis(200);
    loop {
        let request = v1::WatchAssignmentsRequest { worker_id: worker_id.to_owned() };
        let status = match client.watch_assignments(request).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(update)) => {
                            backoff = Duration::from_millis(200);
                            match update.kind {
                                Some(assignment_update::Kind::Assignment(assignment)) => {
                                    info!(job_id = assignment.job_id, generation = assignment.generation, rank = assignment.rank, "assignment received");
                                    runner.assign(assignment);
                                }
                                Some(assignment_update::Kind::Release(release)) => {
                                    info!(job_id = release.job_id, reason = release.reason, "release received");
                                    runner.release(release.job_id);
                                }
                                None => {}
                            }
                        }
                        Ok(None) => break Status::unavailable("the assignment stream ended"),
                        Err(status) => break status,
                    }
                }
            }
            Err(status) => status,
        };
        if is_lost(&status) {
            return format!("assignment stream refused: {}", status.message());
        }
        warn!(error = %status.message(), "assignment stream broke; reopening");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Memory this machine offers, from `/proc/meminfo`; 0 where unknown.
fn available_memory_bytes() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemAvailable:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}
