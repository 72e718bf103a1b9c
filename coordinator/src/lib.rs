//! Control plane of the SSL training service: the `JobService` and
//! `WorkerService` gRPC APIs and the gang scheduler, over a job store in
//! PostgreSQL or SQLite.

pub mod api;
pub mod auth;
pub mod checkpoints;
mod error;
pub mod jobs;
pub mod metrics;
pub mod scheduler;
pub mod server;
pub mod store;

pub use error::Error;
