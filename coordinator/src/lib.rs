//! Control plane of the SSL training service: the `JobService` gRPC API over a
//! job store in PostgreSQL or SQLite.

pub mod api;
pub mod auth;
mod error;
pub mod jobs;
pub mod server;
pub mod store;

pub use error::Error;
