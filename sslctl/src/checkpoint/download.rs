//! Downloading one checkpoint object into a temporary file next to its
//! destination, checked against the object's manifest entry.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;

use super::CheckpointFolder;
use super::manifest::ManifestEntry;
use crate::error::Error;

/// A downloaded file whose size and SHA-256 match its manifest entry, kept in a
/// temporary file in the destination's folder. Dropping it deletes the temporary file.
pub struct VerifiedFile {
    temp: NamedTempFile,
    destination: PathBuf,
}

impl VerifiedFile {
    /// Renames the temporary file to its destination, replacing any file there,
    /// and returns the destination.
    pub fn persist(self) -> Result<PathBuf, Error> {
        let destination = self.destination;
        self.temp
            .persist(&destination)
            .map_err(|error| Error::WriteFile { path: destination.clone(), error: error.error })?;
        Ok(destination)
    }
}

/// Downloads the object of `entry` from `folder` into a temporary file in the
/// folder of `destination`, and checks its size and SHA-256 against `entry`.
///
/// # Errors
///
/// [`Error::ChecksumMismatch`] when the size or digest differ,
/// [`Error::Storage`] when the object cannot be read, and [`Error::WriteFile`]
/// when the temporary file cannot be written. The temporary file is deleted on
/// every error.
pub async fn download_verified(folder: &CheckpointFolder, entry: &ManifestEntry, destination: &Path) -> Result<VerifiedFile, Error> {
    let uri = folder.object_uri(&entry.name);
    let write_error = |error: std::io::Error| Error::WriteFile { path: destination.to_owned(), error };
    let storage_error = |error: object_store::Error| {
        let message = match error {
            object_store::Error::NotFound { .. } => "the object does not exist, although the manifest lists it".to_owned(),
            other => other.to_string(),
        };
        Error::Storage { uri: uri.clone(), message }
    };

    let temp = temporary_file_for(destination).map_err(write_error)?;
    let mut file = tokio::fs::File::from_std(temp.as_file().try_clone().map_err(write_error)?);
    let mut chunks = folder.store.get(&folder.object_path(&entry.name)).await.map_err(storage_error)?.into_stream();
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(storage_error)?;
        size += chunk.len() as u64;
        if size > entry.size {
            let reason = format!("it has more than the {} bytes that the manifest lists", entry.size);
            return Err(Error::ChecksumMismatch { uri, reason });
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(write_error)?;
    }

    if size != entry.size {
        let reason = format!("it has {size} bytes, but the manifest lists {}", entry.size);
        return Err(Error::ChecksumMismatch { uri, reason });
    }
    let digest = to_hex(&hasher.finalize());
    if !digest.eq_ignore_ascii_case(&entry.sha256) {
        let reason = format!("its sha256 is {digest}, but the manifest lists {}", entry.sha256);
        return Err(Error::ChecksumMismatch { uri, reason });
    }
    file.flush().await.map_err(write_error)?;
    file.sync_all().await.map_err(write_error)?;
    Ok(VerifiedFile { temp, destination: destination.to_owned() })
}

/// Creates `.NAME.XXXXXX.part` in the folder of `destination`, so that the final
/// rename stays on one file system.
fn temporary_file_for(destination: &Path) -> std::io::Result<NamedTempFile> {
    let folder = destination.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = destination.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".part");
    // Temporary files are private (0600); exported files get the usual 0644.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    builder.tempfile_in(folder)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_is_lower_case() {
        // SHA-256 of "test", as `sha256sum` prints it.
        assert_eq!(to_hex(&Sha256::digest(b"test")), "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    }

    #[test]
    fn temporary_file_sits_next_to_destination() {
        let folder = tempfile::tempdir().unwrap();
        let destination = folder.path().join("encoder.safetensors");
        let temp = temporary_file_for(&destination).unwrap();
        assert_eq!(temp.path().parent(), Some(folder.path()));
        let name = temp.path().file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(".encoder.safetensors."), "{name}");
        assert!(name.ends_with(".part"), "{name}");
    }
}
