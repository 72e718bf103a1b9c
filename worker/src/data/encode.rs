//! Encoding typed rows into the encoder's inputs with a [`DatasetProfile`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::data::profile::{ColumnProfile, DatasetProfile};
use crate::data::schema::{TypedTable, TypedValues};
use crate::error::{Result, WorkerError};

/// Sizes of the encoder's inputs, derived from a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureLayout {
    /// Number of numeric columns. Each gives one standardised value.
    pub num_numeric: usize,
    /// Indices (among the numeric columns, ascending) of the columns whose
    /// profile missing rate is above 0. Only these get a missing-indicator input,
    /// because an indicator of a column without missing cells is constantly 0.
    /// A cell that is missing in a column not listed here still encodes as 0,
    /// the column mean, but the encoder cannot tell it from a present mean value.
    pub missing_indicator_columns: Vec<usize>,
    /// Vocabulary size of each categorical column, unknown slot included.
    pub vocabulary_sizes: Vec<usize>,
}

impl FeatureLayout {
    /// Layout of the columns in `profile`.
    pub fn from_profile(profile: &DatasetProfile) -> Self {
        FeatureLayout {
            num_numeric: profile.numeric_columns().count(),
            missing_indicator_columns: profile
                .numeric_columns()
                .enumerate()
                .filter(|(_, stats)| stats.missing_rate > 0.0)
                .map(|(index, _)| index)
                .collect(),
            vocabulary_sizes: profile.categorical_columns().map(|vocabulary| vocabulary.size()).collect(),
        }
    }

    /// Categorical columns.
    pub fn num_categorical(&self) -> usize {
        self.vocabulary_sizes.len()
    }

    /// Feature columns: numeric plus categorical.
    pub fn num_features(&self) -> usize {
        self.num_numeric + self.num_categorical()
    }

    /// Width of the numeric part of the encoder input: one value per numeric
    /// column plus one indicator per column in `missing_indicator_columns`.
    pub fn numeric_input_width(&self) -> usize {
        self.num_numeric + self.missing_indicator_columns.len()
    }
}

/// Rows in encoder input form, row-major.
///
/// Shapes: `numeric` and `missing` are `[num_rows, num_numeric]`, `categorical`
/// is `[num_rows, num_categorical]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EncodedRows {
    pub num_rows: usize,
    pub num_numeric: usize,
    pub num_categorical: usize,
    /// Standardised values; 0 (the mean) where missing.
    pub numeric: Vec<f32>,
    /// 1 where the numeric cell is missing, else 0.
    pub missing: Vec<f32>,
    /// Vocabulary indices; 0 is the unknown slot.
    pub categorical: Vec<u32>,
}

impl EncodedRows {
    /// Creates `num_rows` rows of `layout`'s widths, every value 0.
    fn zeroed(num_rows: usize, layout: &FeatureLayout) -> Self {
        EncodedRows {
            num_rows,
            num_numeric: layout.num_numeric,
            num_categorical: layout.num_categorical(),
            numeric: vec![0.0; num_rows * layout.num_numeric],
            missing: vec![0.0; num_rows * layout.num_numeric],
            categorical: vec![0; num_rows * layout.num_categorical()],
        }
    }

    /// Creates an empty set of rows with the given widths, with room for `capacity` rows.
    pub fn with_capacity(num_numeric: usize, num_categorical: usize, capacity: usize) -> Self {
        EncodedRows {
            num_rows: 0,
            num_numeric,
            num_categorical,
            numeric: Vec::with_capacity(capacity * num_numeric),
            missing: Vec::with_capacity(capacity * num_numeric),
            categorical: Vec::with_capacity(capacity * num_categorical),
        }
    }

    /// Appends row `row` of `other`, which must have the same widths.
    pub fn push_row_from(&mut self, other: &EncodedRows, row: usize) {
        let numeric = row * other.num_numeric..(row + 1) * other.num_numeric;
        let categorical = row * other.num_categorical..(row + 1) * other.num_categorical;
        self.numeric.extend_from_slice(&other.numeric[numeric.clone()]);
        self.missing.extend_from_slice(&other.missing[numeric]);
        self.categorical.extend_from_slice(&other.categorical[categorical]);
        self.num_rows += 1;
    }

    /// Copies the rows at `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> EncodedRows {
        let mut selected = EncodedRows::with_capacity(self.num_numeric, self.num_categorical, rows.len());
        for &row in rows {
            selected.push_row_from(self, row);
        }
        selected
    }

    /// Raw features for a baseline model: standardised numerics, missing
    /// indicators and one-hot categoricals, row-major `[num_rows, width]`.
    /// Returns the values and the width.
    pub fn one_hot_features(&self, layout: &FeatureLayout) -> (Vec<f32>, usize) {
        let one_hot_width: usize = layout.vocabulary_sizes.iter().sum();
        let width = 2 * self.num_numeric + one_hot_width;
        let mut features = vec![0.0f32; self.num_rows * width];
        for row in 0..self.num_rows {
            let out = &mut features[row * width..(row + 1) * width];
            let numeric = row * self.num_numeric..(row + 1) * self.num_numeric;
            out[..self.num_numeric].copy_from_slice(&self.numeric[numeric.clone()]);
            out[self.num_numeric..2 * self.num_numeric].copy_from_slice(&self.missing[numeric]);
            let mut offset = 2 * self.num_numeric;
            for (column, size) in layout.vocabulary_sizes.iter().enumerate() {
                out[offset + self.categorical[row * self.num_categorical + column] as usize] = 1.0;
                offset += size;
            }
        }
        (features, width)
    }
}

/// Encodes the feature columns of `table`, which must have the profile's columns in
/// the same order. Categories outside the vocabulary map to the unknown slot.
///
/// # Errors
///
/// [`WorkerError::InvalidTable`] when the table's columns differ from the profile's.
pub fn encode_table(profile: &DatasetProfile, table: &TypedTable) -> Result<EncodedRows> {
    let names: Vec<&str> = table.features.iter().map(|(name, _)| name.as_str()).collect();
    let expected: Vec<&str> = profile.columns.iter().map(ColumnProfile::name).collect();
    if names != expected {
        return Err(WorkerError::InvalidTable {
            uri: table.uri.clone(),
            message: format!("columns {names:?} do not match the profile's {expected:?}"),
        });
    }

    let layout = FeatureLayout::from_profile(profile);
    let num_rows = table.num_rows();
    let mut rows = EncodedRows::zeroed(num_rows, &layout);

    let (mut numeric_index, mut categorical_index) = (0, 0);
    for (column, (_, values)) in profile.columns.iter().zip(&table.features) {
        match (column, values) {
            (ColumnProfile::Numeric(stats), TypedValues::Numeric(cells)) => {
                for (row, cell) in cells.iter().enumerate() {
                    let at = row * rows.num_numeric + numeric_index;
                    match cell {
                        Some(value) => rows.numeric[at] = stats.standardize(*value),
                        None => rows.missing[at] = 1.0,
                    }
                }
                numeric_index += 1;
            }
            (ColumnProfile::Categorical(vocabulary), TypedValues::Categorical(cells)) => {
                let lookup: HashMap<&str, u32> =
                    vocabulary.categories.iter().enumerate().map(|(index, category)| (category.as_str(), index as u32 + 1)).collect();
                for (row, cell) in cells.iter().enumerate() {
                    let index = cell.as_deref().and_then(|category| lookup.get(category).copied()).unwrap_or(0);
                    rows.categorical[row * rows.num_categorical + categorical_index] = index;
                }
                categorical_index += 1;
            }
            _ => {
                return Err(WorkerError::InvalidTable {
                    uri: table.uri.clone(),
                    message: format!("column `{}` has another kind than in the profile", column.name()),
                });
            }
        }
    }
    Ok(rows)
}

/// Encodes the profile's marginal sample, the pool that corruption and masking
/// draw replacement cells from.
pub fn encode_sample(profile: &DatasetProfile) -> EncodedRows {
    let layout = FeatureLayout::from_profile(profile);
    let num_rows = profile.sample_len();
    let mut rows = EncodedRows::zeroed(num_rows, &layout);
    for (numeric_index, stats) in profile.numeric_columns().enumerate() {
        for (row, cell) in stats.sample.iter().enumerate() {
            let at = row * rows.num_numeric + numeric_index;
            match cell {
                Some(value) => rows.numeric[at] = stats.standardize(*value),
                None => rows.missing[at] = 1.0,
            }
        }
    }
    for (categorical_index, vocabulary) in profile.categorical_columns().enumerate() {
        for (row, index) in vocabulary.sample.iter().enumerate() {
            rows.categorical[row * rows.num_categorical + categorical_index] = *index;
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> TypedTable {
        TypedTable {
            uri: "t".to_owned(),
            features: vec![
                ("x".to_owned(), TypedValues::Numeric(vec![Some(1.0), None, Some(3.0)])),
                ("c".to_owned(), TypedValues::Categorical(vec![Some("a".to_owned()), Some("b".to_owned()), Some("a".to_owned())])),
            ],
            label: None,
            row_lines: vec![2, 3, 4],
        }
    }

    #[test]
    fn encoding_standardises_and_indexes() {
        let profile = DatasetProfile::from_table(&table(), 0, 16, 16);
        let rows = encode_table(&profile, &table()).unwrap();
        assert_eq!(rows.numeric, vec![-1.0, 0.0, 1.0]);
        assert_eq!(rows.missing, vec![0.0, 1.0, 0.0]);
        assert_eq!(rows.categorical, vec![1, 2, 1]);

        let (features, width) = rows.one_hot_features(&FeatureLayout::from_profile(&profile));
        assert_eq!(width, 2 + 3);
        assert_eq!(&features[width..2 * width], &[0.0, 1.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn indicators_only_for_missing_columns() {
        let mut table = table();
        table.features.insert(1, ("complete".to_owned(), TypedValues::Numeric(vec![Some(4.0), Some(5.0), Some(6.0)])));
        let profile = DatasetProfile::from_table(&table, 0, 16, 16);
        let layout = FeatureLayout::from_profile(&profile);
        assert_eq!(layout.num_numeric, 2);
        assert_eq!(layout.missing_indicator_columns, vec![0]);
        assert_eq!(layout.numeric_input_width(), 3);
    }

    #[test]
    fn sample_encoding_matches_table_encoding() {
        let profile = DatasetProfile::from_table(&table(), 0, 16, 16);
        let sample = encode_sample(&profile);
        let rows = encode_table(&profile, &table()).unwrap();
        assert_eq!(sample.num_rows, 3);
        let mut sample_pairs: Vec<(i32, u32)> = (0..3).map(|row| ((sample.numeric[row] * 10.0) as i32, sample.categorical[row])).collect();
        let mut table_pairs: Vec<(i32, u32)> = (0..3).map(|row| ((rows.numeric[row] * 10.0) as i32, rows.categorical[row])).collect();
        sample_pairs.sort();
        table_pairs.sort();
        assert_eq!(sample_pairs, table_pairs);
    }
}
