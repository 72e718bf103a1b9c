//! The library's error type.

use std::path::PathBuf;

/// Everything that can fail in the worker library.
///
/// Data errors name the source (a URI), and where a position applies the 1-based
/// line of the file and the column.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("dataset `{uri}` not found")]
    NotFound { uri: String },
    /// A table that a job spec field names does not exist.
    #[error("{field}: `{uri}` not found")]
    InputNotFound { field: &'static str, uri: String },
    #[error("failed to read `{uri}`: {message}")]
    Read { uri: String, message: String },
    #[error("invalid dataset URI `{uri}`: {message}")]
    InvalidUri { uri: String, message: String },
    #[error("`{uri}` is empty: {message}")]
    EmptyFile { uri: String, message: String },
    #[error("`{uri}` line {line}: expected {expected} fields as in the header, found {found}")]
    RaggedRow { uri: String, line: u64, expected: usize, found: usize },
    #[error("`{uri}` line {line}, column `{column}`: invalid UTF-8")]
    InvalidUtf8 { uri: String, line: u64, column: String },
    #[error("`{uri}` line {line}, column `{column}`: {message}")]
    InvalidValue { uri: String, line: u64, column: String, message: String },
    #[error("`{uri}`: column `{column}` named in {context} does not exist; the columns are {available}")]
    UnknownColumn { uri: String, column: String, context: String, available: String },
    #[error("`{uri}`: column `{column}` has no values, every cell is missing")]
    AllMissing { uri: String, column: String },
    #[error("`{uri}`: {message}")]
    InvalidTable { uri: String, message: String },
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("tensor computation failed: {0}")]
    Tensor(String),
    #[error("invalid checkpoint: {0}")]
    Checkpoint(String),
    #[error("failed to write `{path}`: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Collective(#[from] ssl_collective::CollectiveError),
    #[error("checkpoint storage `{uri}`: {message}")]
    Storage { uri: String, message: String },
}

impl WorkerError {
    /// Whether the error comes from the user's input (spec, data or URI) rather than
    /// from the machine, so a command line can exit with the usage status 2.
    pub fn is_invalid_input(&self) -> bool {
        match self {
            WorkerError::NotFound { .. }
            | WorkerError::InputNotFound { .. }
            | WorkerError::InvalidUri { .. }
            | WorkerError::EmptyFile { .. }
            | WorkerError::RaggedRow { .. }
            | WorkerError::InvalidUtf8 { .. }
            | WorkerError::InvalidValue { .. }
            | WorkerError::UnknownColumn { .. }
            | WorkerError::AllMissing { .. }
            | WorkerError::InvalidTable { .. }
            | WorkerError::InvalidConfig(_) => true,
            WorkerError::Read { .. }
            | WorkerError::Tensor(_)
            | WorkerError::Checkpoint(_)
            | WorkerError::Write { .. }
            | WorkerError::Collective(_)
            | WorkerError::Storage { .. } => false,
        }
    }
}

/// Result alias of the worker library.
pub type Result<T, E = WorkerError> = std::result::Result<T, E>;
