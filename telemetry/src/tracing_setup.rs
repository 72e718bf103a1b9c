//! The `tracing` subscriber of each program: logs on stderr, and spans exported over
//! OTLP/gRPC when the standard OpenTelemetry environment variables name an endpoint.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Environment variables that name an OTLP endpoint; either one turns the exporter on.
const ENDPOINT_VARIABLES: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"];

/// Spans of the exporter's own gRPC client would be exported in turn, so these
/// targets stay out of the OpenTelemetry layer.
const EXPORT_FILTER: &str = "info,h2=off,hyper=off,hyper_util=off,tonic=off,tower=off,opentelemetry=off";

/// Errors of [`init_tracing`].
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot start the OpenTelemetry exporter's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("invalid OpenTelemetry exporter settings (OTEL_EXPORTER_OTLP_* variables): {0}")]
    Exporter(String),
}

/// Keeps the span exporter alive; dropping it sends the spans still buffered.
#[must_use = "dropping the guard stops the span export"]
pub struct TracingGuard {
    provider: Option<SdkTracerProvider>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TracingGuard {
    /// Returns whether spans are exported over OTLP.
    pub fn exports_spans(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            // The subscriber may already be gone, so this goes straight to stderr.
            eprintln!("warning: cannot send the last OpenTelemetry spans: {error}");
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Returns whether `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set.
pub fn otlp_endpoint_configured() -> bool {
    ENDPOINT_VARIABLES.iter().any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

/// Installs the global `tracing` subscriber: human-readable logs on stderr filtered by
/// `RUST_LOG` (default `info`) and, when an OTLP endpoint is configured, an OpenTelemetry
/// layer that exports spans over gRPC. The exporter reads the standard variables
/// (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`,
/// `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, ...). `service_name` applies
/// unless `OTEL_SERVICE_NAME` sets another. Without an endpoint, no exporter exists and
/// spans cost what the log filter makes them cost.
///
/// # Errors
///
/// [`TelemetryError`] when the exporter cannot be built from the environment.
pub fn init_tracing(service_name: &'static str) -> Result<TracingGuard, TelemetryError> {
    let log_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let log_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(log_filter);

    if !otlp_endpoint_configured() {
        tracing_subscriber::registry().with(log_layer).init();
        return Ok(TracingGuard { provider: None, runtime: None });
    }

    // The gRPC channel runs its connections on a Tokio runtime. This one belongs to the
    // exporter, so that programs without a runtime of their own can export too.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("otlp-export")
        .enable_all()
        .build()
        .map_err(TelemetryError::Runtime)?;
    let exporter = runtime
        .block_on(async { SpanExporter::builder().with_tonic().with_protocol(opentelemetry_otlp::Protocol::Grpc).build() })
        .map_err(|error| TelemetryError::Exporter(error.to_string()))?;

    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service_name);
    }
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build();
    let export_layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service_name))
        .with_filter(EnvFilter::new(EXPORT_FILTER));

    tracing_subscriber::registry().with(log_layer).with(export_layer).init();
    Ok(TracingGuard { provider: Some(provider), runtime: Some(runtime) })
}
