//! A checkpoint folder URI resolved to the object store that contains it.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;

use crate::error::Error;

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
        let (store, prefix) = ssl_storage::locate(&uri).map_err(|error| Error::Storage { uri: uri.clone(), message: error.message })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_uris_rejected() {
        let Err(Error::Storage { message, .. }) = CheckpointFolder::open("gs://bucket/prefix/") else {
            panic!("a gs:// folder was accepted");
        };
        assert!(message.contains("unsupported scheme"), "{message}");
    }

    #[test]
    fn object_uri_and_path_join_the_name() {
        let folder = CheckpointFolder::open("file:///var/ssl/checkpoints/0000000500").unwrap();
        assert_eq!(folder.object_uri("manifest.json"), "file:///var/ssl/checkpoints/0000000500/manifest.json");
        assert_eq!(folder.object_path("manifest.json").as_ref(), "var/ssl/checkpoints/0000000500/manifest.json");
    }
}
