//! The one error type of `sslctl`, which decides the process exit status.

use ssl_proto::JobState;
use ssl_proto::spec::SpecFileError;
use tonic::Code;

/// Exit status for usage errors and invalid input, the same as clap uses.
pub const EXIT_USAGE: u8 = 2;
/// Exit status for failed requests and jobs that ended without succeeding.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status after Ctrl-C, as shells report a process ended by SIGINT.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Everything a command can fail with. `Display` is the one-line message printed after
/// `error: `, so it never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument is invalid in a way that clap cannot check.
    #[error("{0}")]
    Usage(String),

    #[error(transparent)]
    SpecFile(#[from] SpecFileError),

    #[error("{}", describe_connect(.endpoint, .reason))]
    Connect { endpoint: String, reason: String },

    /// The coordinator returned a non-OK gRPC status.
    #[error("{}", describe_status(.endpoint, .status))]
    Rpc { endpoint: String, status: tonic::Status },

    /// A followed job ended FAILED or CANCELLED.
    #[error("job `{job_id}` ended {}{}", .state.short_name(), format_reason(.message))]
    JobEnded { job_id: String, state: JobState, message: String },

    #[error("watch of job `{job_id}` ended before the job did; run `sslctl watch {job_id}` to follow it again")]
    WatchInterrupted { job_id: String },

    /// The coordinator returned a message that lacks a required field.
    #[error("invalid response from coordinator: {0}")]
    InvalidResponse(String),

    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),

    #[error("cannot encode output: {0}")]
    Encode(String),

    /// The job has no committed checkpoint at the requested step, or none at all.
    #[error("{}", describe_missing_checkpoint(.job_id, .step, .available))]
    CheckpointNotFound { job_id: String, step: Option<i64>, available: Vec<i64> },

    /// The checkpoint's manifest does not exist: its upload did not finish, or its
    /// objects were deleted.
    #[error("checkpoint at step {step} is incomplete: {manifest_uri} does not exist")]
    IncompleteCheckpoint { step: i64, manifest_uri: String },

    #[error("invalid checkpoint manifest {uri}: {reason}")]
    InvalidManifest { uri: String, reason: String },

    /// A downloaded object differs from its manifest entry. No output file was written.
    #[error("{uri} does not match the checkpoint manifest: {reason}; no output file was written")]
    ChecksumMismatch { uri: String, reason: String },

    /// Object storage could not be reached or returned an error.
    #[error("cannot read {uri}: {message}")]
    Storage { uri: String, message: String },

    #[error("cannot write {}: {error}", .path.display())]
    WriteFile { path: std::path::PathBuf, error: std::io::Error },

    /// A process of a local stack did not start or exited early.
    #[error("{0}")]
    LocalService(String),

    /// The user pressed Ctrl-C; what was running has been stopped.
    #[error("interrupted; {0}")]
    Interrupted(String),
}

impl Error {
    /// Returns the process exit status: 2 for invalid input, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::SpecFile(_) => EXIT_USAGE,
            Error::Rpc { status, .. } => match status.code() {
                Code::InvalidArgument | Code::OutOfRange => EXIT_USAGE,
                _ => EXIT_FAILURE,
            },
            Error::Connect { .. }
            | Error::JobEnded { .. }
            | Error::WatchInterrupted { .. }
            | Error::InvalidResponse(_)
            | Error::Output(_)
            | Error::Encode(_)
            | Error::CheckpointNotFound { .. }
            | Error::IncompleteCheckpoint { .. }
            | Error::InvalidManifest { .. }
            | Error::ChecksumMismatch { .. }
            | Error::Storage { .. }
            | Error::WriteFile { .. }
            | Error::LocalService(_) => EXIT_FAILURE,
            Error::Interrupted(_) => EXIT_INTERRUPTED,
        }
    }

    /// Returns whether stdout was closed early, as in `sslctl list | head -1`, which
    /// needs no message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Output(error) if error.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// Wraps a gRPC status returned by the coordinator at `endpoint`.
    pub fn rpc(endpoint: &str, status: tonic::Status) -> Self {
        Error::Rpc { endpoint: endpoint.to_owned(), status }
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        if error.is_io() {
            return Error::Output(error.into());
        }
        Error::Encode(error.to_string())
    }
}

impl From<serde_yaml::Error> for Error {
    fn from(error: serde_yaml::Error) -> Self {
        Error::Encode(error.to_string())
    }
}

fn describe_missing_checkpoint(job_id: &str, step: &Option<i64>, available: &[i64]) -> String {
    let Some(step) = step else {
        return format!("job `{job_id}` has no committed checkpoints");
    };
    if available.is_empty() {
        return format!("job `{job_id}` has no checkpoint at step {step}; it has no committed checkpoints");
    }
    let steps: Vec<String> = available.iter().map(i64::to_string).collect();
    format!("job `{job_id}` has no checkpoint at step {step}; available steps: {}", steps.join(", "))
}

fn format_reason(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(": {message}") }
}

/// Formats a status as one line: the server's own message, plus what to do next when
/// the code points at the client's settings or the connection.
fn describe_status(endpoint: &str, status: &tonic::Status) -> String {
    let message = match status.message().trim() {
        "" => status.code().description(),
        message => message,
    };
    match status.code() {
        Code::Unauthenticated => {
            format!("{message}; pass a valid token with --token or SSLCTL_TOKEN")
        }
        Code::PermissionDenied => format!("permission denied: {message}"),
        // The status of a coordinator that is shutting down already names the next step.
        Code::Unavailable if message.contains("shutting down") => format!("coordinator at {endpoint} is unavailable: {message}"),
        Code::Unavailable => format!(
            "coordinator at {endpoint} is unavailable: {message}; is it running? set --endpoint or SSLCTL_ENDPOINT"
        ),
        Code::DeadlineExceeded => format!("request to coordinator at {endpoint} timed out: {message}"),
        _ => match ssl_proto::tls::connection_hint(endpoint, message) {
            Some(hint) => format!("{message}; {hint}"),
            None => message.to_owned(),
        },
    }
}

fn describe_connect(endpoint: &str, reason: &str) -> String {
    match ssl_proto::tls::connection_hint(endpoint, reason) {
        Some(hint) => format!("cannot connect to coordinator at {endpoint}: {reason}; {hint}"),
        None => format!(
            "cannot connect to coordinator at {endpoint}: {reason}; is it running? set --endpoint or SSLCTL_ENDPOINT, \
             or start a local one with `sslctl dev up`"
        ),
    }
}

/// Joins an error and its sources into one line, skipping sources whose text the
/// line already contains (tonic and hyper often repeat their cause).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    ssl_proto::tls::with_sources(error.to_string(), error.source())
}

#[cfg(test)]
mod tests {
    use tonic::Status;

    use super::*;

    const ENDPOINT: &str = "http://127.0.0.1:50051";

    #[test]
    fn invalid_argument_exits_2_with_server_message() {
        let message = "invalid job spec: training.epochs: -5 is out of range; expected an integer from 1 to 100000";
        let error = Error::rpc(ENDPOINT, Status::invalid_argument(message));
        assert_eq!(error.exit_code(), 2);
        assert_eq!(error.to_string(), message);
    }

    #[test]
    fn server_failures_exit_1() {
        for status in [
            Status::not_found("job `x` not found"),
            Status::failed_precondition("job `x` is CANCELLED"),
            Status::unauthenticated("missing bearer token"),
            Status::unavailable("tcp connect error"),
            Status::internal("database error"),
        ] {
            let code = status.code();
            assert_eq!(Error::rpc(ENDPOINT, status).exit_code(), 1, "{code:?}");
        }
    }

    #[test]
    fn unauthenticated_names_token_flag() {
        let error = Error::rpc(ENDPOINT, Status::unauthenticated("invalid bearer token"));
        assert_eq!(error.to_string(), "invalid bearer token; pass a valid token with --token or SSLCTL_TOKEN");
    }

    #[test]
    fn untrusted_certificate_gets_tls_hint() {
        let error = Error::Connect {
            endpoint: "https://127.0.0.1:50051".to_owned(),
            reason: "transport error: invalid peer certificate: UnknownIssuer".to_owned(),
        };
        let message = error.to_string();
        assert!(message.ends_with("pass the PEM file of the CA that signed it with --ca-cert"), "{message}");
        assert!(!message.contains("is it running"), "{message}");
    }

    #[test]
    fn plain_http_to_tls_gets_hint() {
        let error = Error::rpc("http://127.0.0.1:50051", Status::unknown("h2 protocol error: http2 error"));
        assert_eq!(error.to_string(), "h2 protocol error: http2 error; the coordinator may serve TLS; use an https:// URL");
    }

    #[test]
    fn unavailable_names_endpoint() {
        let error = Error::rpc(ENDPOINT, Status::unavailable("connection reset"));
        assert_eq!(
            error.to_string(),
            "coordinator at http://127.0.0.1:50051 is unavailable: connection reset; \
             is it running? set --endpoint or SSLCTL_ENDPOINT"
        );
    }

    #[test]
    fn empty_status_message_uses_code() {
        let error = Error::rpc(ENDPOINT, Status::not_found(""));
        assert_eq!(error.to_string(), "Some requested entity was not found");
    }

    #[test]
    fn job_ended_includes_reason() {
        let error = Error::JobEnded { job_id: "j".to_owned(), state: JobState::Failed, message: "out of memory".to_owned() };
        assert_eq!(error.to_string(), "job `j` ended FAILED: out of memory");
        assert_eq!(error.exit_code(), 1);
        let error = Error::JobEnded { job_id: "j".to_owned(), state: JobState::Cancelled, message: String::new() };
        assert_eq!(error.to_string(), "job `j` ended CANCELLED");
    }

    #[test]
    fn spec_file_errors_exit_2() {
        let error = Error::from(SpecFileError::Empty { path: "job.yaml".into() });
        assert_eq!(error.exit_code(), 2);
        assert_eq!(error.to_string(), "spec file job.yaml is empty");
    }

    #[test]
    fn missing_checkpoint_lists_available_steps() {
        let error = Error::CheckpointNotFound { job_id: "j".to_owned(), step: Some(300), available: vec![500, 400] };
        assert_eq!(error.to_string(), "job `j` has no checkpoint at step 300; available steps: 500, 400");
        assert_eq!(error.exit_code(), 1);
        let error = Error::CheckpointNotFound { job_id: "j".to_owned(), step: None, available: vec![] };
        assert_eq!(error.to_string(), "job `j` has no committed checkpoints");
        let error = Error::CheckpointNotFound { job_id: "j".to_owned(), step: Some(5), available: vec![] };
        assert_eq!(error.to_string(), "job `j` has no checkpoint at step 5; it has no committed checkpoints");
    }

    #[test]
    fn error_chain_skips_repeated_causes() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let outer = std::io::Error::other(inner);
        assert_eq!(error_chain(&outer), "connection refused");
    }
}
