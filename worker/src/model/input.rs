//! Uploading encoded rows as encoder inputs.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::data::encode::{EncodedRows, FeatureLayout};

/// Encoder inputs for a batch of `B` rows.
#[derive(Debug, Clone)]
pub struct EncoderInput {
    /// `[B, num_numeric + missing_indicator_columns.len()]`: standardised values,
    /// then the missing indicators of the layout's indicator columns.
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
        let input_width = layout.numeric_input_width();
        let mut values = Vec::with_capacity(batch * input_width);
        for row in 0..batch {
            values.extend_from_slice(&rows.numeric[row * width..(row + 1) * width]);
            let missing = &rows.missing[row * width..(row + 1) * width];
            values.extend(layout.missing_indicator_columns.iter().map(|&column| missing[column]));
        }
        Tensor::from_data(TensorData::new(values, [batch, input_width]), device)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_keeps_listed_indicators() {
        let layout = FeatureLayout { num_numeric: 3, missing_indicator_columns: vec![1], vocabulary_sizes: vec![] };
        let mut rows = EncodedRows::with_capacity(3, 0, 2);
        rows.numeric.extend([0.5, 0.0, -1.0, 1.5, 2.0, 0.0]);
        rows.missing.extend([0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        rows.num_rows = 2;

        let input = encoder_input(&rows, &layout, &Device::flex());
        let numeric = input.numeric.expect("numeric columns");
        assert_eq!(numeric.dims(), [2, 4]);
        // Row 1's third cell is missing but its column has no indicator.
        assert_eq!(numeric.into_data().try_to_vec::<f32>().unwrap(), vec![0.5, 0.0, -1.0, 1.0, 1.5, 2.0, 0.0, 0.0]);
        assert!(input.categorical.is_none());
    }
}
