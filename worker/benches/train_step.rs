//! Training-step throughput of both trainers on the CPU backend.
//!
//! Setup: batch 256, 100 numeric input columns without missing cells (so 100
//! encoder inputs, because only columns with missing cells get an indicator),
//! encoder hidden widths [256, 256] and embedding 256 (three 256-wide linear
//! layers). Contrastive variants:
//! - `contrastive`: projection head one linear layer 256 -> 128;
//! - `contr-mlp`: the head that specs build, 256 -> 256 (ReLU) -> 128;
//! - `contr-split`: the linear head with the projection gradient computed on a
//!   graph of its own, as a distributed step needs.
//!
//! Run with `cargo bench -p ssl-worker --bench train_step`. The rayon pool
//! follows `RAYON_NUM_THREADS`. The process uses the `ssl-worker` binary's
//! allocator settings ([`ssl_worker::allocator::retain_freed_memory`]).

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Device;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ssl_worker::data::{DatasetProfile, EncodedRows, TypedTable, TypedValues, encode_sample, encode_table};
use ssl_worker::trainers::any::encoder_config;
use ssl_worker::trainers::{AnyTrainer, ContrastiveObjective, MethodConfig, OptimizerSettings, Trainer, TrainerConfig};

const ROWS: usize = 8192;
const COLUMNS: usize = 100;
const BATCH: usize = 256;
const PROJECTION: usize = 128;
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

fn contrastive_method() -> MethodConfig {
    MethodConfig::Contrastive { corruption_rate: 0.6, temperature: 1.0, projection_size: PROJECTION }
}

/// Builds a contrastive trainer whose projection head has `hidden_width`.
fn contrastive_trainer(profile: DatasetProfile, rows: Arc<EncodedRows>, hidden_width: Option<usize>, split: bool) -> Trainer<ContrastiveObjective> {
    let config = config(contrastive_method());
    let device = Device::flex().autodiff();
    let objective = ContrastiveObjective {
        encoder_config: encoder_config(&config, &profile),
        corruption_rate: 0.6,
        temperature: 1.0,
        projection_size: PROJECTION,
        projection_hidden_width: hidden_width,
        pool: encode_sample(&profile),
        device: device.clone(),
        split_projection_gradient: split,
    };
    Trainer::new(objective, config, profile, rows, device).expect("trainer builds")
}

/// Times `step` and prints the median and 90th percentile.
fn measure(name: &str, mut step: impl FnMut()) {
    for _ in 0..WARMUP_STEPS {
        step();
    }
    let mut milliseconds = Vec::with_capacity(TIMED_STEPS);
    for _ in 0..TIMED_STEPS {
        let started = Instant::now();
        step();
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
    // The same allocator settings as the `ssl-worker` binary.
    ssl_worker::allocator::retain_freed_memory();
    let table = table();
    let profile = DatasetProfile::from_table(&table, 0, 16_384, 1024);
    let rows = Arc::new(encode_table(&profile, &table).expect("synthetic table encodes"));

    let mut linear = contrastive_trainer(profile.clone(), rows.clone(), None, false);
    measure("contrastive", || {
        linear.step().expect("step runs");
    });
    let mut mlp = AnyTrainer::new(config(contrastive_method()), profile.clone(), rows.clone(), &Device::flex()).expect("trainer builds");
    measure("contr-mlp", || {
        mlp.step().expect("step runs");
    });
    let mut split = contrastive_trainer(profile.clone(), rows.clone(), None, true);
    measure("contr-split", || {
        split.step().expect("step runs");
    });

    let masked = MethodConfig::Masked { mask_rate: 0.3, mask_loss_weight: 1.0, reconstruction_loss_weight: 2.0 };
    let mut masked = AnyTrainer::new(config(masked), profile, rows, &Device::flex()).expect("trainer builds");
    measure("masked", || {
        masked.step().expect("step runs");
    });
}
