//! Fetching whole objects through `object_store` from `file://` and `s3://` URIs.

use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use ssl_storage::DatasetError;

use crate::data::dataset::TableSource;
use crate::error::{Result, WorkerError};

/// Reads the whole object at `uri` into memory.
///
/// Accepts `file:///absolute/path`, `s3://bucket/key` and plain local paths. S3
/// settings (endpoint, region, credentials) come from the standard `AWS_*`
/// environment variables. The fetch runs on a private current-thread tokio
/// runtime, so call this from a plain thread, never from inside a runtime.
///
/// # Errors
///
/// [`WorkerError::NotFound`] when the object does not exist,
/// [`WorkerError::InvalidUri`] for an unsupported scheme and
/// [`WorkerError::Read`] for any other store failure.
pub fn fetch_bytes(uri: &str) -> Result<Vec<u8>> {
    let (store, path) = resolve(uri)?;
    let result = block_on(uri, async {
        let response = store.get(&path).await?;
        response.bytes().await
    })?;
    match result {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(object_store::Error::NotFound { .. }) => Err(WorkerError::NotFound { uri: uri.to_owned() }),
        Err(error) => Err(read_error(uri, error)),
    }
}

/// Runs `future` to completion on a private current-thread runtime, because the
/// callers are plain threads. `uri` names the object in the error.
fn block_on<F: std::future::Future>(uri: &str, future: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| read_error(uri, error))?;
    Ok(runtime.block_on(future))
}

fn read_error(uri: &str, error: impl std::fmt::Display) -> WorkerError {
    WorkerError::Read { uri: uri.to_owned(), message: error.to_string() }
}

/// Splits a URI into the store that serves it and the object's path in that
/// store, checking that a local file exists.
fn resolve(uri: &str) -> Result<(Arc<dyn ObjectStore>, ObjectPath)> {
    let located = locate(uri)?;
    if let Some(path) = local_path(uri)
        && !std::path::absolute(path).is_ok_and(|absolute| absolute.exists())
    {
        return Err(WorkerError::NotFound { uri: uri.to_owned() });
    }
    Ok(located)
}

fn local_path(uri: &str) -> Option<&str> {
    match uri.split_once("://") {
        Some(("file", path)) => Some(path),
        Some(_) => None,
        None => Some(uri),
    }
}

/// Splits a URI of an object or a folder into the store that serves it and its
/// path in that store, as [`ssl_storage::locate`] does.
///
/// # Errors
///
/// [`WorkerError::InvalidUri`] for an unsupported scheme or a malformed URI.
pub fn locate(uri: &str) -> Result<(Arc<dyn ObjectStore>, ObjectPath)> {
    ssl_storage::locate(uri).map_err(|error| WorkerError::InvalidUri { uri: error.uri, message: error.message })
}

/// Lists the objects of the dataset at `uri` as [`ssl_storage::list_dataset`]
/// does, for a job that got no shard list from a coordinator.
///
/// # Errors
///
/// [`WorkerError::NotFound`] when nothing is at `uri`, [`WorkerError::InvalidTable`]
/// for a folder without table files, and [`WorkerError::Read`] when the store fails.
pub fn list_sources(uri: &str, format: Option<&str>) -> Result<Vec<TableSource>> {
    let listed = block_on(uri, ssl_storage::list_dataset(uri, format))?.map_err(|error| match error {
        DatasetError::InvalidUri(invalid) => WorkerError::InvalidUri { uri: invalid.uri, message: invalid.message },
        DatasetError::NotFound { uri } => WorkerError::NotFound { uri },
        DatasetError::NoTables { extensions, .. } => {
            WorkerError::InvalidTable { uri: uri.to_owned(), message: format!("the folder contains no {extensions} files") }
        }
        DatasetError::Denied { .. } | DatasetError::Unavailable { .. } => read_error(uri, error),
    })?;
    Ok(listed.into_iter().map(|object| TableSource { uri: object.uri, size_bytes: Some(object.size_bytes) }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_file_read_by_uri_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("table.csv");
        std::fs::write(&file, b"a,b\n1,2\n").unwrap();

        let by_uri = fetch_bytes(&format!("file://{}", file.display())).unwrap();
        let by_path = fetch_bytes(file.to_str().unwrap()).unwrap();
        assert_eq!(by_uri, b"a,b\n1,2\n");
        assert_eq!(by_path, by_uri);
    }

    #[test]
    fn missing_file_is_not_found() {
        let error = fetch_bytes("file:///nonexistent/dir/table.csv").unwrap_err();
        assert!(matches!(error, WorkerError::NotFound { .. }), "{error}");
        assert!(error.to_string().contains("/nonexistent/dir/table.csv"), "{error}");
    }

    #[test]
    fn unknown_scheme_rejected() {
        let error = fetch_bytes("ftp://host/table.csv").unwrap_err();
        assert!(matches!(error, WorkerError::InvalidUri { .. }), "{error}");
    }
}
