//! `ssl-worker`: trains SSL encoders; `train` runs one job in this process.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use ssl_worker::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    ssl_worker::allocator::retain_freed_memory();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let result = match cli.command {
        Command::Train(args) => ssl_worker::cli::train::run_train(&args).map(|_| ()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            // Exit status 2 marks invalid input (spec, data, URI), as for usage errors.
            ExitCode::from(if error.is_invalid_input() { 2 } else { 1 })
        }
    }
}
