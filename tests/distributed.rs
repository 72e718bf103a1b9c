//! Distributed jobs end to end: PostgreSQL, an S3 server, one `ssl-coordinator`
//! process and `ssl-worker` agent processes, all on 127.0.0.1.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ssl_e2e::{
    Cluster, JOIN_TOKEN, TestDatabase, checkpoint_folders, free_port, get_job, is_terminal, submit, wait_for, write_adult_sample,
};
use ssl_proto::v1::{self, JobState};

/// The tests start several processes each; one at a time keeps their timing sane
/// on a small machine.
static SERIAL: Mutex<()> = Mutex::new(());

const JOB_TIMEOUT: Duration = Duration::from_secs(300);

/// What each test runs against, started by [`start_service`].
struct Service {
    _serial: MutexGuard<'static, ()>,
    database: TestDatabase,
    cluster: Cluster,
    client: ssl_e2e::JobClient,
    /// Folder for the Adult samples and spec files.
    data: tempfile::TempDir,
}

/// Takes the serial lock, creates a database and starts a coordinator with
/// `workers` registered worker agents.
async fn start_service(workers: usize) -> Service {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let database = TestDatabase::create().await;
    let mut cluster = Cluster::start(&database.url);
    for _ in 0..workers {
        cluster.start_worker();
    }
    let client = cluster.client().await;
    cluster.wait_for_registrations(workers).await;
    Service { _serial, database, cluster, client, data: tempfile::tempdir().unwrap() }
}

/// Writes Adult samples to `dir` once and returns a job spec over them. The
/// spec trains on 3000 rows with batch 256 (11 steps per epoch) and probes at
/// 10% of the labels.
fn adult_spec(dir: &Path, name: &str, method: &str, epochs: u32, workers: (u32, u32), every_steps: u32) -> String {
    let train = dir.join("train.csv");
    let test = dir.join("test.csv");
    if !train.exists() {
        write_adult_sample("train.csv.gz", 7, 3000, &train);
        write_adult_sample("test.csv.gz", 9, 1000, &test);
    }
    format!(
        "name: {name}\n\
         dataset:\n  uri: file://{train}\n  label_column: income\n\
         method:\n  {method}: {{}}\n\
         model:\n  encoder_widths: [64, 64]\n  embedding_size: 32\n\
         training:\n  epochs: {epochs}\n  global_batch_size: 256\n  learning_rate: 0.001\n  seed: 3\n\
         workers:\n  min: {min}\n  max: {max}\n\
         checkpoint:\n  every_steps: {every_steps}\n  keep_last: 2\n\
         evaluation:\n  test_uri: file://{test}\n  label_fractions: [0.1]\n  knn_k: 10\n",
        train = train.display(),
        test = test.display(),
        min = workers.0,
        max = workers.1,
    )
}

/// Splits the CSV file `source` into `parts` files with its header, under
/// `prefix/` in the cluster's bucket, and returns the folder's `s3://` URI.
fn split_into_bucket(cluster: &Cluster, source: &Path, prefix: &str, parts: usize) -> String {
    let text = std::fs::read_to_string(source).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let folder = cluster.bucket_path(prefix);
    std::fs::create_dir_all(&folder).unwrap();
    for (index, chunk) in rows.chunks(rows.len().div_ceil(parts)).enumerate() {
        std::fs::write(folder.join(format!("part-{index}.csv")), format!("{header}\n{}\n", chunk.join("\n"))).unwrap();
    }
    format!("s3://{}/{prefix}/", ssl_e2e::BUCKET)
}

/// Asserts the job's result contains an evaluation with SSL and raw scores.
fn assert_evaluated(job: &v1::Job) {
    let result: serde_json::Value = serde_json::from_str(&job.result_json).unwrap();
    let scores = result["evaluation"]["scores"].as_array().unwrap_or_else(|| panic!("no evaluation in {}", job.result_json));
    assert!(scores.len() >= 2, "{}", job.result_json);
    assert!(result["steps"].as_u64().unwrap() > 0, "{}", job.result_json);
}

/// Asserts every checkpoint the coordinator lists is complete in the bucket,
/// that the bucket contains no incomplete one, and returns the listed steps.
async fn assert_checkpoints_complete(cluster: &Cluster, client: &mut ssl_e2e::JobClient, job_id: &str) -> Vec<i64> {
    let listed = client.list_checkpoints(v1::ListCheckpointsRequest { job_id: job_id.to_owned() }).await.unwrap().into_inner().checkpoints;
    assert!(!listed.is_empty(), "job {job_id} has no checkpoint\n{}", cluster.logs());
    let folders = checkpoint_folders(cluster, job_id);
    for checkpoint in &listed {
        let folder = format!("{:010}", checkpoint.step);
        assert!(checkpoint.uri.ends_with(&format!("/runs/jobs/{job_id}/checkpoints/{folder}/")), "{}", checkpoint.uri);
        assert!(folders.contains(&(folder.clone(), true)), "checkpoint {folder} is not complete in the bucket: {folders:?}");
    }
    assert!(folders.iter().all(|(_, complete)| *complete), "incomplete checkpoint folders in the bucket: {folders:?}\n{}", cluster.logs());
    // Retention keeps the last two and the best by loss; expired folders are deleted.
    assert!(listed.len() <= 3, "{listed:?}");
    assert_eq!(folders.len(), listed.len(), "bucket {folders:?}, records {listed:?}");
    listed.iter().map(|checkpoint| checkpoint.step).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_run_jobs() {
    let Service { _serial, database, mut cluster, mut client, data } = start_service(3).await;

    // A worker with a wrong join token exits with status 2 and names the problem.
    let output = cluster.worker_command("intruder", "not-the-join-token").output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(cluster.log("intruder").contains("join token"), "{}", cluster.log("intruder"));
    // A worker that does not trust the coordinator's certificate exits with status 2
    // and a hint naming --ca-cert, instead of retrying forever.
    let output = std::process::Command::new(ssl_e2e::binary("ssl-worker"))
        .args(["--coordinator", &cluster.endpoint(), "--join-token", JOIN_TOKEN, "--name", "untrusting"])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");
    assert!(stderr.contains("--ca-cert"), "{stderr}");
    // A second worker with a live worker's name is refused.
    let output = cluster.worker_command("worker-0", JOIN_TOKEN).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");

    // A dataset that does not exist fails the job with its path; the workers stay.
    let missing = adult_spec(data.path(), "missing-data", "masked", 1, (3, 3), 5).replace("train.csv\n", "nope.csv\n");
    let job_id = submit(&mut client, &missing, data.path()).await;
    let job = wait_for(&cluster, &mut client, &job_id, JOB_TIMEOUT, is_terminal).await;
    assert_eq!(job.state(), JobState::Failed, "{job:?}");
    assert!(job.message.contains("nope.csv"), "{}", job.message);
    for index in 0..3 {
        assert!(cluster.worker_alive(index), "worker {index} exited\n{}", cluster.logs());
    }

    // The masked job reads its rows from a folder of three CSV files in the S3
    // bucket, which the coordinator lists as the job's shards.
    let train = data.path().join("train.csv");
    let folder = split_into_bucket(&cluster, &train, "datasets/adult", 3);
    for method in ["contrastive", "masked"] {
        // 3 epochs of 11 steps, a checkpoint every 5 steps and at the end.
        let mut spec = adult_spec(data.path(), method, method, 3, (3, 3), 5);
        if method == "masked" {
            spec = spec.replace(&format!("uri: file://{}\n", train.display()), &format!("uri: {folder}\n  format: csv\n"));
        }
        let job_id = submit(&mut client, &spec, data.path()).await;
        let job = wait_for(&cluster, &mut client, &job_id, JOB_TIMEOUT, is_terminal).await;
        assert_eq!(job.state(), JobState::Succeeded, "{method}: {job:?}\n{}", cluster.logs());
        assert_eq!(job.generation, 1, "{method}: the worker set changed\n{}", cluster.logs());
        assert_evaluated(&job);
        let steps = assert_checkpoints_complete(&cluster, &mut client, &job_id).await;
        assert_eq!(steps.iter().max(), Some(&33), "{method}: {steps:?}");
    }
    let coordinator = cluster.log("coordinator");
    let planned: Vec<&str> = coordinator.lines().filter(|line| line.contains("planned the dataset's shards")).collect();
    assert!(planned.iter().any(|line| line.contains("shards=3") && line.contains(&folder)), "{planned:#?}");
    drop(cluster);
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_survives_worker_and_coordinator_loss() {
    let Service { _serial, database, mut cluster, mut client, data } = start_service(3).await;

    // 100 epochs of 11 steps; checkpoints every 40 steps, so a restart from a
    // checkpoint would go back by up to 40 steps.
    let job_id = submit(&mut client, &adult_spec(data.path(), "survivor", "contrastive", 100, (2, 3), 40), data.path()).await;
    let running = wait_for(&cluster, &mut client, &job_id, JOB_TIMEOUT, |job| {
        job.progress.as_ref().is_some_and(|progress| progress.step >= 50) || is_terminal(job)
    })
    .await;
    assert_eq!(running.state(), JobState::Running, "{running:?}\n{}", cluster.logs());
    let step_before_kill = running.progress.as_ref().unwrap().step;
    let generation = running.generation;

    cluster.kill_worker(2);
    let recovered = wait_for(&cluster, &mut client, &job_id, JOB_TIMEOUT, |job| job.generation > generation || is_terminal(job)).await;
    // The job names the worker it lost and its rank.
    let events = job_events(&mut client, &job_id).await;
    assert!(events.iter().any(|message| message.contains("lost worker `worker-2` (rank")), "{events:?}");
    // The survivors carry on: the job does not go back to the queue.
    assert!(matches!(recovered.state(), JobState::Recovering | JobState::Running), "{recovered:?}\n{}", cluster.logs());

    // A replacement registers and joins at a later generation.
    let replacement = cluster.start_worker();
    let grown =
        wait_for(&cluster, &mut client, &job_id, JOB_TIMEOUT, |job| job.generation > recovered.generation || is_terminal(job)).await;
    assert!(grown.generation > recovered.generation, "the replacement never joined: {grown:?}\n{}", cluster.logs());

    // The coordinator dies and comes back; the job carries on.
    cluster.kill_coordinator();
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.start_coordinator();
    let mut client = cluster.client().await;

    let job = wait_for(&cluster, &mut client, &job_id, JOB_TIMEOUT, is_terminal).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}\n{}", cluster.logs());
    assert_evaluated(&job);
    let steps = assert_checkpoints_complete(&cluster, &mut client, &job_id).await;
    assert_eq!(steps.iter().max(), Some(&1100), "{steps:?}");

    // The survivors went on from their in-memory state, not from a checkpoint:
    // each new generation started at or after the step seen before the kill.
    let resumed: Vec<u64> = (0..=replacement)
        .filter(|&index| index != 2)
        .flat_map(|index| resumed_steps(&cluster.log(&format!("worker-{index}"))))
        .collect();
    assert!(!resumed.is_empty(), "no worker continued from memory\n{}", cluster.logs());
    let repeated = resumed.iter().map(|&step| (step_before_kill as u64).saturating_sub(step)).max().unwrap();
    assert_eq!(repeated, 0, "steps repeated after the kill: resumed at {resumed:?}, {step_before_kill} seen before");
    assert!(!cluster.log("coordinator").is_empty());
    let _ = get_job(&mut client, &job_id).await;
    drop(cluster);
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_live_worker_is_reported_and_left_out() {
    let Service { _serial, database, mut cluster, mut client, data } = start_service(2).await;
    // The third worker runs and heartbeats, but announces a data-plane address
    // where nothing listens, so its peers cannot connect to it.
    let dead_address = format!("127.0.0.1:{}", free_port());
    let partitioned = cluster.start_worker_with(&["--data-advertise", &dead_address]);
    cluster.wait_for_registrations(3).await;

    let job_id = submit(&mut client, &adult_spec(data.path(), "partition", "masked", 3, (2, 3), 11), data.path()).await;
    let job = wait_for(&cluster, &mut client, &job_id, JOB_TIMEOUT, is_terminal).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}\n{}", cluster.logs());
    assert_evaluated(&job);

    // The history names the worker, its rank, the rank that reported it and the address.
    let events = job_events(&mut client, &job_id).await;
    let report = format!("`worker-{partitioned}` (rank ");
    let lost = events.iter().find(|event| event.contains("lost worker") && event.contains(&report));
    let lost = lost.unwrap_or_else(|| panic!("no event names the unreachable worker: {events:#?}"));
    assert!(lost.contains(&format!("could not reach at {dead_address}")), "{lost}");
    assert!(lost.contains("which rank "), "{lost}");
    // The job ran on the two reachable workers from generation 2 on: the
    // unreachable one registered again but was never taken back.
    assert_eq!(job.generation, 2, "{events:#?}");
    assert!(cluster.worker_alive(partitioned), "the unreachable worker exited\n{}", cluster.logs());
    let registrations = cluster.log("coordinator").matches("worker registered").count();
    assert!(registrations >= 4, "the dropped worker did not register again\n{}", cluster.logs());
    // Generation 1 never formed its ring, so no step was trained in it and none
    // is repeated: every worker of generation 2 started from fresh weights.
    for index in 0..partitioned {
        let log = cluster.log(&format!("worker-{index}"));
        assert!(log.contains("starting from fresh weights"), "worker-{index} did not start fresh\n{}", cluster.logs());
        assert!(resumed_steps(&log).is_empty(), "worker-{index} resumed from memory\n{}", cluster.logs());
        assert!(!log.contains("resuming from the latest checkpoint"), "worker-{index} went back to a checkpoint");
    }
    let steps = assert_checkpoints_complete(&cluster, &mut client, &job_id).await;
    assert_eq!(steps.iter().max(), Some(&33), "{steps:?}");
    drop(cluster);
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_survive_a_storage_outage() {
    let Service { _serial, database, cluster, mut client, data } = start_service(2).await;

    // 60 epochs of 11 steps, a checkpoint every 10 steps.
    let job_id = submit(&mut client, &adult_spec(data.path(), "outage", "masked", 60, (2, 2), 10), data.path()).await;
    wait_for(&cluster, &mut client, &job_id, JOB_TIMEOUT, |job| {
        job.progress.as_ref().is_some_and(|progress| progress.step >= 30) || is_terminal(job)
    })
    .await;
    cluster.s3_proxy.set_down(true);
    tokio::time::sleep(Duration::from_secs(4)).await;
    cluster.s3_proxy.set_down(false);
    assert!(cluster.s3_proxy.refused_connections() > 0, "no storage request was made during the outage\n{}", cluster.logs());

    let job = wait_for(&cluster, &mut client, &job_id, JOB_TIMEOUT, is_terminal).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}\n{}", cluster.logs());
    assert_eq!(job.generation, 1, "the outage cost a worker\n{}", cluster.logs());
    let steps = assert_checkpoints_complete(&cluster, &mut client, &job_id).await;
    assert_eq!(steps.iter().max(), Some(&660), "{steps:?}");
    let rank0_log = (0..2).map(|index| cluster.log(&format!("worker-{index}"))).collect::<String>();
    assert!(rank0_log.contains("checkpoint storage failed; retrying"), "the outage went unnoticed\n{}", cluster.logs());
    drop(cluster);
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_follow_one_worker() {
    let Service { _serial, database, cluster, mut client, data } = start_service(2).await;

    for method in ["contrastive", "masked"] {
        // Two epochs of 11 steps with global batch 256, a checkpoint after every step.
        let mut runs = Vec::new();
        for workers in [1, 2] {
            let spec = adult_spec(data.path(), &format!("follow-{method}-{workers}"), method, 2, (workers, workers), 1)
                .replace("keep_last: 2", "keep_last: 100");
            let job_id = submit(&mut client, &spec, data.path()).await;
            let job = wait_for(&cluster, &mut client, &job_id, JOB_TIMEOUT, is_terminal).await;
            assert_eq!(job.state(), JobState::Succeeded, "{job:?}\n{}", cluster.logs());
            runs.push(checkpointed_run(&cluster, &job_id));
        }
        let (one, two) = (&runs[0], &runs[1]);

        let steps: Vec<u64> = one.losses.iter().map(|(step, _)| *step).collect();
        assert_eq!(steps, (1..=22).collect::<Vec<u64>>(), "{method}: checkpointed steps of one worker");
        assert_eq!(two.losses.len(), one.losses.len(), "{method}: checkpointed steps of two workers");
        for ((step, loss_one), (step_two, loss_two)) in one.losses.iter().zip(&two.losses) {
            assert_eq!(step, step_two, "{method}");
            assert!(
                (loss_one - loss_two).abs() <= 1e-4 * loss_one.abs().max(1.0),
                "{method} step {step}: loss {loss_one} on one worker, {loss_two} on two"
            );
        }

        // The loss moved, so matching losses mean matching steps.
        assert_ne!(one.losses.first().map(|(_, loss)| loss), one.losses.last().map(|(_, loss)| loss), "{method}");

        assert_eq!(one.weights.keys().collect::<Vec<_>>(), two.weights.keys().collect::<Vec<_>>(), "{method}: tensor names");
        let largest = one.weights.values().flatten().fold(0.0f32, |largest, value| largest.max(value.abs()));
        assert!(largest > 0.0, "{method}: the encoder is all zeros");
        for (name, values) in &one.weights {
            for (index, (a, b)) in values.iter().zip(&two.weights[name]).enumerate() {
                assert!((a - b).abs() <= 1e-3 * largest, "{method} {name}[{index}]: {a} on one worker, {b} on two");
            }
        }
    }
    drop(cluster);
    database.drop_database().await;
}

/// What a job left in the bucket: the loss of each checkpointed step, and the
/// encoder weights of the last checkpoint.
struct CheckpointedRun {
    losses: Vec<(u64, f64)>,
    weights: std::collections::BTreeMap<String, Vec<f32>>,
}

fn checkpointed_run(cluster: &Cluster, job_id: &str) -> CheckpointedRun {
    let folders = checkpoint_folders(cluster, job_id);
    let mut losses = Vec::new();
    for (folder, complete) in &folders {
        assert!(complete, "checkpoint {folder} of job {job_id} is incomplete");
        let manifest = std::fs::read(cluster.bucket_path(&format!("runs/jobs/{job_id}/checkpoints/{folder}/manifest.json"))).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        losses.push((manifest["step"].as_u64().unwrap(), manifest["loss"].as_f64().unwrap()));
    }
    losses.sort_by_key(|(step, _)| *step);
    let (last, _) = folders.last().unwrap_or_else(|| panic!("job {job_id} has no checkpoint"));
    let encoder = std::fs::read(cluster.bucket_path(&format!("runs/jobs/{job_id}/checkpoints/{last}/encoder.safetensors"))).unwrap();
    CheckpointedRun { losses, weights: safetensors_f32(&encoder) }
}

/// Reads every F32 tensor of a SafeTensors file: an 8-byte little-endian header
/// length, a JSON header with each tensor's dtype and byte range, then the data.
fn safetensors_f32(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<f32>> {
    let header_length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + header_length]).unwrap();
    let data = &bytes[8 + header_length..];
    let mut tensors = std::collections::BTreeMap::new();
    for (name, tensor) in header {
        if name == "__metadata__" {
            continue;
        }
        assert_eq!(tensor["dtype"], "F32", "{name}");
        let offsets = tensor["data_offsets"].as_array().unwrap();
        let (start, end) = (offsets[0].as_u64().unwrap() as usize, offsets[1].as_u64().unwrap() as usize);
        let values = data[start..end].chunks_exact(4).map(|chunk| f32::from_le_bytes(chunk.try_into().unwrap())).collect();
        tensors.insert(name, values);
    }
    tensors
}

/// Messages of the job's history so far.
async fn job_events(client: &mut ssl_e2e::JobClient, job_id: &str) -> Vec<String> {
    let request = v1::WatchJobRequest { id: job_id.to_owned(), after_sequence: 0 };
    let mut stream = client.watch_job(request).await.unwrap().into_inner();
    let mut messages = Vec::new();
    // The history comes first; a short wait after it ends the read.
    while let Ok(Ok(Some(event))) = tokio::time::timeout(Duration::from_millis(500), stream.message()).await {
        messages.push(format!("{event:?}"));
    }
    messages
}

/// Parses the steps at which a worker's log reports that a generation continued from in-memory state.
fn resumed_steps(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|line| line.contains("continuing from the in-memory state"))
        .filter_map(|line| line.split("step=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect()
}
