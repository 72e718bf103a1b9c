//! The UCI Adult contrastive example, built into `sslctl` so that the quick start
//! works from any folder.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// The spec, with paths relative to its own folder.
const SPEC: &str = include_str!("../../../examples/adult-contrastive.yaml");
const TRAIN: &[u8] = include_bytes!("../../../examples/data/adult/train.csv.gz");
const TEST: &[u8] = include_bytes!("../../../examples/data/adult/test.csv.gz");
/// Source and licence (CC BY 4.0) of the data.
const DATA_README: &str = include_str!("../../../examples/data/adult/README.md");

/// Writes the example spec and its data under `folder` and returns the spec's path.
/// Files that already contain the same bytes are left alone.
///
/// # Errors
///
/// [`Error::WriteFile`] when a file cannot be written.
pub fn write_example(folder: &Path) -> Result<PathBuf, Error> {
    let data = folder.join("data").join("adult");
    std::fs::create_dir_all(&data).map_err(|error| Error::WriteFile { path: data.clone(), error })?;
    let spec = folder.join("adult-contrastive.yaml");
    let files: [(PathBuf, &[u8]); 4] = [
        (spec.clone(), SPEC.as_bytes()),
        (data.join("train.csv.gz"), TRAIN),
        (data.join("test.csv.gz"), TEST),
        (data.join("README.md"), DATA_README.as_bytes()),
    ];
    for (path, bytes) in files {
        if std::fs::read(&path).is_ok_and(|existing| existing == bytes) {
            continue;
        }
        std::fs::write(&path, bytes).map_err(|error| Error::WriteFile { path: path.clone(), error })?;
    }
    Ok(spec)
}
