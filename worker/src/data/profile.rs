//! The dataset profile: per-column statistics, vocabularies and a seeded sample of
//! rows, built from mergeable partial sums so ranks that each read a slice of
//! the data can combine them into the same profile.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::schema::{ColumnKind, TypedTable, TypedValues};
use crate::error::{Result, WorkerError};

/// Rows kept in the profile's sample unless configured otherwise.
pub const DEFAULT_SAMPLE_ROWS: usize = 16_384;
/// Largest vocabulary kept per categorical column; rarer categories map to the
/// unknown slot.
pub const DEFAULT_MAX_CATEGORIES: usize = 1024;

/// Partial statistics of a numeric column over some rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericPartial {
    /// Present (non-missing) cells.
    pub count: u64,
    pub missing: u64,
    pub sum: f64,
    pub sum_squares: f64,
    /// Smallest present value; `+inf` when `count == 0`.
    pub min: f64,
    /// Largest present value; `-inf` when `count == 0`.
    pub max: f64,
}

/// Partial counts of a categorical column over some rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalPartial {
    pub counts: BTreeMap<String, u64>,
    pub missing: u64,
}

/// Partial statistics of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ColumnPartial {
    Numeric(NumericPartial),
    Categorical(CategoricalPartial),
}

/// One sampled cell: a number or a category, `None` when missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SampleCell {
    Number(Option<f64>),
    Category(Option<String>),
}

/// A sampled row with its sampling key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampledRow {
    pub key: u64,
    pub cells: Vec<SampleCell>,
}

/// Partial profile over a slice of the rows. Merging the partials of disjoint
/// slices in any order gives the same statistics as one partial over all rows
/// (sums up to floating-point rounding), and exactly the same sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfilePartial {
    pub names: Vec<String>,
    pub columns: Vec<ColumnPartial>,
    /// Rows with the smallest keys seen so far, sorted by key; at most `sample_rows`.
    pub sample: Vec<SampledRow>,
    pub sample_rows: usize,
    pub seed: u64,
}

impl ProfilePartial {
    /// Computes the partial profile of `table`, whose first row has the global
    /// index `first_row`. The sample is a bottom-k sample: each row's key is a
    /// hash of (`seed`, global row index) and the `sample_rows` smallest keys are
    /// kept, which is a uniform sample without replacement that merges exactly.
    pub fn from_table(table: &TypedTable, first_row: u64, seed: u64, sample_rows: usize) -> Self {
        let columns = table.features.iter().map(|(_, values)| column_partial(values)).collect();

        let mut keyed: Vec<(u64, usize)> =
            (0..table.num_rows()).map(|row| (sample_key(seed, first_row + row as u64), row)).collect();
        keyed.sort_unstable();
        keyed.truncate(sample_rows);
        let sample = keyed
            .into_iter()
            .map(|(key, row)| SampledRow { key, cells: table.features.iter().map(|(_, values)| sample_cell(values, row)).collect() })
            .collect();

        ProfilePartial { names: table.features.iter().map(|(name, _)| name.clone()).collect(), columns, sample, sample_rows, seed }
    }

    /// Adds the statistics and sample of another slice of the same table.
    ///
    /// # Errors
    ///
    /// [`WorkerError::InvalidConfig`] when the partials describe different columns,
    /// kinds, seeds or sample sizes.
    pub fn merge(&mut self, other: ProfilePartial) -> Result<()> {
        if self.names != other.names || self.seed != other.seed || self.sample_rows != other.sample_rows {
            return Err(WorkerError::InvalidConfig("cannot merge profiles of different columns, seeds or sample sizes".to_owned()));
        }
        for (mine, theirs) in self.columns.iter_mut().zip(other.columns) {
            match (mine, theirs) {
                (ColumnPartial::Numeric(mine), ColumnPartial::Numeric(theirs)) => {
                    mine.count += theirs.count;
                    mine.missing += theirs.missing;
                    mine.sum += theirs.sum;
                    mine.sum_squares += theirs.sum_squares;
                    mine.min = mine.min.min(theirs.min);
                    mine.max = mine.max.max(theirs.max);
                }
                (ColumnPartial::Categorical(mine), ColumnPartial::Categorical(theirs)) => {
                    mine.missing += theirs.missing;
                    for (category, count) in theirs.counts {
                        *mine.counts.entry(category).or_default() += count;
                    }
                }
                _ => return Err(WorkerError::InvalidConfig("cannot merge profiles with different column kinds".to_owned())),
            }
        }
        self.sample.extend(other.sample);
        self.sample.sort_by_key(|row| row.key);
        self.sample.truncate(self.sample_rows);
        Ok(())
    }

    /// Turns the merged partial sums into the final profile, keeping at most
    /// `max_categories` categories per column (the most frequent, ties by name).
    pub fn finish(self, max_categories: usize) -> DatasetProfile {
        let num_rows = match self.columns.first() {
            Some(ColumnPartial::Numeric(partial)) => partial.count + partial.missing,
            Some(ColumnPartial::Categorical(partial)) => partial.counts.values().sum::<u64>() + partial.missing,
            None => 0,
        };
        let columns = self
            .columns
            .into_iter()
            .enumerate()
            .map(|(index, partial)| {
                let name = self.names[index].clone();
                match partial {
                    ColumnPartial::Numeric(partial) => {
                        let sample = self.sample.iter().map(|row| match &row.cells[index] {
                            SampleCell::Number(value) => *value,
                            SampleCell::Category(_) => None,
                        });
                        ColumnProfile::Numeric(NumericStats::from_partial(name, &partial, sample.collect()))
                    }
                    ColumnPartial::Categorical(partial) => {
                        let vocabulary = Vocabulary::from_partial(name, partial, max_categories);
                        let sample = self
                            .sample
                            .iter()
                            .map(|row| match &row.cells[index] {
                                SampleCell::Category(value) => vocabulary.index(value.as_deref()),
                                SampleCell::Number(_) => 0,
                            })
                            .collect();
                        ColumnProfile::Categorical(Vocabulary { sample, ..vocabulary })
                    }
                }
            })
            .collect();
        DatasetProfile { num_rows, sample_seed: self.seed, columns }
    }
}

fn column_partial(values: &TypedValues) -> ColumnPartial {
    match values {
        TypedValues::Numeric(cells) => {
            let mut partial = NumericPartial { count: 0, missing: 0, sum: 0.0, sum_squares: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY };
            for cell in cells {
                match cell {
                    None => partial.missing += 1,
                    Some(value) => {
                        partial.count += 1;
                        partial.sum += value;
                        partial.sum_squares += value * value;
                        partial.min = partial.min.min(*value);
                        partial.max = partial.max.max(*value);
                    }
                }
            }
            ColumnPartial::Numeric(partial)
        }
        TypedValues::Categorical(cells) => {
            let mut partial = CategoricalPartial { counts: BTreeMap::new(), missing: 0 };
            for cell in cells {
                match cell {
                    None => partial.missing += 1,
                    Some(category) => *partial.counts.entry(category.clone()).or_default() += 1,
                }
            }
            ColumnPartial::Categorical(partial)
        }
    }
}

fn sample_cell(values: &TypedValues, row: usize) -> SampleCell {
    match values {
        TypedValues::Numeric(cells) => SampleCell::Number(cells[row]),
        TypedValues::Categorical(cells) => SampleCell::Category(cells[row].clone()),
    }
}

/// Hashes (seed, global row index) with SplitMix64's finaliser; the key orders
/// rows for the bottom-k sample.
pub fn sample_key(seed: u64, row: u64) -> u64 {
    let mut z = seed ^ row.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0x632B_E59B_D9B4_E019);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Statistics of a numeric column over the whole dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericStats {
    pub name: String,
    pub mean: f64,
    /// Population standard deviation; 1 for a constant column so standardising
    /// never divides by zero.
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// Fraction of rows where the cell is missing, in [0, 1].
    pub missing_rate: f64,
    /// Raw values of the sampled rows, in sample order; `None` where missing.
    pub sample: Vec<Option<f64>>,
}

impl NumericStats {
    fn from_partial(name: String, partial: &NumericPartial, sample: Vec<Option<f64>>) -> Self {
        let count = partial.count.max(1) as f64;
        let mean = partial.sum / count;
        let variance = (partial.sum_squares / count - mean * mean).max(0.0);
        let std = if variance.sqrt() > 1e-12 * mean.abs().max(1.0) { variance.sqrt() } else { 1.0 };
        let total = (partial.count + partial.missing).max(1) as f64;
        NumericStats { name, mean, std, min: partial.min, max: partial.max, missing_rate: partial.missing as f64 / total, sample }
    }

    /// Standardises a raw value: `(value - mean) / std`.
    pub fn standardize(&self, value: f64) -> f32 {
        ((value - self.mean) / self.std) as f32
    }
}

/// Vocabulary of a categorical column. Index 0 is the unknown slot (missing
/// cells and categories outside the vocabulary); category `categories[i]` has
/// index `i + 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vocabulary {
    pub name: String,
    /// Categories by decreasing count, ties by name.
    pub categories: Vec<String>,
    /// Count of each category, aligned with `categories`.
    pub counts: Vec<u64>,
    /// Cells that map to the unknown slot: missing cells plus dropped rare categories.
    pub unknown_count: u64,
    /// Fraction of rows where the cell is missing, in [0, 1].
    pub missing_rate: f64,
    /// Encoded index of each sampled row's cell, in sample order.
    pub sample: Vec<u32>,
}

impl Vocabulary {
    fn from_partial(name: String, partial: CategoricalPartial, max_categories: usize) -> Self {
        let total = partial.counts.values().sum::<u64>() + partial.missing;
        let mut entries: Vec<(String, u64)> = partial.counts.into_iter().collect();
        entries.sort_by(|(name_a, count_a), (name_b, count_b)| count_b.cmp(count_a).then_with(|| name_a.cmp(name_b)));
        let dropped: u64 = entries.iter().skip(max_categories).map(|(_, count)| count).sum();
        entries.truncate(max_categories);
        Vocabulary {
            name,
            categories: entries.iter().map(|(category, _)| category.clone()).collect(),
            counts: entries.iter().map(|(_, count)| *count).collect(),
            unknown_count: partial.missing + dropped,
            missing_rate: partial.missing as f64 / total.max(1) as f64,
            sample: Vec::new(),
        }
    }

    /// Number of embedding rows: the categories plus the unknown slot.
    pub fn size(&self) -> usize {
        self.categories.len() + 1
    }

    /// Encoded index of a cell: 0 for missing or unknown categories.
    pub fn index(&self, category: Option<&str>) -> u32 {
        let Some(category) = category else { return 0 };
        // NOTE: a linear scan; vocabularies are capped at a few hundred entries in practice
        // and `encode` builds a hash map for whole tables.
        self.categories.iter().position(|known| known == category).map_or(0, |position| position as u32 + 1)
    }
}

/// Profile of one feature column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ColumnProfile {
    Numeric(NumericStats),
    Categorical(Vocabulary),
}

impl ColumnProfile {
    /// Returns the column's name.
    pub fn name(&self) -> &str {
        match self {
            ColumnProfile::Numeric(stats) => &stats.name,
            ColumnProfile::Categorical(vocabulary) => &vocabulary.name,
        }
    }

    /// Returns the column's kind.
    pub fn kind(&self) -> ColumnKind {
        match self {
            ColumnProfile::Numeric(_) => ColumnKind::Numeric,
            ColumnProfile::Categorical(_) => ColumnKind::Categorical,
        }
    }
}

/// Everything needed to encode rows of this dataset for the encoder, and the
/// marginal samples that corruption and masking draw from. Serialised with the
/// checkpoint and next to an exported encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetProfile {
    /// Rows the statistics were computed over.
    pub num_rows: u64,
    /// Seed of the sample's row keys.
    pub sample_seed: u64,
    /// Feature columns in schema order.
    pub columns: Vec<ColumnProfile>,
}

impl DatasetProfile {
    /// Profiles a whole table on one process.
    pub fn from_table(table: &TypedTable, seed: u64, sample_rows: usize, max_categories: usize) -> Self {
        ProfilePartial::from_table(table, 0, seed, sample_rows).finish(max_categories)
    }

    /// Numeric columns' statistics, in schema order.
    pub fn numeric_columns(&self) -> impl Iterator<Item = &NumericStats> {
        self.columns.iter().filter_map(|column| match column {
            ColumnProfile::Numeric(stats) => Some(stats),
            ColumnProfile::Categorical(_) => None,
        })
    }

    /// Categorical columns' vocabularies, in schema order.
    pub fn categorical_columns(&self) -> impl Iterator<Item = &Vocabulary> {
        self.columns.iter().filter_map(|column| match column {
            ColumnProfile::Categorical(vocabulary) => Some(vocabulary),
            ColumnProfile::Numeric(_) => None,
        })
    }

    /// Rows in the marginal sample.
    pub fn sample_len(&self) -> usize {
        match self.columns.first() {
            Some(ColumnProfile::Numeric(stats)) => stats.sample.len(),
            Some(ColumnProfile::Categorical(vocabulary)) => vocabulary.sample.len(),
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: usize) -> TypedTable {
        let numbers = (0..rows).map(|row| if row % 5 == 4 { None } else { Some(row as f64) }).collect();
        let colors = (0..rows).map(|row| Some(["red", "green", "blue"][row % 3].to_owned())).collect();
        TypedTable {
            uri: "t".to_owned(),
            features: vec![("x".to_owned(), TypedValues::Numeric(numbers)), ("color".to_owned(), TypedValues::Categorical(colors))],
            label: None,
            row_lines: (2..rows as u64 + 2).collect(),
        }
    }

    #[test]
    fn statistics_match_direct_computation() {
        let profile = DatasetProfile::from_table(&table(10), 1, 100, 10);
        let ColumnProfile::Numeric(stats) = &profile.columns[0] else { panic!() };
        let present = [0.0, 1.0, 2.0, 3.0, 5.0, 6.0, 7.0, 8.0];
        let mean = present.iter().sum::<f64>() / 8.0;
        let variance = present.iter().map(|value| (value - mean).powi(2)).sum::<f64>() / 8.0;
        assert!((stats.mean - mean).abs() < 1e-12);
        assert!((stats.std - variance.sqrt()).abs() < 1e-12);
        assert_eq!((stats.min, stats.max), (0.0, 8.0));
        assert!((stats.missing_rate - 0.2).abs() < 1e-12);

        let ColumnProfile::Categorical(vocabulary) = &profile.columns[1] else { panic!() };
        assert_eq!(vocabulary.categories, vec!["red", "blue", "green"]);
        assert_eq!(vocabulary.counts, vec![4, 3, 3]);
        assert_eq!(vocabulary.index(Some("blue")), 2);
        assert_eq!(vocabulary.index(Some("pink")), 0);
        assert_eq!(vocabulary.index(None), 0);
    }

    #[test]
    fn small_table_sample_is_whole_column() {
        let profile = DatasetProfile::from_table(&table(10), 3, 100, 10);
        let ColumnProfile::Numeric(stats) = &profile.columns[0] else { panic!() };
        let mut sampled: Vec<f64> = stats.sample.iter().flatten().copied().collect();
        sampled.sort_by(f64::total_cmp);
        assert_eq!(sampled, vec![0.0, 1.0, 2.0, 3.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(stats.sample.len(), 10);
    }

    #[test]
    fn merged_partials_equal_whole_table() {
        let whole_table = table(1000);
        let whole = ProfilePartial::from_table(&whole_table, 0, 9, 64);

        let first_rows: Vec<usize> = (0..400).collect();
        let rest_rows: Vec<usize> = (400..1000).collect();
        let mut merged = ProfilePartial::from_table(&whole_table.select_rows(&rest_rows), 400, 9, 64);
        merged.merge(ProfilePartial::from_table(&whole_table.select_rows(&first_rows), 0, 9, 64)).unwrap();

        assert_eq!(merged.sample, whole.sample);
        assert_eq!(merged.columns[1], whole.columns[1]);
        let (ColumnPartial::Numeric(a), ColumnPartial::Numeric(b)) = (&merged.columns[0], &whole.columns[0]) else { panic!() };
        assert_eq!((a.count, a.missing, a.min, a.max), (b.count, b.missing, b.min, b.max));
        assert!((a.sum - b.sum).abs() < 1e-9);
        assert!((a.sum_squares - b.sum_squares).abs() < 1e-3);
    }

    #[test]
    fn vocabulary_cap_moves_rare_to_unknown() {
        let profile = DatasetProfile::from_table(&table(10), 1, 100, 1);
        let ColumnProfile::Categorical(vocabulary) = &profile.columns[1] else { panic!() };
        assert_eq!(vocabulary.categories, vec!["red"]);
        assert_eq!(vocabulary.unknown_count, 6);
        assert_eq!(vocabulary.size(), 2);
    }

    #[test]
    fn profile_serde_round_trip() {
        let profile = DatasetProfile::from_table(&table(20), 1, 8, 10);
        let json = serde_json::to_string(&profile).unwrap();
        let back: DatasetProfile = serde_json::from_str(&json).unwrap();
        assert_eq!(back, profile);
        assert_eq!(back.sample_len(), 8);
    }
}
