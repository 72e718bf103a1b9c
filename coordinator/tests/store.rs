//! Job store behaviour, each test run against a fresh PostgreSQL database and a
//! fresh SQLite file.

mod common;

use common::{TestDatabase, timed};
use ssl_coordinator::Error;
use std::time::Duration;

use ssl_coordinator::checkpoints::{BestMetric, RetentionPolicy};
use ssl_coordinator::store::{CheckpointRecord, EventKind, GenerationPlan, JobFilter, JobStore, NewJob, NewWorker, Progress};
use ssl_proto::JobState;

/// Generates one `#[tokio::test]` per database for an `async fn(JobStore, String)`
/// that gets a connected store and the database URL.
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let database = super::TestDatabase::postgres().await;
                    let store = super::JobStore::connect(&database.url).await.expect("connect");
                    super::timed(super::$name(store.clone(), database.url.clone())).await;
                    store.close().await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let database = super::TestDatabase::sqlite();
                    let store = super::JobStore::connect(&database.url).await.expect("connect");
                    super::timed(super::$name(store.clone(), database.url.clone())).await;
                    store.close().await;
                }
            )*
        }
    };
}

store_tests!(
    submit_stores_queued_job,
    submit_repeated_request_id_returns_same_job,
    submit_reused_request_id_other_spec_rejected,
    transitions_follow_lifecycle,
    cancel_finished_job_changes_nothing,
    shortcut_transition_rejected,
    unknown_job_not_found,
    list_newest_first_with_pages,
    list_filters_state_and_name,
    list_foreign_page_token_rejected,
    events_are_append_only,
    progress_only_while_running,
    concurrent_cancels_one_transition,
    concurrent_duplicate_submissions_one_job,
    migrations_rerun_cleanly,
    worker_name_unique_while_live,
    expired_lease_not_renewed,
    leader_lease_one_holder,
    generation_opens_once_per_plan,
    cancel_releases_workers,
    latest_checkpoint_highest_step,
    retention_keeps_last_and_best,
    retention_without_best_keeps_last,
    retention_unknown_job_not_found,
);

fn new_job(request_id: &str, name: &str) -> NewJob {
    NewJob {
        request_id: request_id.to_owned(),
        name: name.to_owned(),
        spec_json: format!(r#"{{"name":"{name}"}}"#),
        priority: 0,
    }
}

async fn count_jobs(store_url: &str) -> i64 {
    let store = JobStore::connect(store_url).await.unwrap();
    let page = store.list(&JobFilter::default(), 1000, None).await.unwrap();
    store.close().await;
    page.jobs.len() as i64
}

async fn submit_stores_queued_job(store: JobStore, _url: String) {
    let submission = store.submit(new_job("req-1", "adult")).await.unwrap();
    assert!(submission.created);
    let job = submission.job;
    assert_eq!(job.state().unwrap(), JobState::Queued);
    assert_eq!(job.name, "adult");
    assert_eq!(job.request_id, "req-1");
    assert_eq!(job.last_sequence, 1);
    assert_eq!(job.started_at_us, None);
    assert_eq!(job.finished_at_us, None);

    let events = store.events_after(&job.id, 0).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].sequence, 1);
    assert_eq!(events[0].kind, EventKind::StateChange { from: None, to: JobState::Queued, message: String::new() });
}

async fn submit_repeated_request_id_returns_same_job(store: JobStore, url: String) {
    let first = store.submit(new_job("req-same", "adult")).await.unwrap();
    let second = store.submit(new_job("req-same", "adult")).await.unwrap();
    assert!(first.created);
    assert!(!second.created);
    assert_eq!(first.job.id, second.job.id);
    assert_eq!(count_jobs(&url).await, 1);
    assert_eq!(store.events_after(&first.job.id, 0).await.unwrap().len(), 1);
}

async fn submit_reused_request_id_other_spec_rejected(store: JobStore, url: String) {
    let first = store.submit(new_job("req-reused", "adult")).await.unwrap();
    let error = store.submit(new_job("req-reused", "other")).await.unwrap_err();
    match error {
        Error::RequestIdReused { request_id, job_id } => {
            assert_eq!(request_id, "req-reused");
            assert_eq!(job_id, first.job.id);
        }
        other => panic!("expected RequestIdReused, got {other:?}"),
    }
    assert_eq!(count_jobs(&url).await, 1);
}

async fn transitions_follow_lifecycle(store: JobStore, _url: String) {
    let id = store.submit(new_job("req-life", "adult")).await.unwrap().job.id;
    store.transition(&id, JobState::Scheduled, "schedule", "").await.unwrap();
    let running = store.transition(&id, JobState::Running, "start", "").await.unwrap();
    assert!(running.started_at_us.is_some());
    assert_eq!(running.finished_at_us, None);
    store.transition(&id, JobState::Recovering, "recover", "worker lost").await.unwrap();
    store.transition(&id, JobState::Running, "resume", "").await.unwrap();
    let done = store.transition(&id, JobState::Succeeded, "finish", "").await.unwrap();
    assert_eq!(done.state().unwrap(), JobState::Succeeded);
    assert_eq!(done.started_at_us, running.started_at_us, "started_at keeps the first start");
    assert!(done.finished_at_us.is_some());
    assert_eq!(done.last_sequence, 6);

    let events = store.events_after(&id, 0).await.unwrap();
    let sequences: Vec<i64> = events.iter().map(|event| event.sequence).collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5, 6]);
    assert_eq!(
        events[3].kind,
        EventKind::StateChange {
            from: Some(JobState::Running),
            to: JobState::Recovering,
            message: "worker lost".to_owned()
        }
    );
    assert_eq!(store.events_after(&id, 4).await.unwrap().len(), 2);
}

async fn cancel_finished_job_changes_nothing(store: JobStore, _url: String) {
    let id = store.submit(new_job("req-done", "adult")).await.unwrap().job.id;
    store.transition(&id, JobState::Scheduled, "schedule", "").await.unwrap();
    store.transition(&id, JobState::Running, "start", "").await.unwrap();
    let done = store.transition(&id, JobState::Succeeded, "finish", "").await.unwrap();

    let error = store.transition(&id, JobState::Cancelled, "cancel", "too late").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("job `{id}` is SUCCEEDED; cancel needs a job in QUEUED, SCHEDULED, RUNNING, RECOVERING")
    );
    assert_eq!(tonic::Status::from(error).code(), tonic::Code::FailedPrecondition);

    let after = store.get(&id).await.unwrap();
    assert_eq!(after, done, "a rejected transition writes nothing");
    assert_eq!(store.events_after(&id, 0).await.unwrap().len(), 4);
}

async fn shortcut_transition_rejected(store: JobStore, _url: String) {
    let id = store.submit(new_job("req-short", "adult")).await.unwrap().job.id;
    let error = store.transition(&id, JobState::Succeeded, "finish", "").await.unwrap_err();
    assert!(matches!(error, Error::InvalidTransition { state: "QUEUED", .. }), "{error:?}");
    assert_eq!(store.get(&id).await.unwrap().state().unwrap(), JobState::Queued);
}

async fn unknown_job_not_found(store: JobStore, _url: String) {
    let id = uuid::Uuid::new_v4().to_string();
    assert!(matches!(store.get(&id).await, Err(Error::JobNotFound(found)) if found == id));
    let error = store.transition(&id, JobState::Cancelled, "cancel", "").await.unwrap_err();
    assert!(matches!(error, Error::JobNotFound(_)), "{error:?}");
}

async fn list_newest_first_with_pages(store: JobStore, _url: String) {
    let mut ids = Vec::new();
    for index in 0..5 {
        ids.push(store.submit(new_job(&format!("req-page-{index}"), "adult")).await.unwrap().job.id);
        // Distinct creation times keep the expected order independent of UUID order.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    ids.reverse();

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.list(&JobFilter::default(), 2, token.as_deref()).await.unwrap();
        pages += 1;
        seen.extend(page.jobs.into_iter().map(|job| job.id));
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids);
}

async fn list_filters_state_and_name(store: JobStore, _url: String) {
    let a = store.submit(new_job("req-f1", "alpha")).await.unwrap().job.id;
    let b = store.submit(new_job("req-f2", "beta")).await.unwrap().job.id;
    let c = store.submit(new_job("req-f3", "alpha")).await.unwrap().job.id;
    store.transition(&c, JobState::Cancelled, "cancel", "").await.unwrap();

    let queued = JobFilter { states: vec![JobState::Queued], name: None };
    let mut found: Vec<String> = store.list(&queued, 10, None).await.unwrap().jobs.into_iter().map(|job| job.id).collect();
    found.sort();
    let mut expected = vec![a.clone(), b];
    expected.sort();
    assert_eq!(found, expected);

    let alpha = JobFilter { states: vec![], name: Some("alpha".to_owned()) };
    assert_eq!(store.list(&alpha, 10, None).await.unwrap().jobs.len(), 2);

    let both = JobFilter { states: vec![JobState::Cancelled, JobState::Failed], name: Some("alpha".to_owned()) };
    let jobs = store.list(&both, 10, None).await.unwrap().jobs;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id, c);
}

async fn list_foreign_page_token_rejected(store: JobStore, _url: String) {
    let error = store.list(&JobFilter::default(), 10, Some("garbage")).await.unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(ref message) if message.starts_with("page_token: invalid value")), "{error:?}");
}

async fn events_are_append_only(store: JobStore, url: String) {
    let id = store.submit(new_job("req-append", "adult")).await.unwrap().job.id;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let update = sqlx::query("UPDATE job_events SET message = 'rewritten' WHERE job_id = $1").bind(&id).execute(&pool).await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM job_events WHERE job_id = $1").bind(&id).execute(&pool).await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    pool.close().await;
    assert_eq!(store.events_after(&id, 0).await.unwrap().len(), 1);
}

async fn progress_only_while_running(store: JobStore, _url: String) {
    let id = store.submit(new_job("req-progress", "adult")).await.unwrap().job.id;
    let progress = Progress { epoch: 1, step: 10, total_steps: 100, loss: 2.5, samples_per_second: 1000.0 };
    let error = store.record_progress(&id, progress).await.unwrap_err();
    assert!(matches!(error, Error::InvalidTransition { state: "QUEUED", .. }), "{error:?}");

    store.transition(&id, JobState::Scheduled, "schedule", "").await.unwrap();
    store.transition(&id, JobState::Running, "start", "").await.unwrap();
    store.record_progress(&id, progress).await.unwrap();
    let job = store.get(&id).await.unwrap();
    assert_eq!(job.progress().unwrap(), Some(progress));
    let events = store.events_after(&id, 3).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::Progress(progress));
}

async fn concurrent_cancels_one_transition(store: JobStore, url: String) {
    let id = store.submit(new_job("req-race-cancel", "adult")).await.unwrap().job.id;
    // A second handle with its own pool plays a second coordinator.
    let other = JobStore::connect(&url).await.unwrap();

    let mut tasks = Vec::new();
    for index in 0..8 {
        let handle = if index % 2 == 0 { store.clone() } else { other.clone() };
        let id = id.clone();
        tasks.push(tokio::spawn(async move { handle.transition(&id, JobState::Cancelled, "cancel", "race").await }));
    }
    let mut succeeded = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => succeeded += 1,
            Err(Error::InvalidTransition { state: "CANCELLED", .. }) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(succeeded, 1);
    assert_eq!(store.events_after(&id, 0).await.unwrap().len(), 2);
    other.close().await;
}

async fn concurrent_duplicate_submissions_one_job(store: JobStore, url: String) {
    let other = JobStore::connect(&url).await.unwrap();
    let mut tasks = Vec::new();
    for index in 0..8 {
        let handle = if index % 2 == 0 { store.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move { handle.submit(new_job("req-race-submit", "adult")).await }));
    }
    let mut ids = Vec::new();
    let mut created = 0;
    for task in tasks {
        let submission = task.await.unwrap().unwrap();
        created += usize::from(submission.created);
        ids.push(submission.job.id);
    }
    ids.dedup();
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1, "every call returns the same job");
    assert_eq!(count_jobs(&url).await, 1);
    assert_eq!(store.events_after(&ids[0], 0).await.unwrap().len(), 1);
    other.close().await;
}

async fn migrations_rerun_cleanly(store: JobStore, url: String) {
    let id = store.submit(new_job("req-migrate", "adult")).await.unwrap().job.id;
    let reopened = JobStore::connect(&url).await.unwrap();
    assert_eq!(reopened.get(&id).await.unwrap().id, id);
    reopened.close().await;
}

fn new_worker(name: &str) -> NewWorker {
    NewWorker {
        name: name.to_owned(),
        data_address: format!("{name}.test:7070"),
        capabilities_json: r#"{"backend":"cpu","devices":1,"memory_bytes":0}"#.to_owned(),
    }
}

const LONG_LEASE: Duration = Duration::from_secs(60);

async fn worker_name_unique_while_live(store: JobStore, _url: String) {
    let first = store.register_worker(new_worker("w-1"), LONG_LEASE).await.unwrap();
    assert_eq!(first.state_name, "IDLE");
    let error = store.register_worker(new_worker("w-1"), LONG_LEASE).await.unwrap_err();
    assert!(matches!(&error, Error::WorkerNameTaken(name) if name == "w-1"), "{error:?}");

    // A registration whose lease has already run out gives its name up.
    let short = store.register_worker(new_worker("w-2"), Duration::ZERO).await.unwrap();
    let replacement = store.register_worker(new_worker("w-2"), LONG_LEASE).await.unwrap();
    assert_ne!(replacement.id, short.id);
    assert_eq!(store.worker(&short.id).await.unwrap().state_name, "LOST");
}

async fn expired_lease_not_renewed(store: JobStore, _url: String) {
    let worker = store.register_worker(new_worker("w-expire"), Duration::ZERO).await.unwrap();
    let error = store.renew_lease(&worker.id, LONG_LEASE).await.unwrap_err();
    assert!(matches!(error, Error::WorkerLost(_)), "{error:?}");
    let expired = store.expire_leases().await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].id, worker.id);
    assert!(store.expire_leases().await.unwrap().is_empty(), "a lost worker expires once");

    let live = store.register_worker(new_worker("w-live"), LONG_LEASE).await.unwrap();
    store.renew_lease(&live.id, LONG_LEASE).await.unwrap();
    let unknown = store.renew_lease("6a1f0a52-0000-4000-8000-000000000000", LONG_LEASE).await.unwrap_err();
    assert!(matches!(unknown, Error::WorkerNotFound(_)), "{unknown:?}");
}

async fn leader_lease_one_holder(store: JobStore, _url: String) {
    assert!(store.try_acquire_lease("scheduler", "a", LONG_LEASE).await.unwrap());
    assert!(!store.try_acquire_lease("scheduler", "b", LONG_LEASE).await.unwrap());
    assert!(store.try_acquire_lease("scheduler", "a", LONG_LEASE).await.unwrap(), "the holder renews");
    store.release_lease("scheduler", "a").await.unwrap();
    assert!(store.try_acquire_lease("scheduler", "b", LONG_LEASE).await.unwrap());
    assert!(!store.try_acquire_lease("scheduler", "a", LONG_LEASE).await.unwrap());
}

async fn admitted_job(store: &JobStore, request_id: &str, workers: &[&str]) -> (String, Vec<String>) {
    let job = store.submit(new_job(request_id, request_id)).await.unwrap().job.id;
    let mut ids = Vec::new();
    for name in workers {
        ids.push(store.register_worker(new_worker(name), LONG_LEASE).await.unwrap().id);
    }
    let plan = GenerationPlan {
        job_id: job.clone(),
        expected_generation: 0,
        expected_state: JobState::Queued,
        transitions: vec![JobState::Scheduled],
        message: "admitted".to_owned(),
        workers: ids.clone(),
    };
    assert_eq!(store.open_generation(&plan).await.unwrap(), Some(1));
    // The same change planned again, as a second scheduler would, writes nothing.
    assert_eq!(store.open_generation(&plan).await.unwrap(), None);
    (job, ids)
}

async fn generation_opens_once_per_plan(store: JobStore, _url: String) {
    let (job, workers) = admitted_job(&store, "req-gen", &["w-gen-0", "w-gen-1"]).await;
    let record = store.get(&job).await.unwrap();
    assert_eq!(record.generation, 1);
    assert_eq!(record.state().unwrap(), JobState::Scheduled);
    let members = store.members(&job, 1).await.unwrap();
    assert_eq!(members.iter().map(|member| member.worker_id.clone()).collect::<Vec<_>>(), workers);
    assert_eq!(members.iter().map(|member| member.rank).collect::<Vec<_>>(), [0, 1]);

    // A busy worker cannot join another job.
    let other = store.submit(new_job("req-gen-other", "other")).await.unwrap().job.id;
    let steal = GenerationPlan {
        job_id: other.clone(),
        expected_generation: 0,
        expected_state: JobState::Queued,
        transitions: vec![JobState::Scheduled],
        message: "admitted".to_owned(),
        workers: vec![workers[0].clone()],
    };
    assert_eq!(store.open_generation(&steal).await.unwrap(), None);
    let untouched = store.get(&other).await.unwrap();
    assert_eq!((untouched.generation, untouched.state().unwrap()), (0, JobState::Queued));
    assert_eq!(store.events_after(&other, 0).await.unwrap().len(), 1, "a rejected plan appends no event");
}

async fn cancel_releases_workers(store: JobStore, _url: String) {
    let (job, workers) = admitted_job(&store, "req-release", &["w-rel-0", "w-rel-1"]).await;
    for worker in &workers {
        assert_eq!(store.worker(worker).await.unwrap().job_id.as_deref(), Some(job.as_str()));
    }
    store.transition(&job, JobState::Cancelled, "cancel", "").await.unwrap();
    for worker in &workers {
        let record = store.worker(worker).await.unwrap();
        assert_eq!(record.state_name, "IDLE");
        assert_eq!(record.job_id, None);
    }
}

fn checkpoint_at(job_id: &str, step: i64, loss: f64) -> CheckpointRecord {
    CheckpointRecord {
        job_id: job_id.to_owned(),
        step,
        epoch: step / 100,
        uri: format!("file:///ckpt/jobs/{job_id}/checkpoints/{step:010}/"),
        loss,
        committed_at_us: 1_700_000_000_000_000 + step,
    }
}

async fn stored_steps(store: &JobStore, job_id: &str) -> Vec<i64> {
    store.checkpoints(job_id).await.unwrap().into_iter().map(|checkpoint| checkpoint.step).collect()
}

async fn latest_checkpoint_highest_step(store: JobStore, _url: String) {
    let job = store.submit(new_job("req-latest", "latest")).await.unwrap().job.id;
    let other = store.submit(new_job("req-latest-other", "other")).await.unwrap().job.id;
    assert_eq!(store.latest_checkpoint(&job).await.unwrap(), None);

    for step in [300, 100, 200] {
        assert!(store.record_checkpoint(&checkpoint_at(&job, step, 0.5)).await.unwrap());
    }
    assert!(!store.record_checkpoint(&checkpoint_at(&job, 300, 0.1)).await.unwrap(), "a step is recorded once");
    assert_eq!(store.latest_checkpoint(&job).await.unwrap(), Some(checkpoint_at(&job, 300, 0.5)));
    assert_eq!(store.latest_checkpoint(&other).await.unwrap(), None);
}

async fn retention_keeps_last_and_best(store: JobStore, _url: String) {
    let job = store.submit(new_job("req-retain", "retain")).await.unwrap().job.id;
    let other = store.submit(new_job("req-retain-other", "other")).await.unwrap().job.id;
    let losses = [(100, 0.9), (200, 0.2), (300, 0.5), (400, 0.4), (500, 0.3)];
    for (step, loss) in losses {
        store.record_checkpoint(&checkpoint_at(&job, step, loss)).await.unwrap();
        store.record_checkpoint(&checkpoint_at(&other, step, loss)).await.unwrap();
    }

    let policy = RetentionPolicy { keep_last: 2, keep_best_by: BestMetric::Loss };
    let expired = store.expire_checkpoints(&job, policy).await.unwrap();
    assert_eq!(expired, [checkpoint_at(&job, 300, 0.5), checkpoint_at(&job, 100, 0.9)]);
    assert_eq!(stored_steps(&store, &job).await, [500, 400, 200]);
    assert_eq!(stored_steps(&store, &other).await, [500, 400, 300, 200, 100], "another job's rows stay");

    // Applying the same policy again expires nothing more.
    assert!(store.expire_checkpoints(&job, policy).await.unwrap().is_empty());

    // A newer checkpoint pushes the oldest of the last two out; the best stays.
    store.record_checkpoint(&checkpoint_at(&job, 600, 0.35)).await.unwrap();
    let expired = store.expire_checkpoints(&job, policy).await.unwrap();
    assert_eq!(expired, [checkpoint_at(&job, 400, 0.4)]);
    assert_eq!(stored_steps(&store, &job).await, [600, 500, 200]);
}

async fn retention_without_best_keeps_last(store: JobStore, _url: String) {
    let job = store.submit(new_job("req-retain-last", "retain")).await.unwrap().job.id;
    for (step, loss) in [(100, 0.1), (200, 0.2), (300, 0.3)] {
        store.record_checkpoint(&checkpoint_at(&job, step, loss)).await.unwrap();
    }
    let policy = RetentionPolicy { keep_last: 1, keep_best_by: BestMetric::None };
    let expired: Vec<i64> = store.expire_checkpoints(&job, policy).await.unwrap().into_iter().map(|checkpoint| checkpoint.step).collect();
    assert_eq!(expired, [200, 100]);
    assert_eq!(stored_steps(&store, &job).await, [300]);
}

async fn retention_unknown_job_not_found(store: JobStore, _url: String) {
    let id = uuid::Uuid::new_v4().to_string();
    let policy = RetentionPolicy { keep_last: 1, keep_best_by: BestMetric::Loss };
    let error = store.expire_checkpoints(&id, policy).await.unwrap_err();
    assert!(matches!(&error, Error::JobNotFound(found) if *found == id), "{error:?}");
}
