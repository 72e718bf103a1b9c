//! A checkpoint folder URI resolved to the object store that contains it.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;

use crate::error::Error;

/// The target of a folder URI, before any store is built.
#[derive(Debug, PartialEq, Eq)]
enum Location {
    /// An absolute local folder, from `file:///path/`.
    Local(PathBuf),
    /// A key prefix in a bucket, from `s3://bucket/prefix/`. The prefix has no
    /// leading or trailing `/`.
    S3 { bucket: String, prefix: String },
}

/// A checkpoint's folder in object storage.
pub struct CheckpointFolder {
    /// The folder URI, ending in `/`.
    uri: String,
    pub(super) store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

impl CheckpointFolder {
    /// Resolves `uri` (`file:///absolute/path/` or `s3://bucket/prefix/`) to its store.
    ///
    /// S3 settings and credentials come from the `AWS_*` environment variables that
    /// `object_store` reads, such as `AWS_ENDPOINT_URL`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_ALLOW_HTTP`.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] for an unsupported or malformed URI, or S3 settings that
    /// `object_store` rejects.
    pub fn open(uri: &str) -> Result<Self, Error> {
        let uri = if uri.ends_with('/') { uri.to_owned() } else { format!("{uri}/") };
        let storage_error = |message: String| Error::Storage { uri: uri.clone(), message };

        let (store, prefix): (Arc<dyn ObjectStore>, ObjectPath) = match parse_location(&uri).map_err(storage_error)? {
            Location::Local(path) => {
                let prefix = ObjectPath::from_absolute_path(&path).map_err(|error| storage_error(error.to_string()))?;
                (Arc::new(LocalFileSystem::new()), prefix)
            }
            Location::S3 { bucket, prefix } => {
                ssl_proto::tls::install_crypto_provider();
                let store = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|error| storage_error(format!("invalid S3 settings: {error}")))?;
                let prefix = ObjectPath::parse(&prefix).map_err(|error| storage_error(error.to_string()))?;
                (Arc::new(store), prefix)
            }
        };
        Ok(CheckpointFolder { uri, store, prefix })
    }

    /// Returns the URI of the object `name` in this folder, for messages.
    pub fn object_uri(&self, name: &str) -> String {
        format!("{}{name}", self.uri)
    }

    pub(super) fn object_path(&self, name: &str) -> ObjectPath {
        self.prefix.clone().join(name)
    }
}

fn parse_location(uri: &str) -> Result<Location, String> {
    if let Some(path) = uri.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err("expected an absolute path after `file://`".to_owned());
        }
        return Ok(Location::Local(PathBuf::from(path.trim_end_matches('/'))));
    }
    if let Some(rest) = uri.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err("expected `s3://BUCKET/PREFIX/`".to_owned());
        }
        return Ok(Location::S3 { bucket: bucket.to_owned(), prefix: prefix.trim_end_matches('/').to_owned() });
    }
    Err("unsupported scheme; sslctl reads checkpoints from `file://` and `s3://` URIs".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uri_is_local_folder() {
        let location = parse_location("file:///var/ssl/jobs/j/checkpoints/0000000500/").unwrap();
        assert_eq!(location, Location::Local(PathBuf::from("/var/ssl/jobs/j/checkpoints/0000000500")));
    }

    #[test]
    fn s3_uri_splits_bucket_and_prefix() {
        let location = parse_location("s3://ssl-checkpoints/jobs/j/checkpoints/0000000500/").unwrap();
        let expected = Location::S3 { bucket: "ssl-checkpoints".to_owned(), prefix: "jobs/j/checkpoints/0000000500".to_owned() };
        assert_eq!(location, expected);
    }

    #[test]
    fn unsupported_uris_rejected() {
        assert!(parse_location("file://relative/0000000500/").unwrap_err().contains("absolute path"));
        assert!(parse_location("s3:///prefix/").unwrap_err().contains("s3://BUCKET/PREFIX/"));
        assert!(parse_location("gs://bucket/prefix/").unwrap_err().contains("unsupported scheme"));
    }

    #[test]
    fn object_uri_and_path_join_the_name() {
        let folder = CheckpointFolder::open("file:///var/ssl/checkpoints/0000000500").unwrap();
        assert_eq!(folder.object_uri("manifest.json"), "file:///var/ssl/checkpoints/0000000500/manifest.json");
        assert_eq!(folder.object_path("manifest.json").as_ref(), "var/ssl/checkpoints/0000000500/manifest.json");
    }
}
