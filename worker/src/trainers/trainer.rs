//! The generic training loop state: data order, the split optimizer step, and
//! checkpoints.

use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, ModuleOptimizer};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{CheckpointHeader, CheckpointParts, decode_checkpoint, encode_checkpoint};
use crate::data::encode::EncodedRows;
use crate::data::profile::{DatasetProfile, sample_key};
use crate::error::{Result, WorkerError};
use crate::model::TabularEncoder;
use crate::schedule::LearningRateSchedule;
use crate::trainers::config::TrainerConfig;
use crate::trainers::exchange::{StepExchange, TimedExchange, shard_rows};
use crate::trainers::objective::{Objective, ShardLoss};
use crate::trainers::step::{StepTimings, clip_global_norm, flatten_gradients, step_rng, unflatten_gradients};

/// Position of a run, stored in checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TrainerState {
    /// 0-based epoch of the next step.
    pub epoch: u64,
    /// 0-based batch of the next step within its epoch: the data position.
    pub batch_in_epoch: u64,
    /// Optimizer steps taken so far.
    pub global_step: u64,
}

/// Loss and gradients of one step, before any exchange between ranks.
#[derive(Debug, Clone)]
pub struct StepGradients {
    /// Loss of this rank's batch.
    pub loss: f64,
    /// Gradients of every float parameter, flattened in module field order.
    pub gradients: Vec<f32>,
}

/// Summary of one applied optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// Epoch and 0-based global index of the step taken.
    pub epoch: u64,
    pub step: u64,
    pub loss: f64,
    pub learning_rate: f64,
    /// Global L2 norm of the gradient before clipping.
    pub gradient_norm: f64,
    /// Wall time of the step's phases. A single-process [`Trainer::step`] leaves them at zero.
    pub timings: StepTimings,
    /// Bytes of the gradient buffer that the step all-reduced; zero on a single process.
    pub all_reduce_bytes: u64,
}

/// Trains one SSL objective on encoded rows held in memory.
///
/// A step is split for data parallelism: [`Trainer::compute_gradients`] returns
/// this rank's gradients as one flat buffer, a runtime may average buffers across
/// ranks, and [`Trainer::apply_gradients`] clips the (averaged) buffer and steps
/// AdamW. [`Trainer::step`] does both on a single process.
pub struct Trainer<O: Objective> {
    objective: O,
    /// `None` only while the optimizer owns it during a step.
    model: Option<O::Model>,
    optimizer: ModuleOptimizer,
    schedule: LearningRateSchedule,
    config: TrainerConfig,
    profile: DatasetProfile,
    rows: Arc<EncodedRows>,
    state: TrainerState,
    rank: u64,
    device: Device,
    /// Row order of the current epoch, cached.
    epoch_order: Option<(u64, Vec<usize>)>,
}

impl<O: Objective> Trainer<O> {
    /// Creates a trainer with fresh weights from `config.seed` on `device`, which
    /// must have autodiff enabled.
    ///
    /// # Errors
    ///
    /// [`WorkerError::InvalidConfig`] for no rows, a zero batch size or an
    /// unknown schedule.
    pub fn new(objective: O, config: TrainerConfig, profile: DatasetProfile, rows: Arc<EncodedRows>, device: Device) -> Result<Self> {
        device.seed(config.seed);
        let model = objective.init_model(&device);
        Self::with_model(objective, model, config, profile, rows, device)
    }

    fn with_model(
        objective: O,
        model: O::Model,
        config: TrainerConfig,
        profile: DatasetProfile,
        rows: Arc<EncodedRows>,
        device: Device,
    ) -> Result<Self> {
        if rows.num_rows == 0 {
            return Err(WorkerError::InvalidConfig("no training rows".to_owned()));
        }
        if config.batch_size < 2 {
            return Err(WorkerError::InvalidConfig("the batch size must be at least 2".to_owned()));
        }
        let steps_per_epoch = steps_per_epoch(rows.num_rows, config.batch_size);
        let schedule =
            LearningRateSchedule::new(&config.schedule, config.learning_rate, config.warmup_fraction, steps_per_epoch * config.epochs)?;
        let optimizer = AdamWConfig::new()
            .with_beta_1(config.optimizer.beta1 as f32)
            .with_beta_2(config.optimizer.beta2 as f32)
            .with_epsilon(config.optimizer.epsilon as f32)
            .with_weight_decay(config.optimizer.weight_decay as f32)
            .init();
        Ok(Trainer {
            objective,
            model: Some(model),
            optimizer,
            schedule,
            config,
            profile,
            rows,
            state: TrainerState::default(),
            rank: 0,
            device,
            epoch_order: None,
        })
    }

    /// Optimizer steps per epoch: full batches only, or one step over all rows
    /// when there are fewer rows than a batch.
    pub fn steps_per_epoch(&self) -> u64 {
        steps_per_epoch(self.rows.num_rows, self.config.batch_size)
    }

    /// Optimizer steps of the whole run.
    pub fn total_steps(&self) -> u64 {
        self.steps_per_epoch() * self.config.epochs
    }

    /// Returns whether every epoch has been trained.
    pub fn is_finished(&self) -> bool {
        self.state.global_step >= self.total_steps()
    }

    pub fn state(&self) -> TrainerState {
        self.state
    }

    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    pub fn profile(&self) -> &DatasetProfile {
        &self.profile
    }

    pub fn objective(&self) -> &O {
        &self.objective
    }

    /// Returns the objective for changing its settings between steps, such as
    /// [`crate::trainers::contrastive::ContrastiveObjective::split_projection_gradient`].
    pub fn objective_mut(&mut self) -> &mut O {
        &mut self.objective
    }

    /// Returns the model with its heads, on the autodiff device.
    pub fn model(&self) -> &O::Model {
        self.model.as_ref().expect("the model is present between steps")
    }

    /// Returns a copy of the encoder without autodiff, for inference and export.
    pub fn encoder(&self) -> TabularEncoder {
        O::encoder(self.model()).valid()
    }

    /// Learning rate of the next step.
    pub fn learning_rate(&self) -> f64 {
        self.schedule.learning_rate(self.state.global_step)
    }

    /// Row indices of the next step's batch.
    pub fn next_batch_rows(&mut self) -> Vec<usize> {
        let epoch = self.state.epoch;
        if self.epoch_order.as_ref().is_none_or(|(cached, _)| *cached != epoch) {
            let mut order: Vec<usize> = (0..self.rows.num_rows).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(sample_key(self.config.seed, epoch)));
            self.epoch_order = Some((epoch, order));
        }
        let order = &self.epoch_order.as_ref().expect("set above").1;
        let batch = self.config.batch_size.min(order.len());
        let start = self.state.batch_in_epoch as usize * batch;
        order[start..start + batch].to_vec()
    }

    /// Computes the loss and flat gradients of the next step on this rank,
    /// without changing the model or the position.
    ///
    /// # Errors
    ///
    /// [`WorkerError::Tensor`] when a device read fails.
    pub fn compute_gradients(&mut self) -> Result<StepGradients> {
        let batch_rows = self.next_batch_rows();
        let batch = self.rows.select(&batch_rows);
        let mut rng = step_rng(self.config.seed, self.state.epoch, self.state.global_step, self.rank);
        let model = self.model();
        let (loss, gradients) = self.objective.loss_and_gradients(model, &batch, &mut rng)?;
        let plain_device = self.device.clone().without_autodiff();
        let gradients = flatten_gradients(model, gradients, &plain_device)?;
        Ok(StepGradients { loss, gradients })
    }

    /// Clips `gradients` (flat, as from [`Trainer::compute_gradients`], averaged
    /// over ranks when distributed) to the configured global norm, applies one
    /// AdamW step at the scheduled learning rate and advances the position.
    ///
    /// # Errors
    ///
    /// [`WorkerError::Tensor`] when the buffer has the wrong length.
    pub fn apply_gradients(&mut self, mut gradients: Vec<f32>, loss: f64) -> Result<StepReport> {
        let gradient_norm = clip_global_norm(&mut gradients, self.config.gradient_clip_norm);
        let learning_rate = self.learning_rate();
        let model = self.model.take().expect("the model is present between steps");
        let plain_device = self.device.clone().without_autodiff();
        let parameters = match unflatten_gradients(&model, &gradients, &plain_device) {
            Ok(parameters) => parameters,
            Err(error) => {
                self.model = Some(model);
                return Err(error);
            }
        };
        self.model = Some(self.optimizer.step(learning_rate, model, parameters));

        let report = StepReport {
            epoch: self.state.epoch,
            step: self.state.global_step,
            loss,
            learning_rate,
            gradient_norm,
            timings: StepTimings::default(),
            all_reduce_bytes: 0,
        };
        self.advance();
        Ok(report)
    }

    /// Runs one single-process step: compute, clip and apply.
    ///
    /// # Errors
    ///
    /// As [`Trainer::compute_gradients`].
    pub fn step(&mut self) -> Result<StepReport> {
        let StepGradients { loss, gradients } = self.compute_gradients()?;
        self.apply_gradients(gradients, loss)
    }

    /// Runs one data-parallel step as rank `exchange.rank()` of
    /// `exchange.world_size()`: computes this rank's slice of the global batch,
    /// sums the gradients over the ranks and applies the same update as every
    /// other rank. Batches, augmentations and updates do not depend on the
    /// world size, so any number of ranks follows the same trajectory up to
    /// float rounding.
    ///
    /// # Errors
    ///
    /// [`WorkerError::InvalidConfig`] when the global batch has fewer rows than
    /// there are ranks, and the errors of the computation and the exchange. The
    /// model and the position only change when the step succeeds.
    pub fn data_parallel_step(&mut self, exchange: &mut dyn StepExchange) -> Result<StepReport> {
        let started = Instant::now();
        let batch_rows = self.next_batch_rows();
        let world_size = exchange.world_size();
        if batch_rows.len() < world_size {
            return Err(WorkerError::InvalidConfig(format!(
                "a global batch of {} rows cannot be split across {world_size} workers; lower `workers.max` or raise `training.batch_size`",
                batch_rows.len()
            )));
        }

        let batch = self.rows.select(&batch_rows);
        let shard = shard_rows(batch.num_rows, exchange.rank(), world_size);
        let data = started.elapsed();

        let computing = Instant::now();
        let mut exchange = TimedExchange::new(exchange);
        // One augmentation stream for the whole global batch, with no rank in its
        // seed, so every world size draws the same views.
        let mut rng = step_rng(self.config.seed, self.state.epoch, self.state.global_step, 0);
        let model = self.model();
        let (loss, gradients) = self.objective.sharded_loss_and_gradients(model, &batch, shard, &mut rng, &mut exchange)?;

        let plain_device = self.device.clone().without_autodiff();
        let mut gradients = flatten_gradients(model, gradients, &plain_device)?;
        let loss = match loss {
            ShardLoss::Global(loss) => {
                exchange.all_reduce_sum(&mut gradients)?;
                loss
            }
            ShardLoss::Partial(share) => {
                // The loss shares travel at the end of the gradient buffer.
                gradients.push(share as f32);
                exchange.all_reduce_sum(&mut gradients)?;
                f64::from(gradients.pop().expect("the loss was pushed"))
            }
        };
        let computed = computing.elapsed();
        let exchanged = exchange.spent();
        let (all_reduce_bytes, all_reduce) = exchange.last_all_reduce();

        let optimizing = Instant::now();
        let mut report = self.apply_gradients(gradients, loss)?;
        report.timings = StepTimings {
            data,
            forward_backward: computed.saturating_sub(exchanged),
            exchange: exchanged,
            all_reduce,
            optimizer: optimizing.elapsed(),
        };
        report.all_reduce_bytes = all_reduce_bytes;
        Ok(report)
    }

    fn advance(&mut self) {
        self.state.global_step += 1;
        self.state.batch_in_epoch += 1;
        if self.state.batch_in_epoch >= self.steps_per_epoch() {
            self.state.batch_in_epoch = 0;
            self.state.epoch += 1;
        }
    }

    /// Serialises model, optimizer moments, schedule, position, configuration and
    /// dataset profile. See [`crate::checkpoint`] for the format.
    ///
    /// # Errors
    ///
    /// [`WorkerError::Checkpoint`] when burn cannot serialise a record.
    pub fn to_checkpoint(&self) -> Result<Vec<u8>> {
        let record_error = |error: burn::store::RecordError| WorkerError::Checkpoint(error.to_string());
        let model_bytes = self.model().clone().into_record().into_bytes().map_err(record_error)?;
        let optimizer_bytes = self.optimizer.into_bytes().map_err(record_error)?;
        let header = CheckpointHeader {
            config: self.config.clone(),
            schedule: self.schedule.clone(),
            state: self.state,
            profile: self.profile.clone(),
        };
        encode_checkpoint(&CheckpointParts { header, model: model_bytes.to_vec(), optimizer: optimizer_bytes.to_vec() })
    }

    /// Restores a trainer from [`Trainer::to_checkpoint`] bytes. `objective` and
    /// `rows` must be built from the checkpoint's configuration and profile (see
    /// [`crate::checkpoint::read_header`]). The next step is then bit-identical to
    /// the one the saved trainer would have taken on the same device type.
    ///
    /// # Errors
    ///
    /// [`WorkerError::Checkpoint`] for malformed bytes or records that do not fit
    /// the model.
    pub fn from_checkpoint(objective: O, bytes: &[u8], rows: Arc<EncodedRows>, device: Device) -> Result<Self> {
        let parts = decode_checkpoint(bytes)?;
        let record_error = |error: burn::store::RecordError| WorkerError::Checkpoint(error.to_string());

        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(parts.model)).map_err(record_error)?;
        // Load the model record before the optimizer: optimizer state is keyed by
        // parameter ids, which the record restores.
        let model = objective
            .init_model(&device)
            .try_load_record(record)
            .map_err(|error| WorkerError::Checkpoint(format!("model record does not fit: {error}")))?;
        let CheckpointHeader { config, schedule, state, profile } = parts.header;
        let mut trainer = Self::with_model(objective, model, config, profile, rows, device)?;
        trainer.optimizer = trainer.optimizer.clone().from_bytes(Bytes::from_bytes_vec(parts.optimizer)).map_err(record_error)?;
        trainer.schedule = schedule;
        trainer.state = state;
        Ok(trainer)
    }
}

fn steps_per_epoch(num_rows: usize, batch_size: usize) -> u64 {
    (num_rows / batch_size).max(1) as u64
}
