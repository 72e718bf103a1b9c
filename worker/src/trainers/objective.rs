//! The interface every SSL method implements for the generic trainer.

use std::ops::Range;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use rand_chacha::ChaCha8Rng;

use crate::data::encode::EncodedRows;
use crate::error::Result;
use crate::model::TabularEncoder;
use crate::trainers::exchange::StepExchange;

/// Loss of one rank's slice of a global batch, as
/// [`Objective::sharded_loss_and_gradients`] returns it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShardLoss {
    /// The loss of the whole global batch, the same on every rank.
    Global(f64),
    /// This rank's share: the global loss is the sum of the ranks' shares.
    Partial(f64),
}

/// An SSL method: its model (encoder plus heads), its augmentation and its loss.
pub trait Objective: Send {
    /// Encoder plus the method's heads.
    type Model: Module + 'static;

    /// Creates a model with fresh weights on `device` (an autodiff device).
    fn init_model(&self, device: &Device) -> Self::Model;

    /// Returns the model's encoder.
    fn encoder(model: &Self::Model) -> &TabularEncoder;

    /// Augments `batch` with randomness from `rng`, computes the loss and
    /// back-propagates it. Returns the loss value and the gradients of the
    /// model's parameters.
    ///
    /// # Errors
    ///
    /// [`crate::WorkerError::Tensor`] when reading a value back from the device fails.
    fn loss_and_gradients(&self, model: &Self::Model, batch: &EncodedRows, rng: &mut ChaCha8Rng) -> Result<(f64, GradientsParams)>;

    /// Computes one rank's part of a data-parallel step on the global `batch`.
    /// It augments the whole batch with `rng` (the same stream on every rank),
    /// computes the rows `shard` of it, and exchanges with the other ranks what
    /// the loss needs. The returned gradients are this rank's share, and their
    /// sum over the ranks is the gradient of the global batch's loss.
    ///
    /// # Errors
    ///
    /// [`crate::WorkerError::Tensor`] for a failed device read, and the
    /// exchange's errors.
    fn sharded_loss_and_gradients(
        &self,
        model: &Self::Model,
        batch: &EncodedRows,
        shard: Range<usize>,
        rng: &mut ChaCha8Rng,
        exchange: &mut dyn StepExchange,
    ) -> Result<(ShardLoss, GradientsParams)>;
}

/// Reads a one-element tensor back to the host.
pub(crate) fn scalar_value(tensor: burn::tensor::Tensor<1>) -> Result<f64> {
    let values = tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|error| crate::WorkerError::Tensor(format!("cannot read the loss: {error:?}")))?;
    Ok(f64::from(values[0]))
}

/// Reads a tensor's values back to the host.
pub(crate) fn host_values<const D: usize>(tensor: burn::tensor::Tensor<D>, what: &str) -> Result<Vec<f32>> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|error| crate::WorkerError::Tensor(format!("cannot read the {what}: {error:?}")))
}
