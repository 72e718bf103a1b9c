//! Rows of the job store as Rust values.

use ssl_proto::JobState;

use crate::Error;
use crate::jobs::state::parse_stored;

/// One row of `jobs`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct JobRecord {
    pub id: String,
    pub request_id: String,
    pub name: String,
    /// The normalized `JobSpec` as JSON.
    pub spec_json: String,
    /// Stored state name, such as `QUEUED`; see [`JobRecord::state`].
    #[sqlx(rename = "state")]
    pub state_name: String,
    pub priority: i64,
    pub message: String,
    /// Latest [`Progress`] as JSON, once training reported any.
    pub progress_json: Option<String>,
    pub last_sequence: i64,
    pub created_at_us: i64,
    pub updated_at_us: i64,
    pub started_at_us: Option<i64>,
    pub finished_at_us: Option<i64>,
    /// Current generation of the job's worker set; 0 before the first admission.
    pub generation: i64,
    /// Evaluation results as JSON, once the job succeeded.
    pub result_json: Option<String>,
}

impl JobRecord {
    /// The job's state.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptRow`] when the stored name is not a state.
    pub fn state(&self) -> Result<JobState, Error> {
        parse_stored(&self.state_name)
            .ok_or_else(|| Error::CorruptRow(format!("job `{}` has unknown state `{}`", self.id, self.state_name)))
    }

    /// Parses the job's normalized spec.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptRow`] when the stored spec is not a valid spec in JSON.
    pub fn spec(&self) -> Result<ssl_proto::v1::JobSpec, Error> {
        serde_json::from_str(&self.spec_json).map_err(|error| Error::CorruptRow(format!("job `{}` has an unreadable spec: {error}", self.id)))
    }

    /// The latest progress report, if any.
    pub fn progress(&self) -> Result<Option<Progress>, Error> {
        self.progress_json.as_deref().map(Progress::from_json).transpose()
    }
}

/// Training progress as workers report it.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    pub epoch: i32,
    pub step: i64,
    pub total_steps: i64,
    pub loss: f64,
    pub samples_per_second: f64,
}

impl Progress {
    pub(crate) fn to_json(self) -> String {
        serde_json::to_string(&self).expect("progress serializes")
    }

    pub(crate) fn from_json(json: &str) -> Result<Self, Error> {
        serde_json::from_str(json).map_err(|error| Error::CorruptRow(format!("invalid progress `{json}`: {error}")))
    }
}

/// What an event records.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// `from` is `None` for the submission.
    StateChange { from: Option<JobState>, to: JobState, message: String },
    Progress(Progress),
    /// A new generation of the job's worker set and why it opened.
    Generation { generation: i64, world_size: i64, message: String },
}

/// One row of `job_events`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub job_id: String,
    /// Position in the job's history, from 1 and without gaps.
    pub sequence: i64,
    pub created_at_us: i64,
    pub kind: EventKind,
}

#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    pub job_id: String,
    pub sequence: i64,
    pub created_at_us: i64,
    pub kind: String,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub message: String,
    pub progress_json: Option<String>,
    pub generation: Option<i64>,
    pub world_size: Option<i64>,
}

impl TryFrom<EventRow> for EventRecord {
    type Error = Error;

    fn try_from(row: EventRow) -> Result<Self, Error> {
        let corrupt = |what: &str| Error::CorruptRow(format!("event {} of job `{}`: {what}", row.sequence, row.job_id));
        let kind = match row.kind.as_str() {
            "state_change" => {
                let from = row.from_state.as_deref().map(|name| parse_stored(name).ok_or_else(|| corrupt("unknown from_state"))).transpose()?;
                let to = row.to_state.as_deref().and_then(parse_stored).ok_or_else(|| corrupt("missing or unknown to_state"))?;
                EventKind::StateChange { from, to, message: row.message.clone() }
            }
            "progress" => {
                let json = row.progress_json.as_deref().ok_or_else(|| corrupt("progress event without progress_json"))?;
                EventKind::Progress(Progress::from_json(json)?)
            }
            "generation" => EventKind::Generation {
                generation: row.generation.ok_or_else(|| corrupt("generation event without generation"))?,
                world_size: row.world_size.ok_or_else(|| corrupt("generation event without world_size"))?,
                message: row.message.clone(),
            },
            other => return Err(corrupt(&format!("unknown kind `{other}`"))),
        };
        Ok(EventRecord { job_id: row.job_id, sequence: row.sequence, created_at_us: row.created_at_us, kind })
    }
}

/// One row of `checkpoints`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CheckpointRecord {
    pub job_id: String,
    pub step: i64,
    pub epoch: i64,
    pub uri: String,
    pub loss: f64,
    pub committed_at_us: i64,
}
