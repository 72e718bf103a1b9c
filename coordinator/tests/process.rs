//! The `ssl-coordinator` binary as a process: configuration errors, signals, and
//! two replicas sharing one PostgreSQL database.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::fake_worker::{FakeWorker, register_request, worker_client};
use common::{TOKEN, TestDatabase, client, spec, submit_request, timed};
use ssl_proto::JobState;
use ssl_proto::v1::{CancelJobRequest, ListJobsRequest, WatchJobRequest};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tonic::Code;

const BINARY: &str = env!("CARGO_BIN_EXE_ssl-coordinator");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn coordinator(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("SSL_API_TOKENS")
        .env_remove("SSL_TOKEN_FILE")
        .env_remove("SSL_JOIN_TOKENS")
        .env_remove("SSL_JOIN_TOKEN_FILE")
        .env_remove("SSL_DATABASE_URL")
        .env_remove("SSL_LISTEN")
        .env_remove("SSL_CHECKPOINT_ROOT")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Starts a coordinator that accepts [`TOKEN`] and waits until it serves.
async fn start(database_url: &str, data_dir: &std::path::Path) -> (Child, String) {
    let port = free_port();
    let mut child = coordinator(data_dir)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--database-url", database_url])
        .env("SSL_API_TOKENS", TOKEN)
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    wait_until_serving(&endpoint, &mut child).await;
    (child, endpoint)
}

async fn wait_until_serving(endpoint: &str, child: &mut Child) {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("coordinator exited early with {status}: {}", read_stderr(child).await);
        }
        if let Ok(channel) = tonic::transport::Channel::from_shared(endpoint.to_owned()).unwrap().connect().await {
            let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
            let request = tonic_health::pb::HealthCheckRequest { service: "ssl.v1.JobService".to_owned() };
            if let Ok(reply) = health.check(request).await
                && reply.into_inner().status() == tonic_health::pb::health_check_response::ServingStatus::Serving
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("coordinator at {endpoint} did not become ready in 20 s");
}

async fn read_stderr(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = tokio::time::timeout(Duration::from_secs(5), stderr.read_to_string(&mut text)).await;
    }
    text
}

async fn terminate(child: &mut Child) -> (std::process::ExitStatus, String) {
    let pid = child.id().expect("child runs").to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait()).await.expect("exits within 15 s").unwrap();
    (status, read_stderr(child).await)
}

#[tokio::test]
async fn refuses_to_start_without_token() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = timed(coordinator(data_dir.path()).output()).await.unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no API token configured; pass --token-file FILE or set SSL_API_TOKENS, or pass --insecure"),
        "{stderr}"
    );
}

#[tokio::test]
async fn empty_token_file_rejected() {
    let data_dir = tempfile::tempdir().unwrap();
    let token_file = data_dir.path().join("tokens");
    std::fs::write(&token_file, "# nothing here\n").unwrap();
    let output = timed(coordinator(data_dir.path()).arg("--token-file").arg(&token_file).output()).await.unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("contains no token; add one token per line"), "{stderr}");
}

#[tokio::test]
async fn invalid_checkpoint_root_exits_2() {
    let data_dir = tempfile::tempdir().unwrap();
    let cases = [
        ("gs://bucket/prefix", "unsupported scheme"),
        ("file://relative/checkpoints", "the path after file:// must be absolute"),
        ("s3://Bucket_Name", "the bucket name must have 3 to 63 lower-case letters"),
    ];
    for (root, reason) in cases {
        let output = timed(
            coordinator(data_dir.path()).args(["--checkpoint-root", root]).env("SSL_API_TOKENS", TOKEN).output(),
        )
        .await
        .unwrap();
        assert_eq!(output.status.code(), Some(2), "{root}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--checkpoint-root"), "{root}: {stderr}");
        assert!(stderr.contains(reason), "{root}: {stderr}");
        assert!(stderr.contains("expected file:///ABSOLUTE/PATH or s3://BUCKET[/PREFIX]"), "{root}: {stderr}");
    }
}

/// Without --checkpoint-root, assignments name a folder under the absolute --data-dir.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_checkpoint_root_under_data_dir() {
    let work_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(work_dir.path().join("sub")).unwrap();
    let port = free_port();
    // A relative --data-dir with `..`, resolved against the process's working folder.
    let database_url = format!("sqlite://{}", work_dir.path().join("jobs.db").display());
    let mut child = coordinator(std::path::Path::new("sub/../state"))
        .current_dir(work_dir.path())
        .args(["--insecure", "--listen", &format!("127.0.0.1:{port}"), "--database-url", &database_url])
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    timed(wait_until_serving(&endpoint, &mut child)).await;

    let job = common::client_with_token(&endpoint, None)
        .await
        .submit_job(submit_request("req-root", spec("adult")))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap()
        .id;
    let mut worker = timed(FakeWorker::start(&endpoint, "w-root")).await;
    let assignment = timed(worker.next_assignment()).await;
    assert_eq!(assignment.job_id, job);
    let work_dir_path = work_dir.path().canonicalize().unwrap();
    let expected = format!("file://{}/state/checkpoints/jobs/{job}/checkpoints/", work_dir_path.display());
    assert_eq!(assignment.checkpoint_uri, expected);
    assert_eq!(assignment.resume_from, None);

    let (status, stderr) = terminate(&mut child).await;
    assert!(status.success(), "{stderr}");
}

#[tokio::test]
async fn join_token_file_admits_workers() {
    let data_dir = tempfile::tempdir().unwrap();
    let join_file = data_dir.path().join("join-tokens");
    std::fs::write(&join_file, "# worker join tokens
join-secret-42
").unwrap();
    let port = free_port();
    let mut child = coordinator(data_dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--join-token-file")
        .arg(&join_file)
        .env("SSL_API_TOKENS", TOKEN)
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    timed(wait_until_serving(&endpoint, &mut child)).await;

    let mut worker = timed(worker_client(&endpoint, Some("join-secret-42"))).await;
    let registered = timed(worker.register_worker(register_request("w-process", "127.0.0.1:7070"))).await.unwrap();
    assert!(!registered.into_inner().worker_id.is_empty());
    // The API token is no join token.
    let mut api_token_worker = timed(worker_client(&endpoint, Some(TOKEN))).await;
    let error = timed(api_token_worker.register_worker(register_request("w-api", "127.0.0.1:7071"))).await.unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn insecure_mode_warns_and_sigterm_stops() {
    let data_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = coordinator(data_dir.path())
        .args(["--insecure", "--listen", &format!("127.0.0.1:{port}")])
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    timed(wait_until_serving(&endpoint, &mut child)).await;

    // Without a token the API accepts calls, and the default SQLite file is created in --data-dir.
    let mut anonymous = common::client_with_token(&endpoint, None).await;
    anonymous.submit_job(submit_request("req-insecure", spec("adult"))).await.unwrap();
    assert!(data_dir.path().join("coordinator.db").exists());

    let (status, stderr) = terminate(&mut child).await;
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("authentication is off (--insecure)"), "{stderr}");
    assert!(stderr.contains("coordinator stopped"), "{stderr}");
}

#[tokio::test]
async fn token_file_and_restart_keep_jobs() {
    let data_dir = tempfile::tempdir().unwrap();
    let token_file = data_dir.path().join("tokens");
    std::fs::write(&token_file, format!("# API tokens\n{TOKEN}\n")).unwrap();
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let start = || {
        coordinator(data_dir.path())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--token-file")
            .arg(&token_file)
            .spawn()
            .unwrap()
    };

    let mut first = start();
    timed(wait_until_serving(&endpoint, &mut first)).await;
    let job = client(&endpoint).await.submit_job(submit_request("req-restart", spec("adult"))).await.unwrap().into_inner();
    let (status, stderr) = terminate(&mut first).await;
    assert!(status.success(), "{stderr}");

    let mut second = start();
    timed(wait_until_serving(&endpoint, &mut second)).await;
    let listed = client(&endpoint).await.list_jobs(ListJobsRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.jobs.len(), 1);
    assert_eq!(listed.jobs[0].id, job.job.unwrap().id);
    terminate(&mut second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_postgres() {
    let database = TestDatabase::postgres().await;
    let data_dir = tempfile::tempdir().unwrap();
    // Both start at once, so both run the migrations concurrently.
    let (first, second) = tokio::join!(start(&database.url, data_dir.path()), start(&database.url, data_dir.path()));
    let (mut first, first_endpoint) = first;
    let (mut second, second_endpoint) = second;
    let clients = [client(&first_endpoint).await, client(&second_endpoint).await];

    // Duplicate submissions with one request id, spread over both replicas.
    let mut submissions = Vec::new();
    for index in 0..16 {
        let mut client = clients[index % 2].clone();
        submissions.push(tokio::spawn(async move {
            client.submit_job(submit_request("req-replicas", spec("adult"))).await.map(|reply| reply.into_inner())
        }));
    }
    let mut job_ids = Vec::new();
    let mut created = 0;
    for submission in submissions {
        let reply = timed(submission).await.unwrap().unwrap();
        created += usize::from(reply.created);
        job_ids.push(reply.job.unwrap().id);
    }
    job_ids.dedup();
    assert_eq!(created, 1);
    assert_eq!(job_ids.len(), 1);
    for mut client in clients.clone() {
        let listed = client.list_jobs(ListJobsRequest::default()).await.unwrap().into_inner();
        assert_eq!(listed.jobs.len(), 1);
    }

    // Concurrent cancels of that job through both replicas.
    let job_id = job_ids[0].clone();
    let mut cancels = Vec::new();
    for index in 0..16 {
        let mut client = clients[index % 2].clone();
        let id = job_id.clone();
        cancels.push(tokio::spawn(async move { client.cancel_job(CancelJobRequest { id, message: String::new() }).await }));
    }
    let mut cancelled = 0;
    for cancel in cancels {
        match timed(cancel).await.unwrap() {
            Ok(reply) => {
                assert_eq!(reply.into_inner().state(), JobState::Cancelled);
                cancelled += 1;
            }
            Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
        }
    }
    assert_eq!(cancelled, 1);

    use futures::StreamExt;
    let mut watcher = clients[1].clone();
    let history = watcher.watch_job(WatchJobRequest { id: job_id, after_sequence: 0 }).await.unwrap().into_inner();
    let events: Vec<_> = timed(history.collect::<Vec<_>>()).await;
    assert_eq!(events.len(), 2, "one submission and one cancellation: {events:?}");

    let (first_status, first_log) = terminate(&mut first).await;
    let (second_status, second_log) = terminate(&mut second).await;
    assert!(first_status.success(), "{first_log}");
    assert!(second_status.success(), "{second_log}");
}

#[tokio::test]
async fn unreachable_dataset_store_keeps_job_queued() {
    let data_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // S3 requests go to a port where nothing listens, as during a storage outage.
    let mut child = coordinator(data_dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("SSL_API_TOKENS", TOKEN)
        .env("SSL_JOIN_TOKENS", common::JOIN_TOKEN)
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", free_port()))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test-key")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_REGION", "us-east-1")
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    timed(wait_until_serving(&endpoint, &mut child)).await;

    let mut job_spec = spec("outage");
    job_spec.dataset.as_mut().unwrap().uri = "s3://datasets/adult/train.csv".to_owned();
    let mut jobs = client(&endpoint).await;
    let job = jobs.submit_job(submit_request("req-outage", job_spec)).await.unwrap().into_inner().job.unwrap();
    let _worker = timed(FakeWorker::start(&endpoint, "w-outage")).await;

    // The job waits with the reason; the worker stays free.
    let mut fetched = None;
    for _ in 0..100 {
        let current = jobs.get_job(ssl_proto::v1::GetJobRequest { id: job.id.clone() }).await.unwrap().into_inner();
        if current.message.starts_with("cannot list dataset.uri yet, retrying") {
            fetched = Some(current);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let fetched = fetched.expect("the job never said why it waits");
    assert_eq!(fetched.state(), JobState::Queued);
    assert!(fetched.message.contains("s3://datasets/adult/train.csv"), "{}", fetched.message);
    assert_eq!(fetched.generation, 0);
}
