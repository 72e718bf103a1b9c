use anyhow::Context;
use clap::Parser;
use ssl_worker::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();

    match Cli::parse().command {
        Command::Train(args) => {
            ssl_worker::cli::train::run_train(&args).with_context(|| format!("training from `{}` failed", args.spec.display()))?;
        }
    }
    Ok(())
}
