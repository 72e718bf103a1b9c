//! A trainer of either method behind one type, for callers that pick the method
//! at run time from a spec.

use std::sync::Arc;

use burn::tensor::Device;

use crate::checkpoint::read_header;
use crate::data::encode::{EncodedRows, FeatureLayout, encode_sample};
use crate::data::profile::DatasetProfile;
use crate::error::Result;
use crate::model::{EncoderConfig, TabularEncoder};
use crate::trainers::config::{MethodConfig, TrainerConfig};
use crate::trainers::contrastive::ContrastiveObjective;
use crate::trainers::masked::MaskedObjective;
use crate::trainers::trainer::{StepGradients, StepReport, Trainer, TrainerState};

/// A contrastive or masked trainer.
pub enum AnyTrainer {
    Contrastive(Trainer<ContrastiveObjective>),
    Masked(Trainer<MaskedObjective>),
}

macro_rules! each_trainer {
    ($self:expr, $trainer:ident => $body:expr) => {
        match $self {
            AnyTrainer::Contrastive($trainer) => $body,
            AnyTrainer::Masked($trainer) => $body,
        }
    };
}

/// Shape of the encoder that `config` trains on data with `profile`.
pub fn encoder_config(config: &TrainerConfig, profile: &DatasetProfile) -> EncoderConfig {
    EncoderConfig {
        layout: FeatureLayout::from_profile(profile),
        hidden_widths: config.hidden_widths.clone(),
        embedding_size: config.embedding_size,
        categorical_embedding_size: config.categorical_embedding_size,
    }
}

enum AnyObjective {
    Contrastive(ContrastiveObjective),
    Masked(MaskedObjective),
}

fn objective(config: &TrainerConfig, profile: &DatasetProfile, device: &Device) -> AnyObjective {
    let encoder_config = encoder_config(config, profile);
    let pool = encode_sample(profile);
    match config.method {
        MethodConfig::Contrastive { corruption_rate, temperature, projection_size } => AnyObjective::Contrastive(ContrastiveObjective {
            encoder_config,
            corruption_rate,
            temperature,
            projection_size,
            projection_hidden_width: Some(config.embedding_size),
            pool,
            device: device.clone(),
            split_projection_gradient: false,
        }),
        MethodConfig::Masked { mask_rate, mask_loss_weight, reconstruction_loss_weight } => AnyObjective::Masked(MaskedObjective {
            encoder_config,
            mask_rate,
            mask_loss_weight,
            reconstruction_loss_weight,
            pool,
            device: device.clone(),
        }),
    }
}

impl AnyTrainer {
    /// Creates the trainer that `config.method` names, with fresh weights, on
    /// `device` (autodiff is enabled on it here).
    ///
    /// # Errors
    ///
    /// As [`Trainer::new`].
    pub fn new(config: TrainerConfig, profile: DatasetProfile, rows: Arc<EncodedRows>, device: &Device) -> Result<Self> {
        let device = device.clone().autodiff();
        Ok(match objective(&config, &profile, &device) {
            AnyObjective::Contrastive(objective) => AnyTrainer::Contrastive(Trainer::new(objective, config, profile, rows, device)?),
            AnyObjective::Masked(objective) => AnyTrainer::Masked(Trainer::new(objective, config, profile, rows, device)?),
        })
    }

    /// Restores a trainer from checkpoint bytes; `rows` must be encoded with the
    /// checkpoint's profile.
    ///
    /// # Errors
    ///
    /// As [`Trainer::from_checkpoint`].
    pub fn from_checkpoint(bytes: &[u8], rows: Arc<EncodedRows>, device: &Device) -> Result<Self> {
        let header = read_header(bytes)?;
        let device = device.clone().autodiff();
        Ok(match objective(&header.config, &header.profile, &device) {
            AnyObjective::Contrastive(objective) => AnyTrainer::Contrastive(Trainer::from_checkpoint(objective, bytes, rows, device)?),
            AnyObjective::Masked(objective) => AnyTrainer::Masked(Trainer::from_checkpoint(objective, bytes, rows, device)?),
        })
    }

    /// See [`Trainer::step`].
    pub fn step(&mut self) -> Result<StepReport> {
        each_trainer!(self, trainer => trainer.step())
    }

    /// See [`Trainer::data_parallel_step`].
    pub fn data_parallel_step(&mut self, exchange: &mut dyn crate::trainers::exchange::StepExchange) -> Result<StepReport> {
        each_trainer!(self, trainer => trainer.data_parallel_step(exchange))
    }

    /// See [`Trainer::compute_gradients`].
    pub fn compute_gradients(&mut self) -> Result<StepGradients> {
        each_trainer!(self, trainer => trainer.compute_gradients())
    }

    /// See [`Trainer::apply_gradients`].
    pub fn apply_gradients(&mut self, gradients: Vec<f32>, loss: f64) -> Result<StepReport> {
        each_trainer!(self, trainer => trainer.apply_gradients(gradients, loss))
    }

    /// See [`Trainer::to_checkpoint`].
    pub fn to_checkpoint(&self) -> Result<Vec<u8>> {
        each_trainer!(self, trainer => trainer.to_checkpoint())
    }

    pub fn state(&self) -> TrainerState {
        each_trainer!(self, trainer => trainer.state())
    }

    pub fn total_steps(&self) -> u64 {
        each_trainer!(self, trainer => trainer.total_steps())
    }

    pub fn steps_per_epoch(&self) -> u64 {
        each_trainer!(self, trainer => trainer.steps_per_epoch())
    }

    pub fn is_finished(&self) -> bool {
        each_trainer!(self, trainer => trainer.is_finished())
    }

    pub fn config(&self) -> &TrainerConfig {
        each_trainer!(self, trainer => trainer.config())
    }

    pub fn profile(&self) -> &DatasetProfile {
        each_trainer!(self, trainer => trainer.profile())
    }

    /// See [`Trainer::encoder`].
    pub fn encoder(&self) -> TabularEncoder {
        each_trainer!(self, trainer => trainer.encoder())
    }

    /// Shape of the trained encoder.
    pub fn encoder_config(&self) -> EncoderConfig {
        encoder_config(self.config(), self.profile())
    }
}
