//! Resolving a URI to the store that serves it and the path within that store.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};

/// A URI that names no store this service can open.
#[derive(Debug, thiserror::Error)]
#[error("invalid storage URI `{uri}`: {message}")]
pub struct InvalidUri {
    pub uri: String,
    pub message: String,
}

/// Splits a URI of an object or a folder (`s3://bucket/prefix/`, `file:///dir/`,
/// or a plain local path) into the store that serves it and its path in that
/// store, whether or not anything exists there yet. A trailing `/` is dropped.
///
/// # Errors
///
/// [`InvalidUri`] for an unsupported scheme, a malformed URI or S3 settings that
/// `object_store` rejects.
pub fn locate(uri: &str) -> Result<(Arc<dyn ObjectStore>, ObjectPath), InvalidUri> {
    let invalid = |message: String| InvalidUri { uri: uri.to_owned(), message };

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

/// Returns how `object_store` retries one S3 request by itself: briefly, so that
/// a longer outage reaches the caller, which decides how long to keep trying.
fn s3_retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(1), base: 2.0 },
        max_retries: 3,
        retry_timeout: Duration::from_secs(10),
    }
}
