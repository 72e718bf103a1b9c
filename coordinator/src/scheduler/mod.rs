//! The scheduler: a background task that expires worker leases, plans the shards
//! of queued jobs and admits them as gangs, and opens new generations when a
//! job's worker set changes.
//!
//! With several coordinators on one database, only the holder of the
//! `scheduler` leader lease runs passes. The store's writes are conditional on
//! what a pass read as well, so a pass that lost the lease midway cannot
//! double-assign a worker or open a second generation for the same change.

mod admission;
mod config;
mod growth;
mod recovery;
mod shard_plan;
mod task;

pub use config::SchedulerConfig;
pub use task::{LEADER_LEASE_NAME, spawn};
