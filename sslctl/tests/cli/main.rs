//! Runs the `sslctl` binary against an in-process coordinator, as a user would.

mod connection;
mod invalid_input;
mod jobs;
mod support;
