//! A whole service on this machine: one `ssl-coordinator` with SQLite and local
//! checkpoints, and worker agents, as child processes on 127.0.0.1.
//!
//! `sslctl quickstart` runs one for the length of a job; `sslctl dev up` leaves one
//! running, and the other commands connect to it by default.

mod binaries;
mod example;
mod layout;
mod process;
mod stack;
mod state;

pub use example::write_example;
pub use layout::{StackDir, default_dev_dir};
pub use stack::{LocalStack, StackOptions};
pub use state::running_stack;
