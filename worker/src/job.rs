//! One pretraining job's data and run: load and profile the data, train, then
//! evaluate.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Device;
use ssl_proto::v1::JobSpec;

use crate::data::dataset::{TableSource, load_dataset};
use crate::data::source::list_sources;
use crate::data::encode::{EncodedRows, FeatureLayout, encode_table};
use crate::data::profile::{DEFAULT_MAX_CATEGORIES, DEFAULT_SAMPLE_ROWS, DatasetProfile, ProfilePartial};
use crate::data::schema::{TableSchema, TypedTable};
use crate::error::{Result, WorkerError};
use crate::eval::{EvaluationReport, EvaluationSettings, LabelledRows, ProbeConfig, evaluate, holdout_split, labelled_rows};
use crate::trainers::{AnyTrainer, StepReport, TrainerConfig};

/// Fraction of the rows held out for testing when the spec names no test table.
pub const HOLDOUT_FRACTION: f64 = 0.2;

/// Label column, test rows and probe settings of a job's evaluation.
#[derive(Debug, Clone)]
pub struct EvaluationPlan {
    pub settings: EvaluationSettings,
    /// Class names, sorted, from the training rows' labels.
    pub classes: Vec<String>,
    pub train: LabelledRows,
    pub test: LabelledRows,
}

/// A job with its data loaded, profiled and encoded, ready to train.
pub struct PreparedJob {
    pub config: TrainerConfig,
    pub schema: TableSchema,
    pub profile: DatasetProfile,
    /// Encoded pretraining rows: the training table minus any hold-out rows.
    pub rows: Arc<EncodedRows>,
    /// `None` when evaluation is disabled or no label column is set.
    pub evaluation: Option<EvaluationPlan>,
}

/// A job's tables, loaded and split, before profiling: what every rank of a
/// distributed job holds, so that each can profile a slice and encode rows.
pub struct JobData {
    pub config: TrainerConfig,
    pub schema: TableSchema,
    /// Pretraining rows: the training table minus any hold-out rows.
    pub train: TypedTable,
    /// Rows the evaluation scores on; `None` when evaluation is off.
    pub test: Option<TypedTable>,
    evaluation: ssl_proto::v1::EvaluationSpec,
}

impl JobData {
    /// Loads the dataset of a normalised spec and holds out test rows when the
    /// spec names no test table. The training rows come from `shards` in order,
    /// or, when `shards` is empty, from the objects that `dataset.uri` names now
    /// (one object, or the table files in a folder).
    ///
    /// # Errors
    ///
    /// Any data error, and [`WorkerError::InvalidConfig`] for an incomplete spec.
    pub fn load(spec: &JobSpec, shards: &[TableSource]) -> Result<Self> {
        let config = TrainerConfig::from_spec(spec)?;
        let dataset = spec.dataset.as_ref().ok_or_else(|| WorkerError::InvalidConfig("`dataset` is unset".to_owned()))?;
        let evaluation = spec.evaluation.clone().unwrap_or_default();
        let evaluate_labels = !evaluation.disabled.unwrap_or(false);
        let label = evaluation.label_column.clone().or_else(|| dataset.label_column.clone());
        let test_uri = evaluation.test_uri.as_deref().filter(|_| evaluate_labels && label.is_some());

        let column_types: HashMap<String, String> = dataset.column_types.clone().into_iter().collect();
        let listed;
        let sources = if shards.is_empty() {
            listed = list_sources(&dataset.uri, dataset.format.as_deref()).map_err(|error| match error {
                WorkerError::NotFound { uri } => WorkerError::InputNotFound { field: "dataset.uri", uri },
                other => other,
            })?;
            &listed[..]
        } else {
            shards
        };
        let loaded = load_dataset(&dataset.uri, sources, dataset.format.as_deref(), &column_types, label.as_deref(), test_uri).map_err(|error| {
            match error {
                WorkerError::NotFound { uri } if test_uri == Some(uri.as_str()) => WorkerError::InputNotFound { field: "evaluation.test_uri", uri },
                WorkerError::NotFound { uri } => WorkerError::InputNotFound { field: "dataset.uri", uri },
                other => other,
            }
        })?;

        let (train, test) = match (loaded.test, evaluate_labels && label.is_some()) {
            (Some(test), _) => (loaded.train, Some(test)),
            (None, true) => {
                let (train_rows, test_rows) = holdout_split(loaded.train.num_rows(), HOLDOUT_FRACTION, config.seed);
                (loaded.train.select_rows(&train_rows), Some(loaded.train.select_rows(&test_rows)))
            }
            (None, false) => (loaded.train, None),
        };
        Ok(JobData { config, schema: loaded.schema, train, test, evaluation })
    }

    /// Partial profile of the pretraining rows `rows`; merging the partials of
    /// disjoint slices that cover every row gives [`JobData::profile`].
    pub fn profile_partial(&self, rows: Range<usize>) -> ProfilePartial {
        let indices: Vec<usize> = rows.clone().collect();
        ProfilePartial::from_table(&self.train.select_rows(&indices), rows.start as u64, self.config.seed, DEFAULT_SAMPLE_ROWS)
    }

    /// Profile of all pretraining rows.
    pub fn profile(&self) -> DatasetProfile {
        DatasetProfile::from_table(&self.train, self.config.seed, DEFAULT_SAMPLE_ROWS, DEFAULT_MAX_CATEGORIES)
    }

    /// Encodes the pretraining rows with `profile`.
    ///
    /// # Errors
    ///
    /// As [`encode_table`].
    pub fn encode(&self, profile: &DatasetProfile) -> Result<EncodedRows> {
        encode_table(profile, &self.train)
    }

    /// Builds the evaluation of an encoder trained on `rows` (encoded with
    /// `profile`). Returns `None` when evaluation is off.
    ///
    /// # Errors
    ///
    /// [`WorkerError::InvalidTable`] when the labels have fewer than two classes.
    pub fn evaluation_plan(&self, profile: &DatasetProfile, rows: &EncodedRows) -> Result<Option<EvaluationPlan>> {
        match &self.test {
            Some(test) => evaluation_plan(profile, rows, &self.train, test, &self.evaluation, self.config.seed).map(Some),
            None => Ok(None),
        }
    }
}

impl PreparedJob {
    /// Loads the dataset of a normalised spec, holds out test rows when the spec
    /// names no test table, profiles the pretraining rows and encodes everything.
    ///
    /// # Errors
    ///
    /// Any data error, and [`WorkerError::InvalidConfig`] for an incomplete spec.
    pub fn from_spec(spec: &JobSpec) -> Result<Self> {
        let data = JobData::load(spec, &[])?;
        let profile = data.profile();
        let rows = data.encode(&profile)?;
        let evaluation = data.evaluation_plan(&profile, &rows)?;
        Ok(PreparedJob { config: data.config, schema: data.schema, profile, rows: Arc::new(rows), evaluation })
    }

    /// Creates a trainer with fresh weights for this job on `device`.
    ///
    /// # Errors
    ///
    /// As [`AnyTrainer::new`].
    pub fn trainer(&self, device: &Device) -> Result<AnyTrainer> {
        AnyTrainer::new(self.config.clone(), self.profile.clone(), self.rows.clone(), device)
    }
}

fn evaluation_plan(
    profile: &DatasetProfile,
    rows: &EncodedRows,
    train_table: &TypedTable,
    test_table: &TypedTable,
    evaluation: &ssl_proto::v1::EvaluationSpec,
    seed: u64,
) -> Result<EvaluationPlan> {
    let train_labels = train_table.label.as_ref().expect("a label column is set");
    let mut classes: Vec<String> = train_labels.iter().flatten().cloned().collect();
    classes.sort();
    classes.dedup();
    if classes.len() < 2 {
        return Err(WorkerError::InvalidTable {
            uri: train_table.uri.clone(),
            message: format!("the label column has {} class(es); evaluation needs at least two", classes.len()),
        });
    }

    let test_rows = encode_table(profile, test_table)?;
    let test_labels = test_table.label.as_ref().expect("a label column is set");
    let label_fractions = if evaluation.label_fractions.is_empty() {
        ssl_proto::spec::DEFAULT_LABEL_FRACTIONS.to_vec()
    } else {
        evaluation.label_fractions.clone()
    };
    Ok(EvaluationPlan {
        settings: EvaluationSettings {
            label_fractions,
            knn_k: evaluation.knn_k.unwrap_or(20).max(1) as usize,
            seed,
            probe: ProbeConfig::default(),
        },
        train: labelled_rows(rows, train_labels, &classes),
        test: labelled_rows(&test_rows, test_labels, &classes),
        classes,
    })
}

/// Runs steps until the trainer finishes, calling `on_step` after each one.
///
/// # Errors
///
/// The first step error.
pub fn pretrain(trainer: &mut AnyTrainer, mut on_step: impl FnMut(&StepReport)) -> Result<()> {
    while !trainer.is_finished() {
        let report = trainer.step()?;
        on_step(&report);
    }
    Ok(())
}

/// Evaluates the trainer's encoder with `plan`. `device` is the device the
/// trainer was created on; evaluation runs without autodiff.
///
/// # Errors
///
/// As [`evaluate`].
pub fn evaluate_trainer(trainer: &AnyTrainer, plan: &EvaluationPlan, device: &Device) -> Result<EvaluationReport> {
    let layout = FeatureLayout::from_profile(trainer.profile());
    let plain = device.clone().without_autodiff();
    let encoder = trainer.encoder().to_device(&plain);
    evaluate(&encoder, &layout, &plan.classes, &plan.train, &plan.test, &plan.settings, &plain)
}
