//! One module per subcommand; [`run`] dispatches to them.

mod cancel;
mod checkpoints;
mod export;
mod get;
mod list;
mod submit;
mod watch;

use crate::cli::{Cli, Command};
use crate::error::Error;

/// Runs the parsed command line against the coordinator.
pub async fn run(cli: Cli) -> Result<(), Error> {
    let connection = &cli.connection;
    match &cli.command {
        Command::Submit(args) => submit::run(connection, args).await,
        Command::Get(args) => get::run(connection, args).await,
        Command::List(args) => list::run(connection, args).await,
        Command::Cancel(args) => cancel::run(connection, args).await,
        Command::Watch(args) => watch::run(connection, args).await,
        Command::Checkpoints(args) => checkpoints::run(connection, args).await,
        Command::Export(args) => export::run(connection, args).await,
    }
}
