//! Rank 0's checkpoint uploads, in the background and in order: write the
//! folder (manifest last), record it with the coordinator, delete what
//! retention expired. Training goes on meanwhile, so a slow or unreachable
//! store or coordinator does not stall the other ranks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ssl_proto::v1;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::Code;
use tracing::{Instrument, info, info_span, warn};

use super::checkpoints::{Manifest, delete_checkpoint, write_checkpoint};
use super::client::WorkerClient;
use crate::metrics::WorkerMetrics;

/// How long a checkpoint report is retried while the coordinator is unreachable.
const REPORT_RETRY_FOR: Duration = Duration::from_secs(120);

/// One checkpoint to upload.
pub struct Upload {
    /// The job's checkpoint folder.
    pub checkpoints_uri: String,
    pub manifest: Manifest,
    pub files: Vec<(String, Vec<u8>)>,
    /// The report to send once the folder is written; its `uri` is filled in then.
    pub report: v1::ReportCheckpointRequest,
}

/// A queue of uploads worked through by one background task.
pub struct Uploader {
    sender: mpsc::UnboundedSender<Upload>,
    task: JoinHandle<Result<(), String>>,
}

impl Uploader {
    pub fn start(runtime: &Handle, client: WorkerClient, metrics: Arc<WorkerMetrics>) -> Uploader {
        let (sender, receiver) = mpsc::unbounded_channel();
        let task = runtime.spawn(upload_all(receiver, client, metrics));
        Uploader { sender, task }
    }

    pub fn submit(&self, upload: Upload) {
        // The task only ends once the sender is gone, so the send succeeds.
        let _ = self.sender.send(upload);
    }

    /// Waits for every queued upload.
    ///
    /// # Errors
    ///
    /// The first checkpoint that could not be written.
    pub fn finish(self, runtime: &Handle) -> Result<(), String> {
        drop(self.sender);
        runtime.block_on(self.task).map_err(|error| format!("the checkpoint upload task failed: {error}"))?
    }
}

async fn upload_all(
    mut receiver: mpsc::UnboundedReceiver<Upload>,
    mut client: WorkerClient,
    metrics: Arc<WorkerMetrics>,
) -> Result<(), String> {
    let mut first_error = None;
    while let Some(upload) = receiver.recv().await {
        let span = info_span!(
            "checkpoint.write",
            job_id = %upload.manifest.job_id,
            generation = upload.report.generation,
            rank = 0,
            step = upload.manifest.step
        );
        if let Err(error) = upload_one(upload, &mut client, &metrics).instrument(span).await {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Writes one checkpoint folder, records it with the coordinator and deletes what
/// retention expired; returns the error of a folder that could not be written.
async fn upload_one(upload: Upload, client: &mut WorkerClient, metrics: &WorkerMetrics) -> Result<(), String> {
    let step = upload.manifest.step;
    let job_id = upload.manifest.job_id.clone();
    // The manifest adds a few hundred bytes that this leaves out.
    let bytes: u64 = upload.files.iter().map(|(_, contents)| contents.len() as u64).sum();
    let started = Instant::now();
    let uri = match write_checkpoint(&upload.checkpoints_uri, upload.manifest, upload.files).await {
        Ok(uri) => uri,
        Err(error) => {
            warn!(step, error = %error, "checkpoint not written");
            return Err(error.to_string());
        }
    };
    let elapsed = started.elapsed();
    let report = v1::ReportCheckpointRequest { uri: uri.clone(), ..upload.report };
    match report_with_retry(client, report).await {
        Ok(expired) => {
            metrics.record_checkpoint(&job_id, elapsed, bytes);
            info!(step, uri, "checkpoint committed");
            for expired in expired {
                if let Err(error) = delete_checkpoint(&expired).await {
                    warn!(uri = expired, error = %error, "cannot delete an expired checkpoint");
                }
            }
        }
        Err(status) => {
            // An unrecorded folder is not a checkpoint; removing it keeps the
            // storage in step with the coordinator's records.
            warn!(step, uri, error = %status.message(), "checkpoint not recorded; deleting its folder");
            if let Err(error) = delete_checkpoint(&uri).await {
                warn!(uri, error = %error, "cannot delete an unrecorded checkpoint");
            }
        }
    }
    Ok(())
}

/// Sends the report, retrying while the coordinator is unreachable; returns the
/// folders that retention expired.
async fn report_with_retry(client: &mut WorkerClient, report: v1::ReportCheckpointRequest) -> Result<Vec<String>, tonic::Status> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(200);
    loop {
        match client.report_checkpoint(report.clone()).await {
            Ok(response) => return Ok(response.into_inner().expired_uris),
            Err(status) if matches!(status.code(), Code::Unavailable | Code::Unknown) && started.elapsed() < REPORT_RETRY_FOR => {
                warn!(step = report.step, error = %status.message(), "coordinator unreachable; retrying the checkpoint report");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(status) => return Err(status),
        }
    }
}
