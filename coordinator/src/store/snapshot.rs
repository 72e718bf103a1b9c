//! Reads of the counts and per-job figures that the coordinator's metrics report.

use ssl_proto::JobState;

use super::JobStore;
use super::records::Progress;
use crate::Error;

/// The job store's state as the metrics report it, read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct StoreSnapshot {
    /// Jobs by state; states without jobs are absent.
    pub jobs_by_state: Vec<(JobState, i64)>,
    /// Workers that are not lost.
    pub workers: Vec<WorkerLease>,
    /// Jobs in `SCHEDULED`, `RUNNING` or `RECOVERING`.
    pub active_jobs: Vec<ActiveJob>,
}

/// Lease of a registered worker.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WorkerLease {
    pub id: String,
    #[sqlx(rename = "state")]
    pub state_name: String,
    pub lease_expires_at_us: i64,
}

/// Figures of one active job.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveJob {
    pub id: String,
    pub state: JobState,
    pub generation: i64,
    /// Step of the latest stored progress.
    pub step: Option<i64>,
    /// When the job entered its current state, in microseconds since the Unix epoch.
    pub state_since_us: Option<i64>,
    /// When the latest progress was stored, in microseconds since the Unix epoch.
    pub last_progress_us: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct ActiveJobRow {
    id: String,
    state: String,
    generation: i64,
    progress_json: Option<String>,
}

impl JobStore {
    /// Reads the job counts by state, the registered workers' leases and the active jobs.
    ///
    /// NOTE: each active job costs two reads of its newest events, and the read of
    /// its latest state change scans back past all progress events since. That suits
    /// tens of active jobs per scrape, not thousands.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when a read fails, [`Error::CorruptRow`] for an unknown
    /// state name or unreadable progress.
    pub async fn snapshot(&self) -> Result<StoreSnapshot, Error> {
        let counts = sqlx::query_as::<_, (String, i64)>("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetch_all(&self.pool).await?;
        let jobs_by_state = counts.into_iter().map(|(name, count)| Ok((parse_state(&name)?, count))).collect::<Result<_, Error>>()?;

        let workers = sqlx::query_as::<_, WorkerLease>("SELECT id, state, lease_expires_at_us FROM workers WHERE state <> 'LOST' ORDER BY id")
            .fetch_all(&self.pool)
            .await?;

        let rows = sqlx::query_as::<_, ActiveJobRow>(
            "SELECT id, state, generation, progress_json FROM jobs \
             WHERE state IN ('SCHEDULED', 'RUNNING', 'RECOVERING') ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut active_jobs = Vec::with_capacity(rows.len());
        for row in rows {
            let step = row.progress_json.as_deref().map(Progress::from_json).transpose()?.map(|progress| progress.step);
            active_jobs.push(ActiveJob {
                state: parse_state(&row.state)?,
                generation: row.generation,
                step,
                state_since_us: self.latest_event_at(&row.id, "state_change").await?,
                last_progress_us: self.latest_event_at(&row.id, "progress").await?,
                id: row.id,
            });
        }
        Ok(StoreSnapshot { jobs_by_state, workers, active_jobs })
    }

    /// Returns when `job_id` entered its current state, in microseconds since the
    /// Unix epoch, or `None` for a job without state changes.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the read fails.
    pub async fn state_entered_at(&self, job_id: &str) -> Result<Option<i64>, Error> {
        self.latest_event_at(job_id, "state_change").await
    }

    async fn latest_event_at(&self, job_id: &str, kind: &str) -> Result<Option<i64>, Error> {
        let at = sqlx::query_scalar::<_, i64>(
            "SELECT created_at_us FROM job_events WHERE job_id = $1 AND kind = $2 ORDER BY sequence DESC LIMIT 1",
        )
        .bind(job_id)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?;
        Ok(at)
    }
}

fn parse_state(name: &str) -> Result<JobState, Error> {
    JobState::from_short_name(name).ok_or_else(|| Error::CorruptRow(format!("unknown job state `{name}`")))
}
