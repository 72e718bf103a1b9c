//! VIME-style masked feature modelling: mask cells, refill them from the
//! marginals, then predict the mask and reconstruct the original values.

use std::ops::Range;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand_chacha::ChaCha8Rng;

use crate::data::encode::{EncodedRows, FeatureLayout};
use crate::error::Result;
use crate::losses::{MaskedLoss, MaskedTargets, category_padding_values, masked_loss};
use crate::model::{EncoderConfig, MaskedHeads, TabularEncoder, encoder_input};
use crate::trainers::corruption::vime_mask;
use crate::trainers::exchange::StepExchange;
use crate::trainers::objective::{Objective, ShardLoss, scalar_value};

/// Encoder plus mask-estimation and reconstruction heads.
#[derive(Module, Debug)]
pub struct MaskedModel {
    pub encoder: TabularEncoder,
    pub heads: MaskedHeads,
}

/// The VIME objective.
#[derive(Debug, Clone)]
pub struct MaskedObjective {
    pub encoder_config: EncoderConfig,
    /// Probability that a cell is masked.
    pub mask_rate: f64,
    pub mask_loss_weight: f64,
    pub reconstruction_loss_weight: f64,
    /// Encoded marginal sample that masked cells are refilled from.
    pub pool: EncodedRows,
    /// The autodiff device the model lives on.
    pub device: Device,
}

impl MaskedObjective {
    fn layout(&self) -> &FeatureLayout {
        &self.encoder_config.layout
    }

    /// Uploads the loss targets of `original` rows with their `[B, F]` `mask`.
    pub fn targets(&self, original: &EncodedRows, mask: Vec<f32>) -> MaskedTargets {
        let device = self.device.clone().without_autodiff();
        let batch = original.num_rows;
        let layout = self.layout();
        let num_features = layout.num_features();
        let has_numeric = layout.num_numeric > 0;
        let has_categorical = layout.num_categorical() > 0;

        let numeric = has_numeric.then(|| Tensor::from_data(TensorData::new(original.numeric.clone(), [batch, layout.num_numeric]), &device));
        let present: Vec<f32> = original.missing.iter().map(|missing| 1.0 - missing).collect();
        let numeric_present = has_numeric.then(|| Tensor::from_data(TensorData::new(present, [batch, layout.num_numeric]), &device));

        let categorical = has_categorical.then(|| {
            let classes: Vec<i64> = original.categorical.iter().map(|&index| i64::from(index)).collect();
            Tensor::<2, Int>::from_data(TensorData::new(classes, [batch, layout.num_categorical()]), &device)
        });
        let category_padding = has_categorical.then(|| {
            let (padding, max_vocabulary) = category_padding_values(&layout.vocabulary_sizes);
            Tensor::from_data(TensorData::new(padding, [1, layout.num_categorical(), max_vocabulary]), &device)
        });

        MaskedTargets {
            mask: Tensor::from_data(TensorData::new(mask, [batch, num_features]), &device),
            numeric,
            numeric_present,
            categorical,
            category_padding,
            reconstruction_cells: reconstruction_cells(original, layout),
            mask_cells: batch * num_features,
        }
    }

    /// Runs the model on `masked` rows and scores it against `targets`.
    pub fn loss(&self, model: &MaskedModel, masked: &EncodedRows, targets: &MaskedTargets) -> MaskedLoss {
        let input = encoder_input(masked, self.layout(), &self.device);
        let output = model.heads.forward(model.encoder.forward(&input), self.layout());
        masked_loss(
            output.mask_logits,
            output.numeric,
            output.categorical_logits,
            targets,
            self.mask_loss_weight,
            self.reconstruction_loss_weight,
        )
    }
}

/// Cells the reconstruction loss of `rows` averages over: present numeric cells
/// plus every categorical cell.
fn reconstruction_cells(rows: &EncodedRows, layout: &FeatureLayout) -> usize {
    let present_numeric = rows.missing.iter().filter(|&&missing| missing == 0.0).count();
    present_numeric + rows.num_rows * layout.num_categorical()
}

impl Objective for MaskedObjective {
    type Model = MaskedModel;

    fn init_model(&self, device: &Device) -> MaskedModel {
        MaskedModel {
            encoder: self.encoder_config.init(device),
            heads: MaskedHeads::new(self.encoder_config.embedding_size, self.layout(), device),
        }
    }

    fn encoder(model: &MaskedModel) -> &TabularEncoder {
        &model.encoder
    }

    fn loss_and_gradients(&self, model: &MaskedModel, batch: &EncodedRows, rng: &mut ChaCha8Rng) -> Result<(f64, GradientsParams)> {
        let (masked, mask) = vime_mask(batch, &self.pool, self.mask_rate, rng);
        let targets = self.targets(batch, mask);
        let loss = self.loss(model, &masked, &targets);
        let gradients = GradientsParams::from_grads(loss.total.backward(), model);
        Ok((scalar_value(loss.total.without_autodiff())?, gradients))
    }

    fn sharded_loss_and_gradients(
        &self,
        model: &MaskedModel,
        batch: &EncodedRows,
        shard: Range<usize>,
        rng: &mut ChaCha8Rng,
        _exchange: &mut dyn StepExchange,
    ) -> Result<(ShardLoss, GradientsParams)> {
        let (masked, mask) = vime_mask(batch, &self.pool, self.mask_rate, rng);
        let num_features = self.layout().num_features();
        let rows: Vec<usize> = shard.clone().collect();
        let local_original = batch.select(&rows);
        let local_mask = mask[shard.start * num_features..shard.end * num_features].to_vec();
        let mut targets = self.targets(&local_original, local_mask);
        // Normalise by the global batch's cell counts: the ranks' losses then add up
        // to the loss of the whole batch, and so do their gradients.
        targets.mask_cells = batch.num_rows * num_features;
        targets.reconstruction_cells = reconstruction_cells(batch, self.layout());
        let loss = self.loss(model, &masked.select(&rows), &targets);
        let gradients = GradientsParams::from_grads(loss.total.backward(), model);
        Ok((ShardLoss::Partial(scalar_value(loss.total.without_autodiff())?), gradients))
    }
}
