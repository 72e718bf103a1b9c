//! Host-side augmentations: SCARF corruption and VIME masking. Both replace cells
//! with draws from each column's marginal, taken from the profile's sample.

use rand::{Rng, RngExt};

use crate::data::encode::EncodedRows;

/// Copies feature `feature` (numeric columns first, then categorical) of row
/// `pool_row` of `pool` into row `row` of `rows`.
fn replace_cell(rows: &mut EncodedRows, row: usize, feature: usize, pool: &EncodedRows, pool_row: usize) {
    if feature < rows.num_numeric {
        let at = row * rows.num_numeric + feature;
        let from = pool_row * pool.num_numeric + feature;
        rows.numeric[at] = pool.numeric[from];
        rows.missing[at] = pool.missing[from];
    } else {
        let column = feature - rows.num_numeric;
        rows.categorical[row * rows.num_categorical + column] = pool.categorical[pool_row * pool.num_categorical + column];
    }
}

/// One drawn replacement: cell (`row`, `feature`) of the batch takes the value of
/// `feature` in row `pool_row` of the pool.
#[derive(Debug, Clone, Copy, Default)]
struct Replacement {
    row: u32,
    feature: u32,
    pool_row: u32,
}

/// Applies `replacements`, which must name each cell of `rows` at most once, so
/// the order of application does not change the result. They are applied in
/// ascending pool-row order: reads in draw order jump across a pool of thousands
/// of rows and miss the cache on almost every cell, while ascending reads stream
/// through it.
fn apply_replacements(rows: &mut EncodedRows, pool: &EncodedRows, replacements: &[Replacement]) {
    // Counting sort by pool row.
    let mut starts = vec![0usize; pool.num_rows + 1];
    for replacement in replacements {
        starts[replacement.pool_row as usize + 1] += 1;
    }
    for index in 1..starts.len() {
        starts[index] += starts[index - 1];
    }
    let mut sorted = vec![Replacement::default(); replacements.len()];
    for replacement in replacements {
        let slot = &mut starts[replacement.pool_row as usize];
        sorted[*slot] = *replacement;
        *slot += 1;
    }
    for replacement in &sorted {
        replace_cell(rows, replacement.row as usize, replacement.feature as usize, pool, replacement.pool_row as usize);
    }
}

/// SCARF corruption: in every row, `round(rate * F)` features chosen uniformly
/// without replacement (at least one when `rate > 0`) take the value of that
/// column in a uniformly drawn row of `pool`, one draw per replaced cell.
///
/// # Panics
///
/// When `pool` is empty or has other widths than `rows`.
pub fn scarf_corrupt<R: Rng>(rows: &EncodedRows, pool: &EncodedRows, rate: f64, rng: &mut R) -> EncodedRows {
    assert!(pool.num_rows > 0, "the marginal sample is empty");
    assert_eq!((rows.num_numeric, rows.num_categorical), (pool.num_numeric, pool.num_categorical));

    let num_features = rows.num_numeric + rows.num_categorical;
    let per_row = ((rate * num_features as f64).round() as usize).clamp(usize::from(rate > 0.0), num_features);
    let mut features: Vec<usize> = (0..num_features).collect();
    let mut replacements = Vec::with_capacity(rows.num_rows * per_row);
    for row in 0..rows.num_rows {
        // Partial Fisher-Yates: the first `per_row` entries become a uniform subset.
        for slot in 0..per_row {
            let pick = rng.random_range(slot..num_features);
            features.swap(slot, pick);
            let pool_row = rng.random_range(0..pool.num_rows);
            replacements.push(Replacement { row: row as u32, feature: features[slot] as u32, pool_row: pool_row as u32 });
        }
    }
    let mut corrupted = rows.clone();
    apply_replacements(&mut corrupted, pool, &replacements);
    corrupted
}

/// VIME masking: each cell is masked independently with probability `rate` and
/// refilled from a uniformly drawn row of `pool`. Returns the refilled rows and
/// the `[num_rows, F]` mask (1 = masked), numeric columns first.
///
/// # Panics
///
/// When `pool` is empty or has other widths than `rows`.
pub fn vime_mask<R: Rng>(rows: &EncodedRows, pool: &EncodedRows, rate: f64, rng: &mut R) -> (EncodedRows, Vec<f32>) {
    assert!(pool.num_rows > 0, "the marginal sample is empty");
    assert_eq!((rows.num_numeric, rows.num_categorical), (pool.num_numeric, pool.num_categorical));

    let num_features = rows.num_numeric + rows.num_categorical;
    let mut mask = vec![0.0f32; rows.num_rows * num_features];
    let mut replacements = Vec::new();
    for row in 0..rows.num_rows {
        for feature in 0..num_features {
            if rng.random_bool(rate) {
                mask[row * num_features + feature] = 1.0;
                let pool_row = rng.random_range(0..pool.num_rows);
                replacements.push(Replacement { row: row as u32, feature: feature as u32, pool_row: pool_row as u32 });
            }
        }
    }
    let mut masked = rows.clone();
    apply_replacements(&mut masked, pool, &replacements);
    (masked, mask)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// 4000 rows: a skewed categorical column (classes 1, 2, 3 with weights
    /// 0.6, 0.3, 0.1) and a numeric column uniform on [0, 1) with 10% missing.
    fn rows() -> EncodedRows {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut rows = EncodedRows::with_capacity(1, 1, 4000);
        for _ in 0..4000 {
            let draw: f64 = rng.random();
            rows.categorical.push(if draw < 0.6 { 1 } else if draw < 0.9 { 2 } else { 3 });
            let missing = rng.random_bool(0.1);
            rows.numeric.push(if missing { 0.0 } else { rng.random::<f32>() });
            rows.missing.push(if missing { 1.0 } else { 0.0 });
            rows.num_rows += 1;
        }
        rows
    }

    /// Chi-square statistic of category counts against the expected proportions.
    fn chi_square(categories: &[u32], expected: &[f64; 3]) -> f64 {
        let total = categories.len() as f64;
        (1..=3u32)
            .map(|class| {
                let observed = categories.iter().filter(|&&value| value == class).count() as f64;
                let expected_count = expected[class as usize - 1] * total;
                (observed - expected_count).powi(2) / expected_count
            })
            .sum()
    }

    /// Two-sample Kolmogorov-Smirnov statistic of the present numeric values.
    fn ks_statistic(a: &EncodedRows, b: &EncodedRows) -> f64 {
        let present = |rows: &EncodedRows| {
            let mut values: Vec<f32> = (0..rows.num_rows).filter(|&row| rows.missing[row] == 0.0).map(|row| rows.numeric[row]).collect();
            values.sort_by(f32::total_cmp);
            values
        };
        let (x, y) = (present(a), present(b));
        let (mut i, mut j, mut largest) = (0, 0, 0.0f64);
        while i < x.len() && j < y.len() {
            if x[i] <= y[j] { i += 1 } else { j += 1 }
            largest = largest.max((i as f64 / x.len() as f64 - j as f64 / y.len() as f64).abs());
        }
        largest
    }

    #[test]
    fn corruption_keeps_marginals() {
        let original = rows();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let corrupted = scarf_corrupt(&original, &original, 0.6, &mut rng);

        // Every row has exactly round(0.6 * 2) = 1 of its 2 features replaced,
        // so about half the cells differ where the draws differ.
        let changed = (0..original.num_rows).filter(|&row| corrupted.categorical[row] != original.categorical[row]).count();
        assert!(changed > 800, "changed categories {changed}");
        assert!(changed < 1400, "changed categories {changed}");

        // Chi-square with 2 degrees of freedom: the 0.999 quantile is 13.8.
        let statistic = chi_square(&corrupted.categorical, &[0.6, 0.3, 0.1]);
        assert!(statistic < 13.8, "chi-square {statistic}");

        // KS critical value at alpha = 0.001 for two samples of ~3600: 1.95 * sqrt(2/3600) = 0.046.
        let ks = ks_statistic(&original, &corrupted);
        assert!(ks < 0.046, "KS {ks}");
        let missing_rate = corrupted.missing.iter().sum::<f32>() / corrupted.num_rows as f32;
        assert!((missing_rate - 0.1).abs() < 0.02, "missing rate {missing_rate}");
    }

    #[test]
    fn corruption_replaces_fixed_count_per_row() {
        let mut original = EncodedRows::with_capacity(5, 0, 100);
        for _ in 0..100 {
            original.numeric.extend([0.0; 5]);
            original.missing.extend([0.0; 5]);
            original.num_rows += 1;
        }
        let mut pool = EncodedRows::with_capacity(5, 0, 1);
        pool.numeric.extend([1.0; 5]);
        pool.missing.extend([0.0; 5]);
        pool.num_rows = 1;

        let corrupted = scarf_corrupt(&original, &pool, 0.6, &mut ChaCha8Rng::seed_from_u64(1));
        for row in 0..100 {
            let replaced = corrupted.numeric[row * 5..(row + 1) * 5].iter().filter(|&&value| value == 1.0).count();
            assert_eq!(replaced, 3, "row {row}");
        }
    }

    #[test]
    fn corruption_matches_draw_order_application() {
        let original = rows();
        let pool = rows();
        let corrupted = scarf_corrupt(&original, &pool, 0.6, &mut ChaCha8Rng::seed_from_u64(3));

        // The same draws applied one by one, in draw order.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut expected = original.clone();
        let mut features = [0usize, 1];
        for row in 0..original.num_rows {
            let pick = rng.random_range(0..2);
            features.swap(0, pick);
            let pool_row = rng.random_range(0..pool.num_rows);
            replace_cell(&mut expected, row, features[0], &pool, pool_row);
        }
        assert_eq!(corrupted, expected);
    }

    #[test]
    fn masks_hit_their_rate() {
        let original = rows();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let (masked, mask) = vime_mask(&original, &original, 0.3, &mut rng);
        let rate = mask.iter().sum::<f32>() as f64 / mask.len() as f64;
        // 8000 Bernoulli(0.3) cells: standard deviation 0.005, tolerance 4 sigma.
        assert!((rate - 0.3).abs() < 0.02, "mask rate {rate}");

        // Unmasked cells are untouched.
        for row in 0..original.num_rows {
            if mask[row * 2] == 0.0 {
                assert_eq!(masked.numeric[row], original.numeric[row]);
            }
            if mask[row * 2 + 1] == 0.0 {
                assert_eq!(masked.categorical[row], original.categorical[row]);
            }
        }
        let statistic = chi_square(&masked.categorical, &[0.6, 0.3, 0.1]);
        assert!(statistic < 13.8, "chi-square {statistic}");
    }
}
