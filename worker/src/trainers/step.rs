//! The parts of an optimizer step that a distributed runtime slots between:
//! gradients as one flat buffer, global-norm clipping, and per-step RNG seeds.

use std::time::Duration;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::data::profile::sample_key;
use crate::error::{Result, WorkerError};

/// Wall time of each phase of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepTimings {
    /// Selecting and copying the rows of the batch.
    pub data: Duration,
    /// Augmentation, forward and backward passes and flattening the gradients,
    /// without the exchanges with the peers in between.
    pub forward_backward: Duration,
    /// All-gathers and all-reduces with the peers.
    pub exchange: Duration,
    /// The all-reduce of the gradient buffer, which `exchange` includes.
    pub all_reduce: Duration,
    /// Clipping and the AdamW update.
    pub optimizer: Duration,
}

/// Number of float parameters of `module`: the length of its flat gradient buffer.
pub fn num_float_parameters<M: Module>(module: &M) -> usize {
    struct Counter(usize);
    impl ModuleVisitor for Counter {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0 += param.lazy_shape().num_elements();
        }
    }
    let mut counter = Counter(0);
    module.visit(&mut counter);
    counter.0
}

/// Copies the gradients of `module`'s float parameters into one buffer, in the
/// module's field order, which is the same on every process running the same
/// model. Parameters without a gradient contribute zeros so the layout never
/// changes. `device` is the plain device (without autodiff) of the gradients.
///
/// # Errors
///
/// [`WorkerError::Tensor`] when the device-to-host copy fails.
pub fn flatten_gradients<M: Module>(module: &M, mut gradients: GradientsParams, device: &Device) -> Result<Vec<f32>> {
    struct Flatten<'a> {
        gradients: &'a mut GradientsParams,
        parts: Vec<Tensor<1>>,
        device: &'a Device,
    }
    impl ModuleVisitor for Flatten<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let len = param.lazy_shape().num_elements();
            self.parts.push(match self.gradients.remove::<D>(param.id) {
                Some(gradient) => gradient.reshape([len]),
                None => Tensor::zeros([len], self.device),
            });
        }
    }

    let mut flatten = Flatten { gradients: &mut gradients, parts: Vec::new(), device };
    module.visit(&mut flatten);
    let parts = flatten.parts;
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    Tensor::cat(parts, 0)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|error| WorkerError::Tensor(format!("cannot read gradients: {error:?}")))
}

/// Splits a flat buffer from [`flatten_gradients`] back into per-parameter
/// gradients of `module`, created on `device` (the plain device).
///
/// # Errors
///
/// [`WorkerError::Tensor`] when `flat` has another length than the module's
/// parameter count.
pub fn unflatten_gradients<M: Module>(module: &M, flat: &[f32], device: &Device) -> Result<GradientsParams> {
    struct Unflatten<'a> {
        flat: &'a [f32],
        offset: usize,
        gradients: GradientsParams,
        device: &'a Device,
    }
    impl ModuleVisitor for Unflatten<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let shape = param.lazy_shape();
            let len = shape.num_elements();
            let end = (self.offset + len).min(self.flat.len());
            let values = self.flat[self.offset.min(end)..end].to_vec();
            self.offset += len;
            if values.len() == len {
                let tensor = Tensor::<D>::from_data(TensorData::new(values, shape), self.device);
                self.gradients.register(param.id, tensor);
            }
        }
    }

    let expected = num_float_parameters(module);
    if flat.len() != expected {
        return Err(WorkerError::Tensor(format!("gradient buffer has {} values, the model has {expected} parameters", flat.len())));
    }
    let mut unflatten = Unflatten { flat, offset: 0, gradients: GradientsParams::new(), device };
    module.visit(&mut unflatten);
    Ok(unflatten.gradients)
}

/// Scales `flat` so its global L2 norm is at most `max_norm`; `max_norm <= 0`
/// disables clipping. Returns the norm before clipping.
pub fn clip_global_norm(flat: &mut [f32], max_norm: f64) -> f64 {
    let norm = flat.iter().map(|&value| f64::from(value) * f64::from(value)).sum::<f64>().sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let scale = (max_norm / norm) as f32;
        flat.iter_mut().for_each(|value| *value *= scale);
    }
    norm
}

/// Creates the host RNG of one step's augmentation, seeded by (seed, epoch,
/// step, rank), so every run and every resume draws the same corruption.
pub fn step_rng(seed: u64, epoch: u64, step: u64, rank: u64) -> ChaCha8Rng {
    let mixed = sample_key(sample_key(sample_key(seed, epoch), step), rank);
    ChaCha8Rng::seed_from_u64(mixed)
}

#[cfg(test)]
mod tests {
    use burn::nn::LinearConfig;
    use burn::tensor::Device;
    use rand::RngExt;

    use super::*;

    #[test]
    fn gradient_flatten_round_trip() {
        let device = Device::flex().autodiff();
        let plain = device.clone().without_autodiff();
        let layer = LinearConfig::new(3, 2).init(&device);
        let input = Tensor::<2>::from_data([[1.0f32, 2.0, 3.0], [0.5, -1.0, 0.0]], &device);
        let loss = layer.forward(input).square().sum();
        let gradients = GradientsParams::from_grads(loss.backward(), &layer);

        let weight_gradient = gradients.get::<2>(layer.weight.id).unwrap().into_data().try_to_vec::<f32>().unwrap();
        let flat = flatten_gradients(&layer, gradients, &plain).unwrap();
        assert_eq!(flat.len(), num_float_parameters(&layer));
        assert_eq!(flat.len(), 3 * 2 + 2);
        assert_eq!(&flat[..6], weight_gradient.as_slice());

        let restored = unflatten_gradients(&layer, &flat, &plain).unwrap();
        let flat_again = flatten_gradients(&layer, restored, &plain).unwrap();
        assert_eq!(flat_again, flat);
    }

    #[test]
    fn unflatten_rejects_wrong_length() {
        let device = Device::flex();
        let layer = LinearConfig::new(3, 2).init(&device);
        assert!(unflatten_gradients(&layer, &[0.0; 7], &device).is_err());
    }

    #[test]
    fn clipping_caps_global_norm() {
        let mut flat = vec![3.0f32, 4.0];
        let norm = clip_global_norm(&mut flat, 1.0);
        assert!((norm - 5.0).abs() < 1e-9);
        assert!((flat[0] - 0.6).abs() < 1e-6);
        assert!((flat[1] - 0.8).abs() < 1e-6);

        let mut small = vec![0.3f32, 0.4];
        clip_global_norm(&mut small, 1.0);
        assert_eq!(small, vec![0.3, 0.4]);
        let mut unclipped = vec![3.0f32, 4.0];
        clip_global_norm(&mut unclipped, 0.0);
        assert_eq!(unclipped, vec![3.0, 4.0]);
    }

    #[test]
    fn step_rng_depends_on_every_part() {
        let draw = |seed, epoch, step, rank| step_rng(seed, epoch, step, rank).random::<u64>();
        let base = draw(1, 2, 3, 0);
        assert_eq!(base, draw(1, 2, 3, 0));
        assert_ne!(base, draw(2, 2, 3, 0));
        assert_ne!(base, draw(1, 3, 3, 0));
        assert_ne!(base, draw(1, 2, 4, 0));
        assert_ne!(base, draw(1, 2, 3, 1));
    }
}
