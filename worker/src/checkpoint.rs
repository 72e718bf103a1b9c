//! Checkpoint bytes and encoder export.
//!
//! A checkpoint is one byte string: the magic `SSLCKPT1`, then three sections,
//! each a little-endian `u64` length followed by that many bytes: a JSON
//! [`CheckpointHeader`], the model's burnpack record, and the optimizer's burnpack
//! record (AdamW moments keyed by parameter id). The schedule is a pure function
//! of the step, so the header's schedule and position restore it.

use std::path::{Path, PathBuf};

use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};

use crate::data::profile::DatasetProfile;
use crate::error::{Result, WorkerError};
use crate::model::{EncoderConfig, TabularEncoder};
use crate::schedule::LearningRateSchedule;
use crate::trainers::config::TrainerConfig;
use crate::trainers::trainer::TrainerState;

const MAGIC: &[u8; 8] = b"SSLCKPT1";

/// The JSON part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointHeader {
    pub config: TrainerConfig,
    pub schedule: LearningRateSchedule,
    pub state: TrainerState,
    pub profile: DatasetProfile,
}

/// A checkpoint split into its sections.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointParts {
    pub header: CheckpointHeader,
    /// Burnpack bytes of the model record (encoder and heads).
    pub model: Vec<u8>,
    /// Burnpack bytes of the optimizer record.
    pub optimizer: Vec<u8>,
}

/// Joins the sections into checkpoint bytes.
///
/// # Errors
///
/// [`WorkerError::Checkpoint`] when the header cannot be serialised.
pub fn encode_checkpoint(parts: &CheckpointParts) -> Result<Vec<u8>> {
    let header = serde_json::to_vec(&parts.header).map_err(|error| WorkerError::Checkpoint(format!("cannot encode header: {error}")))?;
    let mut bytes = Vec::with_capacity(MAGIC.len() + 24 + header.len() + parts.model.len() + parts.optimizer.len());
    bytes.extend_from_slice(MAGIC);
    for section in [&header, &parts.model, &parts.optimizer] {
        bytes.extend_from_slice(&(section.len() as u64).to_le_bytes());
        bytes.extend_from_slice(section);
    }
    Ok(bytes)
}

/// Splits checkpoint bytes into sections.
///
/// # Errors
///
/// [`WorkerError::Checkpoint`] for a wrong magic, a truncated section or an
/// invalid header.
pub fn decode_checkpoint(bytes: &[u8]) -> Result<CheckpointParts> {
    let rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| WorkerError::Checkpoint("not a checkpoint: the magic bytes `SSLCKPT1` are missing".to_owned()))?;
    let (header, rest) = take_section(rest, "header")?;
    let (model, rest) = take_section(rest, "model")?;
    let (optimizer, rest) = take_section(rest, "optimizer")?;
    if !rest.is_empty() {
        return Err(WorkerError::Checkpoint(format!("{} unexpected bytes after the optimizer section", rest.len())));
    }
    let header = serde_json::from_slice(header).map_err(|error| WorkerError::Checkpoint(format!("invalid header: {error}")))?;
    Ok(CheckpointParts { header, model: model.to_vec(), optimizer: optimizer.to_vec() })
}

/// Reads only the header, to rebuild the objective and data before restoring.
///
/// # Errors
///
/// As [`decode_checkpoint`].
pub fn read_header(bytes: &[u8]) -> Result<CheckpointHeader> {
    Ok(decode_checkpoint(bytes)?.header)
}

fn take_section<'a>(bytes: &'a [u8], name: &str) -> Result<(&'a [u8], &'a [u8])> {
    let truncated = || WorkerError::Checkpoint(format!("truncated {name} section"));
    let length_bytes: [u8; 8] = bytes.get(..8).ok_or_else(truncated)?.try_into().expect("8 bytes");
    let length = usize::try_from(u64::from_le_bytes(length_bytes)).map_err(|_| truncated())?;
    let section = bytes.get(8..8usize.checked_add(length).ok_or_else(truncated)?).ok_or_else(truncated)?;
    Ok((section, &bytes[8 + length..]))
}

/// Files of an exported encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedEncoder {
    /// Encoder weights in SafeTensors format, named by module path
    /// (`layers.0.weight`, `category_embedding.weight`, ...).
    pub weights: PathBuf,
    /// JSON of the [`DatasetProfile`] that encodes rows for the encoder.
    pub profile: PathBuf,
    /// JSON of the [`EncoderConfig`] that rebuilds the encoder's shape.
    pub config: PathBuf,
}

/// Writes the encoder alone (no heads, no optimizer state) as
/// `encoder.safetensors`, with `profile.json` and `encoder_config.json` beside it
/// in `directory`, which is created if needed.
///
/// # Errors
///
/// [`WorkerError::Write`] when a file cannot be written.
pub fn export_encoder(encoder: &TabularEncoder, config: &EncoderConfig, profile: &DatasetProfile, directory: &Path) -> Result<ExportedEncoder> {
    let write_error = |path: &Path, source: std::io::Error| WorkerError::Write { path: path.to_owned(), source };
    std::fs::create_dir_all(directory).map_err(|source| write_error(directory, source))?;
    let exported = ExportedEncoder {
        weights: directory.join("encoder.safetensors"),
        profile: directory.join("profile.json"),
        config: directory.join("encoder_config.json"),
    };

    let mut store = SafetensorsStore::from_file(&exported.weights).overwrite(true);
    encoder
        .save_into(&mut store)
        .map_err(|error| write_error(&exported.weights, std::io::Error::other(error.to_string())))?;
    let profile_json = serde_json::to_vec_pretty(profile).map_err(|error| write_error(&exported.profile, error.into()))?;
    std::fs::write(&exported.profile, profile_json).map_err(|source| write_error(&exported.profile, source))?;
    let config_json = serde_json::to_vec_pretty(config).map_err(|error| write_error(&exported.config, error.into()))?;
    std::fs::write(&exported.config, config_json).map_err(|source| write_error(&exported.config, source))?;
    Ok(exported)
}

/// Loads an encoder written by [`export_encoder`] onto `device`.
///
/// # Errors
///
/// [`WorkerError::Checkpoint`] when a file is missing or does not fit.
pub fn load_exported_encoder(exported: &ExportedEncoder, device: &burn::tensor::Device) -> Result<(TabularEncoder, EncoderConfig, DatasetProfile)> {
    let read_json = |path: &Path| -> Result<Vec<u8>> {
        std::fs::read(path).map_err(|error| WorkerError::Checkpoint(format!("cannot read `{}`: {error}", path.display())))
    };
    let config: EncoderConfig = serde_json::from_slice(&read_json(&exported.config)?)
        .map_err(|error| WorkerError::Checkpoint(format!("invalid `{}`: {error}", exported.config.display())))?;
    let profile: DatasetProfile = serde_json::from_slice(&read_json(&exported.profile)?)
        .map_err(|error| WorkerError::Checkpoint(format!("invalid `{}`: {error}", exported.profile.display())))?;

    let mut encoder = config.init(device);
    let mut store = SafetensorsStore::from_file(&exported.weights);
    encoder
        .load_from(&mut store)
        .map_err(|error| WorkerError::Checkpoint(format!("cannot load `{}`: {error}", exported.weights.display())))?;
    Ok((encoder, config, profile))
}
