//! The tabular encoder: an MLP over standardised numerics, missing indicators and
//! learned categorical embeddings.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::encode::FeatureLayout;
use crate::model::input::EncoderInput;

/// Shape of a [`TabularEncoder`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderConfig {
    pub layout: FeatureLayout,
    /// Hidden layer widths (spec `model.encoder_widths`, default `[256, 256]`).
    pub hidden_widths: Vec<usize>,
    /// Output size (spec `model.embedding_size`, default 128).
    pub embedding_size: usize,
    /// Size of each categorical column's embedding (spec
    /// `model.categorical_embedding_size`, default 8).
    pub categorical_embedding_size: usize,
}

impl EncoderConfig {
    /// Width of the first layer's input: the numeric values and missing
    /// indicators (see [`FeatureLayout::numeric_input_width`]) plus one embedding
    /// per categorical column.
    pub fn input_width(&self) -> usize {
        self.layout.numeric_input_width() + self.layout.num_categorical() * self.categorical_embedding_size
    }

    /// Creates an encoder with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> TabularEncoder {
        let total_categories: usize = self.layout.vocabulary_sizes.iter().sum();
        let category_embedding = (total_categories > 0)
            .then(|| EmbeddingConfig::new(total_categories, self.categorical_embedding_size).init(device));

        let mut widths = vec![self.input_width()];
        widths.extend(&self.hidden_widths);
        widths.push(self.embedding_size);
        let layers = widths.windows(2).map(|pair| LinearConfig::new(pair[0], pair[1]).init(device)).collect();
        TabularEncoder { category_embedding, layers }
    }
}

/// MLP encoder: ReLU after every hidden layer, a linear output layer.
#[derive(Module, Debug)]
pub struct TabularEncoder {
    /// One table for all categorical columns; column `c` owns the rows from its
    /// offset to its offset plus its vocabulary size.
    pub category_embedding: Option<Embedding>,
    pub layers: Vec<Linear>,
}

impl TabularEncoder {
    /// Maps a batch to embeddings: `[B, ...]` inputs to `[B, embedding_size]`.
    pub fn forward(&self, input: &EncoderInput) -> Tensor<2> {
        let mut parts = Vec::with_capacity(2);
        if let Some(numeric) = &input.numeric {
            parts.push(numeric.clone());
        }
        if let (Some(embedding), Some(indices)) = (&self.category_embedding, &input.categorical) {
            let embedded = embedding.forward(indices.clone());
            let [batch, columns, size] = embedded.dims();
            parts.push(embedded.reshape([batch, columns * size]));
        }
        let mut hidden = if parts.len() == 1 { parts.pop().expect("one part") } else { Tensor::cat(parts, 1) };

        let last = self.layers.len() - 1;
        for (index, layer) in self.layers.iter().enumerate() {
            hidden = layer.forward(hidden);
            if index < last {
                hidden = relu(hidden);
            }
        }
        hidden
    }
}
