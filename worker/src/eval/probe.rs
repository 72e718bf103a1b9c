//! Linear probe: multinomial logistic regression on frozen features.

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Result, WorkerError};

/// Settings of the probe's full-batch Adam optimisation.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConfig {
    /// Full-batch Adam iterations. Default 300.
    pub iterations: usize,
    /// Adam step size. Default 0.05.
    pub learning_rate: f64,
    /// L2 penalty on the weights, `l2 / 2 * ||W||^2` added to the mean
    /// cross-entropy. Default 1e-3.
    pub l2: f64,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig { iterations: 300, learning_rate: 0.05, l2: 1e-3 }
    }
}

/// Per-feature z-scoring fitted on the probe's training rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fits mean and standard deviation (1 for constant features) of row-major
    /// `[n, width]` features.
    pub fn fit(features: &[f32], width: usize) -> Self {
        let rows = (features.len() / width.max(1)).max(1) as f64;
        let mut mean = vec![0.0f64; width];
        let mut square = vec![0.0f64; width];
        for row in features.chunks_exact(width) {
            for (column, &value) in row.iter().enumerate() {
                mean[column] += f64::from(value);
                square[column] += f64::from(value) * f64::from(value);
            }
        }
        let mean: Vec<f64> = mean.iter().map(|sum| sum / rows).collect();
        let std = square
            .iter()
            .zip(&mean)
            .map(|(sum, mean)| {
                let deviation = (sum / rows - mean * mean).max(0.0).sqrt();
                if deviation > 1e-8 { deviation as f32 } else { 1.0 }
            })
            .collect();
        Standardizer { mean: mean.into_iter().map(|value| value as f32).collect(), std }
    }

    /// Applies the z-scoring to row-major features.
    pub fn apply(&self, features: &[f32]) -> Vec<f32> {
        let width = self.mean.len();
        features.iter().enumerate().map(|(at, &value)| (value - self.mean[at % width]) / self.std[at % width]).collect()
    }
}

/// A fitted probe.
#[derive(Debug, Clone)]
pub struct LinearProbe {
    pub standardizer: Standardizer,
    /// `[width, num_classes]`.
    pub weights: Tensor<2>,
    /// `[1, num_classes]`.
    pub bias: Tensor<2>,
    device: Device,
}

fn upload(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Fits a probe on row-major `[n, width]` features with labels in
/// `0..num_classes`, on `device` (a plain device, without autodiff).
///
/// # Errors
///
/// [`WorkerError::InvalidConfig`] when there are no rows or the lengths disagree.
pub fn fit_probe(features: &[f32], width: usize, labels: &[usize], num_classes: usize, config: &ProbeConfig, device: &Device) -> Result<LinearProbe> {
    let rows = labels.len();
    if rows == 0 || features.len() != rows * width || num_classes < 2 {
        return Err(WorkerError::InvalidConfig(format!(
            "probe needs rows, matching features and two classes: {rows} labels, {} feature values, width {width}, {num_classes} classes",
            features.len()
        )));
    }
    let standardizer = Standardizer::fit(features, width);
    let inputs = upload(standardizer.apply(features), [rows, width], device);
    let inputs_transposed = inputs.clone().transpose();
    let mut one_hot = vec![0.0f32; rows * num_classes];
    for (row, &label) in labels.iter().enumerate() {
        one_hot[row * num_classes + label] = 1.0;
    }
    let targets = upload(one_hot, [rows, num_classes], device);

    let mut weights = Tensor::<2>::zeros([width, num_classes], device);
    let mut bias = Tensor::<2>::zeros([1, num_classes], device);
    let (beta1, beta2, epsilon) = (0.9f64, 0.999f64, 1e-8f64);
    let (mut weight_m, mut weight_v) = (weights.zeros_like(), weights.zeros_like());
    let (mut bias_m, mut bias_v) = (bias.zeros_like(), bias.zeros_like());
    for iteration in 1..=config.iterations {
        let probabilities = softmax(inputs.clone().matmul(weights.clone()) + bias.clone(), 1);
        let residual = (probabilities - targets.clone()).div_scalar(rows as f64);
        let weight_gradient = inputs_transposed.clone().matmul(residual.clone()) + weights.clone().mul_scalar(config.l2);
        let bias_gradient = residual.sum_dim(0);

        let correction1 = 1.0 - beta1.powi(iteration as i32);
        let correction2 = 1.0 - beta2.powi(iteration as i32);
        weight_m = weight_m.mul_scalar(beta1) + weight_gradient.clone().mul_scalar(1.0 - beta1);
        weight_v = weight_v.mul_scalar(beta2) + weight_gradient.square().mul_scalar(1.0 - beta2);
        bias_m = bias_m.mul_scalar(beta1) + bias_gradient.clone().mul_scalar(1.0 - beta1);
        bias_v = bias_v.mul_scalar(beta2) + bias_gradient.square().mul_scalar(1.0 - beta2);
        let step = config.learning_rate / correction1;
        weights = weights - weight_m.clone().mul_scalar(step) / (weight_v.clone().div_scalar(correction2).sqrt().add_scalar(epsilon));
        bias = bias - bias_m.clone().mul_scalar(step) / (bias_v.clone().div_scalar(correction2).sqrt().add_scalar(epsilon));
    }
    Ok(LinearProbe { standardizer, weights, bias, device: device.clone() })
}

impl LinearProbe {
    /// Class probabilities of row-major `[n, width]` features, row-major
    /// `[n, num_classes]`.
    ///
    /// # Errors
    ///
    /// [`WorkerError::Tensor`] when the device read fails.
    pub fn predict_probabilities(&self, features: &[f32]) -> Result<Vec<f32>> {
        let width = self.standardizer.mean.len();
        let rows = features.len() / width.max(1);
        let inputs = upload(self.standardizer.apply(features), [rows, width], &self.device);
        softmax(inputs.matmul(self.weights.clone()) + self.bias.clone(), 1)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|error| WorkerError::Tensor(format!("cannot read probabilities: {error:?}")))
    }
}

/// Index of the largest value in each row of row-major `[n, width]` values.
pub fn argmax_rows(values: &[f32], width: usize) -> Vec<usize> {
    values
        .chunks_exact(width)
        .map(|row| row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(index, _)| index))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_separates_linear_classes() {
        let device = Device::flex();
        // Class 1 when x0 + x1 > 0, on a grid of points; the two features have
        // different scales to exercise the standardiser.
        let mut features = Vec::new();
        let mut labels = Vec::new();
        for i in -10..=10 {
            for j in -10..=10 {
                if i + j == 0 {
                    continue;
                }
                features.extend([i as f32 * 100.0, j as f32 * 100.0 * 0.01]);
                labels.push(usize::from(i as f32 + j as f32 * 0.01 * 100.0 > 0.0));
            }
        }
        let probe = fit_probe(&features, 2, &labels, 2, &ProbeConfig::default(), &device).unwrap();
        let predictions = argmax_rows(&probe.predict_probabilities(&features).unwrap(), 2);
        let correct = predictions.iter().zip(&labels).filter(|(a, b)| a == b).count();
        assert!(correct as f64 / labels.len() as f64 > 0.97, "accuracy {}", correct as f64 / labels.len() as f64);
    }

    #[test]
    fn standardizer_centres_and_scales() {
        let standardizer = Standardizer::fit(&[1.0, 5.0, 3.0, 5.0], 2);
        assert_eq!(standardizer.mean, vec![2.0, 5.0]);
        assert_eq!(standardizer.std, vec![1.0, 1.0]);
        assert_eq!(standardizer.apply(&[3.0, 6.0]), vec![1.0, 1.0]);
    }
}
