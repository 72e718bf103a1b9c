//! The checkpoint root that workers write under, and the retention rule that
//! picks which checkpoints a job keeps.

mod retention;
mod root;

pub use retention::{BestMetric, RetentionPolicy, expired_checkpoints};
pub use root::CheckpointRoot;
