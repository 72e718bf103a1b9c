//! Classification metrics.

/// Fraction of predictions equal to the labels, in [0, 1]; 0 for no rows.
pub fn accuracy(labels: &[usize], predictions: &[usize]) -> f64 {
    if labels.is_empty() {
        return 0.0;
    }
    labels.iter().zip(predictions).filter(|(label, prediction)| label == prediction).count() as f64 / labels.len() as f64
}

/// Unweighted mean over `num_classes` classes of the per-class F1 score. A class
/// that is neither present nor predicted scores 0.
pub fn macro_f1(labels: &[usize], predictions: &[usize], num_classes: usize) -> f64 {
    if num_classes == 0 {
        return 0.0;
    }
    let mut total = 0.0;
    for class in 0..num_classes {
        let true_positives = labels.iter().zip(predictions).filter(|&(&label, &prediction)| label == class && prediction == class).count();
        let predicted = predictions.iter().filter(|&&prediction| prediction == class).count();
        let actual = labels.iter().filter(|&&label| label == class).count();
        if predicted + actual > 0 {
            total += 2.0 * true_positives as f64 / (predicted + actual) as f64;
        }
    }
    total / num_classes as f64
}

/// Area under the ROC curve of `scores` for the binary labels `positives`,
/// computed as the Mann-Whitney U statistic with ties counted as one half.
/// `None` when only one class is present.
pub fn roc_auc(positives: &[bool], scores: &[f64]) -> Option<f64> {
    let num_positive = positives.iter().filter(|&&positive| positive).count();
    let num_negative = positives.len() - num_positive;
    if num_positive == 0 || num_negative == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));

    // Average 1-based ranks over runs of tied scores.
    let mut positive_rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let average_rank = (start + 1 + end) as f64 / 2.0;
        positive_rank_sum += average_rank * order[start..end].iter().filter(|&&row| positives[row]).count() as f64;
        start = end;
    }
    let u = positive_rank_sum - (num_positive * (num_positive + 1)) as f64 / 2.0;
    Some(u / (num_positive * num_negative) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_and_macro_f1_by_hand() {
        let labels = [0, 0, 1, 1, 1];
        let predictions = [0, 1, 1, 1, 0];
        assert!((accuracy(&labels, &predictions) - 0.6).abs() < 1e-12);
        // Class 0: tp 1, predicted 2, actual 2 -> F1 0.5. Class 1: tp 2, predicted 3, actual 3 -> 2/3.
        assert!((macro_f1(&labels, &predictions, 2) - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn roc_auc_by_hand() {
        let positives = [false, false, true, true];
        assert_eq!(roc_auc(&positives, &[0.1, 0.4, 0.35, 0.8]), Some(0.75));
        assert_eq!(roc_auc(&positives, &[0.1, 0.2, 0.3, 0.4]), Some(1.0));
        assert_eq!(roc_auc(&positives, &[0.5, 0.5, 0.5, 0.5]), Some(0.5));
        assert_eq!(roc_auc(&[true, true], &[0.1, 0.2]), None);
    }
}
