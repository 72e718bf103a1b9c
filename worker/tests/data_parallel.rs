//! Data-parallel steps over a real TCP ring on 127.0.0.1: two ranks with a
//! global batch of 256 follow one process with the same global batch, step by
//! step, and the two ranks hold bit-identical weights after every step.

mod support;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use burn::tensor::Device;
use ssl_collective::{Ring, RingConfig};
use ssl_worker::data::encode::FeatureLayout;
use ssl_worker::eval::embed;
use ssl_worker::job::PreparedJob;
use ssl_worker::trainers::{AnyTrainer, Solo};

const STEPS: usize = 6;

/// Loss of each step and the embeddings of a fixed batch after the last one.
struct Trajectory {
    losses: Vec<f64>,
    embeddings: Vec<f32>,
}

fn prepared(method: &str) -> (tempfile::TempDir, PreparedJob) {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.csv");
    let test = dir.path().join("test.csv");
    support::write_adult_sample("train.csv.gz", 7, 3000, &train);
    support::write_adult_sample("test.csv.gz", 9, 200, &test);
    let spec_path = dir.path().join("spec.yaml");
    let spec = support::adult_spec(method, &train, &test, 1, "[0.1]").replace("global_batch_size: 128", "global_batch_size: 256");
    std::fs::write(&spec_path, spec).unwrap();
    let spec = ssl_proto::spec::normalize(ssl_proto::spec::parse_spec_file(&spec_path).unwrap()).unwrap();
    (dir, PreparedJob::from_spec(&spec).unwrap())
}

fn follow(trainer: &mut AnyTrainer, exchange: &mut dyn ssl_worker::trainers::StepExchange, job: &PreparedJob) -> Trajectory {
    let losses = (0..STEPS).map(|_| trainer.data_parallel_step(exchange).unwrap().loss).collect();
    let probe_rows: Vec<usize> = (0..64).collect();
    let device = Device::flex();
    let embeddings =
        embed(&trainer.encoder(), &job.rows.select(&probe_rows), &FeatureLayout::from_profile(&job.profile), &device).unwrap();
    Trajectory { losses, embeddings }
}

/// Restores a trainer from `initial`. Seeded initialisation draws from the
/// backend's process-wide generator, which concurrent tests share. So every
/// trainer starts from one saved state, as ranks start from rank 0's broadcast
/// state in the agent.
fn restored(job: &PreparedJob, initial: &[u8]) -> AnyTrainer {
    AnyTrainer::from_checkpoint(initial, job.rows.clone(), &Device::flex()).unwrap()
}

fn single_process(job: &PreparedJob, initial: &[u8]) -> Trajectory {
    follow(&mut restored(job, initial), &mut Solo, job)
}

fn two_ranks(job: &PreparedJob, initial: &[u8]) -> Vec<Trajectory> {
    let listeners: Vec<TcpListener> = (0..2).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let peers: Vec<_> = listeners.iter().map(|listener| listener.local_addr().unwrap()).collect();
    let job = Arc::new(job);
    std::thread::scope(|scope| {
        let handles: Vec<_> = listeners
            .iter()
            .enumerate()
            .map(|(rank, listener)| {
                let config = RingConfig { timeout: Duration::from_secs(60), ..RingConfig::new(rank, peers.clone(), 1) };
                let job = job.clone();
                scope.spawn(move || {
                    let mut ring = Ring::connect(listener, config).unwrap();
                    follow(&mut restored(&job, initial), &mut ring, &job)
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    })
}

fn assert_equivalent(method: &str) {
    let (_dir, job) = prepared(method);
    let initial = job.trainer(&Device::flex()).unwrap().to_checkpoint().unwrap();
    let single = single_process(&job, &initial);
    let ranks = two_ranks(&job, &initial);

    // Checkpoint bytes carry each process's random parameter ids, so the ranks
    // are compared on what they compute.
    let same_bits = ranks[0].embeddings.iter().zip(&ranks[1].embeddings).all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(same_bits, "{method}: the ranks' encoders differ in some bit");
    assert_eq!(ranks[0].losses, ranks[1].losses, "{method}: the ranks report different losses");
    for (step, (one, two)) in single.losses.iter().zip(&ranks[0].losses).enumerate() {
        assert!((one - two).abs() <= 1e-4 * one.abs().max(1.0), "{method} step {step}: loss {one} on one process, {two} on two ranks");
    }
    let largest = single.embeddings.iter().fold(0.0f32, |largest, value| largest.max(value.abs()));
    assert!(largest > 0.0);
    for (index, (one, two)) in single.embeddings.iter().zip(&ranks[0].embeddings).enumerate() {
        assert!((one - two).abs() <= 1e-3 * largest, "{method} embedding {index}: {one} on one process, {two} on two ranks");
    }
    // The trajectory moved: a step that changed nothing would pass the checks above.
    assert_ne!(single.losses[0], single.losses[STEPS - 1], "{method}: the loss never changed");
}

#[test]
fn contrastive_two_ranks_follow_one_process() {
    assert_equivalent("contrastive");
}

#[test]
fn masked_two_ranks_follow_one_process() {
    assert_equivalent("masked");
}
