//! Changes of a job's worker set, each in one transaction with its state
//! changes: opening a generation, requeueing, and ending a generation's work.
//!
//! Every write starts with a conditional update of the job row on the
//! generation and state the caller read. When another coordinator changed the
//! job meanwhile, nothing matches and nothing is written, so one change of the
//! worker set never opens two generations. That update also takes the row lock
//! first, which keeps SQLite from failing a transaction that read before it wrote.

use ssl_proto::JobState;

use super::jobs::{insert_event, transition_in};
use super::{EventKind, JobRecord, JobStore, Transaction, now_micros};
use crate::Error;
use crate::jobs::state::allowed_sources;

/// A new generation of a job's worker set.
#[derive(Debug, Clone)]
pub struct GenerationPlan {
    pub job_id: String,
    /// The generation and state the plan was made from.
    pub expected_generation: i64,
    pub expected_state: JobState,
    /// State changes made in the same transaction, in order, such as
    /// `[Recovering]` for a running job.
    pub transitions: Vec<JobState>,
    /// Message of the state changes.
    pub message: String,
    /// Worker ids by new rank. Each must be idle or already serve this job, and
    /// hold a live lease.
    pub workers: Vec<String>,
}

/// Sending a job back to `QUEUED` and releasing its workers.
#[derive(Debug, Clone)]
pub struct RequeuePlan {
    pub job_id: String,
    pub expected_generation: i64,
    pub expected_state: JobState,
    /// State changes in order, ending in `Queued`.
    pub transitions: Vec<JobState>,
    pub message: String,
}

impl JobStore {
    /// Opens the next generation of a job with `plan.workers` as ranks `0..n`.
    ///
    /// Returns the new generation, or `None` with nothing written when the job,
    /// or one of the workers, changed since the plan was made.
    #[tracing::instrument(name = "store.open_generation", skip_all, fields(job_id = %plan.job_id, workers = plan.workers.len()))]
    pub async fn open_generation(&self, plan: &GenerationPlan) -> Result<Option<i64>, Error> {
        let now = now_micros();
        let mut transaction = self.pool.begin().await?;
        let Some(generation) = lock_job(&mut transaction, &plan.job_id, plan.expected_generation, plan.expected_state, 1).await?
        else {
            transaction.rollback().await?;
            return Ok(None);
        };
        if !apply_transitions(&mut transaction, &plan.job_id, &plan.transitions, &plan.message, now).await? {
            transaction.rollback().await?;
            return Ok(None);
        }

        let world_size = plan.workers.len() as i64;
        for (rank, worker_id) in plan.workers.iter().enumerate() {
            let claimed = sqlx::query(
                "UPDATE workers SET state = 'BUSY', job_id = $1, updated_at_us = $3 \
                 WHERE id = $2 AND lease_expires_at_us > $3 \
                   AND (state = 'IDLE' OR (state = 'BUSY' AND job_id = $1))",
            )
            .bind(&plan.job_id)
            .bind(worker_id)
            .bind(now)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            if claimed != 1 {
                transaction.rollback().await?;
                return Ok(None);
            }
            sqlx::query(
                "INSERT INTO assignments (job_id, generation, worker_id, rank, world_size, created_at_us) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&plan.job_id)
            .bind(generation)
            .bind(worker_id)
            .bind(rank as i64)
            .bind(world_size)
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        }
        let sequence = sqlx::query_scalar::<_, i64>(
            "UPDATE jobs SET last_sequence = last_sequence + 1 WHERE id = $1 RETURNING last_sequence",
        )
        .bind(&plan.job_id)
        .fetch_one(&mut *transaction)
        .await?;
        let event = EventKind::Generation { generation, world_size, message: plan.message.clone() };
        insert_event(&mut transaction, &plan.job_id, sequence, now, &event).await?;
        // Lost members keep no claim on the job.
        sqlx::query("UPDATE workers SET job_id = NULL WHERE job_id = $1 AND state = 'LOST'")
            .bind(&plan.job_id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;

        for state in &plan.transitions {
            self.after_transition(&plan.job_id, *state);
        }
        self.notify_appended(&plan.job_id);
        self.notify_assignments_changed();
        Ok(Some(generation))
    }

    /// Sends a job back to `QUEUED`, releasing its workers. Returns false with
    /// nothing written when the job changed since the plan was made.
    #[tracing::instrument(name = "store.requeue", skip_all, fields(job_id = %plan.job_id))]
    pub async fn requeue(&self, plan: &RequeuePlan) -> Result<bool, Error> {
        let now = now_micros();
        let mut transaction = self.pool.begin().await?;
        if lock_job(&mut transaction, &plan.job_id, plan.expected_generation, plan.expected_state, 0).await?.is_none()
            || !apply_transitions(&mut transaction, &plan.job_id, &plan.transitions, &plan.message, now).await?
        {
            transaction.rollback().await?;
            return Ok(false);
        }
        transaction.commit().await?;
        for state in &plan.transitions {
            self.after_transition(&plan.job_id, *state);
        }
        Ok(true)
    }

    /// Moves a job to `to` on behalf of a member of `generation`, storing
    /// `result_json` on the job when given.
    ///
    /// # Errors
    ///
    /// [`Error::JobNotFound`], [`Error::StaleGeneration`] when the job has moved
    /// on to another generation, [`Error::InvalidTransition`] when its state does
    /// not allow the move. Nothing is written then.
    #[tracing::instrument(name = "store.transition_at_generation", skip(self, message, result_json), fields(to = to.short_name()))]
    pub async fn transition_at_generation(
        &self,
        job_id: &str,
        generation: i64,
        to: JobState,
        operation: &'static str,
        message: &str,
        result_json: Option<&str>,
    ) -> Result<JobRecord, Error> {
        let now = now_micros();
        let mut transaction = self.pool.begin().await?;
        let locked = sqlx::query_scalar::<_, i64>(
            "UPDATE jobs SET result_json = COALESCE($3, result_json) WHERE id = $1 AND generation = $2 RETURNING generation",
        )
        .bind(job_id)
        .bind(generation)
        .bind(result_json)
        .fetch_optional(&mut *transaction)
        .await?;
        if locked.is_none() {
            transaction.rollback().await?;
            let current = self.get(job_id).await?.generation;
            return Err(Error::StaleGeneration { job_id: job_id.to_owned(), generation, current });
        }
        let Some(from) = transition_in(&mut transaction, job_id, to, message, now).await? else {
            transaction.rollback().await?;
            let state = self.get(job_id).await?.state()?;
            return Err(Error::invalid_transition(job_id, state, operation, allowed_sources(to)));
        };
        transaction.commit().await?;

        self.after_transition(job_id, to);
        tracing::info!(job_id, generation, from = from.map(JobState::short_name), "job state changed");
        self.get(job_id).await
    }
}

/// Locks the job row if it is still at `generation` in `state`, adding
/// `generation_step` to its generation, and returns the generation it now has.
async fn lock_job(
    transaction: &mut Transaction<'_>,
    job_id: &str,
    generation: i64,
    state: JobState,
    generation_step: i64,
) -> Result<Option<i64>, Error> {
    let locked = sqlx::query_scalar::<_, i64>(
        "UPDATE jobs SET generation = generation + $4 WHERE id = $1 AND generation = $2 AND state = $3 \
         RETURNING generation",
    )
    .bind(job_id)
    .bind(generation)
    .bind(state.short_name())
    .bind(generation_step)
    .fetch_optional(&mut **transaction)
    .await?;
    Ok(locked)
}

async fn apply_transitions(
    transaction: &mut Transaction<'_>,
    job_id: &str,
    transitions: &[JobState],
    message: &str,
    now: i64,
) -> Result<bool, Error> {
    for state in transitions {
        if transition_in(transaction, job_id, *state, message, now).await?.is_none() {
            return Ok(false);
        }
    }
    Ok(true)
}
