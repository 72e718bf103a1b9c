//! The interface every SSL method implements for the generic trainer.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use rand_chacha::ChaCha8Rng;

use crate::data::encode::EncodedRows;
use crate::error::Result;
use crate::model::TabularEncoder;

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
