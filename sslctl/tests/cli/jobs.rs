//! Submitting, reading, listing, cancelling and watching jobs.

use std::time::Duration;

use ssl_coordinator::store::Progress;
use ssl_proto::JobState;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{Coordinator, example};

fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("invalid JSON ({error}):\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_prints_job_id() {
    let coordinator = Coordinator::start().await;
    let path = example("adult-contrastive.yaml");

    let output = coordinator.sslctl(&["submit", "-f", path.to_str().unwrap()]).await;
    assert_eq!(output.code, 0, "{output}");
    assert_eq!(output.stderr, "", "{output}");
    let id = output.stdout.strip_suffix('\n').expect("the id ends with a newline");
    let uuid = uuid::Uuid::parse_str(id).unwrap_or_else(|error| panic!("{id:?} is not a UUID: {error}"));
    assert_eq!(uuid.to_string(), id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_json_shows_defaults() {
    let coordinator = Coordinator::start().await;
    let id = coordinator.submit_example("adult-contrastive.yaml").await;

    let output = coordinator.sslctl(&["get", &id, "-o", "json"]).await;
    assert_eq!(output.code, 0, "{output}");
    let job = parse_json(&output.stdout);
    assert_eq!(job["id"], id.as_str());
    assert_eq!(job["name"], "adult-contrastive");
    assert_eq!(job["state"], "QUEUED");
    // The scheduler may already have noted why the job waits: no worker is registered.
    let message = job["message"].as_str().unwrap();
    assert!(message.is_empty() || message == "waiting for 2 idle workers (workers.min); 0 idle now", "{job}");
    assert!(uuid::Uuid::parse_str(job["request_id"].as_str().unwrap()).is_ok(), "{job}");

    let spec = &job["spec"];
    assert_eq!(spec["training"]["optimizer"]["name"], "adamw");
    assert_eq!(spec["training"]["schedule"]["name"], "warmup_cosine");
    assert_eq!(spec["training"]["epochs"], 10);
    assert_eq!(spec["method"]["contrastive"]["corruption_rate"], 0.6);
    assert_eq!(spec["dataset"]["format"], "csv");
    let uri = spec["dataset"]["uri"].as_str().unwrap();
    assert!(uri.starts_with("file:///"), "{uri}");
    assert!(uri.ends_with("/examples/data/adult/train.csv.gz"), "{uri}");

    let created_at = job["created_at"].as_str().expect("created_at is set");
    assert!(created_at.ends_with('Z'), "{created_at}");
    assert!(created_at.contains('T'), "{created_at}");
    assert!(job["updated_at"].is_string(), "{job}");
    assert!(job["started_at"].is_null(), "{job}");
    assert!(job["finished_at"].is_null(), "{job}");
    assert!(job["progress"].is_null(), "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_yaml_and_table_views() {
    let coordinator = Coordinator::start().await;
    let id = coordinator.submit_example("adult-masked.yaml").await;

    let output = coordinator.sslctl(&["get", &id, "-o", "yaml"]).await;
    assert_eq!(output.code, 0, "{output}");
    let job: serde_yaml::Value = serde_yaml::from_str(&output.stdout).unwrap();
    assert_eq!(job["state"].as_str(), Some("QUEUED"));
    assert_eq!(job["spec"]["method"]["masked"]["mask_rate"].as_f64(), Some(0.3));
    assert!(job["finished_at"].is_null(), "{output}");

    let output = coordinator.sslctl(&["get", &id]).await;
    assert_eq!(output.code, 0, "{output}");
    assert!(output.stdout.contains(&format!("Id:         {id}\n")), "{output}");
    assert!(output.stdout.contains("Name:       adult-masked\n"), "{output}");
    assert!(output.stdout.contains("State:      QUEUED\n"), "{output}");
    assert!(output.stdout.contains("Started:    -\n"), "{output}");
    assert!(output.stdout.contains("Spec:\n  name: adult-masked\n"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_same_request_id_returns_same_job() {
    let coordinator = Coordinator::start().await;
    let path = example("adult-contrastive.yaml");
    let args = ["submit", "-f", path.to_str().unwrap(), "--request-id", "nightly-2026-12-04"];

    let first = coordinator.sslctl(&args).await;
    assert_eq!(first.code, 0, "{first}");
    let second = coordinator.sslctl(&args).await;
    assert_eq!(second.code, 0, "{second}");
    assert_eq!(first.stdout, second.stdout);
    assert!(second.stderr.contains("request id `nightly-2026-12-04` was submitted before"), "{second}");
    assert_eq!(coordinator.job_ids().await.len(), 1);

    let id = first.stdout.trim();
    let job = parse_json(&coordinator.sslctl(&["get", id, "-o", "json"]).await.stdout);
    assert_eq!(job["request_id"], "nightly-2026-12-04");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_jobs_and_filters() {
    let coordinator = Coordinator::start().await;
    let contrastive = coordinator.submit_example("adult-contrastive.yaml").await;
    let masked = coordinator.submit_example("adult-masked.yaml").await;
    let output = coordinator.sslctl(&["cancel", &contrastive]).await;
    assert_eq!(output.code, 0, "{output}");

    let output = coordinator.sslctl(&["list"]).await;
    assert_eq!(output.code, 0, "{output}");
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{output}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["ID", "NAME", "STATE", "CREATED", "PROGRESS"]);
    // Newest first.
    let newest: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&newest[..3], [masked.as_str(), "adult-masked", "QUEUED"], "{output}");
    assert_eq!(newest[4], "-", "{output}");
    let oldest: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(&oldest[..3], [contrastive.as_str(), "adult-contrastive", "CANCELLED"], "{output}");

    let output = coordinator.sslctl(&["list", "--state", "cancelled", "-o", "json"]).await;
    assert_eq!(output.code, 0, "{output}");
    let jobs = parse_json(&output.stdout);
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{output}");
    assert_eq!(jobs[0]["id"], contrastive.as_str());

    let output = coordinator.sslctl(&["list", "--state", "QUEUED", "--state", "running", "-o", "json"]).await;
    let jobs = parse_json(&output.stdout);
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{output}");
    assert_eq!(jobs[0]["id"], masked.as_str());

    let output = coordinator.sslctl(&["list", "--name", "adult-contrastive", "-o", "json"]).await;
    let jobs = parse_json(&output.stdout);
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{output}");
    assert_eq!(jobs[0]["name"], "adult-contrastive");

    let output = coordinator.sslctl(&["list", "--limit", "1", "-o", "json"]).await;
    let jobs = parse_json(&output.stdout);
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{output}");
    assert_eq!(jobs[0]["id"], masked.as_str());

    let output = coordinator.sslctl(&["list", "--limit", "1"]).await;
    assert_eq!(output.code, 0, "{output}");
    assert_eq!(output.stdout.lines().count(), 2, "{output}");
    assert_eq!(output.stderr, "more jobs match than --limit 1 shows; raise --limit to see them\n");

    let output = coordinator.sslctl(&["list", "--limit", "2"]).await;
    assert_eq!(output.stdout.lines().count(), 3, "{output}");
    assert_eq!(output.stderr, "", "{output}");

    let output = coordinator.sslctl(&["list", "--state", "succeeded"]).await;
    assert_eq!(output.code, 0, "{output}");
    assert_eq!(output.stdout, "", "{output}");
    assert_eq!(output.stderr, "no jobs found\n", "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_invalid_state_exits_2() {
    let coordinator = Coordinator::start().await;

    let output = coordinator.sslctl(&["list", "--state", "done"]).await;
    assert_eq!(output.code, 2, "{output}");
    assert!(
        output.stderr.starts_with(
            "error: invalid value 'done' for '--state <STATE>': unknown job state; expected one of \
             QUEUED, SCHEDULED, RUNNING, RECOVERING, SUCCEEDED, FAILED, CANCELLED\n"
        ),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_twice_fails_precondition() {
    let coordinator = Coordinator::start().await;
    let id = coordinator.submit_example("adult-contrastive.yaml").await;

    let output = coordinator.sslctl(&["cancel", &id, "--message", "no longer needed"]).await;
    assert_eq!(output.code, 0, "{output}");
    assert_eq!(output.stdout, "CANCELLED\n");

    let output = coordinator.sslctl(&["cancel", &id]).await;
    assert_eq!(output.code, 1, "{output}");
    assert_eq!(output.stdout, "", "{output}");
    assert_eq!(
        output.stderr,
        format!("error: job `{id}` is CANCELLED; cancel needs a job in QUEUED, SCHEDULED, RUNNING, RECOVERING\n")
    );

    let job = parse_json(&coordinator.sslctl(&["get", &id, "-o", "json"]).await.stdout);
    assert_eq!(job["state"], "CANCELLED");
    assert_eq!(job["message"], "no longer needed");
    assert!(job["finished_at"].is_string(), "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_cancelled_job_prints_history() {
    let coordinator = Coordinator::start().await;
    let id = coordinator.submit_example("adult-contrastive.yaml").await;
    let output = coordinator.sslctl(&["cancel", &id, "--message", "no longer needed"]).await;
    assert_eq!(output.code, 0, "{output}");

    let output = coordinator.sslctl(&["watch", &id]).await;
    assert_eq!(output.code, 1, "{output}");
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{output}");
    assert!(lines[0].contains("  (new) -> QUEUED"), "{output}");
    assert!(lines[1].ends_with("  QUEUED -> CANCELLED  no longer needed"), "{output}");
    assert_eq!(output.stderr, format!("error: job `{id}` ended CANCELLED: no longer needed\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_wait_follows_until_cancelled() {
    let coordinator = Coordinator::start().await;
    let path = example("adult-contrastive.yaml");
    let mut waiting = coordinator.command(&["submit", "-f", path.to_str().unwrap(), "--wait"]).spawn().unwrap();

    // The id comes first, alone on stdout, while the job is still followed.
    let mut stdout = BufReader::new(waiting.stdout.take().unwrap());
    let mut id = String::new();
    tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut id)).await.unwrap().unwrap();
    let id = id.trim().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id:?}");

    let output = coordinator.sslctl(&["cancel", &id, "--message", "stop"]).await;
    assert_eq!(output.code, 0, "{output}");

    let status = tokio::time::timeout(Duration::from_secs(30), waiting.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(1));
    let mut rest = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut rest).await.unwrap();
    assert_eq!(rest, "", "stdout after the id");
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(waiting.stderr.as_mut().unwrap(), &mut stderr).await.unwrap();
    assert!(stderr.contains("QUEUED -> CANCELLED  stop\n"), "{stderr}");
    assert!(stderr.ends_with(&format!("error: job `{id}` ended CANCELLED: stop\n")), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_empty_for_new_job() {
    let coordinator = Coordinator::start().await;
    let id = coordinator.submit_example("adult-contrastive.yaml").await;

    let output = coordinator.sslctl(&["checkpoints", &id, "-o", "json"]).await;
    assert_eq!(output.code, 0, "{output}");
    assert_eq!(output.stdout, "[]\n");

    let output = coordinator.sslctl(&["checkpoints", &id]).await;
    assert_eq!(output.code, 0, "{output}");
    assert_eq!(output.stdout, "");
    assert_eq!(output.stderr, format!("job `{id}` has no committed checkpoints\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_job_not_found() {
    let coordinator = Coordinator::start().await;
    let id = uuid::Uuid::new_v4().to_string();

    for command in ["get", "cancel", "watch", "checkpoints"] {
        let output = coordinator.sslctl(&[command, &id]).await;
        assert_eq!(output.code, 1, "{command}: {output}");
        assert_eq!(output.stdout, "", "{command}: {output}");
        assert_eq!(output.stderr, format!("error: job `{id}` not found\n"), "{command}: {output}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_running_job_until_success() {
    let coordinator = Coordinator::start().await;
    let id = coordinator.submit_example("adult-contrastive.yaml").await;
    let store = coordinator.store().await;
    store.transition(&id, JobState::Scheduled, "schedule", "").await.unwrap();
    store.transition(&id, JobState::Running, "start", "2 workers").await.unwrap();
    // The example's global batch of 256 rows at 2560 rows/s is 10 steps/s.
    for step in [100, 200, 300] {
        let progress = Progress { epoch: 1, step, total_steps: 1000, loss: 0.9, samples_per_second: 2560.0 };
        store.record_progress(&id, progress).await.unwrap();
    }

    let watching = coordinator.command(&["watch", &id]).spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let progress = Progress { epoch: 2, step: 1000, total_steps: 1000, loss: 0.4321, samples_per_second: 2560.0 };
    store.record_progress(&id, progress).await.unwrap();
    store.transition(&id, JobState::Succeeded, "finish", "").await.unwrap();

    let output = tokio::time::timeout(Duration::from_secs(30), watching.wait_with_output()).await.unwrap().unwrap();
    let output = crate::support::Output::from(output);
    assert_eq!(output.code, 0, "{output}");
    assert_eq!(output.stderr, "", "{output}");
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert!(lines[0].contains("  (new) -> QUEUED"), "{output}");
    assert!(lines[1].ends_with("  QUEUED -> SCHEDULED"), "{output}");
    assert!(lines[2].ends_with("  SCHEDULED -> RUNNING  2 workers"), "{output}");
    // stderr is a pipe, so progress comes as plain lines, and the first one is shown at once.
    assert!(lines[3].ends_with("  epoch 1, step 100/1000 (10%), loss 0.9000, 2560 samples/s, ETA 1m30s"), "{output}");
    // The last step is shown at once, with a note that the result comes next.
    let last = lines.len() - 1;
    assert!(lines[last - 2].ends_with("  epoch 2, step 1000/1000 (100%), loss 0.4321, 2560 samples/s, ETA 0s"), "{output}");
    assert_eq!(lines[last - 1], "training done; waiting for the evaluation and the result", "{output}");
    assert!(lines[last].ends_with("  RUNNING -> SUCCEEDED"), "{output}");

    let job = parse_json(&coordinator.sslctl(&["get", &id, "-o", "json"]).await.stdout);
    assert_eq!(job["state"], "SUCCEEDED");
    assert_eq!(job["progress"]["step"], 1000);
    assert_eq!(job["progress"]["total_steps"], 1000);
    assert!(job["started_at"].is_string(), "{job}");
    assert!(job["finished_at"].is_string(), "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_failed_job_exits_1() {
    let coordinator = Coordinator::start().await;
    let id = coordinator.submit_example("adult-masked.yaml").await;
    let store = coordinator.store().await;
    store.transition(&id, JobState::Failed, "fail", "dataset not readable").await.unwrap();

    let output = coordinator.sslctl(&["watch", &id]).await;
    assert_eq!(output.code, 1, "{output}");
    assert!(output.stdout.ends_with("  QUEUED -> FAILED  dataset not readable\n"), "{output}");
    assert_eq!(output.stderr, format!("error: job `{id}` ended FAILED: dataset not readable\n"));
}
