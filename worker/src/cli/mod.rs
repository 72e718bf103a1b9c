//! Command-line interface of `ssl-worker`: subcommand arguments and their runs.

pub mod agent;
pub mod progress;
pub mod train;

use clap::{Parser, Subcommand};

/// SSL worker: pretrains tabular encoders with self-supervised learning.
///
/// With `--coordinator URL` it runs as a worker agent that trains the jobs a
/// coordinator assigns; `train` runs one job alone.
#[derive(Debug, Parser)]
#[command(name = "ssl-worker", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub agent: agent::AgentArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pretrain on one process from a spec file, without a coordinator, then
    /// print the evaluation table.
    Train(train::TrainArgs),
}
