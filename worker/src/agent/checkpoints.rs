//! Checkpoint folders in object storage: writing one with its manifest last,
//! reading one back with every file checked, and deleting one manifest first.
//!
//! Layout under a job's checkpoint folder (`{root}/jobs/{job_id}/checkpoints/`):
//! one `{step:010}/` folder per checkpoint with `trainer.bin`,
//! `encoder.safetensors`, `encoder_config.json`, `profile.json` and, written
//! last, `manifest.json`. A folder without a manifest is incomplete and is never
//! read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::source::locate;
use crate::error::{Result, WorkerError};

/// Name of the manifest object of a checkpoint folder.
pub const MANIFEST: &str = "manifest.json";
/// Name of the full trainer state object.
pub const TRAINER_STATE: &str = "trainer.bin";

/// How long a write or read keeps retrying a failing store before it gives up.
const RETRY_FOR: Duration = Duration::from_secs(300);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// One object of a checkpoint, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub name: String,
    pub size: u64,
    /// Lowercase hex SHA-256 of the object's bytes.
    pub sha256: String,
}

/// The `manifest.json` of a checkpoint folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub job_id: String,
    pub step: u64,
    pub epoch: u64,
    pub loss: f64,
    pub files: Vec<ManifestFile>,
}

/// A checkpoint folder's location: the store, and the folder's path and URI.
struct Folder {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    /// The folder's URI, ending in `/`.
    uri: String,
}

impl Folder {
    fn new(uri: &str) -> Result<Self> {
        let (store, path) = locate(uri)?;
        let uri = if uri.ends_with('/') { uri.to_owned() } else { format!("{uri}/") };
        Ok(Folder { store, path, uri })
    }

    fn object(&self, name: &str) -> ObjectPath {
        self.path.clone().join(name)
    }
}

/// Folder URI of the checkpoint at `step` under a job's checkpoint folder.
pub fn step_folder_uri(checkpoints_uri: &str, step: u64) -> String {
    format!("{}/{step:010}/", checkpoints_uri.trim_end_matches('/'))
}

/// Writes the checkpoint `files` (name, bytes) at `step` under the job's
/// checkpoint folder, then its manifest, and returns the step folder's URI.
/// Each object is retried with exponential backoff while the store fails, for up
/// to five minutes, so a short outage delays the checkpoint without losing it.
///
/// # Errors
///
/// [`WorkerError::Storage`] when the store keeps failing, and
/// [`WorkerError::InvalidUri`] for a malformed folder URI.
pub async fn write_checkpoint(checkpoints_uri: &str, mut manifest: Manifest, files: Vec<(String, Vec<u8>)>) -> Result<String> {
    let folder = Folder::new(&step_folder_uri(checkpoints_uri, manifest.step))?;
    manifest.files = files
        .iter()
        .map(|(name, bytes)| ManifestFile { name: name.clone(), size: bytes.len() as u64, sha256: hex_sha256(bytes) })
        .collect();
    for (name, bytes) in files {
        put_with_retry(&folder, &name, bytes).await?;
    }
    let manifest_json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
    put_with_retry(&folder, MANIFEST, manifest_json).await?;
    Ok(folder.uri)
}

/// Reads the manifest of the checkpoint folder `uri`, then the object `name`,
/// and checks its size and SHA-256 against the manifest.
///
/// # Errors
///
/// [`WorkerError::Checkpoint`] when the manifest is missing (an incomplete
/// checkpoint), does not list `name`, or the bytes do not match it;
/// [`WorkerError::Storage`] when the store keeps failing.
pub async fn read_checkpoint_file(uri: &str, name: &str) -> Result<Vec<u8>> {
    let folder = Folder::new(uri)?;
    let manifest_bytes = get_with_retry(&folder, MANIFEST)
        .await?
        .ok_or_else(|| WorkerError::Checkpoint(format!("`{}` has no {MANIFEST}: the checkpoint is incomplete", folder.uri)))?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|error| WorkerError::Checkpoint(format!("`{}{MANIFEST}` is invalid: {error}", folder.uri)))?;
    let listed = manifest
        .files
        .iter()
        .find(|file| file.name == name)
        .ok_or_else(|| WorkerError::Checkpoint(format!("`{}{MANIFEST}` does not list `{name}`", folder.uri)))?;
    let bytes = get_with_retry(&folder, name)
        .await?
        .ok_or_else(|| WorkerError::Checkpoint(format!("`{}{name}` is missing although the manifest lists it", folder.uri)))?;
    if bytes.len() as u64 != listed.size || hex_sha256(&bytes) != listed.sha256 {
        return Err(WorkerError::Checkpoint(format!("`{}{name}` does not match its size and SHA-256 in the manifest", folder.uri)));
    }
    Ok(bytes)
}

/// Deletes the checkpoint folder `uri`: the manifest first, so that a deletion
/// cut short leaves an incomplete checkpoint rather than a broken complete one.
/// Each call is retried like a write, so an outage delays the deletion rather
/// than leaving the folder half deleted.
///
/// # Errors
///
/// [`WorkerError::Storage`] when the store keeps failing.
pub async fn delete_checkpoint(uri: &str) -> Result<()> {
    use futures::TryStreamExt;

    let folder = Folder::new(uri)?;
    delete_with_retry(&folder, &folder.object(MANIFEST)).await?;
    let names: Vec<ObjectPath> =
        retry(&folder, "", || folder.store.list(Some(&folder.path)).map_ok(|meta| meta.location).try_collect()).await?;
    for name in &names {
        delete_with_retry(&folder, name).await?;
    }
    Ok(())
}

/// Deletes one object; one that does not exist counts as deleted.
async fn delete_with_retry(folder: &Folder, location: &ObjectPath) -> Result<()> {
    retry(folder, location.filename().unwrap_or_default(), || async {
        match folder.store.delete(location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    })
    .await
}

async fn put_with_retry(folder: &Folder, name: &str, bytes: Vec<u8>) -> Result<()> {
    let payload = PutPayload::from(bytes);
    let location = folder.object(name);
    retry(folder, name, || folder.store.put(&location, payload.clone())).await.map(|_| ())
}

/// Reads an object; `None` when it does not exist.
async fn get_with_retry(folder: &Folder, name: &str) -> Result<Option<Vec<u8>>> {
    let location = folder.object(name);
    let result = retry(folder, name, || async {
        match folder.store.get(&location).await {
            Ok(response) => response.bytes().await.map(|bytes| Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    })
    .await?;
    Ok(result)
}

/// Runs `operation` until it succeeds or [`RETRY_FOR`] has passed, backing off
/// exponentially between attempts.
async fn retry<T, F, Fut>(folder: &Folder, name: &str, mut operation: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = object_store::Result<T>>,
{
    let started = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    loop {
        match operation().await {
            Ok(value) => return Ok(value),
            Err(error) if started.elapsed() + backoff < RETRY_FOR => {
                tracing::warn!(uri = %folder.uri, object = name, error = %error, retry_in_ms = backoff.as_millis() as u64, "checkpoint storage failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(error) => {
                return Err(WorkerError::Storage { uri: format!("{}{name}", folder.uri), message: error.to_string() });
            }
        }
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(step: u64) -> Manifest {
        Manifest { format: 1, job_id: "job".to_owned(), step, epoch: 0, loss: 1.5, files: Vec::new() }
    }

    #[tokio::test]
    async fn written_checkpoint_reads_back_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let root = format!("file://{}/checkpoints/", dir.path().display());
        let files = vec![(TRAINER_STATE.to_owned(), b"state".to_vec()), ("profile.json".to_owned(), b"{}".to_vec())];
        let uri = write_checkpoint(&root, manifest(42), files).await.unwrap();
        assert_eq!(uri, format!("file://{}/checkpoints/0000000042/", dir.path().display()));

        assert_eq!(read_checkpoint_file(&uri, TRAINER_STATE).await.unwrap(), b"state");
        let manifest: Manifest =
            serde_json::from_slice(&std::fs::read(dir.path().join("checkpoints/0000000042/manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest.files.len(), 2);
        assert_eq!(manifest.files[0].size, 5);

        delete_checkpoint(&uri).await.unwrap();
        assert!(!dir.path().join("checkpoints/0000000042/trainer.bin").exists());
        assert!(!dir.path().join("checkpoints/0000000042/manifest.json").exists());
    }

    #[tokio::test]
    async fn tampered_or_incomplete_checkpoint_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = format!("file://{}/", dir.path().display());
        let uri = write_checkpoint(&root, manifest(1), vec![(TRAINER_STATE.to_owned(), b"state".to_vec())]).await.unwrap();

        std::fs::write(dir.path().join("0000000001/trainer.bin"), b"other").unwrap();
        let error = read_checkpoint_file(&uri, TRAINER_STATE).await.unwrap_err();
        assert!(error.to_string().contains("does not match"), "{error}");

        std::fs::remove_file(dir.path().join("0000000001/manifest.json")).unwrap();
        let error = read_checkpoint_file(&uri, TRAINER_STATE).await.unwrap_err();
        assert!(error.to_string().contains("incomplete"), "{error}");
    }
}
