//! gRPC services. Handlers stay thin: check the request, call the store, map the error.

mod convert;
mod job_service;
mod watch;

pub use job_service::JobApi;
