//! One module per subcommand; [`run`] dispatches to them.

mod cancel;
mod checkpoints;
mod dev;
mod export;
mod get;
mod list;
mod quickstart;
mod submit;
mod watch;

use crate::cli::{Cli, Command};
use crate::client;
use crate::error::Error;

/// Runs the parsed command line against the coordinator.
pub async fn run(cli: Cli) -> Result<(), Error> {
    let connection = &client::with_local_defaults(cli.connection.clone());
    match &cli.command {
        Command::Submit(args) => submit::run(connection, args).await,
        Command::Get(args) => get::run(connection, args).await,
        Command::List(args) => list::run(connection, args).await,
        Command::Cancel(args) => cancel::run(connection, args).await,
        Command::Watch(args) => watch::run(connection, args).await,
        Command::Checkpoints(args) => checkpoints::run(connection, args).await,
        Command::Export(args) => export::run(connection, args).await,
        Command::Quickstart(args) => quickstart::run(args).await,
        Command::Dev(args) => dev::run(args).await,
    }
}
