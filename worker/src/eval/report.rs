//! The evaluation run.

use ssl_proto::result::{EvaluationReport, FeatureSet, ScoreRow};

use crate::data::encode::{EncodedRows, FeatureLayout};
use crate::error::{Result, WorkerError};
use crate::eval::knn::knn_predict;
use crate::eval::metrics::{accuracy, macro_f1, roc_auc};
use crate::eval::probe::{ProbeConfig, argmax_rows, fit_probe};
use crate::eval::split::stratified_subsample;
use crate::model::{TabularEncoder, encoder_input};
use burn::tensor::Device;

/// Rows encoded for the encoder, with class indices.
#[derive(Debug, Clone)]
pub struct LabelledRows {
    pub rows: EncodedRows,
    /// Class index of each row, into the class list.
    pub labels: Vec<usize>,
}

/// Keeps the rows whose label is one of `classes`, with the label's index.
/// Rows with a missing label, or a class not in `classes`, are dropped.
pub fn labelled_rows(rows: &EncodedRows, labels: &[Option<String>], classes: &[String]) -> LabelledRows {
    let mut kept = Vec::new();
    let mut indices = Vec::new();
    for (row, label) in labels.iter().enumerate() {
        if let Some(class) = label.as_deref().and_then(|label| classes.iter().position(|class| class == label)) {
            kept.push(row);
            indices.push(class);
        }
    }
    LabelledRows { rows: rows.select(&kept), labels: indices }
}

/// Settings of an evaluation run.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationSettings {
    /// Fractions of the labelled training rows the probes use, each in (0, 1].
    pub label_fractions: Vec<f64>,
    /// Neighbours of the kNN classifier.
    pub knn_k: usize,
    /// Seed of the stratified label subsamples.
    pub seed: u64,
    pub probe: ProbeConfig,
}

/// Computes `[n, embedding_size]` embeddings of `rows`, row-major, in chunks.
///
/// # Errors
///
/// [`WorkerError::Tensor`] when a device read fails.
pub fn embed(encoder: &TabularEncoder, rows: &EncodedRows, layout: &FeatureLayout, device: &Device) -> Result<Vec<f32>> {
    const CHUNK_ROWS: usize = 4096;
    let mut embeddings = Vec::new();
    let mut start = 0;
    while start < rows.num_rows {
        let end = (start + CHUNK_ROWS).min(rows.num_rows);
        let chunk = rows.select(&(start..end).collect::<Vec<_>>());
        let output = encoder.forward(&encoder_input(&chunk, layout, device));
        let values = output
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|error| WorkerError::Tensor(format!("cannot read embeddings: {error:?}")))?;
        embeddings.extend(values);
        start = end;
    }
    Ok(embeddings)
}

/// Fits probes and kNN at every label fraction on SSL embeddings and on raw
/// features, and scores them on `test`. `encoder` must be on `device` without
/// autodiff.
///
/// # Errors
///
/// [`WorkerError::InvalidConfig`] with fewer than two classes or no test rows,
/// and [`WorkerError::Tensor`] for device failures.
pub fn evaluate(
    encoder: &TabularEncoder,
    layout: &FeatureLayout,
    classes: &[String],
    train: &LabelledRows,
    test: &LabelledRows,
    settings: &EvaluationSettings,
    device: &Device,
) -> Result<EvaluationReport> {
    if classes.len() < 2 || test.labels.is_empty() {
        return Err(WorkerError::InvalidConfig(format!(
            "evaluation needs two classes and test rows: {} classes, {} test rows",
            classes.len(),
            test.labels.len()
        )));
    }
    let embedding_width = encoder.layers.last().map_or(0, |layer| layer.weight.dims()[1]);
    let ssl_train = embed(encoder, &train.rows, layout, device)?;
    let ssl_test = embed(encoder, &test.rows, layout, device)?;
    let (raw_train, raw_width) = train.rows.one_hot_features(layout);
    let (raw_test, _) = test.rows.one_hot_features(layout);

    let mut scores = Vec::new();
    for &fraction in &settings.label_fractions {
        let subset = stratified_subsample(&train.labels, classes.len(), fraction, settings.seed);
        let subset_labels: Vec<usize> = subset.iter().map(|&row| train.labels[row]).collect();
        for (features, train_features, test_features, width) in [
            (FeatureSet::Ssl, &ssl_train, &ssl_test, embedding_width),
            (FeatureSet::Raw, &raw_train, &raw_test, raw_width),
        ] {
            let subset_features = select_rows(train_features, width, &subset);
            scores.push(score(features, fraction, &subset_features, &subset_labels, test_features, &test.labels, width, classes.len(), settings, device)?);
        }
    }

    let mut class_counts = vec![0usize; classes.len()];
    test.labels.iter().for_each(|&label| class_counts[label] += 1);
    let majority_rate = *class_counts.iter().max().unwrap_or(&0) as f64 / test.labels.len() as f64;
    Ok(EvaluationReport { classes: classes.to_vec(), test_rows: test.labels.len(), majority_rate, knn_k: settings.knn_k, scores })
}

#[allow(clippy::too_many_arguments)]
fn score(
    features: FeatureSet,
    label_fraction: f64,
    train_features: &[f32],
    train_labels: &[usize],
    test_features: &[f32],
    test_labels: &[usize],
    width: usize,
    num_classes: usize,
    settings: &EvaluationSettings,
    device: &Device,
) -> Result<ScoreRow> {
    let probe = fit_probe(train_features, width, train_labels, num_classes, &settings.probe, device)?;
    let probabilities = probe.predict_probabilities(test_features)?;
    let predictions = argmax_rows(&probabilities, num_classes);
    let probe_roc_auc = (num_classes == 2).then(|| {
        let positives: Vec<bool> = test_labels.iter().map(|&label| label == 1).collect();
        let scores: Vec<f64> = probabilities.chunks_exact(2).map(|pair| f64::from(pair[1])).collect();
        roc_auc(&positives, &scores)
    });

    if train_labels.len() < settings.knn_k && features == FeatureSet::Ssl {
        tracing::warn!(
            label_fraction,
            train_rows = train_labels.len(),
            knn_k = settings.knn_k,
            "kNN has fewer labelled rows than evaluation.knn_k, so every test row gets the majority vote of all of them; \
             raise the label fraction or lower evaluation.knn_k"
        );
    }
    // kNN compares standardised features so no single raw column dominates.
    let train_standardized = probe.standardizer.apply(train_features);
    let test_standardized = probe.standardizer.apply(test_features);
    let knn_predictions = knn_predict(&train_standardized, train_labels, &test_standardized, width, num_classes, settings.knn_k, device)?;

    Ok(ScoreRow {
        features,
        label_fraction,
        train_rows: train_labels.len(),
        probe_accuracy: accuracy(test_labels, &predictions),
        probe_macro_f1: macro_f1(test_labels, &predictions, num_classes),
        probe_roc_auc: probe_roc_auc.flatten(),
        knn_accuracy: accuracy(test_labels, &knn_predictions),
    })
}

fn select_rows(features: &[f32], width: usize, rows: &[usize]) -> Vec<f32> {
    let mut selected = Vec::with_capacity(rows.len() * width);
    for &row in rows {
        selected.extend_from_slice(&features[row * width..(row + 1) * width]);
    }
    selected
}
