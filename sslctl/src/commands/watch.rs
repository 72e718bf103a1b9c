//! `sslctl watch`: a job's history, then live events until it ends.

use std::io::Write;

use prost_types::Timestamp;
use ssl_proto::JobState;
use ssl_proto::result::JobResult;
use ssl_proto::v1::job_event::Kind;
use ssl_proto::v1::{GenerationChange, GetJobRequest, Job, StateChange, WatchJobRequest};

use crate::cli::{ConnectionArgs, WatchArgs};
use crate::client::{self, JobClient};
use crate::error::Error;
use crate::output::format_timestamp_seconds;
use crate::progress::ProgressReporter;

pub async fn run(connection: &ConnectionArgs, args: &WatchArgs) -> Result<(), Error> {
    let mut client = client::connect(connection).await?;
    follow(&mut client, &args.id, &mut std::io::stdout()).await.map(|_| ())
}

/// Writes each state change of the job as a line to `out` and shows progress, until the
/// job ends. After a success, writes the job's evaluation table when it has one and
/// returns the job as it ended.
///
/// # Errors
///
/// [`Error::JobEnded`] when the job ends FAILED or CANCELLED, [`Error::WatchInterrupted`]
/// when the stream closes before the job ends, and [`Error::Rpc`] when a request fails.
pub async fn follow(client: &mut JobClient, job_id: &str, out: &mut impl Write) -> Result<Job, Error> {
    // The spec's batch size turns samples per second into an ETA.
    let job = get_job(client, job_id).await?;
    let global_batch_size = job.spec.as_ref().and_then(|spec| spec.training.as_ref()).and_then(|t| t.global_batch_size);

    let request = WatchJobRequest { id: job_id.to_owned(), after_sequence: 0 };
    let mut stream = client.service.watch_job(request).await.map_err(|status| client.error(status))?.into_inner();

    let mut reporter = ProgressReporter::new(global_batch_size);
    let mut last_change: Option<StateChange> = None;
    while let Some(event) = stream.message().await.map_err(|status| client.error(status))? {
        match event.kind {
            Some(Kind::StateChange(change)) => {
                reporter.write_line(out, &format_state_change(event.time.as_ref(), &change))?;
                last_change = Some(change);
            }
            Some(Kind::Progress(progress)) => reporter.report(out, event.time.as_ref(), &progress)?,
            Some(Kind::GenerationChange(change)) => {
                reporter.write_line(out, &format_generation_change(event.time.as_ref(), &change))?;
            }
            None => {}
        }
    }
    reporter.finish(out)?;

    let (state, message) = match last_change.filter(|change| change.to().is_terminal()) {
        Some(change) => (change.to(), change.message),
        None => return Err(Error::WatchInterrupted { job_id: job_id.to_owned() }),
    };
    if state != JobState::Succeeded {
        return Err(Error::JobEnded { job_id: job_id.to_owned(), state, message });
    }
    let job = get_job(client, job_id).await?;
    if let Some(evaluation) = JobResult::parse(&job.result_json).and_then(|result| result.evaluation) {
        writeln!(out, "\nevaluation: a linear probe and kNN on the frozen SSL embeddings, and the same probe on raw features")?;
        out.write_all(evaluation.to_table().as_bytes())?;
    }
    Ok(job)
}

async fn get_job(client: &mut JobClient, job_id: &str) -> Result<Job, Error> {
    let request = GetJobRequest { id: job_id.to_owned() };
    Ok(client.service.get_job(request).await.map_err(|status| client.error(status))?.into_inner())
}

/// Formats a state change as `TIME  FROM -> TO  MESSAGE`; the submission itself, which
/// has no previous state, shows `(new)` as FROM.
fn format_state_change(time: Option<&Timestamp>, change: &StateChange) -> String {
    let time = time.map_or_else(|| "-".to_owned(), format_timestamp_seconds);
    let from = match change.from() {
        JobState::Unspecified => "(new)",
        state => state.short_name(),
    };
    let line = format!("{time}  {from} -> {}", change.to().short_name());
    if change.message.is_empty() { line } else { format!("{line}  {}", change.message) }
}

/// Formats a new generation as `TIME  generation N on W workers: MESSAGE`.
fn format_generation_change(time: Option<&Timestamp>, change: &GenerationChange) -> String {
    let time = time.map_or_else(|| "-".to_owned(), format_timestamp_seconds);
    let workers = if change.world_size == 1 { "worker" } else { "workers" };
    format!("{time}  generation {} on {} {workers}: {}", change.generation, change.world_size, change.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_change_line_has_time_states_and_message() {
        let change = StateChange {
            from: JobState::Queued as i32,
            to: JobState::Cancelled as i32,
            message: "no longer needed".to_owned(),
        };
        let time = Timestamp { seconds: 1_796_342_400, nanos: 5 };
        assert_eq!(
            format_state_change(Some(&time), &change),
            "2026-12-04T00:00:00Z  QUEUED -> CANCELLED  no longer needed"
        );
    }

    #[test]
    fn generation_line_has_number_size_and_reason() {
        let change = GenerationChange { generation: 2, world_size: 2, message: "lost worker `w2` (rank 2)".to_owned() };
        let time = Timestamp { seconds: 1_796_342_400, nanos: 0 };
        assert_eq!(
            format_generation_change(Some(&time), &change),
            "2026-12-04T00:00:00Z  generation 2 on 2 workers: lost worker `w2` (rank 2)"
        );
    }

    #[test]
    fn submission_line_shows_new() {
        let change = StateChange { from: 0, to: JobState::Queued as i32, message: String::new() };
        assert_eq!(format_state_change(None, &change), "-  (new) -> QUEUED");
    }
}
