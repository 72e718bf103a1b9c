//! `sslctl export` against checkpoints that the test writes in the layout rank 0
//! uses, recorded in the coordinator's job store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use ssl_coordinator::store::CheckpointRecord;

use ssl_e2e::{S3_ACCESS_KEY, S3_SECRET_KEY, start_s3_server};

use crate::support::{Coordinator, Output};

/// The four files of a checkpoint besides its manifest.
struct CheckpointFiles {
    trainer: Vec<u8>,
    encoder: Vec<u8>,
    encoder_config: Vec<u8>,
    profile: Vec<u8>,
}

impl CheckpointFiles {
    /// Distinct contents for each step, so a test can tell which step was exported.
    fn for_step(step: i64) -> Self {
        CheckpointFiles {
            trainer: format!("trainer state at step {step}").into_bytes(),
            encoder: [b"safetensors header".as_slice(), &step.to_le_bytes(), &[7u8; 300]].concat(),
            encoder_config: format!(r#"{{"hidden": [64, 32], "step": {step}}}"#).into_bytes(),
            profile: format!(r#"{{"columns": ["age", "income"], "step": {step}}}"#).into_bytes(),
        }
    }

    fn named(&self) -> [(&'static str, &[u8]); 4] {
        [
            ("trainer.bin", &self.trainer),
            ("encoder.safetensors", &self.encoder),
            ("encoder_config.json", &self.encoder_config),
            ("profile.json", &self.profile),
        ]
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Writes a checkpoint folder `{root}/jobs/{job_id}/checkpoints/{step:010}/` with
/// its files and, last, its manifest. Returns the folder.
fn write_checkpoint(root: &Path, job_id: &str, step: i64, files: &CheckpointFiles) -> PathBuf {
    let folder = root.join("jobs").join(job_id).join("checkpoints").join(format!("{step:010}"));
    std::fs::create_dir_all(&folder).unwrap();
    let mut entries = Vec::new();
    for (name, bytes) in files.named() {
        std::fs::write(folder.join(name), bytes).unwrap();
        entries.push(serde_json::json!({ "name": name, "size": bytes.len(), "sha256": sha256_hex(bytes) }));
    }
    let manifest = serde_json::json!({
        "format": 1,
        "job_id": job_id,
        "step": step,
        "epoch": step / 100,
        "loss": 0.5,
        "files": entries,
    });
    std::fs::write(folder.join("manifest.json"), serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    folder
}

/// Records a committed checkpoint at `uri` as rank 0's `ReportCheckpoint` would.
async fn record(coordinator: &Coordinator, job_id: &str, step: i64, uri: &str) {
    let store = coordinator.store().await;
    let checkpoint = CheckpointRecord {
        job_id: job_id.to_owned(),
        step,
        epoch: step / 100,
        uri: uri.to_owned(),
        loss: 0.5,
        committed_at_us: 1_700_000_000_000_000,
    };
    assert!(store.record_checkpoint(&checkpoint).await.unwrap());
    store.close().await;
}

/// Writes and records a checkpoint under the local folder `root`, and returns its folder.
async fn local_checkpoint(coordinator: &Coordinator, root: &Path, job_id: &str, step: i64) -> PathBuf {
    let folder = write_checkpoint(root, job_id, step, &CheckpointFiles::for_step(step));
    record(coordinator, job_id, step, &format!("file://{}/", folder.display())).await;
    folder
}

/// Names of the entries of `folder`, sorted.
fn folder_entries(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(folder).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

fn assert_exported(output: &Output, out_dir: &Path, files: &CheckpointFiles) {
    assert_eq!(output.code, 0, "{output}");
    let encoder = out_dir.join("adult.safetensors");
    let profile = out_dir.join("adult.profile.json");
    let config = out_dir.join("adult.encoder_config.json");
    let expected_stdout = format!("{}\n{}\n{}\n", encoder.display(), profile.display(), config.display());
    assert_eq!(output.stdout, expected_stdout, "{output}");
    assert_eq!(std::fs::read(&encoder).unwrap(), files.encoder);
    assert_eq!(std::fs::read(&profile).unwrap(), files.profile);
    assert_eq!(std::fs::read(&config).unwrap(), files.encoder_config);
    assert_eq!(folder_entries(out_dir), ["adult.encoder_config.json", "adult.profile.json", "adult.safetensors"]);
    for path in [&encoder, &profile, &config] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_newest_checkpoint() {
    let coordinator = Coordinator::start().await;
    let job = coordinator.submit_example("adult-contrastive.yaml").await;
    let storage = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    local_checkpoint(&coordinator, storage.path(), &job, 400).await;
    let newest = local_checkpoint(&coordinator, storage.path(), &job, 500).await;

    let out = out_dir.path().join("adult.safetensors");
    let output = coordinator.sslctl(&["export", &job, "--out", out.to_str().unwrap()]).await;
    assert_exported(&output, out_dir.path(), &CheckpointFiles::for_step(500));
    let expected_note = format!("exporting the checkpoint at step 500 of job `{job}` from file://{}/\n", newest.display());
    assert_eq!(output.stderr, expected_note);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_chosen_step() {
    let coordinator = Coordinator::start().await;
    let job = coordinator.submit_example("adult-contrastive.yaml").await;
    let storage = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    for step in [400, 500] {
        local_checkpoint(&coordinator, storage.path(), &job, step).await;
    }
    // An older export in the way is replaced.
    std::fs::write(out_dir.path().join("adult.safetensors"), b"older export").unwrap();

    let out = out_dir.path().join("adult.safetensors");
    let output = coordinator.sslctl(&["export", &job, "--step", "400", "--out", out.to_str().unwrap()]).await;
    assert_exported(&output, out_dir.path(), &CheckpointFiles::for_step(400));
    assert!(output.stderr.starts_with("exporting the checkpoint at step 400 of job"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_missing_step_lists_available() {
    let coordinator = Coordinator::start().await;
    let job = coordinator.submit_example("adult-contrastive.yaml").await;
    let storage = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("adult.safetensors");

    let output = coordinator.sslctl(&["export", &job, "--out", out.to_str().unwrap()]).await;
    assert_eq!(output.code, 1, "{output}");
    assert_eq!(output.stderr, format!("error: job `{job}` has no committed checkpoints\n"));

    for step in [400, 500] {
        local_checkpoint(&coordinator, storage.path(), &job, step).await;
    }
    let output = coordinator.sslctl(&["export", &job, "--step", "300", "--out", out.to_str().unwrap()]).await;
    assert_eq!(output.code, 1, "{output}");
    assert_eq!(output.stdout, "");
    assert_eq!(output.stderr, format!("error: job `{job}` has no checkpoint at step 300; available steps: 500, 400\n"));
    assert!(folder_entries(out_dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_incomplete_checkpoint_fails() {
    let coordinator = Coordinator::start().await;
    let job = coordinator.submit_example("adult-contrastive.yaml").await;
    let storage = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let folder = local_checkpoint(&coordinator, storage.path(), &job, 600).await;
    // Rank 0 writes the manifest last, so without it the upload did not finish.
    std::fs::remove_file(folder.join("manifest.json")).unwrap();

    let out = out_dir.path().join("adult.safetensors");
    let output = coordinator.sslctl(&["export", &job, "--out", out.to_str().unwrap()]).await;
    assert_eq!(output.code, 1, "{output}");
    let expected = format!("error: checkpoint at step 600 is incomplete: file://{}/manifest.json does not exist\n", folder.display());
    assert!(output.stderr.ends_with(&expected), "{output}");
    assert!(folder_entries(out_dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_checksum_mismatch_writes_nothing() {
    let coordinator = Coordinator::start().await;
    let job = coordinator.submit_example("adult-contrastive.yaml").await;
    let storage = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("adult.safetensors");
    std::fs::write(&out, b"older export").unwrap();

    // Same size, other bytes: only the digest differs. The encoder before it verifies.
    let folder = local_checkpoint(&coordinator, storage.path(), &job, 500).await;
    let mut profile = std::fs::read(folder.join("profile.json")).unwrap();
    profile[0] = b'[';
    std::fs::write(folder.join("profile.json"), &profile).unwrap();

    let output = coordinator.sslctl(&["export", &job, "--out", out.to_str().unwrap()]).await;
    assert_eq!(output.code, 1, "{output}");
    assert_eq!(output.stdout, "");
    let expected = format!(
        "error: file://{}/profile.json does not match the checkpoint manifest: its sha256 is {}, but the manifest lists {}; \
         no output file was written\n",
        folder.display(),
        sha256_hex(&profile),
        sha256_hex(&CheckpointFiles::for_step(500).profile),
    );
    assert!(output.stderr.ends_with(&expected), "{output}");
    assert_eq!(folder_entries(out_dir.path()), ["adult.safetensors"], "no output or temporary file added");
    assert_eq!(std::fs::read(&out).unwrap(), b"older export", "the existing file is untouched");

    // A truncated encoder fails on its size.
    let folder = local_checkpoint(&coordinator, storage.path(), &job, 600).await;
    let encoder_size = CheckpointFiles::for_step(600).encoder.len();
    std::fs::write(folder.join("encoder.safetensors"), b"short").unwrap();
    let output = coordinator.sslctl(&["export", &job, "--step", "600", "--out", out.to_str().unwrap()]).await;
    assert_eq!(output.code, 1, "{output}");
    let expected = format!(
        "error: file://{}/encoder.safetensors does not match the checkpoint manifest: it has 5 bytes, but the manifest lists \
         {encoder_size}; no output file was written\n",
        folder.display(),
    );
    assert!(output.stderr.ends_with(&expected), "{output}");
    assert_eq!(folder_entries(out_dir.path()), ["adult.safetensors"]);
    assert_eq!(std::fs::read(&out).unwrap(), b"older export");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_invalid_out_exits_2() {
    let coordinator = Coordinator::start().await;
    let job = coordinator.submit_example("adult-contrastive.yaml").await;
    let storage = tempfile::tempdir().unwrap();
    local_checkpoint(&coordinator, storage.path(), &job, 500).await;
    let missing = storage.path().join("no-such-folder").join("adult.safetensors");

    let output = coordinator.sslctl(&["export", &job, "--out", missing.to_str().unwrap()]).await;
    assert_eq!(output.code, 2, "{output}");
    let expected = format!(
        "error: --out {}: folder {} does not exist\n",
        missing.display(),
        storage.path().join("no-such-folder").display()
    );
    assert_eq!(output.stderr, expected);

    let output = coordinator.sslctl(&["export", &job, "--out", "x.safetensors", "--step", "-5"]).await;
    assert_eq!(output.code, 2, "{output}");
    let output = coordinator.sslctl(&["export", "not-a-uuid", "--out", "x.safetensors"]).await;
    assert_eq!(output.code, 2, "{output}");
}

const S3_BUCKET: &str = "checkpoints";

/// Runs `sslctl` with S3 settings for the server at `address` in its environment.
async fn sslctl_with_s3(coordinator: &Coordinator, address: SocketAddr, secret: &str, args: &[&str]) -> Output {
    let mut command = coordinator.command(args);
    command
        .env("AWS_ENDPOINT_URL", format!("http://{address}"))
        .env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ALLOW_HTTP", "true");
    crate::support::run(command).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_from_s3() {
    let coordinator = Coordinator::start().await;
    let job = coordinator.submit_example("adult-contrastive.yaml").await;
    // s3s-fs keeps each bucket as a folder and each object as a file under it.
    let s3_root = tempfile::tempdir().unwrap();
    let files = CheckpointFiles::for_step(500);
    write_checkpoint(&s3_root.path().join(S3_BUCKET), &job, 500, &files);
    let uri = format!("s3://{S3_BUCKET}/jobs/{job}/checkpoints/0000000500/");
    record(&coordinator, &job, 500, &uri).await;
    let address = start_s3_server(s3_root.path());

    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("adult.safetensors");
    let args = ["export", job.as_str(), "--out", out.to_str().unwrap()];
    let output = sslctl_with_s3(&coordinator, address, S3_SECRET_KEY, &args).await;
    assert_exported(&output, out_dir.path(), &files);

    // A wrong secret makes the signature invalid, and the server rejects the request.
    std::fs::remove_dir_all(out_dir.path()).unwrap();
    std::fs::create_dir(out_dir.path()).unwrap();
    let output = sslctl_with_s3(&coordinator, address, "not-the-secret", &args).await;
    assert_eq!(output.code, 1, "{output}");
    assert!(output.stderr.contains(&format!("error: cannot read {uri}manifest.json: ")), "{output}");
    assert!(folder_entries(out_dir.path()).is_empty());
}
