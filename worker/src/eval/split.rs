//! Seeded row splits: the hold-out test split and stratified label subsamples.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Splits `0..num_rows` into (train, test) with `round(test_fraction * num_rows)`
/// test rows drawn uniformly with `seed`. Both lists are sorted.
pub fn holdout_split(num_rows: usize, test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..num_rows).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let num_test = ((test_fraction * num_rows as f64).round() as usize).min(num_rows);
    let mut test = order[..num_test].to_vec();
    let mut train = order[num_test..].to_vec();
    test.sort_unstable();
    train.sort_unstable();
    (train, test)
}

/// Picks a stratified subsample of `fraction` of the rows: from each class,
/// `ceil(fraction * class_count)` rows drawn with `seed`, so every class present
/// keeps at least one row. Returns row indices into `labels`, sorted.
pub fn stratified_subsample(labels: &[usize], num_classes: usize, fraction: f64, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut chosen = Vec::new();
    for class in 0..num_classes {
        let mut rows: Vec<usize> = labels.iter().enumerate().filter(|&(_, &label)| label == class).map(|(row, _)| row).collect();
        if rows.is_empty() {
            continue;
        }
        rows.shuffle(&mut rng);
        let keep = ((fraction * rows.len() as f64).ceil() as usize).clamp(1, rows.len());
        chosen.extend_from_slice(&rows[..keep]);
    }
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_is_partition() {
        let (train, test) = holdout_split(100, 0.2, 4);
        assert_eq!((train.len(), test.len()), (80, 20));
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(holdout_split(100, 0.2, 4), (train, test));
    }

    #[test]
    fn one_percent_keeps_both_classes() {
        // 24% positives as in UCI Adult.
        let labels: Vec<usize> = (0..32_561).map(|row| usize::from(row % 100 < 24)).collect();
        let rows = stratified_subsample(&labels, 2, 0.01, 7);
        let all_positives = labels.iter().filter(|&&label| label == 1).count();
        let positives = rows.iter().filter(|&&row| labels[row] == 1).count();
        assert_eq!(positives, (0.01 * all_positives as f64).ceil() as usize);
        assert_eq!(rows.len() - positives, (0.01 * (labels.len() - all_positives) as f64).ceil() as usize);
        assert!(positives > 70);
    }
}
