//! SSL trainers: the contrastive (SCARF) and masked (VIME-style) objectives and
//! the generic training loop with a split optimizer step.

pub mod any;
pub mod config;
pub mod contrastive;
pub mod corruption;
pub mod exchange;
pub mod masked;
pub mod objective;
pub mod step;
pub mod trainer;

pub use any::AnyTrainer;
pub use config::{MethodConfig, OptimizerSettings, TrainerConfig};
pub use exchange::{Solo, StepExchange, TimedExchange, shard_rows};
pub use contrastive::{ContrastiveModel, ContrastiveObjective, projection_loss_and_gradient};
pub use masked::{MaskedModel, MaskedObjective};
pub use objective::{Objective, ShardLoss};
pub use step::{StepTimings, clip_global_norm, flatten_gradients, num_float_parameters, step_rng, unflatten_gradients};
pub use trainer::{StepGradients, StepReport, Trainer, TrainerState};
