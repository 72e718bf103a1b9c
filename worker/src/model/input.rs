//! Uploading encoded rows as encoder inputs.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::data::encode::{EncodedRows, FeatureLayout};

/// Encoder inputs for a batch of `B` rows.
#[derive(Debug, Clone)]
pub struct EncoderInput {
    /// `[B, 2 * num_numeric]`: standardised values, then missing indicators.
    /// `None` when the table has no numeric column.
    pub numeric: Option<Tensor<2>>,
    /// `[B, num_categorical]`: indices into the encoder's one shared embedding
    /// table, that is each column's vocabulary index plus the column's offset.
    /// `None` when the table has no categorical column.
    pub categorical: Option<Tensor<2, Int>>,
}

/// Row offset of each categorical column in the shared embedding table.
pub fn category_offsets(layout: &FeatureLayout) -> Vec<usize> {
    layout
        .vocabulary_sizes
        .iter()
        .scan(0, |offset, size| {
            let start = *offset;
            *offset += size;
            Some(start)
        })
        .collect()
}

/// Uploads `rows` to `device` as encoder inputs.
pub fn encoder_input(rows: &EncodedRows, layout: &FeatureLayout, device: &Device) -> EncoderInput {
    let batch = rows.num_rows;
    let numeric = (rows.num_numeric > 0).then(|| {
        let width = rows.num_numeric;
        let mut values = Vec::with_capacity(batch * 2 * width);
        for row in 0..batch {
            values.extend_from_slice(&rows.numeric[row * width..(row + 1) * width]);
            values.extend_from_slice(&rows.missing[row * width..(row + 1) * width]);
        }
        Tensor::from_data(TensorData::new(values, [batch, 2 * width]), device)
    });

    let categorical = (rows.num_categorical > 0).then(|| {
        let offsets = category_offsets(layout);
        let indices: Vec<i64> = rows
            .categorical
            .iter()
            .enumerate()
            .map(|(at, &index)| (index as usize + offsets[at % rows.num_categorical]) as i64)
            .collect();
        Tensor::from_data(TensorData::new(indices, [batch, rows.num_categorical]), device)
    });
    EncoderInput { numeric, categorical }
}
