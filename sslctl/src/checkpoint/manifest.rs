//! The checkpoint manifest, `manifest.json`: written last, so a checkpoint is
//! complete only once it exists, and listing each file's size and SHA-256.

use object_store::ObjectStoreExt;
use serde::Deserialize;

use super::CheckpointFolder;
use crate::error::Error;

/// Name of the manifest object in a checkpoint folder.
pub const MANIFEST_NAME: &str = "manifest.json";
/// The manifest format this version of sslctl reads.
const SUPPORTED_FORMAT: u32 = 1;
/// Largest manifest read, in bytes. A real one lists four files in under 1 KiB.
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// The fields of `manifest.json` that an export needs. Other fields are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub job_id: String,
    pub step: i64,
    pub files: Vec<ManifestEntry>,
}

/// One file of a checkpoint as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ManifestEntry {
    /// File name inside the checkpoint folder.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the contents, as 64 hexadecimal digits.
    pub sha256: String,
}

impl Manifest {
    /// Parses a manifest and checks that it describes the checkpoint at `step` of `job_id`.
    fn parse(bytes: &[u8], job_id: &str, step: i64) -> Result<Self, String> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|error| error.to_string())?;
        if manifest.format != SUPPORTED_FORMAT {
            return Err(format!(
                "format {} is not supported; this sslctl reads format {SUPPORTED_FORMAT}",
                manifest.format
            ));
        }
        if manifest.job_id != job_id || manifest.step != step {
            return Err(format!(
                "it describes step {} of job `{}`, expected step {step} of job `{job_id}`",
                manifest.step, manifest.job_id
            ));
        }
        if let Some(entry) = manifest.files.iter().find(|entry| !is_sha256_hex(&entry.sha256)) {
            return Err(format!("file `{}` has sha256 {:?}; expected 64 hexadecimal digits", entry.name, entry.sha256));
        }
        Ok(manifest)
    }

    /// Returns the entry of the file `name`.
    pub fn entry(&self, name: &str) -> Option<&ManifestEntry> {
        self.files.iter().find(|entry| entry.name == name)
    }
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// Reads and checks the manifest of the checkpoint at `step` of `job_id` in `folder`.
///
/// # Errors
///
/// [`Error::IncompleteCheckpoint`] when the manifest does not exist,
/// [`Error::InvalidManifest`] when it is not a manifest of that checkpoint, and
/// [`Error::Storage`] when the store cannot be read.
pub async fn read_manifest(folder: &CheckpointFolder, job_id: &str, step: i64) -> Result<Manifest, Error> {
    let uri = folder.object_uri(MANIFEST_NAME);
    let storage_error = |error: object_store::Error| Error::Storage { uri: uri.clone(), message: error.to_string() };

    let response = match folder.store.get(&folder.object_path(MANIFEST_NAME)).await {
        Ok(response) => response,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(Error::IncompleteCheckpoint { step, manifest_uri: uri });
        }
        Err(error) => return Err(storage_error(error)),
    };
    if response.meta.size > MAX_MANIFEST_BYTES {
        let reason = format!("it has {} bytes, more than the maximum of {MAX_MANIFEST_BYTES}", response.meta.size);
        return Err(Error::InvalidManifest { uri, reason });
    }
    let bytes = response.bytes().await.map_err(storage_error)?;
    Manifest::parse(&bytes, job_id, step).map_err(|reason| Error::InvalidManifest { uri, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn manifest_json(format: u32, job_id: &str, step: i64, sha256: &str) -> String {
        format!(
            r#"{{"format": {format}, "job_id": "{job_id}", "step": {step}, "epoch": 2, "loss": 0.25,
                "files": [{{"name": "encoder.safetensors", "size": 4, "sha256": "{sha256}"}}]}}"#
        )
    }

    #[test]
    fn manifest_parses_entries() {
        let manifest = Manifest::parse(manifest_json(1, "j", 500, SHA).as_bytes(), "j", 500).unwrap();
        let entry = manifest.entry("encoder.safetensors").unwrap();
        assert_eq!(entry.size, 4);
        assert_eq!(entry.sha256, SHA);
        assert_eq!(manifest.entry("profile.json"), None);
    }

    #[test]
    fn other_checkpoint_rejected() {
        let error = Manifest::parse(manifest_json(1, "j", 400, SHA).as_bytes(), "j", 500).unwrap_err();
        assert_eq!(error, "it describes step 400 of job `j`, expected step 500 of job `j`");
        let error = Manifest::parse(manifest_json(1, "other", 500, SHA).as_bytes(), "j", 500).unwrap_err();
        assert_eq!(error, "it describes step 500 of job `other`, expected step 500 of job `j`");
    }

    #[test]
    fn unknown_format_rejected() {
        let error = Manifest::parse(manifest_json(2, "j", 500, SHA).as_bytes(), "j", 500).unwrap_err();
        assert_eq!(error, "format 2 is not supported; this sslctl reads format 1");
    }

    #[test]
    fn malformed_sha256_rejected() {
        let error = Manifest::parse(manifest_json(1, "j", 500, "abc").as_bytes(), "j", 500).unwrap_err();
        assert!(error.contains("expected 64 hexadecimal digits"), "{error}");
    }

    #[test]
    fn invalid_json_rejected() {
        assert!(Manifest::parse(b"{\"format\": 1", "j", 500).is_err());
        assert!(Manifest::parse(b"{\"format\": 1, \"job_id\": \"j\", \"step\": 500}", "j", 500).unwrap_err().contains("files"));
    }
}
