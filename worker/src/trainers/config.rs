//! Trainer settings, read from a normalised job spec.

use serde::{Deserialize, Serialize};
use ssl_proto::v1::JobSpec;
use ssl_proto::v1::job_spec::Method;

use crate::error::{Result, WorkerError};

/// The SSL method and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodConfig {
    /// SCARF: NT-Xent between two corrupted views of each row.
    Contrastive {
        /// Fraction of a row's features replaced by marginal draws, in (0, 1).
        corruption_rate: f64,
        /// NT-Xent temperature.
        temperature: f64,
        /// Output width of the projection head.
        projection_size: usize,
    },
    /// VIME-style masked feature modelling.
    Masked {
        /// Probability that a cell is masked, in (0, 1).
        mask_rate: f64,
        mask_loss_weight: f64,
        reconstruction_loss_weight: f64,
    },
}

/// AdamW settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerSettings {
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
}

/// Everything that shapes a training run; stored in checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerConfig {
    pub method: MethodConfig,
    pub hidden_widths: Vec<usize>,
    pub embedding_size: usize,
    pub categorical_embedding_size: usize,
    pub epochs: u64,
    /// Rows per optimizer step across all ranks.
    pub batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// `warmup_cosine` or `constant`.
    pub schedule: String,
    /// Fraction of all steps spent warming up, in [0, 1).
    pub warmup_fraction: f64,
    pub optimizer: OptimizerSettings,
    /// Maximum global L2 norm of the gradient; 0 disables clipping.
    pub gradient_clip_norm: f64,
    /// Seed of weights, data order and augmentation.
    pub seed: u64,
}

impl TrainerConfig {
    /// Reads the trainer settings of a spec that [`ssl_proto::spec::normalize`]
    /// has filled and validated.
    ///
    /// # Errors
    ///
    /// [`WorkerError::InvalidConfig`] naming the first field that is still unset,
    /// which means the spec was not normalised.
    pub fn from_spec(spec: &JobSpec) -> Result<Self> {
        let unset = |field: &str| WorkerError::InvalidConfig(format!("`{field}` is unset; normalise the spec first"));
        let method = match spec.method.as_ref().ok_or_else(|| unset("method"))? {
            Method::Contrastive(contrastive) => MethodConfig::Contrastive {
                corruption_rate: contrastive.corruption_rate.ok_or_else(|| unset("method.contrastive.corruption_rate"))?,
                temperature: contrastive.temperature.ok_or_else(|| unset("method.contrastive.temperature"))?,
                projection_size: contrastive.projection_size.ok_or_else(|| unset("method.contrastive.projection_size"))? as usize,
            },
            Method::Masked(masked) => MethodConfig::Masked {
                mask_rate: masked.mask_rate.ok_or_else(|| unset("method.masked.mask_rate"))?,
                mask_loss_weight: masked.mask_loss_weight.ok_or_else(|| unset("method.masked.mask_loss_weight"))?,
                reconstruction_loss_weight: masked
                    .reconstruction_loss_weight
                    .ok_or_else(|| unset("method.masked.reconstruction_loss_weight"))?,
            },
        };
        let model = spec.model.as_ref().ok_or_else(|| unset("model"))?;
        let training = spec.training.as_ref().ok_or_else(|| unset("training"))?;
        let optimizer = training.optimizer.as_ref().ok_or_else(|| unset("training.optimizer"))?;
        let schedule = training.schedule.as_ref().ok_or_else(|| unset("training.schedule"))?;
        if optimizer.name.as_deref().unwrap_or("adamw") != "adamw" {
            return Err(WorkerError::InvalidConfig("`training.optimizer.name` must be `adamw`".to_owned()));
        }

        Ok(TrainerConfig {
            method,
            hidden_widths: model.encoder_widths.iter().map(|&width| width as usize).collect(),
            embedding_size: model.embedding_size.ok_or_else(|| unset("model.embedding_size"))? as usize,
            categorical_embedding_size: model.categorical_embedding_size.ok_or_else(|| unset("model.categorical_embedding_size"))?
                as usize,
            epochs: training.epochs.ok_or_else(|| unset("training.epochs"))? as u64,
            batch_size: training.global_batch_size.ok_or_else(|| unset("training.global_batch_size"))? as usize,
            learning_rate: training.learning_rate.ok_or_else(|| unset("training.learning_rate"))?,
            schedule: schedule.name.clone().ok_or_else(|| unset("training.schedule.name"))?,
            warmup_fraction: schedule.warmup_fraction.ok_or_else(|| unset("training.schedule.warmup_fraction"))?,
            optimizer: OptimizerSettings {
                weight_decay: optimizer.weight_decay.ok_or_else(|| unset("training.optimizer.weight_decay"))?,
                beta1: optimizer.beta1.ok_or_else(|| unset("training.optimizer.beta1"))?,
                beta2: optimizer.beta2.ok_or_else(|| unset("training.optimizer.beta2"))?,
                epsilon: optimizer.epsilon.ok_or_else(|| unset("training.optimizer.epsilon"))?,
            },
            gradient_clip_norm: training.gradient_clip_norm.ok_or_else(|| unset("training.gradient_clip_norm"))?,
            seed: training.seed.ok_or_else(|| unset("training.seed"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_spec_converts() {
        let text = "name: t\ndataset:\n  uri: file:///t.csv\nmethod:\n  masked:\n    mask_rate: 0.4\ntraining:\n  epochs: 3\n";
        let spec = ssl_proto::spec::parse_spec(text, ssl_proto::spec::SpecFormat::Yaml).unwrap();
        let spec = ssl_proto::spec::normalize(spec).unwrap();
        let config = TrainerConfig::from_spec(&spec).unwrap();
        assert_eq!(config.epochs, 3);
        assert_eq!(config.hidden_widths, vec![256, 256]);
        assert!(matches!(config.method, MethodConfig::Masked { mask_rate, .. } if mask_rate == 0.4));
    }

    #[test]
    fn unnormalized_spec_rejected() {
        let spec = JobSpec { name: "t".to_owned(), ..Default::default() };
        assert!(TrainerConfig::from_spec(&spec).is_err());
    }
}
