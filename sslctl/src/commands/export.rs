//! `sslctl export`: downloads a checkpoint's encoder, dataset profile and encoder
//! config, each checked against the checkpoint's manifest.

use std::io::Write;
use std::path::{Path, PathBuf};

use ssl_proto::v1::{Checkpoint, ListCheckpointsRequest};

use crate::checkpoint::{CheckpointFolder, MANIFEST_NAME, download_verified, read_manifest};
use crate::cli::{ConnectionArgs, ExportArgs};
use crate::client::{self, JobClient};
use crate::error::Error;

/// Checkpoint object holding the encoder weights as SafeTensors.
const ENCODER_FILE: &str = "encoder.safetensors";
/// Checkpoint object holding the dataset profile as JSON.
const PROFILE_FILE: &str = "profile.json";
/// Checkpoint object holding the encoder's shape as JSON.
const ENCODER_CONFIG_FILE: &str = "encoder_config.json";

pub async fn run(connection: &ConnectionArgs, args: &ExportArgs) -> Result<(), Error> {
    // The output paths are checked before connecting, so a bad --out needs no server.
    output_paths(&args.out)?;
    let mut client = client::connect(connection).await?;
    let written = export(&mut client, &args.job_id, args.step, &args.out).await?;
    let mut stdout = std::io::stdout().lock();
    for path in written {
        writeln!(stdout, "{}", path.display())?;
    }
    stdout.flush()?;
    Ok(())
}

/// Downloads the encoder, profile and encoder config of the job's checkpoint at `step`
/// (the newest when `None`) to `out` and its two sibling files, each checked against
/// the manifest, and returns the paths written.
///
/// # Errors
///
/// [`Error::Usage`] for an invalid `out`, [`Error::CheckpointNotFound`] without such a
/// checkpoint, and the storage and manifest errors of the download; no file is
/// written unless all three verify.
pub async fn export(client: &mut JobClient, job_id: &str, step: Option<i64>, out: &Path) -> Result<Vec<PathBuf>, Error> {
    let outputs = output_paths(out)?;
    let request = ListCheckpointsRequest { job_id: job_id.to_owned() };
    let response = client.service.list_checkpoints(request).await.map_err(|status| client.error(status))?.into_inner();
    let checkpoint = select_checkpoint(job_id, &response.checkpoints, step)?;
    eprintln!("exporting the checkpoint at step {} of job `{job_id}` from {}", checkpoint.step, checkpoint.uri);

    let folder = CheckpointFolder::open(&checkpoint.uri)?;
    let manifest = read_manifest(&folder, job_id, checkpoint.step).await?;
    // Every file is downloaded and checked before any is renamed into place, so a
    // failure leaves no output behind.
    let mut verified = Vec::new();
    for (name, destination) in [(ENCODER_FILE, &outputs[0]), (PROFILE_FILE, &outputs[1]), (ENCODER_CONFIG_FILE, &outputs[2])] {
        let entry = manifest.entry(name).ok_or_else(|| Error::InvalidManifest {
            uri: folder.object_uri(MANIFEST_NAME),
            reason: format!("it does not list `{name}`"),
        })?;
        verified.push(download_verified(&folder, entry, destination).await?);
    }
    verified.into_iter().map(|file| file.persist()).collect()
}

/// Picks the checkpoint at `step`, or the newest one when `step` is `None`.
fn select_checkpoint<'a>(job_id: &str, checkpoints: &'a [Checkpoint], step: Option<i64>) -> Result<&'a Checkpoint, Error> {
    let found = match step {
        Some(step) => checkpoints.iter().find(|checkpoint| checkpoint.step == step),
        None => checkpoints.iter().max_by_key(|checkpoint| checkpoint.step),
    };
    found.ok_or_else(|| {
        let mut available: Vec<i64> = checkpoints.iter().map(|checkpoint| checkpoint.step).collect();
        available.sort_unstable_by(|a, b| b.cmp(a));
        Error::CheckpointNotFound { job_id: job_id.to_owned(), step, available }
    })
}

/// Returns the paths of the encoder, the profile and the encoder config for `--out FILE`:
/// FILE, `NAME.profile.json` and `NAME.encoder_config.json`, where NAME is FILE
/// without a `.safetensors` extension.
fn output_paths(out: &Path) -> Result<[PathBuf; 3], Error> {
    let Some(file_name) = out.file_name().filter(|_| !out.as_os_str().to_string_lossy().ends_with('/')) else {
        return Err(Error::Usage(format!("--out {}: expected a file path, such as encoder.safetensors", out.display())));
    };
    let Some(file_name) = file_name.to_str() else {
        return Err(Error::Usage(format!("--out {}: the file name is not valid UTF-8", out.display())));
    };
    let folder = out.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !folder.is_dir() {
        return Err(Error::Usage(format!("--out {}: folder {} does not exist", out.display(), folder.display())));
    }

    let name = file_name.strip_suffix(".safetensors").filter(|name| !name.is_empty()).unwrap_or(file_name);
    let sibling = |suffix: &str| out.with_file_name(format!("{name}{suffix}"));
    Ok([out.to_owned(), sibling(".profile.json"), sibling(".encoder_config.json")])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(step: i64) -> Checkpoint {
        Checkpoint { job_id: "j".to_owned(), step, uri: format!("file:///ckpt/{step:010}/"), ..Default::default() }
    }

    #[test]
    fn newest_checkpoint_by_default() {
        let checkpoints = [checkpoint(400), checkpoint(500), checkpoint(100)];
        assert_eq!(select_checkpoint("j", &checkpoints, None).unwrap().step, 500);
        assert_eq!(select_checkpoint("j", &checkpoints, Some(100)).unwrap().step, 100);
    }

    #[test]
    fn missing_step_lists_available() {
        let checkpoints = [checkpoint(400), checkpoint(500)];
        let error = select_checkpoint("j", &checkpoints, Some(300)).unwrap_err();
        assert_eq!(error.to_string(), "job `j` has no checkpoint at step 300; available steps: 500, 400");
        let error = select_checkpoint("j", &[], None).unwrap_err();
        assert_eq!(error.to_string(), "job `j` has no committed checkpoints");
    }

    #[test]
    fn sibling_paths_drop_safetensors_extension() {
        let folder = tempfile::tempdir().unwrap();
        let [encoder, profile, config] = output_paths(&folder.path().join("adult.safetensors")).unwrap();
        assert_eq!(encoder, folder.path().join("adult.safetensors"));
        assert_eq!(profile, folder.path().join("adult.profile.json"));
        assert_eq!(config, folder.path().join("adult.encoder_config.json"));

        let [_, profile, _] = output_paths(&folder.path().join("adult.bin")).unwrap();
        assert_eq!(profile, folder.path().join("adult.bin.profile.json"));
    }

    #[test]
    fn relative_out_in_working_folder() {
        let [encoder, profile, _] = output_paths(Path::new("encoder.safetensors")).unwrap();
        assert_eq!(encoder, PathBuf::from("encoder.safetensors"));
        assert_eq!(profile, PathBuf::from("encoder.profile.json"));
    }

    #[test]
    fn invalid_out_is_usage_error() {
        let folder = tempfile::tempdir().unwrap();
        for out in [folder.path().join("missing/encoder.safetensors"), PathBuf::from("models/"), PathBuf::from("/")] {
            let error = output_paths(&out).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{}: {error}", out.display());
        }
    }
}
