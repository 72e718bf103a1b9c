//! Training-step throughput of both trainers on the CPU backend.
//!
//! Setup: batch 256, 100 numeric input columns (so 200 encoder inputs with the
//! missing indicators), encoder hidden widths [256, 256] and embedding 256
//! (three 256-wide linear layers), projection 128 for the contrastive trainer.
//! Run with `cargo bench -p ssl-worker --bench train_step`.

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Device;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ssl_worker::data::{DatasetProfile, TypedTable, TypedValues, encode_table};
use ssl_worker::trainers::{AnyTrainer, MethodConfig, OptimizerSettings, TrainerConfig};

const ROWS: usize = 8192;
const COLUMNS: usize = 100;
const BATCH: usize = 256;
const WARMUP_STEPS: usize = 10;
const TIMED_STEPS: usize = 60;

fn table() -> TypedTable {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let features = (0..COLUMNS)
        .map(|column| {
            let values = (0..ROWS).map(|_| Some(rng.random::<f64>() * (column + 1) as f64)).collect();
            (format!("x{column}"), TypedValues::Numeric(values))
        })
        .collect();
    TypedTable { uri: "synthetic".to_owned(), features, label: None, row_lines: (1..=ROWS as u64).collect() }
}

fn config(method: MethodConfig) -> TrainerConfig {
    TrainerConfig {
        method,
        hidden_widths: vec![256, 256],
        embedding_size: 256,
        categorical_embedding_size: 8,
        epochs: 100,
        batch_size: BATCH,
        learning_rate: 1e-3,
        schedule: "warmup_cosine".to_owned(),
        warmup_fraction: 0.05,
        optimizer: OptimizerSettings { weight_decay: 1e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
        gradient_clip_norm: 1.0,
        seed: 3,
    }
}

fn measure(name: &str, method: MethodConfig) {
    let table = table();
    let profile = DatasetProfile::from_table(&table, 0, 16_384, 1024);
    let rows = Arc::new(encode_table(&profile, &table).expect("synthetic table encodes"));
    let mut trainer = AnyTrainer::new(config(method), profile, rows, &Device::flex()).expect("trainer builds");

    for _ in 0..WARMUP_STEPS {
        trainer.step().expect("step runs");
    }
    let mut milliseconds = Vec::with_capacity(TIMED_STEPS);
    for _ in 0..TIMED_STEPS {
        let started = Instant::now();
        trainer.step().expect("step runs");
        milliseconds.push(started.elapsed().as_secs_f64() * 1e3);
    }
    milliseconds.sort_by(f64::total_cmp);
    let median = milliseconds[TIMED_STEPS / 2];
    let p90 = milliseconds[TIMED_STEPS * 9 / 10];
    println!(
        "{name:<12} median {median:6.2} ms/step  p90 {p90:6.2} ms/step  {:8.0} samples/s (batch {BATCH}, {TIMED_STEPS} timed steps)",
        BATCH as f64 / (median / 1e3)
    );
}

fn main() {
    measure("contrastive", MethodConfig::Contrastive { corruption_rate: 0.6, temperature: 1.0, projection_size: 128 });
    measure("masked", MethodConfig::Masked { mask_rate: 0.3, mask_loss_weight: 1.0, reconstruction_loss_weight: 2.0 });
}
