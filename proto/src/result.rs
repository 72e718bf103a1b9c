//! The result that a succeeded job stores in `result_json`: workers write it and
//! `sslctl` reads it, so both use these types.
//!
//! The JSON form is `{"steps": N, "evaluation": {...}}`, where `evaluation` is `null`
//! when the spec has no evaluation section.

use serde::{Deserialize, Serialize};

use crate::table::format_table;

/// The result a worker reports when a job succeeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// Optimizer steps the job trained for.
    pub steps: u64,
    pub evaluation: Option<EvaluationReport>,
}

impl JobResult {
    /// Parses a job's `result_json`; `None` when it is empty or not a result.
    pub fn parse(result_json: &str) -> Option<JobResult> {
        serde_json::from_str(result_json).ok()
    }

    /// Returns the JSON form stored in `result_json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a job result always serializes")
    }
}

/// Feature set a score row was computed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureSet {
    /// Frozen encoder embeddings.
    Ssl,
    /// Standardised numerics, missing indicators and one-hot categoricals.
    Raw,
}

impl FeatureSet {
    /// Returns the name used in the JSON form and in tables: `ssl` or `raw`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeatureSet::Ssl => "ssl",
            FeatureSet::Raw => "raw",
        }
    }
}

/// Scores of one feature set at one label fraction, on the test rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRow {
    pub features: FeatureSet,
    pub label_fraction: f64,
    /// Labelled training rows the probe and kNN used.
    pub train_rows: usize,
    pub probe_accuracy: f64,
    pub probe_macro_f1: f64,
    /// ROC AUC of the probe's second-class probability; `None` unless the label
    /// has exactly two classes.
    pub probe_roc_auc: Option<f64>,
    pub knn_accuracy: f64,
}

/// Linear-probe and kNN scores on the test split, for SSL embeddings and raw features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationReport {
    pub classes: Vec<String>,
    pub test_rows: usize,
    /// Share of the most frequent class in the test rows: the accuracy of always
    /// predicting it.
    pub majority_rate: f64,
    pub knn_k: usize,
    pub scores: Vec<ScoreRow>,
}

impl EvaluationReport {
    /// Returns the SSL and raw-feature scores at `fraction` of the labels, when both exist.
    pub fn pair_at(&self, fraction: f64) -> Option<(&ScoreRow, &ScoreRow)> {
        let find = |features: FeatureSet| {
            self.scores.iter().find(|score| score.features == features && (score.label_fraction - fraction).abs() < 1e-9)
        };
        Some((find(FeatureSet::Ssl)?, find(FeatureSet::Raw)?))
    }

    /// Formats a summary line and a table with one row per score, each line ending
    /// in a newline.
    pub fn to_table(&self) -> String {
        let summary = format!(
            "{} test rows, classes {}; always predicting the majority class scores accuracy {:.4}\n",
            self.test_rows,
            self.classes.join(", "),
            self.majority_rate
        );
        let knn_header = format!("KNN@{} ACCURACY", self.knn_k);
        let headers = ["LABELS", "FEATURES", "TRAIN ROWS", "PROBE ACCURACY", "MACRO-F1", "ROC AUC", knn_header.as_str()];
        let rows: Vec<Vec<String>> = self
            .scores
            .iter()
            .map(|score| {
                vec![
                    format_percent(score.label_fraction),
                    score.features.as_str().to_owned(),
                    score.train_rows.to_string(),
                    format!("{:.4}", score.probe_accuracy),
                    format!("{:.4}", score.probe_macro_f1),
                    score.probe_roc_auc.map_or_else(|| "-".to_owned(), |auc| format!("{auc:.4}")),
                    format!("{:.4}", score.knn_accuracy),
                ]
            })
            .collect();
        summary + &format_table(&headers, &rows)
    }
}

/// Formats a fraction as a percentage without needless decimals: `1%`, `0.5%`, `100%`.
pub fn format_percent(fraction: f64) -> String {
    let percent = fraction * 100.0;
    if (percent - percent.round()).abs() < 1e-9 { format!("{}%", percent.round()) } else { format!("{percent:.1}%") }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESULT: &str = r#"{"steps": 1270, "evaluation": {"classes": ["<=50K", ">50K"], "test_rows": 1000,
        "majority_rate": 0.773, "knn_k": 10, "scores": [
        {"features": "ssl", "label_fraction": 0.01, "train_rows": 30, "probe_accuracy": 0.81,
         "probe_macro_f1": 0.7, "probe_roc_auc": 0.85, "knn_accuracy": 0.79},
        {"features": "raw", "label_fraction": 0.01, "train_rows": 30, "probe_accuracy": 0.78,
         "probe_macro_f1": 0.65, "probe_roc_auc": null, "knn_accuracy": 0.77}]}}"#;

    #[test]
    fn result_parses_and_pairs_scores() {
        let result = JobResult::parse(RESULT).unwrap();
        assert_eq!(result.steps, 1270);
        let evaluation = result.evaluation.unwrap();
        let (ssl, raw) = evaluation.pair_at(0.01).unwrap();
        assert_eq!(ssl.probe_accuracy, 0.81);
        assert_eq!(raw.probe_accuracy, 0.78);
        assert!(evaluation.pair_at(0.1).is_none());
    }

    #[test]
    fn result_survives_json_round_trip() {
        let result = JobResult::parse(RESULT).unwrap();
        assert_eq!(JobResult::parse(&result.to_json()), Some(result));
    }

    #[test]
    fn table_has_one_row_per_score() {
        let evaluation = JobResult::parse(RESULT).unwrap().evaluation.unwrap();
        let text = evaluation.to_table();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("1000 test rows, classes <=50K, >50K;"), "{text}");
        assert!(lines[1].starts_with("LABELS  FEATURES  TRAIN ROWS  PROBE ACCURACY"), "{text}");
        assert!(lines[2].starts_with("1%      ssl       30          0.8100"), "{text}");
        assert!(lines[3].contains("0.7800"), "{text}");
        assert!(lines[3].contains(" - "), "{text}");
    }

    #[test]
    fn empty_or_foreign_result_is_none() {
        assert!(JobResult::parse("").is_none());
        assert!(JobResult::parse(r#"{"accuracy": 1}"#).is_none());
        let without_evaluation = JobResult::parse(r#"{"steps": 5, "evaluation": null}"#).unwrap();
        assert_eq!(without_evaluation.evaluation, None);
    }

    #[test]
    fn percentages_drop_needless_decimals() {
        assert_eq!(format_percent(0.01), "1%");
        assert_eq!(format_percent(1.0), "100%");
        assert_eq!(format_percent(0.005), "0.5%");
    }
}
