//! `ssl-worker`: trains SSL encoders, as a coordinator's worker agent or, with
//! `train`, one job in this process.

use std::process::ExitCode;

use clap::Parser;
use ssl_worker::agent::AgentError;
use ssl_worker::cli::{Cli, Command};

fn main() -> ExitCode {
    ssl_worker::allocator::retain_freed_memory();
    let cli = Cli::parse();
    let _tracing = match ssl_telemetry::init_tracing("ssl-worker") {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };

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
