//! Reads of `assignments`: the ranks of a job's generation and a worker's
//! current assignment.

use sqlx::AssertSqlSafe;
use ssl_proto::JobState;

use super::jobs::JOB_COLUMNS;
use super::workers::WorkerState;
use super::{JobRecord, JobStore, now_micros};
use crate::Error;

/// One rank of a generation, with the state of its worker now.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Member {
    pub worker_id: String,
    pub worker_name: String,
    pub rank: i64,
    pub data_address: String,
    pub worker_state: String,
    /// The job the worker belongs to now, which differs from the generation's
    /// job once the worker was released.
    pub worker_job_id: Option<String>,
    pub lease_expires_at_us: i64,
}

impl Member {
    /// Whether the worker still serves `job_id` with a live lease.
    pub fn is_live_in(&self, job_id: &str, now_us: i64) -> bool {
        self.worker_state == "BUSY" && self.worker_job_id.as_deref() == Some(job_id) && self.lease_expires_at_us > now_us
    }
}

/// What a worker should be training now.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentAssignment {
    pub job_id: String,
    pub generation: i64,
    pub rank: i64,
    pub world_size: i64,
    /// Data-plane addresses indexed by rank.
    pub peer_addresses: Vec<String>,
    pub spec_json: String,
}

/// A worker's situation as its assignment stream reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum AssignmentView {
    /// The worker must register again.
    Lost,
    Idle,
    Assigned(CurrentAssignment),
}

impl JobStore {
    /// Returns the ranks of one generation of a job, by rank.
    pub async fn members(&self, job_id: &str, generation: i64) -> Result<Vec<Member>, Error> {
        let members = sqlx::query_as::<_, Member>(
            "SELECT a.worker_id, w.name AS worker_name, a.rank, w.data_address, w.state AS worker_state, \
                    w.job_id AS worker_job_id, w.lease_expires_at_us \
             FROM assignments a JOIN workers w ON w.id = a.worker_id \
             WHERE a.job_id = $1 AND a.generation = $2 ORDER BY a.rank",
        )
        .bind(job_id)
        .bind(generation)
        .fetch_all(&self.pool)
        .await?;
        Ok(members)
    }

    /// Returns the jobs in any of `states`, highest priority first and oldest
    /// first within a priority: the order the scheduler serves them in.
    ///
    /// `limit` caps the number of jobs returned; `None` returns them all.
    pub async fn jobs_by_priority(&self, states: &[JobState], limit: Option<u32>) -> Result<Vec<JobRecord>, Error> {
        let placeholders: Vec<String> = (1..=states.len()).map(|n| format!("${n}")).collect();
        let limit = limit.map(|limit| format!(" LIMIT {limit}")).unwrap_or_default();
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ({}) ORDER BY priority DESC, created_at_us, id{limit}",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as::<_, JobRecord>(AssertSqlSafe(sql));
        for state in states {
            query = query.bind(state.short_name());
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// Returns the rank of `worker_id` in a generation of a job, if it has one.
    pub async fn rank_of(&self, job_id: &str, generation: i64, worker_id: &str) -> Result<Option<i64>, Error> {
        let rank = sqlx::query_scalar::<_, i64>(
            "SELECT rank FROM assignments WHERE job_id = $1 AND generation = $2 AND worker_id = $3",
        )
        .bind(job_id)
        .bind(generation)
        .bind(worker_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(rank)
    }

    /// Returns what `worker_id` should be doing now.
    ///
    /// # Errors
    ///
    /// [`Error::WorkerNotFound`] for an unknown id.
    pub async fn assignment_view(&self, worker_id: &str) -> Result<AssignmentView, Error> {
        let worker = self.worker(worker_id).await?;
        let job_id = match (worker.state()?, &worker.job_id) {
            (WorkerState::Lost, _) => return Ok(AssignmentView::Lost),
            (_, _) if worker.lease_expires_at_us <= now_micros() => return Ok(AssignmentView::Lost),
            (WorkerState::Busy, Some(job_id)) => job_id.clone(),
            (WorkerState::Idle | WorkerState::Busy, _) => return Ok(AssignmentView::Idle),
        };

        let job = self.get(&job_id).await?;
        let members = self.members(&job_id, job.generation).await?;
        let Some(own) = members.iter().find(|member| member.worker_id == worker_id) else {
            return Ok(AssignmentView::Idle);
        };
        Ok(AssignmentView::Assigned(CurrentAssignment {
            job_id,
            generation: job.generation,
            rank: own.rank,
            world_size: members.len() as i64,
            peer_addresses: members.iter().map(|member| member.data_address.clone()).collect(),
            spec_json: job.spec_json,
        }))
    }
}
