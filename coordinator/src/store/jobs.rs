//! Writes and reads of the `jobs` table, each write with its `job_events` row in
//! one transaction.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::AssertSqlSafe;
use ssl_proto::JobState;
use uuid::Uuid;

use super::records::{EventKind, JobRecord, Progress};
use super::{JobStore, Transaction, now_micros};
use crate::Error;
use crate::jobs::state::allowed_sources;

// NOTE: queries here are assembled with `format!`, but only from constant column
// lists and generated `$N` placeholders; every value goes through `bind`.
pub(super) const JOB_COLUMNS: &str = "id, request_id, name, spec_json, state, priority, message, progress_json, \
     last_sequence, created_at_us, updated_at_us, started_at_us, finished_at_us, generation, result_json";

/// A validated job to store.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub request_id: String,
    pub name: String,
    /// The normalized spec as JSON; compared byte for byte when a request id repeats.
    pub spec_json: String,
    pub priority: i32,
}

/// Outcome of [`JobStore::submit`].
#[derive(Debug, Clone)]
pub struct Submission {
    pub job: JobRecord,
    /// False when the request id was seen before and `job` is the earlier job.
    pub created: bool,
}

/// Filters of [`JobStore::list`]; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub states: Vec<JobState>,
    pub name: Option<String>,
}

/// One page of [`JobStore::list`].
#[derive(Debug, Clone)]
pub struct JobPage {
    pub jobs: Vec<JobRecord>,
    /// Token for the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

impl JobStore {
    /// Stores a new `QUEUED` job and its submission event, or returns the job that an
    /// earlier call with the same request id created.
    ///
    /// # Errors
    ///
    /// [`Error::RequestIdReused`] when the request id belongs to a job with another spec.
    #[tracing::instrument(name = "store.submit", skip_all, fields(request_id = %new_job.request_id))]
    pub async fn submit(&self, new_job: NewJob) -> Result<Submission, Error> {
        let id = Uuid::new_v4().to_string();
        let now = now_micros();
        let mut transaction = self.pool.begin().await?;

        let inserted = sqlx::query_as::<_, JobRecord>(AssertSqlSafe(format!(
            "INSERT INTO jobs (id, request_id, name, spec_json, state, priority, last_sequence, \
                               created_at_us, updated_at_us) \
             VALUES ($1, $2, $3, $4, 'QUEUED', $5, 1, $6, $6) \
             ON CONFLICT (tenant, request_id) DO NOTHING \
             RETURNING {JOB_COLUMNS}"
        )))
        .bind(&id)
        .bind(&new_job.request_id)
        .bind(&new_job.name)
        .bind(&new_job.spec_json)
        .bind(i64::from(new_job.priority))
        .bind(now)
        .fetch_optional(&mut *transaction)
        .await?;

        let Some(job) = inserted else {
            transaction.rollback().await?;
            let existing = self.get_by_request_id(&new_job.request_id).await?;
            if existing.spec_json != new_job.spec_json {
                return Err(Error::RequestIdReused { request_id: new_job.request_id, job_id: existing.id });
            }
            tracing::debug!(job_id = %existing.id, "request id seen before; returning the existing job");
            return Ok(Submission { job: existing, created: false });
        };

        let submitted = EventKind::StateChange { from: None, to: JobState::Queued, message: String::new() };
        insert_event(&mut transaction, &id, 1, now, &submitted).await?;
        transaction.commit().await?;

        self.notify_appended(&id);
        self.request_scheduling();
        tracing::info!(job_id = %id, name = %new_job.name, "job queued");
        Ok(Submission { job, created: true })
    }

    /// Returns one job.
    ///
    /// # Errors
    ///
    /// [`Error::JobNotFound`] when no job has this id.
    pub async fn get(&self, id: &str) -> Result<JobRecord, Error> {
        sqlx::query_as::<_, JobRecord>(AssertSqlSafe(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::JobNotFound(id.to_owned()))
    }

    async fn get_by_request_id(&self, request_id: &str) -> Result<JobRecord, Error> {
        sqlx::query_as::<_, JobRecord>(AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant = 'default' AND request_id = $1"
        )))
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::CorruptRow(format!("job for request id `{request_id}` vanished after a conflict")))
    }

    /// Lists jobs newest first, `page_size` at a time.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a page token this store did not issue.
    pub async fn list(&self, filter: &JobFilter, page_size: u32, page_token: Option<&str>) -> Result<JobPage, Error> {
        let mut conditions = Vec::new();
        let mut text_params: Vec<String> = Vec::new();
        let mut cursor: Option<(i64, String)> = None;

        if !filter.states.is_empty() {
            let first = text_params.len() + 1;
            let placeholders: Vec<String> = (first..first + filter.states.len()).map(|n| format!("${n}")).collect();
            conditions.push(format!("state IN ({})", placeholders.join(", ")));
            text_params.extend(filter.states.iter().map(|state| state.short_name().to_owned()));
        }
        if let Some(name) = &filter.name {
            text_params.push(name.clone());
            conditions.push(format!("name = ${}", text_params.len()));
        }
        if let Some(token) = page_token {
            let (created_at_us, id) = decode_page_token(token)?;
            let created = text_params.len() + 1;
            conditions.push(format!(
                "(created_at_us < ${created} OR (created_at_us = ${created} AND id < ${}))",
                created + 1
            ));
            cursor = Some((created_at_us, id));
        }

        let where_clause = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs {where_clause} ORDER BY created_at_us DESC, id DESC LIMIT {}",
            u64::from(page_size) + 1
        );
        let mut query = sqlx::query_as::<_, JobRecord>(AssertSqlSafe(sql));
        for param in text_params {
            query = query.bind(param);
        }
        if let Some((created_at_us, id)) = cursor {
            query = query.bind(created_at_us).bind(id);
        }
        let mut jobs = query.fetch_all(&self.pool).await?;

        let next_page_token = if jobs.len() > page_size as usize {
            jobs.truncate(page_size as usize);
            jobs.last().map(|last| encode_page_token(last.created_at_us, &last.id))
        } else {
            None
        };
        Ok(JobPage { jobs, next_page_token })
    }

    /// Moves a job to `to` and appends the state-change event, in one transaction.
    ///
    /// `operation` names the request in the error, such as `cancel`. A move to
    /// `QUEUED` or to a terminal state also releases the job's workers, which become
    /// idle and get a release on their assignment stream.
    ///
    /// # Errors
    ///
    /// [`Error::JobNotFound`], or [`Error::InvalidTransition`] when the job's state
    /// does not allow the move; nothing is written then.
    #[tracing::instrument(name = "store.transition", skip(self, message), fields(to = to.short_name()))]
    pub async fn transition(&self, job_id: &str, to: JobState, operation: &'static str, message: &str) -> Result<JobRecord, Error> {
        let mut transaction = self.pool.begin().await?;
        let Some(from) = transition_in(&mut transaction, job_id, to, message, now_micros()).await? else {
            transaction.rollback().await?;
            let current = self.get(job_id).await?.state()?;
            return Err(Error::invalid_transition(job_id, current, operation, allowed_sources(to)));
        };
        transaction.commit().await?;

        self.after_transition(job_id, to);
        tracing::info!(job_id, from = from.map(JobState::short_name), "job state changed");
        self.get(job_id).await
    }

    /// Wakes whoever waits on a committed state change of `job_id`.
    pub(super) fn after_transition(&self, job_id: &str, to: JobState) {
        self.notify_appended(job_id);
        if releases_workers(to) {
            self.notify_assignments_changed();
            self.request_scheduling();
        }
    }

    /// Stores a progress report as the job's latest progress and appends it to the history.
    ///
    /// # Errors
    ///
    /// [`Error::JobNotFound`], or [`Error::InvalidTransition`] unless the job is RUNNING.
    pub async fn record_progress(&self, job_id: &str, progress: Progress) -> Result<(), Error> {
        let now = now_micros();
        let json = progress.to_json();
        let mut transaction = self.pool.begin().await?;
        let sequence = sqlx::query_scalar::<_, i64>(
            "UPDATE jobs SET progress_json = $1, updated_at_us = $2, last_sequence = last_sequence + 1 \
             WHERE id = $3 AND state = 'RUNNING' RETURNING last_sequence",
        )
        .bind(&json)
        .bind(now)
        .bind(job_id)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(sequence) = sequence else {
            transaction.rollback().await?;
            let current = self.get(job_id).await?.state()?;
            return Err(Error::invalid_transition(job_id, current, "progress report", &[JobState::Running]));
        };
        insert_event(&mut transaction, job_id, sequence, now, &EventKind::Progress(progress)).await?;
        transaction.commit().await?;
        self.notify_appended(job_id);
        Ok(())
    }
}

impl JobStore {
    /// Sets the message of a job that is still `QUEUED`, such as why it waits. Writes
    /// nothing when the message is already set, so each scheduler pass stays cheap.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the update fails.
    pub async fn set_queued_message(&self, job_id: &str, message: &str) -> Result<(), Error> {
        sqlx::query("UPDATE jobs SET message = $1 WHERE id = $2 AND state = 'QUEUED' AND message <> $1")
            .bind(message)
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Whether a job that moves to `state` gives its workers back.
fn releases_workers(state: JobState) -> bool {
    state == JobState::Queued || state.is_terminal()
}

/// Moves a job to `to` inside `transaction` and appends the event; releases the
/// job's workers when `to` is `QUEUED` or terminal.
///
/// Returns `None`, having written nothing, when the job is missing or its state
/// does not allow the move, and otherwise the state it left (`None` inside for a
/// job without a state-change event, which cannot happen after a submission).
pub(super) async fn transition_in(
    transaction: &mut Transaction<'_>,
    job_id: &str,
    to: JobState,
    message: &str,
    now: i64,
) -> Result<Option<Option<JobState>>, Error> {
    let sources = allowed_sources(to);
    // The conditional update takes the row lock, so two coordinators racing on
    // the same job serialize here and only one of them finds a matching state.
    let source_placeholders: Vec<String> = (0..sources.len()).map(|index| format!("${}", index + 5)).collect();
    let sql = format!(
        "UPDATE jobs SET state = $1, message = $2, updated_at_us = $3, last_sequence = last_sequence + 1, \
             started_at_us = CASE WHEN $1 = 'RUNNING' AND started_at_us IS NULL THEN $3 ELSE started_at_us END, \
             finished_at_us = CASE WHEN $1 IN ('SUCCEEDED', 'FAILED', 'CANCELLED') THEN $3 ELSE finished_at_us END \
         WHERE id = $4 AND state IN ({}) \
         RETURNING last_sequence",
        source_placeholders.join(", ")
    );
    let mut update = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql)).bind(to.short_name()).bind(message).bind(now).bind(job_id);
    for source in sources {
        update = update.bind(source.short_name());
    }
    let Some(sequence) = update.fetch_optional(&mut **transaction).await? else {
        return Ok(None);
    };

    // The previous state is the one the event records; the update only matched
    // one of `sources`, and the row lock keeps it from changing meanwhile.
    let from = sqlx::query_scalar::<_, String>(
        "SELECT to_state FROM job_events WHERE job_id = $1 AND kind = 'state_change' \
         ORDER BY sequence DESC LIMIT 1",
    )
    .bind(job_id)
    .fetch_one(&mut **transaction)
    .await?;
    let from = crate::jobs::state::parse_stored(&from);
    let change = EventKind::StateChange { from, to, message: message.to_owned() };
    insert_event(transaction, job_id, sequence, now, &change).await?;

    if releases_workers(to) {
        sqlx::query(
            "UPDATE workers SET state = CASE WHEN state = 'BUSY' THEN 'IDLE' ELSE state END, \
                 job_id = NULL, updated_at_us = $2 \
             WHERE job_id = $1",
        )
        .bind(job_id)
        .bind(now)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(Some(from))
}

pub(super) async fn insert_event(
    transaction: &mut Transaction<'_>,
    job_id: &str,
    sequence: i64,
    created_at_us: i64,
    kind: &EventKind,
) -> Result<(), Error> {
    let (kind_name, from_state, to_state, message, progress_json) = match kind {
        EventKind::StateChange { from, to, message } => (
            "state_change",
            from.map(|state| state.short_name().to_owned()),
            Some(to.short_name().to_owned()),
            message.clone(),
            None,
        ),
        EventKind::Progress(progress) => ("progress", None, None, String::new(), Some(progress.to_json())),
        EventKind::Generation { message, .. } => ("generation", None, None, message.clone(), None),
    };
    let (generation, world_size) = match kind {
        EventKind::Generation { generation, world_size, .. } => (Some(*generation), Some(*world_size)),
        _ => (None, None),
    };
    sqlx::query(
        "INSERT INTO job_events (job_id, sequence, created_at_us, kind, from_state, to_state, message, progress_json, \
             generation, world_size) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(job_id)
    .bind(sequence)
    .bind(created_at_us)
    .bind(kind_name)
    .bind(from_state)
    .bind(to_state)
    .bind(message)
    .bind(progress_json)
    .bind(generation)
    .bind(world_size)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

fn encode_page_token(created_at_us: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_at_us}/{id}"))
}

fn decode_page_token(token: &str) -> Result<(i64, String), Error> {
    let invalid = || Error::InvalidArgument(format!("page_token: invalid value `{token}`; pass a next_page_token from ListJobs"));
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (created, id) = text.split_once('/').ok_or_else(invalid)?;
    let created = created.parse().map_err(|_| invalid())?;
    Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok((created, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_token_round_trip() {
        let id = Uuid::new_v4().to_string();
        let token = encode_page_token(1_700_000_000_000_000, &id);
        assert_eq!(decode_page_token(&token).unwrap(), (1_700_000_000_000_000, id));
    }

    #[test]
    fn foreign_page_token_rejected() {
        for token in ["", "!!", "bm90LWEtdG9rZW4", &URL_SAFE_NO_PAD.encode("12/not-a-uuid")] {
            let error = decode_page_token(token).unwrap_err();
            assert!(matches!(error, Error::InvalidArgument(_)), "{token}: {error}");
        }
    }
}
