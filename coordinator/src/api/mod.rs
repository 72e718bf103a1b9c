//! gRPC services. Handlers stay thin: check the request, call the store, map the error.

mod assignments;
mod convert;
mod job_service;
mod request_metrics;
mod watch;
mod worker_checks;
mod worker_service;

pub use job_service::JobApi;
pub use request_metrics::RequestMetricsLayer;
pub use worker_service::WorkerApi;
