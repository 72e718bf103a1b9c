//! Fetching whole objects through `object_store` from `file://` and `s3://` URIs.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, RetryConfig};

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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| read_error(uri, error))?;

    let result = runtime.block_on(async {
        let response = store.get(&path).await?;
        response.bytes().await
    });
    match result {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(object_store::Error::NotFound { .. }) => Err(WorkerError::NotFound { uri: uri.to_owned() }),
        Err(error) => Err(read_error(uri, error)),
    }
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

/// Returns how `object_store` retries one S3 request by itself: briefly, so that a
/// longer outage reaches the caller's own retry loop, which logs each failure.
/// Checkpoint writes keep trying for minutes (see `agent::checkpoints`).
fn s3_retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(1), base: 2.0 },
        max_retries: 3,
        retry_timeout: Duration::from_secs(10),
    }
}

/// Splits a URI of an object or a folder (`s3://bucket/prefix/`,
/// `file:///dir/`) into the store that serves it and its path in that store,
/// whether or not anything exists there yet.
///
/// # Errors
///
/// [`WorkerError::InvalidUri`] for an unsupported scheme or a malformed URI.
pub fn locate(uri: &str) -> Result<(Arc<dyn ObjectStore>, ObjectPath)> {
    let invalid = |message: String| WorkerError::InvalidUri { uri: uri.to_owned(), message };

    if let Some(rest) = uri.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("expected `s3://bucket/key`".to_owned()));
        }
        // object_store's HTTP client uses rustls without a bundled crypto provider.
        ssl_proto::tls::install_crypto_provider();
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(s3_retry())
            .build()
            .map_err(|error| invalid(error.to_string()))?;
        let path = ObjectPath::parse(key.trim_end_matches('/')).map_err(|error| invalid(error.to_string()))?;
        return Ok((Arc::new(store), path));
    }

    let local_path = match uri.split_once("://") {
        Some(("file", path)) => path,
        Some((scheme, _)) => return Err(invalid(format!("unsupported scheme `{scheme}`; use `file://` or `s3://`"))),
        None => uri,
    };
    let trimmed = match local_path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    };
    let absolute = std::path::absolute(trimmed).map_err(|error| invalid(error.to_string()))?;
    let path = ObjectPath::from_absolute_path(&absolute).map_err(|error| invalid(error.to_string()))?;
    Ok((Arc::new(LocalFileSystem::new()), path))
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
