//! `ssl-worker train`: one process, no coordinator.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde::Serialize;

use crate::checkpoint::export_encoder;
use crate::cli::progress::Progress;
pub use crate::device::{DeviceChoice, make_device};
use crate::error::{Result, WorkerError};
use crate::eval::EvaluationReport;
use crate::job::{PreparedJob, evaluate_trainer, pretrain};
use crate::trainers::MethodConfig;

/// Arguments of `ssl-worker train`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Job spec file (YAML, or JSON with a `.json` extension).
    #[arg(long)]
    pub spec: PathBuf,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
    /// Overrides `training.epochs`.
    #[arg(long)]
    pub epochs: Option<u32>,
    /// Overrides `training.seed` (weights, data order, augmentation, splits).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Writes the run's results as JSON to this file.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
    /// Exports the trained encoder (SafeTensors, profile and config JSON) to this folder.
    #[arg(long)]
    pub export_dir: Option<PathBuf>,
    /// Writes the final checkpoint bytes to this file.
    #[arg(long)]
    pub checkpoint_out: Option<PathBuf>,
}

/// Machine-readable result of a `train` run.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOutcome {
    pub name: String,
    pub method: String,
    pub seed: u64,
    pub epochs: u64,
    pub steps: u64,
    pub batch_size: usize,
    pub training_rows: usize,
    /// Mean training loss of each epoch.
    pub epoch_losses: Vec<f64>,
    pub training_seconds: f64,
    pub evaluation: Option<EvaluationReport>,
}

/// Reads and normalises the spec, applies the overrides, trains, evaluates,
/// prints the evaluation table on stdout and writes the requested files.
///
/// # Errors
///
/// Any error of reading the spec, the data, training or writing the outputs.
pub fn run_train(args: &TrainArgs) -> Result<TrainOutcome> {
    let mut spec = ssl_proto::spec::parse_spec_file(&args.spec).map_err(|error| WorkerError::InvalidConfig(error.to_string()))?;
    let training = spec.training.get_or_insert_with(Default::default);
    if let Some(epochs) = args.epochs {
        training.epochs = Some(epochs as i32);
    }
    if let Some(seed) = args.seed {
        training.seed = Some(seed);
    }
    let spec = ssl_proto::spec::normalize(spec).map_err(|error| WorkerError::InvalidConfig(error.to_string()))?;
    let device = make_device(args.device)?;

    let job = PreparedJob::from_spec(&spec)?;
    tracing::info!(job = %spec.name, rows = job.rows.num_rows, columns = job.profile.columns.len(), "dataset loaded");
    let mut trainer = job.trainer(&device)?;

    let started = Instant::now();
    let mut progress = Progress::new(trainer.total_steps(), job.config.batch_size);
    let steps_per_epoch = trainer.steps_per_epoch();
    let mut epoch_sums: Vec<f64> = Vec::new();
    pretrain(&mut trainer, |report| {
        progress.on_step(report);
        let epoch = report.epoch as usize;
        if epoch_sums.len() <= epoch {
            epoch_sums.resize(epoch + 1, 0.0);
        }
        epoch_sums[epoch] += report.loss;
    })?;
    progress.finish();
    let training_seconds = started.elapsed().as_secs_f64();
    let epoch_losses: Vec<f64> = epoch_sums.iter().map(|sum| sum / steps_per_epoch as f64).collect();
    tracing::info!(seconds = training_seconds, first_epoch_loss = epoch_losses.first(), last_epoch_loss = epoch_losses.last(), "pretraining finished");

    if let Some(directory) = &args.export_dir {
        export_encoder(&trainer.encoder(), &trainer.encoder_config(), trainer.profile(), directory)?;
        tracing::info!(directory = %directory.display(), "encoder exported");
    }
    if let Some(path) = &args.checkpoint_out {
        let bytes = trainer.to_checkpoint()?;
        std::fs::write(path, bytes).map_err(|source| WorkerError::Write { path: path.clone(), source })?;
    }

    let evaluation = match &job.evaluation {
        Some(plan) => {
            let report = evaluate_trainer(&trainer, plan, &device)?;
            println!("{}", report.to_table());
            Some(report)
        }
        None => {
            println!("evaluation skipped: no label column, or evaluation disabled");
            None
        }
    };

    let outcome = TrainOutcome {
        name: spec.name.clone(),
        method: match job.config.method {
            MethodConfig::Contrastive { .. } => "contrastive".to_owned(),
            MethodConfig::Masked { .. } => "masked".to_owned(),
        },
        seed: job.config.seed,
        epochs: job.config.epochs,
        steps: trainer.state().global_step,
        batch_size: job.config.batch_size,
        training_rows: job.rows.num_rows,
        epoch_losses,
        training_seconds,
        evaluation,
    };
    if let Some(path) = &args.json_out {
        let json = serde_json::to_vec_pretty(&outcome).map_err(|error| WorkerError::Write { path: path.clone(), source: error.into() })?;
        std::fs::write(path, json).map_err(|source| WorkerError::Write { path: path.clone(), source })?;
    }
    Ok(outcome)
}
