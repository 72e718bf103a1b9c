//! Reading a committed checkpoint's objects from object storage: its folder, its
//! manifest, and downloads checked against the manifest.

mod download;
mod folder;
mod manifest;

pub use download::download_verified;
pub use folder::CheckpointFolder;
pub use manifest::{MANIFEST_NAME, read_manifest};
