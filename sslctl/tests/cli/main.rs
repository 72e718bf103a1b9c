//! Runs the `sslctl` binary against an in-process coordinator, as a user would.

mod connection;
mod export;
mod invalid_input;
mod jobs;
mod support;
