//! JSON, YAML and table views of jobs and checkpoints.
//!
//! JSON and YAML carry every field, with state names in their short form (`QUEUED`) and
//! timestamps in RFC 3339 (`null` when unset), so scripts can read them. Tables are for
//! people and drop sub-second precision.

use std::io::Write;

use prost_types::Timestamp;
use serde::Serialize;
use ssl_proto::result::JobResult;
use ssl_proto::table::format_table;
use ssl_proto::v1::{Checkpoint, Job, JobProgress, JobSpec, Shard};

use crate::cli::OutputFormat;
use crate::error::Error;

/// Printed in a table cell that has no value.
const EMPTY_CELL: &str = "-";

/// A job as `get` and `list` print it in JSON and YAML.
#[derive(Debug, Serialize)]
pub struct JobView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub state: &'static str,
    pub spec: Option<&'a JobSpec>,
    pub request_id: &'a str,
    pub message: &'a str,
    pub progress: Option<ProgressView>,
    /// Current generation of the job's worker set; 0 before the first admission.
    pub generation: i64,
    /// Evaluation results once the job succeeded; `null` before, or when the
    /// coordinator sent text that is not JSON.
    pub result: Option<serde_json::Value>,
    /// The shard plan in row order; left out of lists and before admission.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardView<'a>>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// One object of a job's dataset as `get` prints it.
#[derive(Debug, Serialize)]
pub struct ShardView<'a> {
    pub uri: &'a str,
    pub size_bytes: i64,
}

impl<'a> From<&'a Job> for JobView<'a> {
    fn from(job: &'a Job) -> Self {
        JobView {
            id: &job.id,
            name: &job.name,
            state: job.state().short_name(),
            spec: job.spec.as_ref(),
            request_id: &job.request_id,
            message: &job.message,
            progress: job.progress.as_ref().map(ProgressView::from),
            generation: job.generation,
            result: Some(job.result_json.as_str()).filter(|json| !json.is_empty()).and_then(|json| serde_json::from_str(json).ok()),
            shards: job.shards.iter().map(|shard| ShardView { uri: &shard.uri, size_bytes: shard.size_bytes }).collect(),
            created_at: job.created_at.as_ref().map(format_timestamp),
            updated_at: job.updated_at.as_ref().map(format_timestamp),
            started_at: job.started_at.as_ref().map(format_timestamp),
            finished_at: job.finished_at.as_ref().map(format_timestamp),
        }
    }
}

/// A job's latest progress report.
#[derive(Debug, Serialize)]
pub struct ProgressView {
    pub epoch: i32,
    pub step: i64,
    /// 0 when the coordinator does not know it yet.
    pub total_steps: i64,
    pub loss: f64,
    pub samples_per_second: f64,
}

impl From<&JobProgress> for ProgressView {
    fn from(progress: &JobProgress) -> Self {
        ProgressView {
            epoch: progress.epoch,
            step: progress.step,
            total_steps: progress.total_steps,
            loss: progress.loss,
            samples_per_second: progress.samples_per_second,
        }
    }
}

/// A committed checkpoint as `checkpoints` prints it in JSON and YAML.
#[derive(Debug, Serialize)]
pub struct CheckpointView<'a> {
    pub job_id: &'a str,
    pub step: i64,
    pub epoch: i32,
    pub uri: &'a str,
    pub loss: f64,
    pub committed_at: Option<String>,
}

impl<'a> From<&'a Checkpoint> for CheckpointView<'a> {
    fn from(checkpoint: &'a Checkpoint) -> Self {
        CheckpointView {
            job_id: &checkpoint.job_id,
            step: checkpoint.step,
            epoch: checkpoint.epoch,
            uri: &checkpoint.uri,
            loss: checkpoint.loss,
            committed_at: checkpoint.committed_at.as_ref().map(format_timestamp),
        }
    }
}

/// Writes one job: a key/value view for `table`, the [`JobView`] for JSON and YAML.
pub fn write_job(out: &mut impl Write, job: &Job, format: OutputFormat) -> Result<(), Error> {
    match format {
        OutputFormat::Table => write_job_details(out, job),
        OutputFormat::Json | OutputFormat::Yaml => write_structured(out, &JobView::from(job), format),
    }
}

/// Writes jobs as a table with the columns ID, NAME, STATE, CREATED and PROGRESS, or as
/// a JSON or YAML list of [`JobView`]s.
pub fn write_jobs(out: &mut impl Write, jobs: &[Job], format: OutputFormat) -> Result<(), Error> {
    if format != OutputFormat::Table {
        let views: Vec<JobView> = jobs.iter().map(JobView::from).collect();
        return write_structured(out, &views, format);
    }

    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|job| {
            vec![
                job.id.clone(),
                job.name.clone(),
                job.state().short_name().to_owned(),
                job.created_at.as_ref().map_or_else(|| EMPTY_CELL.to_owned(), format_timestamp_seconds),
                job.progress.as_ref().map_or_else(|| EMPTY_CELL.to_owned(), format_step_fraction),
            ]
        })
        .collect();
    write_table(out, &["ID", "NAME", "STATE", "CREATED", "PROGRESS"], &rows)
}

/// Writes checkpoints as a table with the columns STEP, EPOCH, LOSS, COMMITTED and URI,
/// or as a JSON or YAML list of [`CheckpointView`]s.
pub fn write_checkpoints(out: &mut impl Write, checkpoints: &[Checkpoint], format: OutputFormat) -> Result<(), Error> {
    if format != OutputFormat::Table {
        let views: Vec<CheckpointView> = checkpoints.iter().map(CheckpointView::from).collect();
        return write_structured(out, &views, format);
    }

    let rows: Vec<Vec<String>> = checkpoints
        .iter()
        .map(|checkpoint| {
            vec![
                checkpoint.step.to_string(),
                checkpoint.epoch.to_string(),
                format!("{:.4}", checkpoint.loss),
                checkpoint.committed_at.as_ref().map_or_else(|| EMPTY_CELL.to_owned(), format_timestamp_seconds),
                checkpoint.uri.clone(),
            ]
        })
        .collect();
    write_table(out, &["STEP", "EPOCH", "LOSS", "COMMITTED", "URI"], &rows)
}

fn write_structured(out: &mut impl Write, value: &impl Serialize, format: OutputFormat) -> Result<(), Error> {
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, value)?;
            writeln!(out)?;
        }
        OutputFormat::Yaml => out.write_all(serde_yaml::to_string(value)?.as_bytes())?,
        OutputFormat::Table => unreachable!("tables are written by the caller"),
    }
    Ok(())
}

/// Maximum number of shards that `get` lists one per line; `-o json` lists them all.
const LISTED_SHARDS: usize = 5;

/// Writes the shard count and total size, then the first shards' URIs.
fn write_shards(out: &mut impl Write, shards: &[Shard]) -> Result<(), Error> {
    if shards.is_empty() {
        return Ok(());
    }
    let bytes: i64 = shards.iter().map(|shard| shard.size_bytes).sum();
    let objects = if shards.len() == 1 { "object" } else { "objects" };
    writeln!(out, "{:<12}{} {objects}, {bytes} bytes", "Shards:", shards.len())?;
    for shard in shards.iter().take(LISTED_SHARDS) {
        writeln!(out, "  {}", shard.uri)?;
    }
    if shards.len() > LISTED_SHARDS {
        writeln!(out, "  … and {} more (`-o json` lists them all)", shards.len() - LISTED_SHARDS)?;
    }
    Ok(())
}

fn write_job_details(out: &mut impl Write, job: &Job) -> Result<(), Error> {
    let optional_time = |timestamp: Option<&Timestamp>| timestamp.map_or_else(|| EMPTY_CELL.to_owned(), format_timestamp_seconds);
    let or_empty = |text: &str| if text.is_empty() { EMPTY_CELL.to_owned() } else { text.to_owned() };
    let fields = [
        ("Id", job.id.clone()),
        ("Name", job.name.clone()),
        ("State", job.state().short_name().to_owned()),
        ("Message", or_empty(&job.message)),
        ("Progress", job.progress.as_ref().map_or_else(|| EMPTY_CELL.to_owned(), format_progress)),
        ("Generation", job.generation.to_string()),
        ("Request id", or_empty(&job.request_id)),
        ("Created", optional_time(job.created_at.as_ref())),
        ("Updated", optional_time(job.updated_at.as_ref())),
        ("Started", optional_time(job.started_at.as_ref())),
        ("Finished", optional_time(job.finished_at.as_ref())),
    ];
    for (key, value) in fields {
        writeln!(out, "{:<12}{value}", format!("{key}:"))?;
    }
    write_shards(out, &job.shards)?;

    if let Some(evaluation) = JobResult::parse(&job.result_json).and_then(|result| result.evaluation) {
        writeln!(out, "Evaluation:")?;
        for line in evaluation.to_table().lines() {
            writeln!(out, "  {line}")?;
        }
    }

    let Some(spec) = &job.spec else { return Ok(()) };
    writeln!(out, "Spec:")?;
    for line in serde_yaml::to_string(spec)?.lines() {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

/// Writes left-aligned columns separated by two spaces; the last column is not padded.
pub fn write_table(out: &mut impl Write, headers: &[&str], rows: &[Vec<String>]) -> Result<(), Error> {
    out.write_all(format_table(headers, rows).as_bytes())?;
    Ok(())
}

/// Formats a timestamp in RFC 3339, in UTC, with as many fractional digits as needed.
pub fn format_timestamp(timestamp: &Timestamp) -> String {
    timestamp.to_string()
}

/// Formats a timestamp in RFC 3339 without the fraction of a second.
pub fn format_timestamp_seconds(timestamp: &Timestamp) -> String {
    let mut normalized = *timestamp;
    normalized.normalize();
    Timestamp { seconds: normalized.seconds, nanos: 0 }.to_string()
}

/// Formats progress for the job details, such as
/// `epoch 2, step 120/1000 (12%), loss 0.5321, 2450 samples/s`.
pub fn format_progress(progress: &JobProgress) -> String {
    format!(
        "epoch {}, step {}, loss {:.4}, {:.0} samples/s",
        progress.epoch,
        format_step_fraction(progress),
        progress.loss,
        progress.samples_per_second
    )
}

/// Formats `step/total (percent%)`, or only the step while the total is unknown.
pub fn format_step_fraction(progress: &JobProgress) -> String {
    if progress.total_steps <= 0 {
        return progress.step.to_string();
    }
    let percent = progress.step as f64 * 100.0 / progress.total_steps as f64;
    format!("{}/{} ({percent:.0}%)", progress.step, progress.total_steps)
}

#[cfg(test)]
mod tests {
    use ssl_proto::JobState;
    use ssl_proto::v1::{DatasetSpec, TrainingSpec};

    use super::*;

    fn sample_job() -> Job {
        Job {
            id: "5f0c6a8e-1d2b-4c3d-9e8f-0a1b2c3d4e5f".to_owned(),
            name: "adult-contrastive".to_owned(),
            state: JobState::Running as i32,
            spec: Some(JobSpec {
                name: "adult-contrastive".to_owned(),
                dataset: Some(DatasetSpec { uri: "file:///data/train.csv".to_owned(), ..Default::default() }),
                training: Some(TrainingSpec { epochs: Some(10), ..Default::default() }),
                ..Default::default()
            }),
            request_id: "req-1".to_owned(),
            created_at: Some(Timestamp { seconds: 1_796_342_400, nanos: 250_000_000 }),
            updated_at: Some(Timestamp { seconds: 1_796_342_460, nanos: 0 }),
            started_at: None,
            finished_at: None,
            message: String::new(),
            progress: Some(JobProgress { epoch: 2, step: 120, total_steps: 1000, loss: 0.53214, samples_per_second: 2450.4 }),
            ..Default::default()
        }
    }

    fn render(write: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>) -> String {
        let mut out = Vec::new();
        write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn job_json_has_short_state_and_rfc3339_times() {
        let job = sample_job();
        let text = render(|out| write_job(out, &job, OutputFormat::Json));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["id"], "5f0c6a8e-1d2b-4c3d-9e8f-0a1b2c3d4e5f");
        assert_eq!(value["state"], "RUNNING");
        assert_eq!(value["created_at"], "2026-12-04T00:00:00.250Z");
        assert_eq!(value["updated_at"], "2026-12-04T00:01:00Z");
        assert_eq!(value["started_at"], serde_json::Value::Null);
        assert_eq!(value["finished_at"], serde_json::Value::Null);
        assert_eq!(value["request_id"], "req-1");
        assert_eq!(value["message"], "");
        assert_eq!(value["progress"]["step"], 120);
        assert_eq!(value["spec"]["training"]["epochs"], 10);
        assert_eq!(value["spec"]["dataset"]["uri"], "file:///data/train.csv");
    }

    #[test]
    fn job_table_lists_first_shards() {
        let mut job = sample_job();
        job.shards = (0..7).map(|index| Shard { uri: format!("s3://data/adult/part-{index}.csv"), size_bytes: 100 }).collect();
        let text = render(|out| write_job(out, &job, OutputFormat::Table));
        assert!(text.contains("Shards:     7 objects, 700 bytes\n  s3://data/adult/part-0.csv\n"), "{text}");
        assert!(text.contains("  s3://data/adult/part-4.csv\n  … and 2 more (`-o json` lists them all)\n"), "{text}");
        assert!(!text.contains("part-5.csv"), "{text}");

        let value: serde_json::Value = serde_json::from_str(&render(|out| write_job(out, &job, OutputFormat::Json))).unwrap();
        assert_eq!(value["shards"].as_array().map(Vec::len), Some(7));
        assert_eq!(value["shards"][6]["uri"], "s3://data/adult/part-6.csv");
    }

    #[test]
    fn job_json_leaves_out_empty_shards() {
        let value: serde_json::Value = serde_json::from_str(&render(|out| write_job(out, &sample_job(), OutputFormat::Json))).unwrap();
        assert!(value.get("shards").is_none(), "{value}");
    }

    #[test]
    fn job_yaml_round_trips_spec() {
        let job = sample_job();
        let text = render(|out| write_job(out, &job, OutputFormat::Yaml));
        let value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(value["state"].as_str(), Some("RUNNING"));
        let spec: JobSpec = serde_yaml::from_value(value["spec"].clone()).unwrap();
        assert_eq!(Some(&spec), job.spec.as_ref());
    }

    #[test]
    fn job_table_shows_evaluation_of_succeeded_job() {
        let mut job = sample_job();
        job.state = JobState::Succeeded as i32;
        job.result_json = r#"{"steps": 10, "evaluation": {"classes": ["no", "yes"], "test_rows": 50, "majority_rate": 0.6,
            "knn_k": 5, "scores": [{"features": "ssl", "label_fraction": 0.1, "train_rows": 20, "probe_accuracy": 0.8,
            "probe_macro_f1": 0.75, "probe_roc_auc": 0.9, "knn_accuracy": 0.7}]}}"#
            .to_owned();
        let text = render(|out| write_job(out, &job, OutputFormat::Table));
        assert!(text.contains("Evaluation:\n  50 test rows, classes no, yes;"), "{text}");
        assert!(text.contains("\n  10%     ssl       20          0.8000"), "{text}");
        assert!(text.find("Evaluation:") < text.find("Spec:"), "{text}");

        job.result_json.clear();
        let text = render(|out| write_job(out, &job, OutputFormat::Table));
        assert!(!text.contains("Evaluation:"), "{text}");
    }

    #[test]
    fn job_table_lists_fields() {
        let job = sample_job();
        let text = render(|out| write_job(out, &job, OutputFormat::Table));
        assert!(text.contains("Id:         5f0c6a8e-1d2b-4c3d-9e8f-0a1b2c3d4e5f\n"), "{text}");
        assert!(text.contains("State:      RUNNING\n"), "{text}");
        assert!(text.contains("Message:    -\n"), "{text}");
        assert!(text.contains("Created:    2026-12-04T00:00:00Z\n"), "{text}");
        assert!(text.contains("Progress:   epoch 2, step 120/1000 (12%), loss 0.5321, 2450 samples/s\n"), "{text}");
        assert!(text.contains("Spec:\n  name: adult-contrastive\n"), "{text}");
    }

    #[test]
    fn jobs_table_aligns_columns() {
        let mut queued = sample_job();
        queued.id = "short".to_owned();
        queued.state = JobState::Queued as i32;
        queued.progress = None;
        let jobs = [sample_job(), queued];
        let text = render(|out| write_jobs(out, &jobs, OutputFormat::Table));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[0],
            "ID                                    NAME               STATE    CREATED               PROGRESS"
        );
        assert_eq!(
            lines[1],
            "5f0c6a8e-1d2b-4c3d-9e8f-0a1b2c3d4e5f  adult-contrastive  RUNNING  2026-12-04T00:00:00Z  120/1000 (12%)"
        );
        assert_eq!(
            lines[2],
            "short                                 adult-contrastive  QUEUED   2026-12-04T00:00:00Z  -"
        );
    }

    #[test]
    fn jobs_json_is_a_list() {
        let jobs = [sample_job()];
        let text = render(|out| write_jobs(out, &jobs, OutputFormat::Json));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value.as_array().map(Vec::len), Some(1));
        assert_eq!(value[0]["name"], "adult-contrastive");
    }

    #[test]
    fn empty_checkpoints_json_is_empty_list() {
        let text = render(|out| write_checkpoints(out, &[], OutputFormat::Json));
        assert_eq!(text.trim(), "[]");
    }

    #[test]
    fn checkpoints_table_has_header() {
        let checkpoints = [Checkpoint {
            job_id: "j".to_owned(),
            step: 500,
            epoch: 1,
            uri: "file:///ckpt/jobs/j/checkpoints/500/".to_owned(),
            loss: 0.25,
            committed_at: Some(Timestamp { seconds: 1_796_342_400, nanos: 0 }),
        }];
        let text = render(|out| write_checkpoints(out, &checkpoints, OutputFormat::Table));
        assert_eq!(
            text,
            "STEP  EPOCH  LOSS    COMMITTED             URI\n\
             500   1      0.2500  2026-12-04T00:00:00Z  file:///ckpt/jobs/j/checkpoints/500/\n"
        );
    }

    #[test]
    fn step_fraction_without_total() {
        let progress = JobProgress { step: 7, ..Default::default() };
        assert_eq!(format_step_fraction(&progress), "7");
    }
}
