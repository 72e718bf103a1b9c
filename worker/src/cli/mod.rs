//! Command-line interface of `ssl-worker`: subcommand arguments and their runs.

pub mod progress;
pub mod train;

use clap::{Parser, Subcommand};

/// SSL worker: pretrains tabular encoders with self-supervised learning.
#[derive(Debug, Parser)]
#[command(name = "ssl-worker", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pretrain on one process from a spec file, without a coordinator, then
    /// print the evaluation table.
    Train(train::TrainArgs),
}
