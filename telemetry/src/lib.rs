//! Observability shared by the coordinator and the workers: the `tracing` setup, which
//! also exports spans over OTLP when an OpenTelemetry endpoint is configured, and the
//! HTTP listener that serves Prometheus metrics.

mod metrics_server;
mod tracing_setup;

pub use metrics_server::{encode_metrics, serve_metrics};
pub use tracing_setup::{TelemetryError, TracingGuard, init_tracing, otlp_endpoint_configured};
