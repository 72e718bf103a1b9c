//! Default values of the job spec. docs/job-spec.md lists the same values.

use crate::v1::{
    CheckpointPolicy, ContrastiveMethod, DatasetSpec, EvaluationSpec, JobSpec, MaskedMethod,
    ModelSpec, OptimizerSpec, ScheduleSpec, TrainingSpec, WorkerRange, job_spec::Method,
};

/// Label fractions the evaluation probes at when the spec names none.
pub const DEFAULT_LABEL_FRACTIONS: [f64; 3] = [0.01, 0.1, 1.0];

/// Returns `spec` with every unset field set to its default.
///
/// Fields that have no default (the name, the dataset URI) stay as they are, and
/// `dataset.format` stays unset when the URI's extension does not tell it;
/// [`super::validate`] reports those.
pub fn fill_defaults(mut spec: JobSpec) -> JobSpec {
    fill_dataset(spec.dataset.get_or_insert_with(DatasetSpec::default));
    fill_method(spec.method.get_or_insert_with(|| Method::Contrastive(ContrastiveMethod::default())));
    fill_model(spec.model.get_or_insert_with(ModelSpec::default));
    fill_training(spec.training.get_or_insert_with(TrainingSpec::default));

    let workers = spec.workers.get_or_insert_with(WorkerRange::default);
    let min = *workers.min.get_or_insert(1);
    workers.max.get_or_insert(min);

    let checkpoint = spec.checkpoint.get_or_insert_with(CheckpointPolicy::default);
    checkpoint.every_steps.get_or_insert(500);
    checkpoint.keep_last.get_or_insert(3);
    checkpoint.keep_best_by.get_or_insert_with(|| "loss".to_owned());

    let dataset_label = spec.dataset.as_ref().and_then(|dataset| dataset.label_column.clone());
    fill_evaluation(spec.evaluation.get_or_insert_with(EvaluationSpec::default), dataset_label);

    spec.priority.get_or_insert(0);
    spec
}

fn fill_dataset(dataset: &mut DatasetSpec) {
    if dataset.format.is_none() {
        dataset.format = infer_format(&dataset.uri).map(str::to_owned);
    }
}

/// Infers `csv` or `parquet` from the URI's extension, ignoring a query string.
fn infer_format(uri: &str) -> Option<&'static str> {
    let path = uri.split(['?', '#']).next().unwrap_or_default().to_ascii_lowercase();
    let path = path.strip_suffix(".gz").unwrap_or(&path);
    if path.ends_with(".csv") {
        Some("csv")
    } else if path.ends_with(".parquet") || path.ends_with(".pq") {
        Some("parquet")
    } else {
        None
    }
}

fn fill_method(method: &mut Method) {
    match method {
        Method::Contrastive(contrastive) => {
            contrastive.corruption_rate.get_or_insert(0.6);
            contrastive.temperature.get_or_insert(1.0);
            contrastive.projection_size.get_or_insert(128);
        }
        Method::Masked(masked) => fill_masked(masked),
    }
}

fn fill_masked(masked: &mut MaskedMethod) {
    masked.mask_rate.get_or_insert(0.3);
    masked.mask_loss_weight.get_or_insert(1.0);
    masked.reconstruction_loss_weight.get_or_insert(2.0);
}

fn fill_model(model: &mut ModelSpec) {
    if model.encoder_widths.is_empty() {
        model.encoder_widths = vec![256, 256];
    }
    model.embedding_size.get_or_insert(128);
    model.categorical_embedding_size.get_or_insert(8);
}

fn fill_training(training: &mut TrainingSpec) {
    training.epochs.get_or_insert(10);
    training.global_batch_size.get_or_insert(256);
    training.learning_rate.get_or_insert(1e-3);
    training.seed.get_or_insert(0);
    training.gradient_clip_norm.get_or_insert(1.0);

    let optimizer = training.optimizer.get_or_insert_with(OptimizerSpec::default);
    optimizer.name.get_or_insert_with(|| "adamw".to_owned());
    optimizer.weight_decay.get_or_insert(1e-4);
    optimizer.beta1.get_or_insert(0.9);
    optimizer.beta2.get_or_insert(0.999);
    optimizer.epsilon.get_or_insert(1e-8);

    let schedule = training.schedule.get_or_insert_with(ScheduleSpec::default);
    schedule.name.get_or_insert_with(|| "warmup_cosine".to_owned());
    schedule.warmup_fraction.get_or_insert(0.05);
}

fn fill_evaluation(evaluation: &mut EvaluationSpec, dataset_label: Option<String>) {
    if evaluation.label_column.is_none() {
        evaluation.label_column = dataset_label;
    }
    let has_label = evaluation.label_column.is_some();
    evaluation.disabled.get_or_insert(!has_label);
    if evaluation.label_fractions.is_empty() {
        evaluation.label_fractions = DEFAULT_LABEL_FRACTIONS.to_vec();
    }
    evaluation.knn_k.get_or_insert(20);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal_spec(uri: &str) -> JobSpec {
        JobSpec {
            name: "adult".to_owned(),
            dataset: Some(DatasetSpec { uri: uri.to_owned(), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_fill_every_field() {
        let spec = fill_defaults(minimal_spec("file:///data/train.csv.gz"));
        assert_eq!(spec.dataset.as_ref().unwrap().format.as_deref(), Some("csv"));
        let Some(Method::Contrastive(contrastive)) = &spec.method else { panic!("method {:?}", spec.method) };
        assert_eq!(contrastive.corruption_rate, Some(0.6));
        assert_eq!(contrastive.temperature, Some(1.0));
        let training = spec.training.as_ref().unwrap();
        assert_eq!(training.epochs, Some(10));
        assert_eq!(training.global_batch_size, Some(256));
        assert_eq!(training.optimizer.as_ref().unwrap().name.as_deref(), Some("adamw"));
        assert_eq!(spec.workers.as_ref().unwrap().max, Some(1));
        assert_eq!(spec.evaluation.as_ref().unwrap().disabled, Some(true));
        assert_eq!(spec.priority, Some(0));
    }

    #[test]
    fn defaults_keep_given_values() {
        let mut spec = minimal_spec("s3://bucket/table.parquet");
        spec.workers = Some(WorkerRange { min: Some(2), max: None });
        spec.method = Some(Method::Masked(MaskedMethod { mask_rate: Some(0.5), ..Default::default() }));
        spec.dataset.as_mut().unwrap().label_column = Some("income".to_owned());

        let spec = fill_defaults(spec);
        assert_eq!(spec.dataset.as_ref().unwrap().format.as_deref(), Some("parquet"));
        assert_eq!(spec.workers.as_ref().unwrap().max, Some(2));
        let Some(Method::Masked(masked)) = &spec.method else { panic!("method {:?}", spec.method) };
        assert_eq!(masked.mask_rate, Some(0.5));
        assert_eq!(masked.reconstruction_loss_weight, Some(2.0));
        let evaluation = spec.evaluation.as_ref().unwrap();
        assert_eq!(evaluation.label_column.as_deref(), Some("income"));
        assert_eq!(evaluation.disabled, Some(false));
    }

    #[test]
    fn format_inference_from_extension() {
        assert_eq!(infer_format("file:///a/b.CSV"), Some("csv"));
        assert_eq!(infer_format("s3://b/k.csv.gz?versionId=3"), Some("csv"));
        assert_eq!(infer_format("s3://b/k.pq"), Some("parquet"));
        assert_eq!(infer_format("s3://b/k.json"), None);
    }
}
