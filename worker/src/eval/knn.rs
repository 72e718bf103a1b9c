//! k-nearest-neighbour classification by cosine similarity.

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Result, WorkerError};

/// Queries scored per device round trip; bounds the similarity block to
/// `QUERY_CHUNK * num_references` floats.
const QUERY_CHUNK: usize = 512;

/// Predicts each query row's class by majority vote of its `k` most
/// cosine-similar reference rows (ties go to the smaller class index). Features
/// are row-major with `width` columns; `device` is a plain device.
///
/// # Errors
///
/// [`WorkerError::InvalidConfig`] without reference rows or with `k == 0`, and
/// [`WorkerError::Tensor`] when a device read fails.
pub fn knn_predict(
    references: &[f32],
    reference_labels: &[usize],
    queries: &[f32],
    width: usize,
    num_classes: usize,
    k: usize,
    device: &Device,
) -> Result<Vec<usize>> {
    let num_references = reference_labels.len();
    if num_references == 0 || k == 0 || references.len() != num_references * width {
        return Err(WorkerError::InvalidConfig(format!("kNN needs reference rows and k > 0: {num_references} rows, k = {k}")));
    }
    let k = k.min(num_references);
    let references = normalized_rows(references, width);
    let references = Tensor::<2>::from_data(TensorData::new(references, [num_references, width]), device).transpose();

    let queries = normalized_rows(queries, width);
    let mut predictions = Vec::with_capacity(queries.len() / width.max(1));
    let mut order: Vec<usize> = Vec::with_capacity(num_references);
    for chunk in queries.chunks(QUERY_CHUNK * width) {
        let rows = chunk.len() / width;
        let block = Tensor::<2>::from_data(TensorData::new(chunk.to_vec(), [rows, width]), device).matmul(references.clone());
        let similarities = block
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|error| WorkerError::Tensor(format!("cannot read similarities: {error:?}")))?;
        for row in similarities.chunks_exact(num_references) {
            order.clear();
            order.extend(0..num_references);
            order.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]));
            let mut votes = vec![0usize; num_classes];
            for &neighbour in &order[..k] {
                votes[reference_labels[neighbour]] += 1;
            }
            let best = votes.iter().enumerate().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0))).map_or(0, |(class, _)| class);
            predictions.push(best);
        }
    }
    Ok(predictions)
}

fn normalized_rows(features: &[f32], width: usize) -> Vec<f32> {
    let mut normalized = features.to_vec();
    for row in normalized.chunks_exact_mut(width) {
        let norm = row.iter().map(|value| value * value).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|value| *value /= norm);
    }
    normalized
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knn_votes_by_direction() {
        let device = Device::flex();
        // Class 0 points along +x, class 1 along +y.
        let references = [1.0, 0.1, 2.0, -0.1, 3.0, 0.0, 0.1, 1.0, -0.1, 2.0, 0.0, 3.0];
        let labels = [0, 0, 0, 1, 1, 1];
        let queries = [5.0, 1.0, 1.0, 5.0, 1.0, 1.01];
        let predictions = knn_predict(&references, &labels, &queries, 2, 2, 3, &device).unwrap();
        assert_eq!(&predictions[..2], &[0, 1]);
        assert_eq!(predictions.len(), 3);
    }

    #[test]
    fn knn_rejects_empty_reference() {
        assert!(knn_predict(&[], &[], &[1.0], 1, 2, 3, &Device::flex()).is_err());
    }
}
