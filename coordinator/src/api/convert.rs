//! Conversions between store records and `ssl.v1` messages, and request field checks.

use prost_types::Timestamp;
use ssl_proto::JobState;
use ssl_proto::v1::{self, job_event};
use uuid::Uuid;

use crate::Error;
use crate::store::{CheckpointRecord, EventKind, EventRecord, JobRecord, Progress};

pub(crate) fn job_to_proto(record: &JobRecord) -> Result<v1::Job, Error> {
    let spec = record.spec()?;
    Ok(v1::Job {
        id: record.id.clone(),
        name: record.name.clone(),
        state: record.state()? as i32,
        spec: Some(spec),
        request_id: record.request_id.clone(),
        created_at: Some(timestamp(record.created_at_us)),
        updated_at: Some(timestamp(record.updated_at_us)),
        started_at: record.started_at_us.map(timestamp),
        finished_at: record.finished_at_us.map(timestamp),
        message: record.message.clone(),
        progress: record.progress()?.map(progress_to_proto),
        generation: record.generation,
        result_json: record.result_json.clone().unwrap_or_default(),
        // Only GetJob reads the shard plan.
        shards: Vec::new(),
    })
}

pub(crate) fn event_to_proto(event: &EventRecord) -> v1::JobEvent {
    let kind = match &event.kind {
        EventKind::StateChange { from, to, message } => job_event::Kind::StateChange(v1::StateChange {
            from: from.unwrap_or(JobState::Unspecified) as i32,
            to: *to as i32,
            message: message.clone(),
        }),
        EventKind::Progress(progress) => job_event::Kind::Progress(progress_to_proto(*progress)),
        EventKind::Generation { generation, world_size, message } => job_event::Kind::GenerationChange(v1::GenerationChange {
            generation: *generation,
            world_size: i32::try_from(*world_size).unwrap_or(i32::MAX),
            message: message.clone(),
        }),
    };
    v1::JobEvent { sequence: event.sequence, time: Some(timestamp(event.created_at_us)), kind: Some(kind) }
}

pub(crate) fn checkpoint_to_proto(checkpoint: &CheckpointRecord) -> v1::Checkpoint {
    v1::Checkpoint {
        job_id: checkpoint.job_id.clone(),
        step: checkpoint.step,
        epoch: i32::try_from(checkpoint.epoch).unwrap_or(i32::MAX),
        uri: checkpoint.uri.clone(),
        loss: checkpoint.loss,
        committed_at: Some(timestamp(checkpoint.committed_at_us)),
    }
}

fn progress_to_proto(progress: Progress) -> v1::JobProgress {
    v1::JobProgress {
        epoch: progress.epoch,
        step: progress.step,
        total_steps: progress.total_steps,
        loss: progress.loss,
        samples_per_second: progress.samples_per_second,
    }
}

fn timestamp(micros: i64) -> Timestamp {
    Timestamp { seconds: micros.div_euclid(1_000_000), nanos: (micros.rem_euclid(1_000_000) * 1000) as i32 }
}

/// Checks that `value` is a UUID and returns it in its canonical lower-case form.
pub(crate) fn parse_job_id(field: &str, value: &str) -> Result<String, Error> {
    if value.is_empty() {
        return Err(Error::InvalidArgument(format!("{field}: missing; pass the job's id")));
    }
    Uuid::parse_str(value).map(|id| id.to_string()).map_err(|_| {
        Error::InvalidArgument(format!(
            "{field}: invalid value {value:?}; expected a job id (a UUID such as 0b6a9c2e-1f3d-4c5e-8a7b-9c0d1e2f3a4b)"
        ))
    })
}

/// Checks a client-chosen idempotency key.
pub(crate) fn check_request_id(value: &str) -> Result<(), Error> {
    let valid = (1..=128).contains(&value.len())
        && value.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if valid {
        return Ok(());
    }
    let preview: String = value.chars().take(40).collect();
    Err(Error::InvalidArgument(format!(
        "request_id: invalid value {preview:?}; use 1 to 128 letters, digits, '-' and '_', such as a UUID"
    )))
}

/// Converts a `repeated JobState` filter, rejecting unknown and unspecified values.
pub(crate) fn parse_state_filter(values: &[i32]) -> Result<Vec<JobState>, Error> {
    values
        .iter()
        .map(|value| match JobState::try_from(*value) {
            Ok(state) if state != JobState::Unspecified => Ok(state),
            _ => Err(Error::InvalidArgument(format!(
                "states: invalid value {value}; expected job states QUEUED (1) to CANCELLED (7)"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_split_micros() {
        assert_eq!(timestamp(1_500_000), Timestamp { seconds: 1, nanos: 500_000_000 });
        assert_eq!(timestamp(-1), Timestamp { seconds: -1, nanos: 999_999_000 });
    }

    #[test]
    fn job_ids_are_canonical_uuids() {
        let id = "0B6A9C2E-1F3D-4C5E-8A7B-9C0D1E2F3A4B";
        assert_eq!(parse_job_id("id", id).unwrap(), id.to_ascii_lowercase());
        let error = parse_job_id("id", "job-1").unwrap_err().to_string();
        assert!(error.starts_with("id: invalid value \"job-1\"; expected a job id"), "{error}");
    }

    #[test]
    fn request_ids_checked() {
        assert!(check_request_id("f47ac10b-58cc-4372-a567-0e02b2c3d479").is_ok());
        assert!(check_request_id("").is_err());
        assert!(check_request_id("with space").is_err());
        assert!(check_request_id(&"x".repeat(129)).is_err());
    }

    #[test]
    fn unspecified_state_filter_rejected() {
        assert_eq!(parse_state_filter(&[1, 7]).unwrap(), [JobState::Queued, JobState::Cancelled]);
        assert!(parse_state_filter(&[0]).is_err());
        assert!(parse_state_filter(&[42]).is_err());
    }
}
