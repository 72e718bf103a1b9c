//! Prometheus metrics of the coordinator, as `docs/metrics.md` lists them. Gauges come
//! from the job store at scrape time, so every replica on one database reports the
//! same values. Counters and histograms count the events that this replica handled.

use std::time::Duration;

use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use ssl_proto::JobState;

use crate::store::{JobStore, StoreSnapshot, now_micros};

/// Upper bounds of the latency histograms, in seconds: from sub-second scheduling on
/// an idle cluster to an hour of waiting for workers.
const LATENCY_BUCKETS: [f64; 14] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];

/// The coordinator's event metrics, and the scrape of the store's figures.
pub struct CoordinatorMetrics {
    events: Registry,
    scheduling_latency: Histogram,
    recovery_duration: Histogram,
    recoveries: IntCounter,
    workers_lost: IntCounter,
    grpc_requests: IntCounterVec,
    /// Lease that each heartbeat renews, to tell the time of a worker's last heartbeat
    /// from its lease expiry.
    lease: Duration,
}

impl CoordinatorMetrics {
    /// Creates the metrics of a coordinator whose heartbeats renew leases of `lease`.
    pub fn new(lease: Duration) -> Self {
        let events = Registry::new();
        let scheduling_latency = Histogram::with_opts(
            HistogramOpts::new("ssl_scheduling_latency_seconds", "Time from a job's submission to its first step.")
                .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid histogram options");
        let recovery_duration = Histogram::with_opts(
            HistogramOpts::new("ssl_recovery_duration_seconds", "Time from entering RECOVERING to RUNNING again.")
                .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid histogram options");

        let recoveries = IntCounter::new("ssl_recoveries_total", "Times a job entered RECOVERING.").expect("valid counter options");
        let workers_lost = IntCounter::new(
            "ssl_workers_lost_total",
            "Workers marked lost because their lease expired or a peer reported them unreachable.",
        )
        .expect("valid counter options");
        let grpc_requests = IntCounterVec::new(
            Opts::new("ssl_grpc_requests_total", "Finished gRPC requests by method and status code."),
            &["method", "code"],
        )
        .expect("valid counter options");

        for collector in [
            Box::new(scheduling_latency.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(recovery_duration.clone()),
            Box::new(recoveries.clone()),
            Box::new(workers_lost.clone()),
            Box::new(grpc_requests.clone()),
        ] {
            events.register(collector).expect("metric names are unique");
        }
        CoordinatorMetrics { events, scheduling_latency, recovery_duration, recoveries, workers_lost, grpc_requests, lease }
    }

    /// Records the time from a job's submission to its first step.
    pub fn observe_scheduling_latency(&self, elapsed: Duration) {
        self.scheduling_latency.observe(elapsed.as_secs_f64());
    }

    /// Records how long a job stayed in `RECOVERING`.
    pub fn observe_recovery(&self, elapsed: Duration) {
        self.recovery_duration.observe(elapsed.as_secs_f64());
    }

    /// Counts the jobs among `transitions` that enter `RECOVERING`.
    pub fn count_transitions(&self, transitions: &[JobState]) {
        let recoveries = transitions.iter().filter(|state| **state == JobState::Recovering).count();
        self.recoveries.inc_by(recoveries as u64);
    }

    /// Counts workers marked lost.
    pub fn count_lost_workers(&self, count: usize) {
        self.workers_lost.inc_by(count as u64);
    }

    /// Counts a finished gRPC request.
    pub fn count_request(&self, method: &str, code: tonic::Code) {
        self.grpc_requests.with_label_values(&[method, code_name(code)]).inc();
    }

    /// Renders every metric in the Prometheus text format, reading the store's
    /// figures now. Without the store, only the event metrics appear.
    pub async fn render(&self, store: &JobStore) -> String {
        let mut families = self.events.gather();
        match store.snapshot().await {
            Ok(snapshot) => families.extend(snapshot_families(&snapshot, self.lease, now_micros())),
            Err(error) => tracing::warn!(error = %error, "cannot read the job store for the metrics"),
        }
        families.sort_by(|left, right| left.name().cmp(right.name()));
        ssl_telemetry::encode_metrics(&families)
    }
}

/// Builds the gauges of `snapshot`, taken at `now_us` microseconds since the Unix epoch.
fn snapshot_families(snapshot: &StoreSnapshot, lease: Duration, now_us: i64) -> Vec<MetricFamily> {
    let registry = Registry::new();
    let register = |collector: Box<dyn prometheus::core::Collector>| registry.register(collector).expect("metric names are unique");

    let jobs_in = |state: JobState| snapshot.jobs_by_state.iter().find(|(stored, _)| *stored == state).map_or(0, |(_, count)| *count);
    let jobs = IntGaugeVec::new(Opts::new("ssl_jobs", "Jobs in the store by state."), &["state"]).expect("valid options");
    for state in JobState::ALL {
        jobs.with_label_values(&[state.short_name().to_ascii_lowercase().as_str()]).set(jobs_in(state));
    }
    let queue_depth = IntGauge::new("ssl_queue_depth_jobs", "Jobs waiting for workers (state QUEUED).").expect("valid options");
    queue_depth.set(jobs_in(JobState::Queued));
    register(Box::new(jobs));
    register(Box::new(queue_depth));

    let registered = IntGauge::new("ssl_workers_registered", "Workers that registered and are not lost.").expect("valid options");
    let live = IntGauge::new("ssl_workers_live", "Registered workers whose lease has not expired.").expect("valid options");
    let busy = IntGauge::new("ssl_workers_busy", "Registered workers in a job's current generation.").expect("valid options");
    let heartbeat_age = GaugeVec::new(
        Opts::new("ssl_worker_heartbeat_age_seconds", "Time since the last heartbeat of each registered worker."),
        &["worker_id"],
    )
    .expect("valid options");
    let lease_us = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX);
    for worker in &snapshot.workers {
        registered.inc();
        if worker.lease_expires_at_us > now_us {
            live.inc();
        }
        if worker.state_name == "BUSY" {
            busy.inc();
        }
        let last_heartbeat_us = worker.lease_expires_at_us.saturating_sub(lease_us);
        heartbeat_age.with_label_values(&[worker.id.as_str()]).set(seconds(now_us.saturating_sub(last_heartbeat_us).max(0)));
    }
    register(Box::new(registered));
    register(Box::new(live));
    register(Box::new(busy));
    register(Box::new(heartbeat_age));

    let state_since = GaugeVec::new(
        Opts::new("ssl_job_state_since_timestamp_seconds", "Unix time at which each active job entered its current state."),
        &["job_id", "state"],
    )
    .expect("valid options");
    let generation =
        IntGaugeVec::new(Opts::new("ssl_job_generation", "Current generation of each active job."), &["job_id"]).expect("valid options");
    let step =
        IntGaugeVec::new(Opts::new("ssl_job_step", "Latest optimizer step reported for each active job."), &["job_id"]).expect("valid options");
    let last_progress = GaugeVec::new(
        Opts::new("ssl_job_last_progress_timestamp_seconds", "Unix time of the latest progress report of each active job."),
        &["job_id"],
    )
    .expect("valid options");
    for job in &snapshot.active_jobs {
        let id = job.id.as_str();
        if let Some(since) = job.state_since_us {
            state_since.with_label_values(&[id, job.state.short_name().to_ascii_lowercase().as_str()]).set(seconds(since));
        }
        generation.with_label_values(&[id]).set(job.generation);
        if let Some(latest) = job.step {
            step.with_label_values(&[id]).set(latest);
        }
        if let Some(at) = job.last_progress_us {
            last_progress.with_label_values(&[id]).set(seconds(at));
        }
    }
    register(Box::new(state_since));
    register(Box::new(generation));
    register(Box::new(step));
    register(Box::new(last_progress));

    registry.gather()
}

fn seconds(micros: i64) -> f64 {
    micros as f64 / 1e6
}

/// Returns the status code's name as gRPC writes it, such as `INVALID_ARGUMENT`.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ActiveJob, WorkerLease};

    fn render(families: &[MetricFamily]) -> String {
        ssl_telemetry::encode_metrics(families)
    }

    #[test]
    fn snapshot_gauges_cover_every_state_and_worker() {
        let snapshot = StoreSnapshot {
            jobs_by_state: vec![(JobState::Queued, 2), (JobState::Running, 1)],
            workers: vec![
                WorkerLease { id: "w-1".into(), state_name: "BUSY".into(), lease_expires_at_us: 110_000_000 },
                WorkerLease { id: "w-2".into(), state_name: "IDLE".into(), lease_expires_at_us: 90_000_000 },
            ],
            active_jobs: vec![ActiveJob {
                id: "j-1".into(),
                state: JobState::Running,
                generation: 3,
                step: Some(42),
                state_since_us: Some(50_000_000),
                last_progress_us: Some(99_500_000),
            }],
        };
        let text = render(&snapshot_families(&snapshot, Duration::from_secs(15), 100_000_000));

        assert!(text.contains("ssl_jobs{state=\"queued\"} 2"), "{text}");
        assert!(text.contains("ssl_jobs{state=\"running\"} 1"), "{text}");
        assert!(text.contains("ssl_jobs{state=\"cancelled\"} 0"), "{text}");
        assert!(text.contains("ssl_queue_depth_jobs 2"), "{text}");
        assert!(text.contains("ssl_workers_registered 2"), "{text}");
        assert!(text.contains("ssl_workers_live 1"), "{text}");
        assert!(text.contains("ssl_workers_busy 1"), "{text}");
        // Lease until 110 s, renewed for 15 s: last heartbeat at 95 s, 5 s before now.
        assert!(text.contains("ssl_worker_heartbeat_age_seconds{worker_id=\"w-1\"} 5"), "{text}");
        assert!(text.contains("ssl_worker_heartbeat_age_seconds{worker_id=\"w-2\"} 25"), "{text}");
        assert!(text.contains("ssl_job_state_since_timestamp_seconds{job_id=\"j-1\",state=\"running\"} 50"), "{text}");
        assert!(text.contains("ssl_job_generation{job_id=\"j-1\"} 3"), "{text}");
        assert!(text.contains("ssl_job_step{job_id=\"j-1\"} 42"), "{text}");
        assert!(text.contains("ssl_job_last_progress_timestamp_seconds{job_id=\"j-1\"} 99.5"), "{text}");
    }

    #[test]
    fn transitions_count_only_recoveries() {
        let metrics = CoordinatorMetrics::new(Duration::from_secs(15));
        metrics.count_transitions(&[JobState::Recovering, JobState::Queued]);
        metrics.count_transitions(&[JobState::Queued]);
        metrics.count_request("/ssl.v1.JobService/GetJob", tonic::Code::NotFound);
        let text = render(&metrics.events.gather());
        assert!(text.contains("ssl_recoveries_total 1"), "{text}");
        assert!(text.contains("ssl_grpc_requests_total{code=\"NOT_FOUND\",method=\"/ssl.v1.JobService/GetJob\"} 1"), "{text}");
    }
}
