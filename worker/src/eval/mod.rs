//! Evaluation of a pretrained encoder: a linear probe and kNN on frozen
//! embeddings, against the same probe on the raw preprocessed features.

pub mod knn;
pub mod metrics;
pub mod probe;
pub mod report;
pub mod split;

pub use probe::{LinearProbe, ProbeConfig, fit_probe};
pub use report::{EvaluationSettings, LabelledRows, embed, evaluate, labelled_rows};
pub use ssl_proto::result::{EvaluationReport, FeatureSet, ScoreRow};
pub use split::{holdout_split, stratified_subsample};
