//! Method-specific heads on top of the encoder. They live in their own modules so
//! the encoder exports without them.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::data::encode::FeatureLayout;

/// SCARF projection head: `Linear -> ReLU -> Linear`, or one `Linear` without
/// the hidden layer, from the embedding to the space where NT-Xent compares views.
#[derive(Module, Debug)]
pub struct ProjectionHead {
    pub hidden: Option<Linear>,
    pub output: Linear,
}

impl ProjectionHead {
    /// Creates a head mapping `embedding_size` to `projection_size`, through a
    /// hidden layer of `hidden_width` when it is `Some`.
    pub fn new(embedding_size: usize, hidden_width: Option<usize>, projection_size: usize, device: &Device) -> Self {
        let hidden = hidden_width.map(|width| LinearConfig::new(embedding_size, width).init(device));
        let output_input = hidden_width.unwrap_or(embedding_size);
        ProjectionHead { hidden, output: LinearConfig::new(output_input, projection_size).init(device) }
    }

    /// `[B, embedding_size]` to `[B, projection_size]`.
    pub fn forward(&self, embeddings: Tensor<2>) -> Tensor<2> {
        match &self.hidden {
            Some(hidden) => self.output.forward(relu(hidden.forward(embeddings))),
            None => self.output.forward(embeddings),
        }
    }
}

/// Outputs of the masked-modelling heads for a batch of `B` rows.
#[derive(Debug, Clone)]
pub struct MaskedOutput {
    /// `[B, num_features]`: logits that each cell was masked, numeric columns
    /// first, then categorical, in schema order.
    pub mask_logits: Tensor<2>,
    /// `[B, num_numeric]`: reconstructed standardised values.
    pub numeric: Option<Tensor<2>>,
    /// `[B, num_categorical, max_vocabulary]`: class logits per categorical
    /// column, padded to the largest vocabulary (padding is masked in the loss).
    pub categorical_logits: Option<Tensor<3>>,
}

/// VIME heads: a mask estimator and a value reconstructor, each one linear layer
/// on the embedding.
#[derive(Module, Debug)]
pub struct MaskedHeads {
    pub mask: Linear,
    pub numeric: Option<Linear>,
    pub categorical: Option<Linear>,
}

impl MaskedHeads {
    /// Creates heads for `layout` on top of embeddings of `embedding_size`.
    pub fn new(embedding_size: usize, layout: &FeatureLayout, device: &Device) -> Self {
        let max_vocabulary = layout.vocabulary_sizes.iter().copied().max().unwrap_or(0);
        MaskedHeads {
            mask: LinearConfig::new(embedding_size, layout.num_features()).init(device),
            numeric: (layout.num_numeric > 0).then(|| LinearConfig::new(embedding_size, layout.num_numeric).init(device)),
            categorical: (layout.num_categorical() > 0)
                .then(|| LinearConfig::new(embedding_size, layout.num_categorical() * max_vocabulary).init(device)),
        }
    }

    /// Applies all heads to `[B, embedding_size]` embeddings.
    pub fn forward(&self, embeddings: Tensor<2>, layout: &FeatureLayout) -> MaskedOutput {
        let [batch, _] = embeddings.dims();
        let max_vocabulary = layout.vocabulary_sizes.iter().copied().max().unwrap_or(0);
        MaskedOutput {
            mask_logits: self.mask.forward(embeddings.clone()),
            numeric: self.numeric.as_ref().map(|head| head.forward(embeddings.clone())),
            categorical_logits: self
                .categorical
                .as_ref()
                .map(|head| head.forward(embeddings).reshape([batch, layout.num_categorical(), max_vocabulary])),
        }
    }
}
