//! The SSL worker: tabular data, the encoder, the contrastive (SCARF) and masked
//! (VIME-style) trainers, checkpoints, evaluation, and the agent that trains
//! a coordinator's jobs with peers.

pub mod agent;
pub mod allocator;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod job;
pub mod losses;
pub mod metrics;
pub mod model;
pub mod schedule;
pub mod trainers;

pub use error::{Result, WorkerError};
