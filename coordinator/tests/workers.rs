//! The worker API and the scheduler over real gRPC on 127.0.0.1, with fake
//! workers that are plain gRPC clients.

mod common;

use std::time::Duration;

use common::fake_worker::{FakeWorker, register_request, worker_client};
use common::{JOIN_TOKEN, TOKEN, TestDatabase, TestServer, client, spec, submit_request, timed};
use ssl_coordinator::store::{EventKind, JobStore};
use ssl_proto::JobState;
use ssl_proto::v1::{
    Assignment, CancelJobRequest, CheckpointPolicy, CheckpointRef, GetJobRequest, HeartbeatRequest, JobFailure, JobSpec, ListCheckpointsRequest, PeerFailure,
    ReportCheckpointRequest, ReportFailureRequest, ReportResultRequest, WorkerRange, assignment_update, report_failure_request::Failure,
};
use tonic::Code;

/// Longer than the 1 s lease of [`TestServer::start_fast`] plus a few passes.
const LEASE_LAPSE: Duration = Duration::from_millis(1600);

fn spec_with_workers(name: &str, min: i32, max: i32, priority: i32) -> JobSpec {
    let mut spec = spec(name);
    spec.workers = Some(WorkerRange { min: Some(min), max: Some(max) });
    spec.priority = Some(priority);
    spec
}

async fn submit(server: &TestServer, request_id: &str, spec: JobSpec) -> String {
    let mut client = client(&server.endpoint()).await;
    client.submit_job(submit_request(request_id, spec)).await.unwrap().into_inner().job.unwrap().id
}

async fn job_state(server: &TestServer, job_id: &str) -> JobState {
    let mut client = client(&server.endpoint()).await;
    client.get_job(GetJobRequest { id: job_id.to_owned() }).await.unwrap().into_inner().state()
}

/// Polls until the job reaches `state`; panics after 10 s.
async fn wait_for_state(server: &TestServer, job_id: &str, state: JobState) {
    for _ in 0..200 {
        if job_state(server, job_id).await == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job `{job_id}` did not reach {state:?} within 10 s; it is {:?}", job_state(server, job_id).await);
}

/// Polls until the job reaches `generation`; panics after 10 s.
async fn wait_for_generation(store: &JobStore, job_id: &str, generation: i64) {
    for _ in 0..200 {
        if store.get(job_id).await.unwrap().generation >= generation {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job `{job_id}` did not reach generation {generation} within 10 s");
}

fn ranks_by_worker(assignments: &[(&FakeWorker, &Assignment)]) -> Vec<i32> {
    let mut ranks: Vec<i32> = assignments.iter().map(|(_, assignment)| assignment.rank).collect();
    ranks.sort();
    ranks
}

fn check_generation(members: &[(&FakeWorker, &Assignment)], generation: i64) {
    let world_size = members.len() as i32;
    assert_eq!(ranks_by_worker(members), (0..world_size).collect::<Vec<_>>());
    for (worker, assignment) in members {
        assert_eq!(assignment.generation, generation, "worker `{}`", worker.name);
        assert_eq!(assignment.world_size, world_size, "worker `{}`", worker.name);
        assert_eq!(assignment.peer_addresses.len(), members.len());
        assert_eq!(assignment.peer_addresses[assignment.rank as usize], worker.data_address);
        assert_eq!(assignment.spec.as_ref().unwrap().workers.as_ref().unwrap().min, Some(2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_renews_until_lease_lapses() {
    timed(async {
        let database = TestDatabase::sqlite();
        let server = TestServer::start_fast(&database.url).await;
        let mut worker = FakeWorker::start(&server.endpoint(), "w-lease").await;

        // Several leases long: heartbeats keep the worker.
        tokio::time::sleep(LEASE_LAPSE).await;
        let mut client = worker.client.clone();
        let reply = client.heartbeat(HeartbeatRequest { worker_id: worker.id.clone(), progress: None }).await.unwrap().into_inner();
        assert_eq!(reply.lease_duration_ms, 1000);
        assert_eq!((reply.job_id.as_str(), reply.generation), ("", 0), "an idle worker has no job");

        worker.stop_heartbeats();
        tokio::time::sleep(LEASE_LAPSE).await;
        let error = client.heartbeat(HeartbeatRequest { worker_id: worker.id.clone(), progress: None }).await.unwrap_err();
        assert_eq!(error.code(), Code::FailedPrecondition);
        assert!(error.message().contains("register again"), "{}", error.message());
        let ended = worker.next_update().await.unwrap_err();
        assert_eq!(ended.code(), Code::FailedPrecondition);

        let unknown = uuid::Uuid::new_v4().to_string();
        let error = client.heartbeat(HeartbeatRequest { worker_id: unknown, progress: None }).await.unwrap_err();
        assert_eq!(error.code(), Code::NotFound);
        server.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_join_token_rejected() {
    timed(async {
        let database = TestDatabase::sqlite();
        let server = TestServer::start_fast(&database.url).await;
        for token in [Some(TOKEN), Some("not-a-join-token"), None] {
            let mut client = worker_client(&server.endpoint(), token).await;
            let error = client.register_worker(register_request("w-token", "127.0.0.1:7070")).await.unwrap_err();
            assert_eq!(error.code(), Code::Unauthenticated, "token {token:?}");
        }
        // The job API does not accept the join token either.
        let mut jobs = common::client_with_token(&server.endpoint(), Some(JOIN_TOKEN)).await;
        let error = jobs.list_jobs(ssl_proto::v1::ListJobsRequest::default()).await.unwrap_err();
        assert_eq!(error.code(), Code::Unauthenticated);
        server.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_live_name_rejected() {
    timed(async {
        let database = TestDatabase::sqlite();
        let server = TestServer::start_fast(&database.url).await;
        let mut first = FakeWorker::start(&server.endpoint(), "w-twin").await;
        let mut client = worker_client(&server.endpoint(), Some(JOIN_TOKEN)).await;
        let error = client.register_worker(register_request("w-twin", "127.0.0.1:7071")).await.unwrap_err();
        assert_eq!(error.code(), Code::AlreadyExists);
        assert!(error.message().contains("`w-twin`"), "{}", error.message());

        first.stop_heartbeats();
        tokio::time::sleep(LEASE_LAPSE).await;
        let replaced = client.register_worker(register_request("w-twin", "127.0.0.1:7071")).await.unwrap().into_inner();
        assert_ne!(replaced.worker_id, first.id);

        let invalid = client.register_worker(register_request("w-bad", "no-port")).await.unwrap_err();
        assert_eq!(invalid.code(), Code::InvalidArgument);
        assert!(invalid.message().starts_with("data_address:"), "{}", invalid.message());
        server.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gang_admission_waits_for_min_takes_max() {
    timed(async {
        let database = TestDatabase::sqlite();
        let server = TestServer::start_fast(&database.url).await;
        let endpoint = server.endpoint();

        // One idle worker is not enough for a minimum of 2.
        let waiting = submit(&server, "req-gang-min", spec_with_workers("gang-min", 2, 3, 0)).await;
        let mut pair = vec![FakeWorker::start(&endpoint, "w-gang-0").await];
        pair[0].expect_quiet(Duration::from_millis(500)).await;
        assert_eq!(job_state(&server, &waiting).await, JobState::Queued);
        pair.push(FakeWorker::start(&endpoint, "w-gang-1").await);
        for worker in &mut pair {
            let assignment = worker.next_assignment().await;
            assert_eq!((assignment.job_id.as_str(), assignment.world_size), (waiting.as_str(), 2));
        }
        assert_eq!(job_state(&server, &waiting).await, JobState::Scheduled);

        // Three idle workers and a maximum of 2: one stays idle.
        let mut spares = Vec::new();
        for index in 2..5 {
            spares.push(FakeWorker::start(&endpoint, &format!("w-gang-{index}")).await);
        }
        let capped = submit(&server, "req-gang-max", spec_with_workers("gang-max", 1, 2, 0)).await;
        wait_for_state(&server, &capped, JobState::Scheduled).await;
        let mut assigned = Vec::new();
        let mut idle = Vec::new();
        for worker in &mut spares {
            match tokio::time::timeout(Duration::from_millis(1000), worker.next_update()).await {
                Ok(update) => assigned.push(update.unwrap()),
                Err(_) => idle.push(worker.name.clone()),
            }
        }
        assert_eq!(assigned.len(), 2, "idle: {idle:?}");
        assert_eq!(idle.len(), 1);
        server.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_then_fifo_and_cancel_releases() {
    timed(async {
        let database = TestDatabase::sqlite();
        let server = TestServer::start_fast(&database.url).await;
        let low = submit(&server, "req-low", spec_with_workers("low", 1, 1, 0)).await;
        let high_first = submit(&server, "req-high-1", spec_with_workers("high-1", 1, 1, 5)).await;
        let high_second = submit(&server, "req-high-2", spec_with_workers("high-2", 1, 1, 5)).await;

        let mut worker = FakeWorker::start(&server.endpoint(), "w-prio").await;
        let mut jobs = client(&server.endpoint()).await;
        for expected in [&high_first, &high_second, &low] {
            let assignment = worker.next_assignment().await;
            assert_eq!(&assignment.job_id, expected);
            assert_eq!((assignment.generation, assignment.rank, assignment.world_size), (1, 0, 1));
            assert_eq!(job_state(&server, expected).await, JobState::Scheduled);

            jobs.cancel_job(CancelJobRequest { id: expected.clone(), message: "next".to_owned() }).await.unwrap();
            let release = worker.next_release().await;
            assert_eq!(&release.job_id, expected);
            assert_eq!(release.reason, "job is CANCELLED: next");
        }
        worker.expect_quiet(Duration::from_millis(300)).await;
        server.stop().await.unwrap();
    })
    .await;
}

async fn lost_worker_opens_next_generation(database: TestDatabase) {
    let server = TestServer::start_fast(&database.url).await;
    let endpoint = server.endpoint();
    // Workers first, so that admission sees all three at once.
    let mut workers = Vec::new();
    for index in 0..3 {
        workers.push(FakeWorker::start(&endpoint, &format!("w-lost-{index}")).await);
    }
    let job = submit(&server, "req-lost", spec_with_workers("lost", 2, 3, 0)).await;
    let mut first: Vec<Assignment> = Vec::new();
    for worker in &mut workers {
        first.push(worker.next_assignment().await);
    }
    check_generation(&workers.iter().zip(&first).collect::<Vec<_>>(), 1);
    assert_eq!(job_state(&server, &job).await, JobState::Scheduled);

    // Rank 0's first progress starts the job.
    let rank_zero = first.iter().position(|assignment| assignment.rank == 0).unwrap();
    workers[rank_zero].report_progress(&first[rank_zero], 10);
    wait_for_state(&server, &job, JobState::Running).await;

    // The worker with rank 1 stops heartbeating; the other two continue as generation 2.
    let lost = first.iter().position(|assignment| assignment.rank == 1).unwrap();
    let mut lost_worker = workers.remove(lost);
    lost_worker.stop_heartbeats();
    let mut second = Vec::new();
    for worker in &mut workers {
        second.push(worker.next_assignment().await);
    }
    check_generation(&workers.iter().zip(&second).collect::<Vec<_>>(), 2);
    assert_eq!(job_state(&server, &job).await, JobState::Recovering);
    let lost_release = lost_worker.next_release().await;
    assert_eq!(lost_release.job_id, job);

    let rank_zero = second.iter().position(|assignment| assignment.rank == 0).unwrap();
    workers[rank_zero].report_progress(&second[rank_zero], 20);
    wait_for_state(&server, &job, JobState::Running).await;

    // A late worker joins at generation 3.
    let mut late = FakeWorker::start(&endpoint, "w-lost-late").await;
    let late_assignment = late.next_assignment().await;
    assert_eq!(late_assignment.generation, 3);
    assert_eq!(late_assignment.world_size, 3);
    let mut third = Vec::new();
    for worker in &mut workers {
        third.push(worker.next_assignment().await);
    }
    assert!(third.iter().all(|assignment| assignment.generation == 3));
    assert_eq!(late_assignment.rank, 2, "survivors keep the low ranks");

    // Below the minimum of 2: back to the queue, and the survivors are released.
    let mut survivors = vec![late];
    survivors.extend(workers.drain(1..));
    workers[0].stop_heartbeats();
    survivors[0].stop_heartbeats();
    // The two leases may lapse in different passes, with one generation between.
    let remaining = &mut survivors[1];
    let release = loop {
        match remaining.next_update().await.unwrap().kind {
            Some(assignment_update::Kind::Assignment(assignment)) => assert_eq!(assignment.generation, 4),
            Some(assignment_update::Kind::Release(release)) => break release,
            None => panic!("update without kind"),
        }
    };
    assert_eq!(release.job_id, job);
    assert!(release.reason.starts_with("job is QUEUED"), "{}", release.reason);
    wait_for_state(&server, &job, JobState::Queued).await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_worker_opens_next_generation_postgres() {
    timed(lost_worker_opens_next_generation(TestDatabase::postgres().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_worker_opens_next_generation_sqlite() {
    timed(lost_worker_opens_next_generation(TestDatabase::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_result_succeeds_with_checkpoints() {
    timed(async {
        let database = TestDatabase::sqlite();
        let server = TestServer::start_fast(&database.url).await;
        let job = submit(&server, "req-result", spec_with_workers("result", 2, 2, 0)).await;
        let mut workers = vec![
            FakeWorker::start(&server.endpoint(), "w-result-0").await,
            FakeWorker::start(&server.endpoint(), "w-result-1").await,
        ];
        let mut assignments = Vec::new();
        for worker in &mut workers {
            assignments.push(worker.next_assignment().await);
        }
        let rank_zero = assignments.iter().position(|assignment| assignment.rank == 0).unwrap();
        let other = 1 - rank_zero;
        workers[rank_zero].report_progress(&assignments[rank_zero], 100);
        wait_for_state(&server, &job, JobState::Running).await;

        let checkpoint = |worker: &FakeWorker| ReportCheckpointRequest {
            worker_id: worker.id.clone(),
            job_id: job.clone(),
            generation: 1,
            step: 100,
            epoch: 1,
            uri: format!("file:///ckpt/jobs/{job}/checkpoints/100/"),
            loss: 0.5,
        };
        let mut other_client = workers[other].client.clone();
        let heartbeat = HeartbeatRequest { worker_id: workers[other].id.clone(), progress: None };
        let reply = other_client.heartbeat(heartbeat).await.unwrap().into_inner();
        assert_eq!((reply.job_id.as_str(), reply.generation), (job.as_str(), 1));
        let error = other_client.report_checkpoint(checkpoint(&workers[other])).await.unwrap_err();
        assert_eq!(error.code(), Code::FailedPrecondition);
        assert!(error.message().contains("is not rank 0"), "{}", error.message());
        let mut client = workers[rank_zero].client.clone();
        client.report_checkpoint(checkpoint(&workers[rank_zero])).await.unwrap();
        // A retried report is harmless.
        client.report_checkpoint(checkpoint(&workers[rank_zero])).await.unwrap();
        let mut jobs = common::client(&server.endpoint()).await;
        let listed = jobs.list_checkpoints(ListCheckpointsRequest { job_id: job.clone() }).await.unwrap().into_inner();
        assert_eq!(listed.checkpoints.len(), 1);
        assert_eq!(listed.checkpoints[0].step, 100);
        assert_eq!(listed.checkpoints[0].uri, format!("file:///ckpt/jobs/{job}/checkpoints/100/"));

        let results = r#"{"linear_probe":{"accuracy":0.85}}"#;
        let invalid = ReportResultRequest { worker_id: workers[rank_zero].id.clone(), job_id: job.clone(), generation: 1, result_json: "[]".to_owned() };
        assert_eq!(client.report_result(invalid).await.unwrap_err().code(), Code::InvalidArgument);
        let request = ReportResultRequest { worker_id: workers[rank_zero].id.clone(), job_id: job.clone(), generation: 1, result_json: results.to_owned() };
        client.report_result(request).await.unwrap();
        assert_eq!(job_state(&server, &job).await, JobState::Succeeded);
        for worker in &mut workers {
            assert!(worker.next_release().await.reason.starts_with("job is SUCCEEDED"));
        }

        let fetched = common::client(&server.endpoint()).await.get_job(GetJobRequest { id: job.clone() }).await.unwrap().into_inner();
        assert_eq!(fetched.result_json, results);
        assert_eq!(fetched.generation, 1);

        let store = JobStore::connect(&database.url).await.unwrap();
        let record = store.get(&job).await.unwrap();
        assert_eq!(record.result_json.as_deref(), Some(results));
        for worker in &workers {
            assert_eq!(store.worker(&worker.id).await.unwrap().state_name, "IDLE");
        }
        store.close().await;
        server.stop().await.unwrap();
    })
    .await;
}

/// Retention through `ReportCheckpoint`, and the checkpoint folder and resume
/// point that assignments carry.
async fn checkpoint_retention_and_resume(database: TestDatabase) {
    let server = TestServer::start_fast(&database.url).await;
    let mut job_spec = spec_with_workers("retain", 1, 2, 0);
    job_spec.checkpoint = Some(CheckpointPolicy { keep_last: Some(2), keep_best_by: Some("loss".to_owned()), ..Default::default() });
    let job = submit(&server, "req-retain", job_spec).await;

    let mut first = FakeWorker::start(&server.endpoint(), "w-retain-0").await;
    let assignment = first.next_assignment().await;
    let folder = format!("{}/jobs/{job}/checkpoints/", common::CHECKPOINT_ROOT);
    assert_eq!((assignment.job_id.as_str(), assignment.generation), (job.as_str(), 1));
    assert_eq!(assignment.checkpoint_uri, folder);
    assert_eq!(assignment.resume_from, None);
    first.report_progress(&assignment, 100);
    wait_for_state(&server, &job, JobState::Running).await;

    let uri = |step: i64| format!("{folder}{step:010}/");
    let report = |step: i64, loss: f64| ReportCheckpointRequest {
        worker_id: first.id.clone(),
        job_id: job.clone(),
        generation: 1,
        step,
        epoch: 1,
        uri: uri(step),
        loss,
    };
    let mut client = first.client.clone();
    // With keep_last 2 and the lowest loss kept, each row lists what that report expires.
    let reports: [(i64, f64, Vec<String>); 5] = [
        (100, 0.2, vec![]),
        (200, 0.5, vec![]),
        (300, 0.4, vec![]),
        (400, 0.6, vec![uri(200)]),
        (500, 0.1, vec![uri(300), uri(100)]),
    ];
    for (step, loss, expected) in reports {
        let reply = client.report_checkpoint(report(step, loss)).await.unwrap().into_inner();
        assert_eq!(reply.expired_uris, expected, "report of step {step}");
    }
    // A retried report records nothing and expires nothing.
    let retried = client.report_checkpoint(report(500, 0.1)).await.unwrap().into_inner();
    assert!(retried.expired_uris.is_empty(), "{:?}", retried.expired_uris);

    let mut jobs = common::client(&server.endpoint()).await;
    let listed = jobs.list_checkpoints(ListCheckpointsRequest { job_id: job.clone() }).await.unwrap().into_inner().checkpoints;
    let steps: Vec<i64> = listed.iter().map(|checkpoint| checkpoint.step).collect();
    assert_eq!(steps, [500, 400]);
    assert_eq!(listed[0].uri, uri(500));
    assert_eq!(listed[0].loss, 0.1);
    assert_eq!(listed[1].uri, uri(400));

    let mut missing_slash = report(600, 0.3);
    missing_slash.uri = format!("{folder}0000000600");
    let error = client.report_checkpoint(missing_slash).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(error.message().starts_with("uri: invalid value"), "{}", error.message());

    // A second worker grows the job, and the new generation resumes from step 500.
    let mut second = FakeWorker::start(&server.endpoint(), "w-retain-1").await;
    let grown = [first.next_assignment().await, second.next_assignment().await];
    for assignment in &grown {
        assert_eq!((assignment.generation, assignment.world_size), (2, 2));
        assert_eq!(assignment.checkpoint_uri, folder);
        assert_eq!(assignment.resume_from, Some(CheckpointRef { step: 500, uri: uri(500) }));
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_retention_and_resume_postgres() {
    timed(checkpoint_retention_and_resume(TestDatabase::postgres().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_retention_and_resume_sqlite() {
    timed(checkpoint_retention_and_resume(TestDatabase::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_failure_fails_job_frees_workers() {
    timed(async {
        let database = TestDatabase::sqlite();
        let server = TestServer::start_fast(&database.url).await;
        let failing = submit(&server, "req-fail", spec_with_workers("fail", 1, 1, 5)).await;
        let next = submit(&server, "req-after-fail", spec_with_workers("after", 1, 1, 0)).await;
        let mut worker = FakeWorker::start(&server.endpoint(), "w-fail").await;
        let assignment = worker.next_assignment().await;
        assert_eq!(assignment.job_id, failing);

        let message = "dataset file:///data/adult/train.csv.gz not found";
        let mut client = worker.client.clone();
        let request = ReportFailureRequest {
            worker_id: worker.id.clone(),
            job_id: failing.clone(),
            generation: 1,
            failure: Some(Failure::Job(JobFailure { message: message.to_owned() })),
        };
        client.report_failure(request).await.unwrap();

        let mut jobs = common::client(&server.endpoint()).await;
        let failed = jobs.get_job(GetJobRequest { id: failing.clone() }).await.unwrap().into_inner();
        assert_eq!(failed.state(), JobState::Failed);
        assert_eq!(failed.message, message);
        assert_eq!(worker.next_release().await.reason, format!("job is FAILED: {message}"));
        // The freed worker takes the next job.
        assert_eq!(worker.next_assignment().await.job_id, next);
        server.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_failure_drops_unreachable_rank() {
    timed(async {
        let database = TestDatabase::sqlite();
        let server = TestServer::start_fast(&database.url).await;
        let mut workers = Vec::new();
        for index in 0..3 {
            workers.push(FakeWorker::start(&server.endpoint(), &format!("w-peer-{index}")).await);
        }
        let job = submit(&server, "req-peer", spec_with_workers("peer", 2, 3, 0)).await;
        let mut first = Vec::new();
        for worker in &mut workers {
            first.push(worker.next_assignment().await);
        }
        let reporter = first.iter().position(|assignment| assignment.rank == 0).unwrap();
        let unreachable = first.iter().position(|assignment| assignment.rank == 2).unwrap();
        let mut client = workers[reporter].client.clone();
        let reporter_id = workers[reporter].id.clone();
        let reporter_name = workers[reporter].name.clone();
        let report = |rank| ReportFailureRequest {
            worker_id: reporter_id.clone(),
            job_id: job.clone(),
            generation: 1,
            failure: Some(Failure::Peer(PeerFailure { unreachable_rank: rank, message: "connection refused".to_owned() })),
        };
        assert_eq!(client.report_failure(report(7)).await.unwrap_err().code(), Code::InvalidArgument);
        client.report_failure(report(2)).await.unwrap();

        let mut dropped = workers.remove(unreachable);
        let release = dropped.next_release().await;
        assert_eq!(release.job_id, job);
        assert!(release.reason.contains("reported it unreachable"), "{}", release.reason);
        assert_eq!(dropped.next_update().await.unwrap_err().code(), Code::FailedPrecondition);
        let mut second = Vec::new();
        for worker in &mut workers {
            let assignment = worker.next_assignment().await;
            assert_eq!((assignment.generation, assignment.world_size), (2, 2));
            second.push(assignment);
        }
        // A late report about generation 1 changes nothing.
        let stale = client.report_failure(report(1)).await.unwrap_err();
        assert_eq!(stale.code(), Code::FailedPrecondition);
        assert!(stale.message().contains("no longer current"), "{}", stale.message());

        // The history names the dropped worker, its rank, the reporter and the error.
        let store = JobStore::connect(&database.url).await.unwrap();
        let events = store.events_after(&job, 0).await.unwrap();
        let generations: Vec<_> = events
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::Generation { generation, world_size, message } => Some((*generation, *world_size, message.clone())),
                _ => None,
            })
            .collect();
        let expected = format!(
            "lost worker `{}` (rank 2), which rank 0 (`{reporter_name}`) could not reach at {}: connection refused; continuing on 2 workers",
            dropped.name, dropped.data_address
        );
        assert_eq!(generations, vec![(1, 3, "admitted on 3 workers".to_owned()), (2, 2, expected)]);

        // Once the job runs, it grows back to its maximum, but not with a worker at
        // the address its peer could not reach, even one that registered anew.
        let rank0 = second.iter().position(|assignment| assignment.rank == 0).unwrap();
        workers[rank0].report_progress(&second[rank0], 1);
        wait_for_state(&server, &job, JobState::Running).await;
        let mut again = FakeWorker::start(&server.endpoint(), &dropped.name).await;
        assert_eq!(again.data_address, dropped.data_address);
        let mut other = FakeWorker::start(&server.endpoint(), "w-peer-other").await;
        let grown = other.next_assignment().await;
        assert_eq!((grown.generation, grown.world_size), (3, 3));
        again.expect_quiet(Duration::from_millis(500)).await;
        server.stop().await.unwrap();
    })
    .await;
}

/// Two coordinators on one PostgreSQL database: workers register with either,
/// and still each worker serves at most one job and each loss opens one generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_coordinators_never_double_assign() {
    timed(async {
        let database = TestDatabase::postgres().await;
        let servers = [TestServer::start_fast(&database.url).await, TestServer::start_fast(&database.url).await];
        let jobs = [
            submit(&servers[0], "req-two-a", spec_with_workers("two-a", 2, 2, 0)).await,
            submit(&servers[1], "req-two-b", spec_with_workers("two-b", 2, 2, 0)).await,
        ];
        let mut workers = Vec::new();
        for index in 0..5 {
            workers.push(FakeWorker::start(&servers[index % 2].endpoint(), &format!("w-two-{index}")).await);
        }
        for job in &jobs {
            wait_for_state(&servers[0], job, JobState::Scheduled).await;
        }
        // Let both schedulers run several more passes.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let store = JobStore::connect(&database.url).await.unwrap();
        let mut busy_workers = Vec::new();
        for job in &jobs {
            let record = store.get(job).await.unwrap();
            assert_eq!(record.generation, 1, "job `{job}`");
            let members = store.members(job, 1).await.unwrap();
            assert_eq!(members.len(), 2);
            busy_workers.extend(members.into_iter().map(|member| member.worker_id));
        }
        let mut unique = busy_workers.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 4, "a worker serves two jobs: {busy_workers:?}");

        // One member of the first job stops; the spare worker replaces it in exactly one new generation.
        let members = store.members(&jobs[0], 1).await.unwrap();
        let lost_id = members[1].worker_id.clone();
        workers.iter_mut().find(|worker| worker.id == lost_id).unwrap().stop_heartbeats();
        wait_for_generation(&store, &jobs[0], 2).await;
        tokio::time::sleep(Duration::from_millis(500)).await;

        // Below its minimum the job went back to the queue once, and was admitted
        // again once with the survivor and the spare worker.
        let record = store.get(&jobs[0]).await.unwrap();
        assert_eq!(record.generation, 2);
        assert_eq!(record.state().unwrap(), JobState::Scheduled);
        let events = store.events_after(&jobs[0], 0).await.unwrap();
        let entered = |state: JobState| {
            events.iter().filter(|event| matches!(&event.kind, EventKind::StateChange { to, .. } if *to == state)).count()
        };
        assert_eq!(entered(JobState::Queued), 2, "{events:?}");
        assert_eq!(entered(JobState::Scheduled), 2, "{events:?}");
        assert_eq!(store.get(&jobs[1]).await.unwrap().generation, 1);

        let mut seen = std::collections::HashSet::new();
        for job in &jobs {
            let generation = store.get(job).await.unwrap().generation;
            for member in store.members(job, generation).await.unwrap() {
                assert!(seen.insert(member.worker_id.clone()), "worker `{}` in two jobs", member.worker_name);
                assert_ne!(member.worker_id, lost_id);
            }
        }
        store.close().await;
        for server in servers {
            server.stop().await.unwrap();
        }
    })
    .await;
}

/// When the coordinator holding the scheduler lease stops, the other one schedules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_fails_over_on_shutdown() {
    timed(async {
        let database = TestDatabase::postgres().await;
        let first = TestServer::start_fast(&database.url).await;
        // Let the first coordinator take the lease before the second starts.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = TestServer::start_fast(&database.url).await;
        first.stop().await.unwrap();

        let mut worker = FakeWorker::start(&second.endpoint(), "w-failover").await;
        let job = submit(&second, "req-failover", spec_with_workers("failover", 1, 1, 0)).await;
        assert_eq!(worker.next_assignment().await.job_id, job);
        second.stop().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_before_progress_starts_then_succeeds() {
    timed(async {
        // A generation that resumes after the job's last step evaluates and reports
        // its result without sending progress first.
        let database = TestDatabase::sqlite();
        let server = TestServer::start_fast(&database.url).await;
        let job = submit(&server, "req-no-progress", spec_with_workers("no-progress", 1, 1, 0)).await;
        let mut worker = FakeWorker::start(&server.endpoint(), "w-no-progress").await;
        let assignment = worker.next_assignment().await;
        assert_eq!(job_state(&server, &job).await, JobState::Scheduled);

        let mut client = worker.client.clone();
        let request = ReportResultRequest {
            worker_id: worker.id.clone(),
            job_id: job.clone(),
            generation: assignment.generation,
            result_json: r#"{"steps":10}"#.to_owned(),
        };
        client.report_result(request).await.unwrap();
        assert_eq!(job_state(&server, &job).await, JobState::Succeeded);

        let store = JobStore::connect(&database.url).await.unwrap();
        let events = store.events_after(&job, 0).await.unwrap();
        let states: Vec<JobState> = events
            .iter()
            .filter_map(|event| match event.kind {
                EventKind::StateChange { to, .. } => Some(to),
                EventKind::Progress(_) | EventKind::Generation { .. } => None,
            })
            .collect();
        assert_eq!(states, [JobState::Queued, JobState::Scheduled, JobState::Running, JobState::Succeeded]);
        store.close().await;
        server.stop().await.unwrap();
    })
    .await;
}

async fn queued_job_says_why_it_waits(database: TestDatabase) {
    let server = TestServer::start_fast(&database.url).await;
    let job = submit(&server, "req-waits", spec_with_workers("waits", 2, 2, 0)).await;
    let _worker = FakeWorker::start(&server.endpoint(), "w-waits-0").await;

    let mut client = client(&server.endpoint()).await;
    let expected = "waiting for 2 idle workers (workers.min); 1 idle now";
    let mut message = String::new();
    for _ in 0..200 {
        let fetched = client.get_job(GetJobRequest { id: job.clone() }).await.unwrap().into_inner();
        assert_eq!(fetched.state(), JobState::Queued);
        message = fetched.message;
        if message == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(message, expected);

    // Once enough workers are idle, admission replaces the message.
    let _second = FakeWorker::start(&server.endpoint(), "w-waits-1").await;
    wait_for_state(&server, &job, JobState::Scheduled).await;
    let fetched = client.get_job(GetJobRequest { id: job.clone() }).await.unwrap().into_inner();
    assert_eq!(fetched.message, "admitted on 2 workers");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_job_says_why_it_waits_postgres() {
    timed(queued_job_says_why_it_waits(TestDatabase::postgres().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_job_says_why_it_waits_sqlite() {
    timed(queued_job_says_why_it_waits(TestDatabase::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_plans_shards_or_fails_job() {
    timed(async {
        let database = TestDatabase::sqlite();
        let server = TestServer::start_fast(&database.url).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("part-1.csv"), "a\n2\n").unwrap();
        std::fs::write(dir.path().join("part-0.csv"), "a\n1\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let folder = format!("file://{}/", dir.path().display());

        // The missing dataset has the higher priority, so admission plans it first.
        let absent = format!("file://{}/absent.csv", dir.path().display());
        let mut missing_spec = spec_with_workers("missing", 1, 1, 5);
        missing_spec.dataset.as_mut().unwrap().uri = absent.clone();
        let missing = submit(&server, "req-missing", missing_spec).await;
        let mut folder_spec = spec_with_workers("folder", 1, 1, 0);
        let dataset = folder_spec.dataset.as_mut().unwrap();
        dataset.uri = folder.clone();
        dataset.format = Some("csv".to_owned());
        let sharded = submit(&server, "req-folder", folder_spec).await;

        let mut worker = FakeWorker::start(&server.endpoint(), "w-shards").await;
        let assignment = worker.next_assignment().await;
        assert_eq!(assignment.job_id, sharded);
        let shards: Vec<(String, i64)> = assignment.shards.iter().map(|shard| (shard.uri.clone(), shard.size_bytes)).collect();
        assert_eq!(shards, vec![(format!("{folder}part-0.csv"), 4), (format!("{folder}part-1.csv"), 4)]);

        // GetJob shows the plan; ListJobs leaves it out.
        let mut jobs = client(&server.endpoint()).await;
        let fetched = jobs.get_job(GetJobRequest { id: sharded.clone() }).await.unwrap().into_inner();
        assert_eq!(fetched.shards, assignment.shards);
        let listed = jobs.list_jobs(ssl_proto::v1::ListJobsRequest::default()).await.unwrap().into_inner().jobs;
        assert!(listed.iter().all(|job| job.shards.is_empty()), "{listed:?}");

        let failed = jobs.get_job(GetJobRequest { id: missing }).await.unwrap().into_inner();
        assert_eq!(failed.state(), JobState::Failed);
        assert_eq!(failed.message, format!("dataset.uri: `{absent}` not found: no object, and no folder with objects below it"));
        server.stop().await.unwrap();
    })
    .await;
}
