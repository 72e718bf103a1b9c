//! SCARF: contrastive pretraining between two corrupted views of each row.

use std::ops::Range;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use rand_chacha::ChaCha8Rng;

use crate::data::encode::{EncodedRows, FeatureLayout};
use crate::error::{Result, WorkerError};
use crate::losses::nt_xent_stacked;
use crate::model::{EncoderConfig, ProjectionHead, TabularEncoder, encoder_input};
use crate::trainers::corruption::scarf_corrupt;
use crate::trainers::exchange::{StepExchange, shard_rows};
use crate::trainers::objective::{Objective, ShardLoss, host_values, scalar_value};

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
    /// Width of the projection head's hidden layer; `None` makes the head one
    /// linear layer. Trainers built from a spec use the embedding size.
    pub projection_hidden_width: Option<usize>,
    /// Encoded marginal sample that replacement values come from.
    pub pool: EncodedRows,
    /// The autodiff device the model lives on.
    pub device: Device,
    /// Computes the projection gradient on a graph of its own
    /// ([`projection_loss_and_gradient`]) and back-propagates it through the
    /// encoder with a second backward pass, as a distributed step that
    /// all-gathers the projections must. When false, one backward pass runs
    /// through NT-Xent and the encoder together. Both give the same gradients up
    /// to float rounding, and the `train_step` bench measured no speed difference.
    pub split_projection_gradient: bool,
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
    let leaf = projections.without_autodiff().autodiff().require_grad();
    let loss = nt_xent_stacked(leaf.clone(), temperature);
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
            projection: ProjectionHead::new(
                self.encoder_config.embedding_size,
                self.projection_hidden_width,
                self.projection_size,
                device,
            ),
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
        if !self.split_projection_gradient {
            let loss = nt_xent_stacked(projections, self.temperature);
            let gradients = GradientsParams::from_grads(loss.backward(), model);
            return Ok((scalar_value(loss.without_autodiff())?, gradients));
        }

        let (loss, gradient) = projection_loss_and_gradient(projections.clone(), self.temperature)?;
        // d(sum(projections * g))/d(weights) is the chain rule through the encoder
        // with the upstream gradient g.
        let surrogate = (projections * gradient).sum();
        let gradients = GradientsParams::from_grads(surrogate.backward(), model);
        Ok((loss, gradients))
    }

    fn sharded_loss_and_gradients(
        &self,
        model: &ContrastiveModel,
        batch: &EncodedRows,
        shard: Range<usize>,
        rng: &mut ChaCha8Rng,
        exchange: &mut dyn StepExchange,
    ) -> Result<(ShardLoss, GradientsParams)> {
        let total = batch.num_rows;
        let view_a = scarf_corrupt(batch, &self.pool, self.corruption_rate, rng);
        let view_b = scarf_corrupt(batch, &self.pool, self.corruption_rate, rng);
        let rows: Vec<usize> = shard.clone().collect();
        let mut views = view_a.select(&rows);
        let local_b = view_b.select(&rows);
        for row in 0..local_b.num_rows {
            views.push_row_from(&local_b, row);
        }

        let projections = self.project(model, &views);
        let width = self.projection_size;
        let local = host_values(projections.clone().without_autodiff(), "projections")?;
        let world_size = exchange.world_size();
        let shards: Vec<Range<usize>> = (0..world_size).map(|rank| shard_rows(total, rank, world_size)).collect();
        let counts: Vec<usize> = shards.iter().map(|shard| 2 * shard.len() * width).collect();
        let gathered = exchange.all_gather(&local, &counts)?;

        // Each rank sent its view A rows, then its view B rows; NT-Xent wants all
        // view A rows of the global batch, then all view B rows.
        let mut stacked = vec![0.0f32; 2 * total * width];
        let mut offset = 0;
        for shard in &shards {
            let len = shard.len() * width;
            stacked[shard.start * width..shard.end * width].copy_from_slice(&gathered[offset..offset + len]);
            stacked[(total + shard.start) * width..(total + shard.end) * width]
                .copy_from_slice(&gathered[offset + len..offset + 2 * len]);
            offset += 2 * len;
        }
        let plain = self.device.clone().without_autodiff();
        let stacked = Tensor::<2>::from_data(TensorData::new(stacked, [2 * total, width]), &plain);
        let (loss, gradient) = projection_loss_and_gradient(stacked, self.temperature)?;

        // Back-propagate only this rank's rows: the other rows' gradients flow
        // through the encoders of the ranks that produced them.
        let gradient = host_values(gradient, "projection gradient")?;
        let mut local_gradient = Vec::with_capacity(2 * shard.len() * width);
        local_gradient.extend_from_slice(&gradient[shard.start * width..shard.end * width]);
        local_gradient.extend_from_slice(&gradient[(total + shard.start) * width..(total + shard.end) * width]);
        let local_gradient = Tensor::<2>::from_data(TensorData::new(local_gradient, [2 * shard.len(), width]), &projections.device());
        let surrogate = (projections * local_gradient).sum();
        let gradients = GradientsParams::from_grads(surrogate.backward(), model);
        Ok((ShardLoss::Global(loss), gradients))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;
    use rand::{RngExt, SeedableRng};

    use super::*;
    use crate::trainers::step::flatten_gradients;

    fn rows(count: usize, rng: &mut ChaCha8Rng) -> EncodedRows {
        let mut rows = EncodedRows::with_capacity(4, 1, count);
        for _ in 0..count {
            rows.numeric.extend((0..4).map(|_| rng.random::<f32>() - 0.5));
            rows.missing.extend([0.0, 0.0, 0.0, 1.0]);
            rows.categorical.push(rng.random_range(0..3));
            rows.num_rows += 1;
        }
        rows
    }

    #[test]
    fn split_and_single_graph_gradients_agree() {
        let device = Device::flex().autodiff();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let layout = FeatureLayout { num_numeric: 4, missing_indicator_columns: vec![3], vocabulary_sizes: vec![3] };
        let mut objective = ContrastiveObjective {
            encoder_config: EncoderConfig { layout, hidden_widths: vec![16], embedding_size: 8, categorical_embedding_size: 2 },
            corruption_rate: 0.5,
            temperature: 0.5,
            projection_size: 4,
            projection_hidden_width: Some(8),
            pool: rows(32, &mut rng),
            device: device.clone(),
            split_projection_gradient: false,
        };
        let model = objective.init_model(&device);
        let batch = rows(8, &mut rng);
        let plain = device.clone().without_autodiff();

        let (single_loss, single) = objective.loss_and_gradients(&model, &batch, &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
        let single = flatten_gradients(&model, single, &plain).unwrap();
        objective.split_projection_gradient = true;
        let (split_loss, split) = objective.loss_and_gradients(&model, &batch, &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
        let split = flatten_gradients(&model, split, &plain).unwrap();

        assert!((single_loss - split_loss).abs() < 1e-6, "losses {single_loss} and {split_loss}");
        assert_eq!(single.len(), split.len());
        let largest = single.iter().map(|value| value.abs()).fold(0.0f32, f32::max);
        assert!(largest > 0.0, "all gradients are zero");
        for (index, (a, b)) in single.iter().zip(&split).enumerate() {
            assert!((a - b).abs() <= 1e-5 * largest.max(1.0), "gradient {index}: {a} and {b}");
        }
    }
}
