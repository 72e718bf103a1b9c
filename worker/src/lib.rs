//! The SSL worker's learning core: tabular data, the encoder, the contrastive
//! (SCARF) and masked (VIME-style) trainers, checkpoints and evaluation.

pub mod allocator;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod error;
pub mod eval;
pub mod job;
pub mod losses;
pub mod model;
pub mod schedule;
pub mod trainers;

pub use error::{Result, WorkerError};
