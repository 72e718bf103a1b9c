//! Command-line arguments: one struct per subcommand, doc comments as help text.

use std::fmt;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ssl_proto::JobState;

/// Submits and follows self-supervised pretraining jobs on an SSL coordinator.
///
/// Exit status: 0 on success, 1 when a request fails or a followed job ends FAILED or
/// CANCELLED, 2 for invalid arguments or an invalid job spec, 130 when `quickstart` is
/// interrupted.
#[derive(Debug, Parser)]
#[command(name = "sslctl", version)]
pub struct Cli {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Coordinator connection settings, shared by every subcommand; `quickstart` and `dev`
/// start or find their own coordinator and ignore them.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// Coordinator URL; `https://` connects with TLS. Default: the local service of
    /// `sslctl dev up` while it runs, else http://127.0.0.1:50051. `quickstart` and `dev`
    /// ignore it.
    #[arg(long, global = true, env = "SSLCTL_ENDPOINT")]
    pub endpoint: Option<String>,

    /// PEM file with a CA certificate to trust for `https://` endpoints, in addition to the
    /// system's root certificates.
    #[arg(long, global = true, env = "SSLCTL_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// Bearer token sent with every request as `authorization: Bearer TOKEN`. Default:
    /// the local service's token when the endpoint is the default.
    #[arg(long, global = true, env = "SSLCTL_TOKEN", hide_env_values = true)]
    pub token: Option<Token>,
}

/// Endpoint used when neither `--endpoint` nor a running local service gives one.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:50051";

impl ConnectionArgs {
    /// The coordinator URL to connect to.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT)
    }
}

/// A bearer token. Its `Debug` form hides the value so that it never reaches a log.
#[derive(Clone)]
pub struct Token(pub String);

impl From<String> for Token {
    fn from(value: String) -> Self {
        Token(value)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Submit a job from a YAML or JSON spec file and print its id.
    Submit(SubmitArgs),
    /// Show one job with its spec, state and progress.
    Get(GetArgs),
    /// List jobs, newest first.
    List(ListArgs),
    /// Cancel a job that has not ended and print its new state.
    Cancel(CancelArgs),
    /// Follow a job's state changes and progress until it ends.
    Watch(WatchArgs),
    /// List a job's committed checkpoints, newest step first.
    Checkpoints(CheckpointsArgs),
    /// Download a checkpoint's encoder weights, dataset profile and encoder config,
    /// checked against the checkpoint's manifest, and print the paths written.
    Export(ExportArgs),
    /// Run the whole service on this machine for one job: start a coordinator and
    /// workers, pretrain on the bundled UCI Adult data, print the evaluation, export the
    /// encoder, then stop everything.
    Quickstart(QuickstartArgs),
    /// Keep a local service (a coordinator and workers) running in the background for
    /// your own jobs; the other commands connect to it by default.
    Dev(DevArgs),
}

#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Folder for the job store, checkpoints, logs, the example data and the exported
    /// encoder; created when missing and reused by later runs.
    #[arg(long, value_name = "DIR", default_value = "ssl-quickstart")]
    pub data_dir: PathBuf,

    /// Worker processes to train with, 1 to 16.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub workers: u32,

    /// Passes over the data, 1 to 1000. Default: the example's 10.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub epochs: Option<u32>,
}

#[derive(Debug, Args)]
pub struct DevArgs {
    #[command(subcommand)]
    pub command: DevCommand,
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Start a coordinator with SQLite and local checkpoints, and workers, in the
    /// background, then print how to reach them.
    Up(DevUpArgs),
    /// Stop the local service: workers first, then the coordinator. Its jobs,
    /// checkpoints and logs stay in the data folder.
    Down(DevDirArgs),
    /// Show whether the local service runs, its endpoint and its processes.
    Status(DevDirArgs),
}

#[derive(Debug, Args)]
pub struct DevUpArgs {
    #[command(flatten)]
    pub dir: DevDirArgs,

    /// Worker processes to start, 1 to 16.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub workers: u32,
}

#[derive(Debug, Args)]
pub struct DevDirArgs {
    /// Folder of the local service: job store, checkpoints, logs and tokens.
    /// Default: ~/.local/share/sslctl/dev (under XDG_DATA_HOME when set).
    #[arg(long, value_name = "DIR", env = "SSLCTL_DEV_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Job spec file: JSON when the name ends in `.json`, YAML otherwise. Relative dataset
    /// paths are resolved against the file's folder.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,

    /// Follow the job after submitting it, as `sslctl watch` does, and exit 0 only when it
    /// succeeds.
    #[arg(long)]
    pub wait: bool,

    /// Idempotency key, 1 to 128 letters, digits, `-` or `_`; submitting the same key again
    /// returns the job it created. Default: a new random UUID.
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Job id.
    pub id: String,

    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show only jobs in this state; repeat the flag for several states. One of QUEUED,
    /// SCHEDULED, RUNNING, RECOVERING, SUCCEEDED, FAILED, CANCELLED, in any case.
    #[arg(long = "state", value_name = "STATE", value_parser = parse_state)]
    pub states: Vec<JobState>,

    /// Show only jobs with exactly this name.
    #[arg(long)]
    pub name: Option<String>,

    /// Maximum number of jobs shown.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,

    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// Job id.
    pub id: String,

    /// Reason recorded in the job's history.
    #[arg(long, value_name = "TEXT")]
    pub message: Option<String>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Job id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct CheckpointsArgs {
    /// Job id.
    pub job_id: String,

    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Job id.
    pub job_id: String,

    /// Step of the checkpoint to export. Default: the newest committed checkpoint.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..))]
    pub step: Option<i64>,

    /// File for the encoder weights (SafeTensors), replaced if it exists. The dataset
    /// profile and the encoder config go next to it, as `NAME.profile.json` and
    /// `NAME.encoder_config.json`, where NAME is FILE without its `.safetensors` extension.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Output format of `get`, `list` and `checkpoints`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned text for people.
    Table,
    /// Pretty-printed JSON.
    Json,
    /// YAML.
    Yaml,
}

/// Parses a job state such as `queued` or `JOB_STATE_QUEUED`, in any case.
fn parse_state(text: &str) -> Result<JobState, String> {
    JobState::from_short_name(text).ok_or_else(|| {
        let allowed: Vec<&str> = JobState::ALL.iter().map(|state| state.short_name()).collect();
        format!("unknown job state; expected one of {}", allowed.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("sslctl").chain(args.iter().copied()))
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn list_states_parse_in_any_case() {
        let cli = parse(&["list", "--state", "queued", "--state", "JOB_STATE_RUNNING"]).unwrap();
        let Command::List(list) = cli.command else { panic!("expected list, got {:?}", cli.command) };
        assert_eq!(list.states, [JobState::Queued, JobState::Running]);
        assert_eq!(list.limit, 50);
        assert_eq!(list.output, OutputFormat::Table);
    }

    #[test]
    fn list_unknown_state_names_allowed_values() {
        let error = parse(&["list", "--state", "done"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        let message = error.to_string();
        assert!(
            message.contains("expected one of QUEUED, SCHEDULED, RUNNING, RECOVERING, SUCCEEDED, FAILED, CANCELLED"),
            "{message}"
        );
    }

    #[test]
    fn list_zero_limit_rejected() {
        let error = parse(&["list", "--limit", "0"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn global_flags_after_subcommand() {
        let cli = parse(&["get", "abc", "-o", "json", "--endpoint", "https://coordinator:443", "--token", "secret"])
            .unwrap();
        assert_eq!(cli.connection.endpoint(), "https://coordinator:443");
        assert_eq!(cli.connection.token.as_ref().map(|token| token.0.as_str()), Some("secret"));
        let Command::Get(get) = cli.command else { panic!("expected get, got {:?}", cli.command) };
        assert_eq!(get.id, "abc");
        assert_eq!(get.output, OutputFormat::Json);
    }

    #[test]
    fn token_hidden_in_debug() {
        let cli = parse(&["watch", "abc", "--token", "secret-value"]).unwrap();
        let debug = format!("{cli:?}");
        assert!(!debug.contains("secret-value"), "{debug}");
    }

    #[test]
    fn export_parses_step_and_out() {
        let cli = parse(&["export", "job-1", "--step", "500", "--out", "model/encoder.safetensors"]).unwrap();
        let Command::Export(export) = cli.command else { panic!("expected export, got {:?}", cli.command) };
        assert_eq!(export.job_id, "job-1");
        assert_eq!(export.step, Some(500));
        assert_eq!(export.out, PathBuf::from("model/encoder.safetensors"));

        let cli = parse(&["export", "job-1", "--out", "encoder.safetensors"]).unwrap();
        let Command::Export(export) = cli.command else { panic!("expected export, got {:?}", cli.command) };
        assert_eq!(export.step, None);
    }

    #[test]
    fn export_needs_out_and_valid_step() {
        assert_eq!(parse(&["export", "job-1"]).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&["export", "job-1", "--out", "e.safetensors", "--step", "-1"]).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&["export", "job-1", "--out", "e.safetensors", "--step", "ten"]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn submit_requires_file() {
        let error = parse(&["submit"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        let cli = parse(&["submit", "-f", "job.yaml", "--wait", "--request-id", "r-1"]).unwrap();
        let Command::Submit(submit) = cli.command else { panic!("expected submit, got {:?}", cli.command) };
        assert_eq!(submit.file, PathBuf::from("job.yaml"));
        assert!(submit.wait);
        assert_eq!(submit.request_id.as_deref(), Some("r-1"));
    }
}
