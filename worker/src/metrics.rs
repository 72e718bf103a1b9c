//! Prometheus metrics of a worker agent, as `docs/metrics.md` lists them: the training
//! figures of the job it trains, for its rank, and rank 0's checkpoint writes.

use std::time::Duration;

use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::trainers::StepTimings;

/// Upper bounds of the step phase histogram, in seconds: from a small batch on a fast
/// machine to a slow exchange near the peer timeout.
const PHASE_BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Upper bounds of the checkpoint write histogram, in seconds.
const CHECKPOINT_BUCKETS: [f64; 12] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Figures of one step that the metrics report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepFigures {
    /// Epoch of the step, counted from 1.
    pub epoch: u64,
    /// Optimizer steps taken so far.
    pub steps: u64,
    pub loss: f64,
    pub samples_per_second: f64,
    pub timings: StepTimings,
    /// Bus bandwidth of the step's gradient all-reduce in bytes per second; `None`
    /// without peers.
    pub bus_bandwidth: Option<f64>,
}

/// The worker's metrics. Series with `job_id` describe only the job this worker
/// trains and disappear when it leaves that job.
pub struct WorkerMetrics {
    registry: Registry,
    info: IntGaugeVec,
    backend: String,
    step: IntGaugeVec,
    epoch: IntGaugeVec,
    loss: GaugeVec,
    samples_per_second: GaugeVec,
    step_phase: HistogramVec,
    bus_bandwidth: GaugeVec,
    checkpoint_write: HistogramVec,
    checkpoint_bytes: IntCounterVec,
    checkpoints: IntCounterVec,
}

impl WorkerMetrics {
    /// Creates the metrics of a worker training on `backend`, such as `cpu`.
    pub fn new(backend: &str) -> Self {
        let job_rank = ["job_id", "rank"];
        let info = IntGaugeVec::new(
            Opts::new("ssl_worker_info", "Always 1; the worker's id at the coordinator and its training backend."),
            &["worker_id", "backend"],
        )
        .expect("valid options");
        let step = IntGaugeVec::new(Opts::new("ssl_train_step", "Optimizer steps taken."), &job_rank).expect("valid options");
        let epoch =
            IntGaugeVec::new(Opts::new("ssl_train_epoch", "Epoch of the latest step, counted from 1."), &job_rank).expect("valid options");
        let loss = GaugeVec::new(Opts::new("ssl_train_loss", "Training loss of the latest step."), &job_rank).expect("valid options");
        let samples_per_second = GaugeVec::new(
            Opts::new("ssl_train_samples_per_second", "Samples of the global batch per second, over the latest steps."),
            &job_rank,
        )
        .expect("valid options");
        let step_phase = HistogramVec::new(
            HistogramOpts::new("ssl_train_step_phase_seconds", "Time of one step in each phase.").buckets(PHASE_BUCKETS.to_vec()),
            &["job_id", "rank", "phase"],
        )
        .expect("valid options");
        let bus_bandwidth = GaugeVec::new(
            Opts::new("ssl_allreduce_bus_bandwidth_bytes_per_second", "Bus bandwidth of the latest gradient all-reduce."),
            &job_rank,
        )
        .expect("valid options");
        let checkpoint_write = HistogramVec::new(
            HistogramOpts::new("ssl_checkpoint_write_seconds", "Time to write one checkpoint, manifest included.")
                .buckets(CHECKPOINT_BUCKETS.to_vec()),
            &["job_id"],
        )
        .expect("valid options");
        let checkpoint_bytes =
            IntCounterVec::new(Opts::new("ssl_checkpoint_written_bytes_total", "Bytes of committed checkpoints."), &["job_id"])
                .expect("valid options");
        let checkpoints =
            IntCounterVec::new(Opts::new("ssl_checkpoints_total", "Committed checkpoints."), &["job_id"]).expect("valid options");

        let registry = Registry::new();
        for collector in [
            Box::new(info.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(step.clone()),
            Box::new(epoch.clone()),
            Box::new(loss.clone()),
            Box::new(samples_per_second.clone()),
            Box::new(step_phase.clone()),
            Box::new(bus_bandwidth.clone()),
            Box::new(checkpoint_write.clone()),
            Box::new(checkpoint_bytes.clone()),
            Box::new(checkpoints.clone()),
        ] {
            registry.register(collector).expect("metric names are unique");
        }
        info.with_label_values(&["", backend]).set(1);
        WorkerMetrics {
            registry,
            info,
            backend: backend.to_owned(),
            step,
            epoch,
            loss,
            samples_per_second,
            step_phase,
            bus_bandwidth,
            checkpoint_write,
            checkpoint_bytes,
            checkpoints,
        }
    }

    /// Sets the worker id that `ssl_worker_info` reports, after a registration.
    pub fn set_worker_id(&self, worker_id: &str) {
        self.info.reset();
        self.info.with_label_values(&[worker_id, &self.backend]).set(1);
    }

    /// Drops the training series of an earlier generation, whose rank may differ.
    pub fn start_generation(&self) {
        self.step.reset();
        self.epoch.reset();
        self.loss.reset();
        self.samples_per_second.reset();
        self.step_phase.reset();
        self.bus_bandwidth.reset();
    }

    /// Drops every series of the job this worker leaves.
    pub fn clear_job(&self) {
        self.start_generation();
        self.checkpoint_write.reset();
        self.checkpoint_bytes.reset();
        self.checkpoints.reset();
    }

    /// Records a step of `job_id` taken as `rank`.
    pub fn record_step(&self, job_id: &str, rank: usize, figures: &StepFigures) {
        let rank = rank.to_string();
        let labels = [job_id, rank.as_str()];
        self.step.with_label_values(&labels).set(i64::try_from(figures.steps).unwrap_or(i64::MAX));
        self.epoch.with_label_values(&labels).set(i64::try_from(figures.epoch).unwrap_or(i64::MAX));
        self.loss.with_label_values(&labels).set(figures.loss);
        self.samples_per_second.with_label_values(&labels).set(figures.samples_per_second);
        let timings = figures.timings;
        for (phase, duration) in [
            ("data", timings.data),
            ("forward_backward", timings.forward_backward),
            ("allreduce", timings.exchange),
            ("optimizer", timings.optimizer),
        ] {
            self.step_phase.with_label_values(&[job_id, rank.as_str(), phase]).observe(duration.as_secs_f64());
        }
        if let Some(bandwidth) = figures.bus_bandwidth {
            self.bus_bandwidth.with_label_values(&labels).set(bandwidth);
        }
    }

    /// Records a committed checkpoint of `job_id` of `bytes` in total that took `elapsed` to write.
    pub fn record_checkpoint(&self, job_id: &str, elapsed: Duration, bytes: u64) {
        self.checkpoint_write.with_label_values(&[job_id]).observe(elapsed.as_secs_f64());
        self.checkpoint_bytes.with_label_values(&[job_id]).inc_by(bytes);
        self.checkpoints.with_label_values(&[job_id]).inc();
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        ssl_telemetry::encode_metrics(&self.registry.gather())
    }
}

/// Bus bandwidth of an all-reduce of `bytes` among `world_size` ranks that took
/// `elapsed`, as nccl-tests defines it: algorithm bandwidth × 2(n−1)/n.
pub fn bus_bandwidth(bytes: u64, elapsed: Duration, world_size: usize) -> Option<f64> {
    if world_size < 2 || elapsed.is_zero() {
        return None;
    }
    let algorithm = bytes as f64 / elapsed.as_secs_f64();
    let n = world_size as f64;
    Some(algorithm * 2.0 * (n - 1.0) / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(steps: u64) -> StepFigures {
        StepFigures {
            epoch: 1,
            steps,
            loss: 2.5,
            samples_per_second: 1000.0,
            timings: StepTimings {
                data: Duration::from_millis(1),
                forward_backward: Duration::from_millis(20),
                exchange: Duration::from_millis(4),
                all_reduce: Duration::from_millis(3),
                optimizer: Duration::from_millis(2),
            },
            bus_bandwidth: Some(1e9),
        }
    }

    #[test]
    fn step_series_carry_job_and_rank() {
        let metrics = WorkerMetrics::new("cpu");
        metrics.set_worker_id("w-1");
        metrics.record_step("j-1", 1, &figures(7));
        let text = metrics.render();
        assert!(text.contains("ssl_worker_info{backend=\"cpu\",worker_id=\"w-1\"} 1"), "{text}");
        assert!(text.contains("ssl_train_step{job_id=\"j-1\",rank=\"1\"} 7"), "{text}");
        assert!(text.contains("ssl_train_loss{job_id=\"j-1\",rank=\"1\"} 2.5"), "{text}");
        assert!(text.contains("ssl_train_step_phase_seconds_count{job_id=\"j-1\",phase=\"allreduce\",rank=\"1\"} 1"), "{text}");
        assert!(text.contains("ssl_allreduce_bus_bandwidth_bytes_per_second{job_id=\"j-1\",rank=\"1\"} 1000000000"), "{text}");
    }

    #[test]
    fn leaving_a_job_drops_its_series() {
        let metrics = WorkerMetrics::new("cpu");
        metrics.record_step("j-1", 0, &figures(3));
        metrics.record_checkpoint("j-1", Duration::from_millis(30), 4096);
        assert!(metrics.render().contains("ssl_checkpoint_written_bytes_total{job_id=\"j-1\"} 4096"));

        metrics.start_generation();
        let text = metrics.render();
        assert!(!text.contains("ssl_train_step{"), "{text}");
        assert!(text.contains("ssl_checkpoints_total{job_id=\"j-1\"} 1"), "{text}");

        metrics.clear_job();
        assert!(!metrics.render().contains("j-1"));
    }

    #[test]
    fn bus_bandwidth_follows_nccl_tests() {
        let one_second = Duration::from_secs(1);
        assert_eq!(bus_bandwidth(1000, one_second, 1), None);
        assert_eq!(bus_bandwidth(1000, one_second, 2), Some(1000.0));
        assert_eq!(bus_bandwidth(1000, one_second, 4), Some(1500.0));
    }
}
