//! The job API over real gRPC on 127.0.0.1, against an in-process coordinator.

mod common;

use common::{TOKEN, TestDatabase, TestServer, client, client_with_token, spec, submit_request, timed};
use futures::StreamExt;
use ssl_coordinator::server::{AuthConfig, ServerConfig, TlsConfig};
use ssl_coordinator::store::{JobStore, Progress};
use ssl_proto::JobState;
use ssl_proto::v1::job_spec::Method;
use ssl_proto::v1::{
    CancelJobRequest, ContrastiveMethod, GetJobRequest, Job, JobEvent, ListCheckpointsRequest, ListJobsRequest, TrainingSpec,
    WatchJobRequest, WorkerRange, job_event,
};
use tonic::Code;

async fn round_trip(database: TestDatabase) {
    let server = TestServer::start(&database.url).await;
    let mut client = client(&server.endpoint()).await;

    let response = client.submit_job(submit_request("req-round-trip", spec("adult"))).await.unwrap().into_inner();
    assert!(response.created);
    let job = response.job.unwrap();
    assert_eq!(job.state(), JobState::Queued);
    assert_eq!(job.name, "adult");
    let stored_spec = job.spec.as_ref().unwrap();
    let training = stored_spec.training.as_ref().unwrap();
    assert_eq!(training.optimizer.as_ref().unwrap().name.as_deref(), Some("adamw"));
    assert_eq!(training.epochs, Some(10));
    assert_eq!(stored_spec.dataset.as_ref().unwrap().format.as_deref(), Some("csv"));

    let again = client.submit_job(submit_request("req-round-trip", spec("adult"))).await.unwrap().into_inner();
    assert!(!again.created);
    assert_eq!(again.job.unwrap().id, job.id);

    let fetched = client.get_job(GetJobRequest { id: job.id.clone() }).await.unwrap().into_inner();
    // Meanwhile the scheduler may have noted why the job waits: no worker is registered.
    assert!(fetched.message.is_empty() || fetched.message == "waiting for 1 idle worker (workers.min); 0 idle now", "{}", fetched.message);
    assert_eq!(Job { message: String::new(), ..fetched }, job);

    let listed = client.list_jobs(ListJobsRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.jobs.len(), 1);
    assert_eq!(listed.jobs[0].id, job.id);
    assert_eq!(listed.next_page_token, "");

    let cancelled = client
        .cancel_job(CancelJobRequest { id: job.id.clone(), message: "not needed".to_owned() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state(), JobState::Cancelled);
    assert_eq!(cancelled.message, "not needed");
    assert!(cancelled.finished_at.is_some());

    let again = client.cancel_job(CancelJobRequest { id: job.id.clone(), message: String::new() }).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(
        again.message(),
        format!("job `{}` is CANCELLED; cancel needs a job in QUEUED, SCHEDULED, RUNNING, RECOVERING", job.id)
    );

    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_postgres() {
    timed(round_trip(TestDatabase::postgres().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_sqlite() {
    timed(round_trip(TestDatabase::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_specs_rejected_nothing_stored() {
    let database = TestDatabase::sqlite();
    let server = TestServer::start(&database.url).await;
    let mut client = client(&server.endpoint()).await;

    let mut negative_epochs = spec("adult");
    negative_epochs.training = Some(TrainingSpec { epochs: Some(-5), ..Default::default() });
    let mut workers_inverted = spec("adult");
    workers_inverted.workers = Some(WorkerRange { min: Some(3), max: Some(2) });
    let mut corruption_too_high = spec("adult");
    corruption_too_high.method =
        Some(Method::Contrastive(ContrastiveMethod { corruption_rate: Some(1.5), ..Default::default() }));
    let mut no_uri = spec("adult");
    no_uri.dataset.as_mut().unwrap().uri.clear();
    no_uri.dataset.as_mut().unwrap().format = Some("csv".to_owned());
    let mut bad_name = spec("Adult Job");
    bad_name.priority = Some(5000);

    let cases = [
        (negative_epochs, "invalid job spec: training.epochs: -5 is out of range; expected an integer from 1 to 100000"),
        (workers_inverted, "invalid job spec: workers.min: 3 is more than workers.max 2; set min <= max"),
        (
            corruption_too_high,
            "invalid job spec: method.contrastive.corruption_rate: 1.5 is out of range; expected a number in (0, 1)",
        ),
        (
            no_uri,
            "invalid job spec: dataset.uri: missing; set the table's location, such as `file:///data/train.csv`",
        ),
        (
            bad_name,
            "invalid job spec: name: invalid value \"Adult Job\"; use 1 to 63 lower-case letters, digits and '-', \
             starting with a letter; priority: 5000 is out of range; expected an integer from -1000 to 1000",
        ),
    ];
    for (index, (spec, expected)) in cases.into_iter().enumerate() {
        let status = client.submit_job(submit_request(&format!("req-bad-{index}"), spec)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "case {index}");
        assert_eq!(status.message(), expected, "case {index}");
    }

    let missing_spec = ssl_proto::v1::SubmitJobRequest { request_id: "req-no-spec".to_owned(), spec: None };
    let status = client.submit_job(missing_spec).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "spec: missing; send the job spec to run");

    let status = client.submit_job(submit_request("has space", spec("adult"))).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("request_id: invalid value \"has space\""), "{}", status.message());

    let listed = client.list_jobs(ListJobsRequest::default()).await.unwrap().into_inner();
    assert!(listed.jobs.is_empty(), "nothing is stored: {:?}", listed.jobs);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_rejected() {
    let database = TestDatabase::sqlite();
    let server = TestServer::start(&database.url).await;
    let mut client = client(&server.endpoint()).await;

    let mut huge = spec("adult");
    for index in 0..40_000 {
        huge.dataset.as_mut().unwrap().column_types.insert(format!("column_with_a_long_name_{index:08}"), "numeric".to_owned());
    }
    let status = client.submit_job(submit_request("req-huge", huge)).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("message length too large"), "{}", status.message());
    assert!(status.message().contains("the limit is: 1048576 bytes"), "{}", status.message());

    let listed = client.list_jobs(ListJobsRequest::default()).await.unwrap().into_inner();
    assert!(listed.jobs.is_empty());
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_ids_checked() {
    let database = TestDatabase::sqlite();
    let server = TestServer::start(&database.url).await;
    let mut client = client(&server.endpoint()).await;

    let status = client.get_job(GetJobRequest { id: "not-a-uuid".to_owned() }).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "id: invalid value \"not-a-uuid\"; expected a job id (a UUID such as 0b6a9c2e-1f3d-4c5e-8a7b-9c0d1e2f3a4b)"
    );

    let unknown = uuid::Uuid::new_v4().to_string();
    let status = client.get_job(GetJobRequest { id: unknown.clone() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), format!("job `{unknown}` not found"));

    let status = client.cancel_job(CancelJobRequest { id: unknown.clone(), message: String::new() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client.watch_job(WatchJobRequest { id: unknown.clone(), after_sequence: 0 }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client.list_checkpoints(ListCheckpointsRequest { job_id: unknown }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let status = client.list_jobs(ListJobsRequest { page_size: 5000, ..Default::default() }).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("page_size: 5000 is out of range"), "{}", status.message());
    let status = client.list_jobs(ListJobsRequest { states: vec![0], ..Default::default() }).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_required() {
    let database = TestDatabase::sqlite();
    let server = TestServer::start(&database.url).await;

    let mut anonymous = client_with_token(&server.endpoint(), None).await;
    let status = anonymous.list_jobs(ListJobsRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "missing bearer token in the `authorization` metadata");

    let mut wrong = client_with_token(&server.endpoint(), Some("not-the-token")).await;
    let status = wrong.submit_job(submit_request("req-wrong-token", spec("adult"))).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "invalid bearer token");

    let mut right = client(&server.endpoint()).await;
    assert!(right.list_jobs(ListJobsRequest::default()).await.unwrap().into_inner().jobs.is_empty());

    // Health probes need no token.
    let channel = tonic::transport::Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest { service: "ssl.v1.JobService".to_owned() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.status(), tonic_health::pb::health_check_response::ServingStatus::Serving);
    server.stop().await.unwrap();
}

fn state_change(event: &JobEvent) -> Option<(JobState, JobState)> {
    match &event.kind {
        Some(job_event::Kind::StateChange(change)) => Some((change.from(), change.to())),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_history_then_live_events() {
    let database = TestDatabase::sqlite();
    let server = TestServer::start(&database.url).await;
    let mut client = client(&server.endpoint()).await;
    let job = client.submit_job(submit_request("req-watch", spec("adult"))).await.unwrap().into_inner().job.unwrap();

    let stream = client.watch_job(WatchJobRequest { id: job.id.clone(), after_sequence: 0 }).await.unwrap().into_inner();
    let collector = tokio::spawn(async move { stream.collect::<Vec<_>>().await });

    // A separate store handle plays the scheduler and workers; the server only gets
    // these events by polling the store, as it does for another coordinator's writes.
    let store = JobStore::connect(&database.url).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    store.transition(&job.id, JobState::Scheduled, "schedule", "").await.unwrap();
    store.transition(&job.id, JobState::Running, "start", "").await.unwrap();
    let progress = Progress { epoch: 1, step: 50, total_steps: 100, loss: 1.25, samples_per_second: 3000.0 };
    store.record_progress(&job.id, progress).await.unwrap();
    store.transition(&job.id, JobState::Succeeded, "finish", "").await.unwrap();

    let events: Vec<JobEvent> = timed(collector).await.unwrap().into_iter().map(Result::unwrap).collect();
    let sequences: Vec<i64> = events.iter().map(|event| event.sequence).collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5]);
    assert_eq!(state_change(&events[0]), Some((JobState::Unspecified, JobState::Queued)));
    assert_eq!(state_change(&events[1]), Some((JobState::Queued, JobState::Scheduled)));
    assert_eq!(state_change(&events[2]), Some((JobState::Scheduled, JobState::Running)));
    let Some(job_event::Kind::Progress(reported)) = &events[3].kind else { panic!("event 4: {:?}", events[3]) };
    assert_eq!(reported.step, 50);
    assert_eq!(reported.total_steps, 100);
    assert_eq!(state_change(&events[4]), Some((JobState::Running, JobState::Succeeded)));

    let fetched = client.get_job(GetJobRequest { id: job.id.clone() }).await.unwrap().into_inner();
    assert_eq!(fetched.progress.unwrap().loss, 1.25);

    // Watching an ended job replays its history and ends; after_sequence skips ahead.
    let replay = client.watch_job(WatchJobRequest { id: job.id.clone(), after_sequence: 3 }).await.unwrap().into_inner();
    let replayed: Vec<i64> = timed(replay.collect::<Vec<_>>()).await.into_iter().map(|event| event.unwrap().sequence).collect();
    assert_eq!(replayed, [4, 5]);

    store.close().await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_ends_on_cancel() {
    let database = TestDatabase::sqlite();
    let server = TestServer::start(&database.url).await;
    let mut client = client(&server.endpoint()).await;
    let job = client.submit_job(submit_request("req-watch-cancel", spec("adult"))).await.unwrap().into_inner().job.unwrap();

    let mut stream = client.watch_job(WatchJobRequest { id: job.id.clone(), after_sequence: 0 }).await.unwrap().into_inner();
    let first = timed(stream.next()).await.unwrap().unwrap();
    assert_eq!(state_change(&first), Some((JobState::Unspecified, JobState::Queued)));

    client.cancel_job(CancelJobRequest { id: job.id.clone(), message: String::new() }).await.unwrap();
    let second = timed(stream.next()).await.unwrap().unwrap();
    assert_eq!(state_change(&second), Some((JobState::Queued, JobState::Cancelled)));
    let Some(job_event::Kind::StateChange(change)) = &second.kind else { unreachable!() };
    assert_eq!(change.message, "cancelled by user");
    assert!(timed(stream.next()).await.is_none(), "the stream ends with the job");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_watches() {
    let database = TestDatabase::sqlite();
    let server = TestServer::start(&database.url).await;
    let mut client = client(&server.endpoint()).await;
    let job = client.submit_job(submit_request("req-shutdown", spec("adult"))).await.unwrap().into_inner().job.unwrap();
    let mut stream = client.watch_job(WatchJobRequest { id: job.id, after_sequence: 0 }).await.unwrap().into_inner();
    timed(stream.next()).await.unwrap().unwrap();

    server.stop().await.unwrap();
    let ending = timed(stream.next()).await;
    match ending {
        Some(Err(status)) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        other => panic!("expected UNAVAILABLE, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_empty_until_workers_exist() {
    let database = TestDatabase::sqlite();
    let server = TestServer::start(&database.url).await;
    let mut client = client(&server.endpoint()).await;
    let job = client.submit_job(submit_request("req-checkpoints", spec("adult"))).await.unwrap().into_inner().job.unwrap();
    let reply = client.list_checkpoints(ListCheckpointsRequest { job_id: job.id }).await.unwrap().into_inner();
    assert!(reply.checkpoints.is_empty());
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_trusted_clients() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();

    let database = TestDatabase::sqlite();
    let server = TestServer::start_with(ServerConfig {
        database_url: database.url.clone(),
        auth: AuthConfig::Tokens(vec![TOKEN.to_owned()]),
        join_auth: AuthConfig::Tokens(vec![common::JOIN_TOKEN.to_owned()]),
        scheduler: Default::default(),
        tls: Some(TlsConfig { cert_pem: cert_pem.clone().into_bytes(), key_pem: key_pem.into_bytes() }),
        checkpoint_root: common::checkpoint_root(),
        metrics_listener: None,
    })
    .await;

    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(cert_pem))
        .domain_name("localhost");
    let endpoint = format!("https://{}", server.address);
    let channel = tonic::transport::Channel::from_shared(endpoint).unwrap().tls_config(tls).unwrap().connect().await.unwrap();
    let mut client = ssl_proto::v1::job_service_client::JobServiceClient::with_interceptor(
        channel,
        common::BearerToken(Some(TOKEN.to_owned())),
    );
    let reply = client.list_jobs(ListJobsRequest::default()).await.unwrap().into_inner();
    assert!(reply.jobs.is_empty());

    // A plain-text client cannot talk to the TLS port.
    let mut plain = client_with_token(&server.endpoint(), Some(TOKEN)).await;
    assert!(plain.list_jobs(ListJobsRequest::default()).await.is_err());
    server.stop().await.unwrap();
}
