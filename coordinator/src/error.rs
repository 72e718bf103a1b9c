//! The coordinator's error type and its one mapping to gRPC status codes.

use ssl_proto::JobState;
use tonic::{Code, Status};

/// Everything a coordinator operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is missing or out of range; the message names the field.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("job `{0}` not found")]
    JobNotFound(String),
    /// The job is in a state that does not allow the operation; nothing changed.
    #[error("job `{job_id}` is {state}; {operation} needs a job in {allowed}")]
    InvalidTransition { job_id: String, state: &'static str, operation: &'static str, allowed: String },
    /// The request id was already used for a different spec.
    #[error(
        "request id `{request_id}` was already used for job `{job_id}` with a different spec; \
         use a new request id"
    )]
    RequestIdReused { request_id: String, job_id: String },
    #[error("worker `{0}` not found; register the worker first")]
    WorkerNotFound(String),
    /// The worker's lease expired or a peer reported it unreachable; its id is retired.
    #[error("worker `{0}` lost its lease or was dropped from its job; register again for a new worker id")]
    WorkerLost(String),
    #[error("worker name `{0}` belongs to a worker with a live lease; pick another name or wait for that lease to expire")]
    WorkerNameTaken(String),
    /// A worker reported on a generation that a newer one replaced; nothing changed.
    #[error(
        "generation {generation} of job `{job_id}` is no longer current (current: {current}); \
         follow the assignment stream"
    )]
    StaleGeneration { job_id: String, generation: i64, current: i64 },
    /// The worker is not a member of the generation it reported on, or lacks the rank the call needs.
    #[error("worker `{worker_id}` {reason} in generation {generation} of job `{job_id}`")]
    NotAssigned { worker_id: String, job_id: String, generation: i64, reason: &'static str },
    /// A stored row does not decode; the database was changed outside the coordinator.
    #[error("corrupt stored data: {0}")]
    CorruptRow(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl Error {
    pub(crate) fn invalid_transition(job_id: &str, state: JobState, operation: &'static str, allowed: &[JobState]) -> Self {
        let allowed = allowed.iter().map(|state| state.short_name()).collect::<Vec<_>>().join(", ");
        Error::InvalidTransition { job_id: job_id.to_owned(), state: state.short_name(), operation, allowed }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        let code = match &error {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::JobNotFound(_) | Error::WorkerNotFound(_) => Code::NotFound,
            Error::WorkerLost(_) | Error::StaleGeneration { .. } | Error::NotAssigned { .. } => Code::FailedPrecondition,
            Error::WorkerNameTaken(_) => Code::AlreadyExists,
            Error::InvalidTransition { .. } => Code::FailedPrecondition,
            Error::RequestIdReused { .. } => Code::AlreadyExists,
            Error::CorruptRow(_) | Error::Migration(_) => Code::Internal,
            Error::Database(_) | Error::Transport(_) => Code::Unavailable,
        };
        if code == Code::Internal || code == Code::Unavailable {
            tracing::error!(error = %error, "request failed");
        }
        Status::new(code, error.to_string())
    }
}
