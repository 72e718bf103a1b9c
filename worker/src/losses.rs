//! Loss functions of the SSL methods.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Int, Tensor};

/// Value that masked-out logits are set to; `exp` of it is 0 in `f32`.
const MASKED_LOGIT: f32 = -1.0e9;

/// NT-Xent (normalised temperature-scaled cross-entropy) over two views.
///
/// `view_a` and `view_b` are `[N, D]` projections where row `i` of each is the
/// same source row. The `2N` projections are L2-normalised; each one's positive is
/// its other view and the remaining `2N - 2` rows are its negatives. Returns the
/// mean over the `2N` rows of `-log softmax(cos / temperature)[positive]`, shape `[1]`.
pub fn nt_xent(view_a: Tensor<2>, view_b: Tensor<2>, temperature: f64) -> Tensor<1> {
    nt_xent_stacked(Tensor::cat(vec![view_a, view_b], 0), temperature)
}

/// [`nt_xent`] on `[2N, D]` projections that hold view A's rows, then view B's,
/// so a caller that already has both views in one tensor skips the split and
/// the concatenation.
///
/// # Panics
///
/// When the number of rows is odd.
pub fn nt_xent_stacked(projections: Tensor<2>, temperature: f64) -> Tensor<1> {
    let [total, _] = projections.dims();
    assert!(total % 2 == 0, "NT-Xent needs two views of each row, got {total} rows");
    let rows = total / 2;
    let device = projections.device();
    let norms = projections.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    let normalized = projections / norms;

    let logits = normalized.clone().matmul(normalized.transpose()).div_scalar(temperature);
    let self_similarity = Tensor::<2, Bool>::diag_mask([total, total], 0, &device).bool_not();
    let log_probabilities = log_softmax(logits.mask_fill(self_similarity, MASKED_LOGIT), 1);

    let positives: Vec<i64> = (0..total as i64).map(|row| (row + rows as i64) % total as i64).collect();
    let positives = Tensor::<1, Int>::from_data(positives.as_slice(), &device).reshape([total, 1]);
    log_probabilities.gather(1, positives).mean().neg()
}

/// Targets of the masked-modelling loss for a batch of `B` rows.
#[derive(Debug, Clone)]
pub struct MaskedTargets {
    /// `[B, num_features]`: 1 where the cell was masked, numeric columns first.
    pub mask: Tensor<2>,
    /// `[B, num_numeric]`: the original standardised values.
    pub numeric: Option<Tensor<2>>,
    /// `[B, num_numeric]`: 1 where the original numeric cell is present; missing
    /// originals have no value to reconstruct.
    pub numeric_present: Option<Tensor<2>>,
    /// `[B, num_categorical]`: the original vocabulary indices.
    pub categorical: Option<Tensor<2, Int>>,
    /// `[1, num_categorical, max_vocabulary]`: 0 for real classes and a large
    /// negative value for the padding beyond each column's vocabulary.
    pub category_padding: Option<Tensor<3>>,
    /// Cells the reconstruction loss averages over: present numeric cells plus
    /// all categorical cells.
    pub reconstruction_cells: usize,
    /// Cells the mask loss averages over: every cell of the batch. A rank that
    /// computes a slice of a global batch passes the global batch's counts here
    /// and in `reconstruction_cells`, so the ranks' losses add up to the global loss.
    pub mask_cells: usize,
}

/// The masked-modelling loss and its parts, each of shape `[1]`.
#[derive(Debug, Clone)]
pub struct MaskedLoss {
    /// `mask_weight * mask + reconstruction_weight * reconstruction`.
    pub total: Tensor<1>,
    /// Binary cross-entropy of the mask logits, averaged over all cells.
    pub mask: Tensor<1>,
    /// Squared error of present numeric cells plus cross-entropy of categorical
    /// cells, summed and divided by [`MaskedTargets::reconstruction_cells`].
    pub reconstruction: Tensor<1>,
}

/// VIME's loss: mask estimation over every cell and reconstruction of every
/// original value (masked or not), on mixed numeric and categorical columns.
///
/// `mask_logits` is `[B, F]`, `numeric` `[B, num_numeric]` and
/// `categorical_logits` `[B, num_categorical, max_vocabulary]`.
pub fn masked_loss(
    mask_logits: Tensor<2>,
    numeric: Option<Tensor<2>>,
    categorical_logits: Option<Tensor<3>>,
    targets: &MaskedTargets,
    mask_weight: f64,
    reconstruction_weight: f64,
) -> MaskedLoss {
    let mask = binary_cross_entropy_with_logits_sum(mask_logits, targets.mask.clone()).div_scalar(targets.mask_cells.max(1) as f64);

    let mut reconstruction_sum: Option<Tensor<1>> = None;
    if let (Some(predicted), Some(original), Some(present)) = (numeric, &targets.numeric, &targets.numeric_present) {
        let squared_error = (predicted - original.clone()).square() * present.clone();
        reconstruction_sum = Some(squared_error.sum());
    }
    if let (Some(logits), Some(classes), Some(padding)) = (categorical_logits, &targets.categorical, &targets.category_padding) {
        let log_probabilities = log_softmax(logits + padding.clone(), 2);
        let cross_entropy = log_probabilities.gather(2, classes.clone().unsqueeze_dim(2)).sum().neg();
        reconstruction_sum = Some(match reconstruction_sum {
            Some(sum) => sum + cross_entropy,
            None => cross_entropy,
        });
    }
    let reconstruction = reconstruction_sum
        .expect("a table has numeric or categorical columns")
        .div_scalar(targets.reconstruction_cells.max(1) as f64);

    let total = mask.clone().mul_scalar(mask_weight) + reconstruction.clone().mul_scalar(reconstruction_weight);
    MaskedLoss { total, mask, reconstruction }
}

/// Sum of `softplus(x) - x * y`, the numerically stable form of binary
/// cross-entropy on logits `x` with targets `y` in {0, 1}.
pub fn binary_cross_entropy_with_logits_sum(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let softplus = logits.clone().clamp_min(0.0) + logits.clone().abs().neg().exp().log1p();
    (softplus - logits * targets).sum()
}

/// Builds the `[1, num_categorical, max_vocabulary]` padding tensor of
/// [`MaskedTargets::category_padding`] as host values.
pub fn category_padding_values(vocabulary_sizes: &[usize]) -> (Vec<f32>, usize) {
    let max_vocabulary = vocabulary_sizes.iter().copied().max().unwrap_or(0);
    let mut values = vec![0.0f32; vocabulary_sizes.len() * max_vocabulary];
    for (column, &size) in vocabulary_sizes.iter().enumerate() {
        for class in size..max_vocabulary {
            values[column * max_vocabulary + class] = MASKED_LOGIT;
        }
    }
    (values, max_vocabulary)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, TensorData};

    use super::*;

    fn scalar(tensor: Tensor<1>) -> f64 {
        tensor.into_data().try_to_vec::<f32>().unwrap()[0] as f64
    }

    #[test]
    fn nt_xent_matches_hand_computation() {
        let device = Device::flex();
        // Rows: a = (1,0), (0,1), (1,1); b = (1,0), (1,1), (0,1). Temperature 0.5.
        let view_a = Tensor::<2>::from_data([[1.0f32, 0.0], [0.0, 1.0], [1.0, 1.0]], &device);
        let view_b = Tensor::<2>::from_data([[2.0f32, 0.0], [1.0, 1.0], [0.0, 3.0]], &device);

        // Cosines after normalisation: c(1,0 ; 1,1) = 1/sqrt2 = s.
        // Row-by-row logits (cos / 0.5) of the 6 projections
        // u0=(1,0) u1=(0,1) u2=(1,1)/sqrt2 v0=(1,0) v1=(1,1)/sqrt2 v2=(0,1):
        // u0: [-, 0, s, 1, s, 0] positive v0 (1)
        // u1: [0, -, s, 0, s, 1] positive v1 (s)
        // u2: [s, s, -, s, 1, s] positive v2 (s)
        // and symmetric for the v rows: v0 like u0 (positive u0 = 1),
        // v1: [s, s, 1, s, -, s] positive u1 (s), v2: [0, 1, s, 0, s, -] positive u2 (s).
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let t = 0.5;
        let row_loss = |positive: f64, others: &[f64]| {
            let denominator: f64 = others.iter().map(|cos| (cos / t).exp()).sum();
            -(positive / t).exp().ln() + denominator.ln()
        };
        let expected = (row_loss(1.0, &[0.0, s, 1.0, s, 0.0])
            + row_loss(s, &[0.0, s, 0.0, s, 1.0])
            + row_loss(s, &[s, s, s, 1.0, s])
            + row_loss(1.0, &[1.0, 0.0, s, s, 0.0])
            + row_loss(s, &[s, s, 1.0, s, s])
            + row_loss(s, &[0.0, 1.0, s, 0.0, s]))
            / 6.0;

        let loss = scalar(nt_xent(view_a, view_b, t));
        assert!((loss - expected).abs() < 1e-5, "loss {loss}, expected {expected}");
        assert!((expected - 1.360_196).abs() < 1e-5, "hand value {expected}");
    }

    #[test]
    fn masked_loss_matches_hand_computation() {
        let device = Device::flex();
        // Two rows, one numeric column and one categorical column (vocabulary 3
        // and, for padding, a second categorical column of vocabulary 2).
        let mask_logits = Tensor::<2>::from_data([[0.0f32, 2.0, -1.0], [1.0, 0.0, 0.0]], &device);
        let mask = Tensor::<2>::from_data([[1.0f32, 1.0, 0.0], [0.0, 0.0, 1.0]], &device);
        let numeric = Tensor::<2>::from_data([[0.5f32], [2.0]], &device);
        let original = Tensor::<2>::from_data([[1.5f32], [0.0]], &device);
        let present = Tensor::<2>::from_data([[1.0f32], [0.0]], &device);
        let categorical_logits = Tensor::<3>::from_data(
            [[[0.0f32, 0.0, 0.0], [1.0, 0.0, 5.0]], [[2.0, 0.0, 0.0], [0.0, 0.0, 7.0]]],
            &device,
        );
        let classes = Tensor::<2, Int>::from_data([[2i64, 1], [0, 0]], &device);
        let (padding, max_vocabulary) = category_padding_values(&[3, 2]);
        assert_eq!(max_vocabulary, 3);
        let padding = Tensor::<3>::from_data(TensorData::new(padding, [1, 2, 3]), &device);
        let targets = MaskedTargets {
            mask,
            numeric: Some(original),
            numeric_present: Some(present),
            categorical: Some(classes),
            category_padding: Some(padding),
            reconstruction_cells: 1 + 4,
            mask_cells: 6,
        };

        let loss = masked_loss(mask_logits, Some(numeric), Some(categorical_logits), &targets, 1.0, 2.0);

        let softplus = |x: f64| (1.0 + x.exp()).ln();
        let bce = [(0.0, 1.0), (2.0, 1.0), (-1.0, 0.0), (1.0, 0.0), (0.0, 0.0), (0.0, 1.0)]
            .iter()
            .map(|&(x, y)| softplus(x) - x * y)
            .sum::<f64>()
            / 6.0;
        let log_sum_exp = |values: &[f64]| values.iter().map(|v| v.exp()).sum::<f64>().ln();
        let squared_error = (0.5f64 - 1.5).powi(2);
        // Padding hides class 2 of the second column (logits 5 and 7 are ignored).
        let cross_entropy = (log_sum_exp(&[0.0, 0.0, 0.0]) - 0.0)
            + (log_sum_exp(&[1.0, 0.0]) - 0.0)
            + (log_sum_exp(&[2.0, 0.0, 0.0]) - 2.0)
            + (log_sum_exp(&[0.0, 0.0]) - 0.0);
        let reconstruction = (squared_error + cross_entropy) / 5.0;

        assert!((scalar(loss.mask) - bce).abs() < 1e-5);
        assert!((scalar(loss.reconstruction) - reconstruction).abs() < 1e-5);
        assert!((scalar(loss.total) - (bce + 2.0 * reconstruction)).abs() < 1e-5);
    }
}
