//! SCARF: contrastive pretraining between two corrupted views of each row.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use rand_chacha::ChaCha8Rng;

use crate::data::encode::{EncodedRows, FeatureLayout};
use crate::error::{Result, WorkerError};
use crate::losses::nt_xent;
use crate::model::{EncoderConfig, ProjectionHead, TabularEncoder, encoder_input};
use crate::trainers::corruption::scarf_corrupt;
use crate::trainers::objective::{Objective, scalar_value};

/// Encoder plus projection head.
#[derive(Module, Debug)]
pub struct ContrastiveModel {
    pub encoder: TabularEncoder,
    pub projection: ProjectionHead,
}

/// The SCARF objective.
#[derive(Debug, Clone)]
pub struct ContrastiveObjective {
    pub encoder_config: EncoderConfig,
    /// Fraction of a row's features replaced by marginal draws.
    pub corruption_rate: f64,
    pub temperature: f64,
    pub projection_size: usize,
    /// Encoded marginal sample that replacement values come from.
    pub pool: EncodedRows,
    /// The autodiff device the model lives on.
    pub device: Device,
}

impl ContrastiveObjective {
    fn layout(&self) -> &FeatureLayout {
        &self.encoder_config.layout
    }

    /// Projects a `[2B]`-row batch (view A rows, then view B rows) to `[2B, P]`.
    pub fn project(&self, model: &ContrastiveModel, views: &EncodedRows) -> Tensor<2> {
        let input = encoder_input(views, self.layout(), &self.device);
        model.projection.forward(model.encoder.forward(&input))
    }
}

/// Computes NT-Xent on `[2N, P]` projections (view A rows, then view B rows) and
/// its gradient with respect to them, on a graph of its own. Returns the loss
/// and the `[2N, P]` gradient, without autodiff.
///
/// This is the part of a contrastive step that a distributed runtime runs on the
/// all-gathered projections of the global batch. Each rank then back-propagates
/// its own rows' slice of the gradient through its encoder.
///
/// # Errors
///
/// [`WorkerError::Tensor`] when the loss cannot be read back.
pub fn projection_loss_and_gradient(projections: Tensor<2>, temperature: f64) -> Result<(f64, Tensor<2>)> {
    let [rows, _] = projections.dims();
    let leaf = projections.without_autodiff().autodiff().require_grad();
    let half = rows / 2;
    let loss = nt_xent(leaf.clone().narrow(0, 0, half), leaf.clone().narrow(0, half, half), temperature);
    let gradients = loss.backward();
    let gradient = leaf
        .grad(&gradients)
        .ok_or_else(|| WorkerError::Tensor("NT-Xent has no gradient for the projections".to_owned()))?;
    Ok((scalar_value(loss.without_autodiff())?, gradient))
}

impl Objective for ContrastiveObjective {
    type Model = ContrastiveModel;

    fn init_model(&self, device: &Device) -> ContrastiveModel {
        ContrastiveModel {
            encoder: self.encoder_config.init(device),
            projection: ProjectionHead::new(self.encoder_config.embedding_size, self.projection_size, device),
        }
    }

    fn encoder(model: &ContrastiveModel) -> &TabularEncoder {
        &model.encoder
    }

    fn loss_and_gradients(&self, model: &ContrastiveModel, batch: &EncodedRows, rng: &mut ChaCha8Rng) -> Result<(f64, GradientsParams)> {
        let view_a = scarf_corrupt(batch, &self.pool, self.corruption_rate, rng);
        let view_b = scarf_corrupt(batch, &self.pool, self.corruption_rate, rng);
        let mut views = view_a;
        for row in 0..view_b.num_rows {
            views.push_row_from(&view_b, row);
        }

        // Both views go through the encoder as one batch of 2B rows.
        let projections = self.project(model, &views);
        let (loss, gradient) = projection_loss_and_gradient(projections.clone(), self.temperature)?;

        // d(sum(projections * g))/d(weights) is the chain rule through the encoder
        // with the upstream gradient g.
        let surrogate = (projections * gradient).sum();
        let gradients = GradientsParams::from_grads(surrogate.backward(), model);
        Ok((loss, gradients))
    }
}
