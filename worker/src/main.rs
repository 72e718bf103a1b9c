//! `ssl-worker`: trains SSL encoders, as a coordinator's worker agent or, with
//! `train`, one job in this process.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use ssl_worker::agent::AgentError;
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

    // Exit status 2 marks invalid input (flags, spec, data, URI, join token), as
    // for usage errors.
    let (result, invalid_input) = match cli.command {
        Some(Command::Train(args)) => match ssl_worker::cli::train::run_train(&args) {
            Ok(_) => (Ok(()), false),
            Err(error) => (Err(error.to_string()), error.is_invalid_input()),
        },
        None => match ssl_worker::cli::agent::run(&cli.agent) {
            Ok(()) => (Ok(()), false),
            Err(error) => (Err(error.to_string()), !matches!(error, AgentError::Bind { .. })),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(if invalid_input { 2 } else { 1 })
        }
    }
}
