//! Range and consistency checks on a job spec whose defaults are filled in.

use std::fmt;

use crate::v1::{DatasetSpec, EvaluationSpec, JobSpec, TrainingSpec, job_spec::Method};

/// Maximum URI length accepted, in bytes.
const MAX_URI_LEN: usize = 4096;
/// Maximum column name length accepted, in bytes.
const MAX_COLUMN_NAME_LEN: usize = 256;
/// Most entries accepted in `dataset.column_types`.
const MAX_COLUMN_TYPES: usize = 10_000;

/// One invalid field: its dotted path (`training.epochs`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A spec that failed validation, with every violation found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid job spec: {}", join_violations(.violations))]
pub struct InvalidSpec {
    pub violations: Vec<FieldViolation>,
}

fn join_violations(violations: &[FieldViolation]) -> String {
    violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Checks every field of a spec whose defaults are filled in.
///
/// # Errors
///
/// [`InvalidSpec`] listing every violation, in field order.
pub fn validate(spec: &JobSpec) -> Result<(), InvalidSpec> {
    let mut check = Checker::default();
    check_name(&mut check, &spec.name);

    match &spec.dataset {
        Some(dataset) => check_dataset(&mut check, dataset),
        None => check.violation("dataset", "missing; set `dataset.uri` to the table to pretrain on"),
    }
    check_method(&mut check, spec.method.as_ref());
    check_model(&mut check, spec);
    if let Some(training) = &spec.training {
        check_training(&mut check, training);
    }
    check_workers(&mut check, spec);
    if let Some(checkpoint) = &spec.checkpoint {
        check.int_range("checkpoint.every_steps", checkpoint.every_steps, 1, 10_000_000);
        check.int_range("checkpoint.keep_last", checkpoint.keep_last, 1, 1000);
        check.one_of("checkpoint.keep_best_by", checkpoint.keep_best_by.as_deref(), &["loss", "none"]);
    }
    if let Some(evaluation) = &spec.evaluation {
        check_evaluation(&mut check, evaluation, spec.dataset.as_ref());
    }
    check.int_range("priority", spec.priority, -1000, 1000);

    check.finish()
}

fn check_name(check: &mut Checker, name: &str) {
    if name.is_empty() {
        check.violation("name", "missing; give the job a name such as `adult-contrastive`");
        return;
    }
    let valid_chars = name.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    let starts_with_letter = name.as_bytes()[0].is_ascii_lowercase();
    if name.len() > 63 || !valid_chars || !starts_with_letter {
        check.violation(
            "name",
            format!(
                "invalid value {name:?}; use 1 to 63 lower-case letters, digits and '-', starting with a letter"
            ),
        );
    }
}

fn check_dataset(check: &mut Checker, dataset: &DatasetSpec) {
    check.uri("dataset.uri", &dataset.uri);
    match dataset.format.as_deref() {
        None => check.violation(
            "dataset.format",
            "missing and not inferable from the uri's extension; set `csv` or `parquet`",
        ),
        format => check.one_of("dataset.format", format, &["csv", "parquet"]),
    }
    if let Some(label) = &dataset.label_column {
        check.column_name("dataset.label_column", label);
    }
    if dataset.column_types.len() > MAX_COLUMN_TYPES {
        check.violation(
            "dataset.column_types",
            format!("has {} entries, more than the maximum of {MAX_COLUMN_TYPES}", dataset.column_types.len()),
        );
        return;
    }
    for (column, kind) in &dataset.column_types {
        let field = format!("dataset.column_types.{column}");
        check.column_name(&field, column);
        check.one_of(&field, Some(kind), &["numeric", "categorical"]);
    }
}

fn check_method(check: &mut Checker, method: Option<&Method>) {
    match method {
        None => check.violation("method", "missing; set `contrastive` or `masked`"),
        Some(Method::Contrastive(contrastive)) => {
            check.open_unit("method.contrastive.corruption_rate", contrastive.corruption_rate);
            check.float_range("method.contrastive.temperature", contrastive.temperature, 0.0, false, 100.0);
            check.int_range("method.contrastive.projection_size", contrastive.projection_size, 1, 65_536);
        }
        Some(Method::Masked(masked)) => {
            check.open_unit("method.masked.mask_rate", masked.mask_rate);
            check.float_range("method.masked.mask_loss_weight", masked.mask_loss_weight, 0.0, true, 1000.0);
            check.float_range(
                "method.masked.reconstruction_loss_weight",
                masked.reconstruction_loss_weight,
                0.0,
                true,
                1000.0,
            );
            if masked.mask_loss_weight == Some(0.0) && masked.reconstruction_loss_weight == Some(0.0) {
                check.violation(
                    "method.masked",
                    "both loss weights are 0, so nothing would be learned; make at least one positive",
                );
            }
        }
    }
}

fn check_model(check: &mut Checker, spec: &JobSpec) {
    let Some(model) = &spec.model else { return };
    if model.encoder_widths.len() > 16 {
        check.violation(
            "model.encoder_widths",
            format!("has {} layers, more than the maximum of 16", model.encoder_widths.len()),
        );
    }
    for (index, width) in model.encoder_widths.iter().enumerate() {
        check.int_range(&format!("model.encoder_widths[{index}]"), Some(*width), 1, 65_536);
    }
    check.int_range("model.embedding_size", model.embedding_size, 1, 65_536);
    check.int_range("model.categorical_embedding_size", model.categorical_embedding_size, 1, 1024);
}

fn check_training(check: &mut Checker, training: &TrainingSpec) {
    check.int_range("training.epochs", training.epochs, 1, 100_000);
    check.int_range("training.global_batch_size", training.global_batch_size, 2, 1_048_576);
    check.float_range("training.learning_rate", training.learning_rate, 0.0, false, 1.0);
    check.float_range("training.gradient_clip_norm", training.gradient_clip_norm, 0.0, true, 1e6);
    if let Some(optimizer) = &training.optimizer {
        check.one_of("training.optimizer.name", optimizer.name.as_deref(), &["adamw"]);
        check.half_open_unit("training.optimizer.weight_decay", optimizer.weight_decay);
        check.half_open_unit("training.optimizer.beta1", optimizer.beta1);
        check.half_open_unit("training.optimizer.beta2", optimizer.beta2);
        check.float_range("training.optimizer.epsilon", optimizer.epsilon, 0.0, false, 0.1);
    }
    if let Some(schedule) = &training.schedule {
        check.one_of("training.schedule.name", schedule.name.as_deref(), &["warmup_cosine", "constant"]);
        check.half_open_unit("training.schedule.warmup_fraction", schedule.warmup_fraction);
    }
}

fn check_workers(check: &mut Checker, spec: &JobSpec) {
    let Some(workers) = &spec.workers else { return };
    check.int_range("workers.min", workers.min, 1, 1024);
    check.int_range("workers.max", workers.max, 1, 1024);
    if let (Some(min), Some(max)) = (workers.min, workers.max)
        && min > max
    {
        check.violation("workers.min", format!("{min} is more than workers.max {max}; set min <= max"));
    }
    let batch = spec.training.as_ref().and_then(|training| training.global_batch_size);
    if let (Some(max), Some(batch)) = (workers.max, batch)
        && batch < max
    {
        check.violation(
            "training.global_batch_size",
            format!("{batch} is less than workers.max {max}; every worker needs at least one row per step"),
        );
    }
}

fn check_evaluation(check: &mut Checker, evaluation: &EvaluationSpec, dataset: Option<&DatasetSpec>) {
    let dataset_label = dataset.and_then(|dataset| dataset.label_column.as_deref());
    if let Some(label) = evaluation.label_column.as_deref() {
        check.column_name("evaluation.label_column", label);
        if let Some(dataset_label) = dataset_label
            && dataset_label != label
        {
            check.violation(
                "evaluation.label_column",
                format!("{label:?} differs from dataset.label_column {dataset_label:?}; set one of them only"),
            );
        }
    }
    if evaluation.disabled == Some(false) && evaluation.label_column.is_none() {
        check.violation(
            "evaluation.label_column",
            "missing while evaluation is enabled; name the label column or set `evaluation.disabled: true`",
        );
    }
    if let Some(test_uri) = &evaluation.test_uri {
        check.uri("evaluation.test_uri", test_uri);
    }
    if evaluation.label_fractions.len() > 16 {
        check.violation(
            "evaluation.label_fractions",
            format!("has {} entries, more than the maximum of 16", evaluation.label_fractions.len()),
        );
    }
    for (index, fraction) in evaluation.label_fractions.iter().enumerate() {
        check.float_range(&format!("evaluation.label_fractions[{index}]"), Some(*fraction), 0.0, false, 1.0);
    }
    check.int_range("evaluation.knn_k", evaluation.knn_k, 1, 1000);
}

/// Collects violations so that one submission reports all of them.
#[derive(Default)]
struct Checker {
    violations: Vec<FieldViolation>,
}

impl Checker {
    fn violation(&mut self, field: &str, message: impl Into<String>) {
        self.violations.push(FieldViolation { field: field.to_owned(), message: message.into() });
    }

    fn finish(self) -> Result<(), InvalidSpec> {
        if self.violations.is_empty() { Ok(()) } else { Err(InvalidSpec { violations: self.violations }) }
    }

    fn int_range<T: Into<i64> + Copy>(&mut self, field: &str, value: Option<T>, min: i64, max: i64) {
        let Some(value) = value else { return };
        let value = value.into();
        if value < min || value > max {
            self.violation(field, format!("{value} is out of range; expected an integer from {min} to {max}"));
        }
    }

    /// Checks `min < value <= max`, or `min <= value <= max` when `min_inclusive`.
    fn float_range(&mut self, field: &str, value: Option<f64>, min: f64, min_inclusive: bool, max: f64) {
        let Some(value) = value else { return };
        let above_min = if min_inclusive { value >= min } else { value > min };
        if !(above_min && value <= max) {
            let open = if min_inclusive { "[" } else { "(" };
            self.violation(field, format!("{value} is out of range; expected a number in {open}{min}, {max}]"));
        }
    }

    /// Checks `0 < value < 1`.
    fn open_unit(&mut self, field: &str, value: Option<f64>) {
        let Some(value) = value else { return };
        if !(value > 0.0 && value < 1.0) {
            self.violation(field, format!("{value} is out of range; expected a number in (0, 1)"));
        }
    }

    /// Checks `0 <= value < 1`.
    fn half_open_unit(&mut self, field: &str, value: Option<f64>) {
        let Some(value) = value else { return };
        if !(0.0..1.0).contains(&value) {
            self.violation(field, format!("{value} is out of range; expected a number in [0, 1)"));
        }
    }

    fn one_of(&mut self, field: &str, value: Option<&str>, allowed: &[&str]) {
        let Some(value) = value else { return };
        if !allowed.contains(&value) {
            self.violation(field, format!("invalid value {value:?}; expected one of {}", allowed.join(", ")));
        }
    }

    fn column_name(&mut self, field: &str, name: &str) {
        if name.is_empty() || name.len() > MAX_COLUMN_NAME_LEN {
            self.violation(field, format!("column name must have 1 to {MAX_COLUMN_NAME_LEN} bytes"));
        }
    }

    fn uri(&mut self, field: &str, uri: &str) {
        if uri.is_empty() {
            self.violation(field, "missing; set the table's location, such as `file:///data/train.csv`");
            return;
        }
        if uri.len() > MAX_URI_LEN {
            self.violation(field, format!("has {} bytes, more than the maximum of {MAX_URI_LEN}", uri.len()));
            return;
        }
        if let Err(reason) = check_uri_shape(uri) {
            self.violation(field, format!("invalid value {uri:?}: {reason}"));
        }
    }
}

/// Checks the URI forms that the workers' object stores read.
fn check_uri_shape(uri: &str) -> Result<(), &'static str> {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err("expected an absolute URI such as `file:///data/train.csv` or `s3://bucket/train.csv`");
    };
    match scheme {
        "file" => {
            if !rest.starts_with('/') {
                return Err("a `file://` URI needs an absolute path, as in `file:///data/train.csv`");
            }
            if rest.len() < 2 {
                return Err("the path names no file");
            }
        }
        "s3" => {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() || key.is_empty() {
                return Err("expected `s3://bucket/key` with both a bucket and a key");
            }
        }
        _ => return Err("unsupported scheme; use `file` or `s3`"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::fill_defaults;
    use crate::v1::{ContrastiveMethod, WorkerRange};

    fn valid_spec() -> JobSpec {
        fill_defaults(JobSpec {
            name: "adult".to_owned(),
            dataset: Some(DatasetSpec { uri: "file:///data/adult.csv".to_owned(), ..Default::default() }),
            ..Default::default()
        })
    }

    fn violations(spec: &JobSpec) -> Vec<String> {
        match validate(spec) {
            Ok(()) => Vec::new(),
            Err(invalid) => invalid.violations.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(violations(&valid_spec()), Vec::<String>::new());
    }

    #[test]
    fn negative_epochs_rejected() {
        let mut spec = valid_spec();
        spec.training.as_mut().unwrap().epochs = Some(-5);
        assert_eq!(
            violations(&spec),
            ["training.epochs: -5 is out of range; expected an integer from 1 to 100000"]
        );
    }

    #[test]
    fn min_above_max_workers_rejected() {
        let mut spec = valid_spec();
        spec.workers = Some(WorkerRange { min: Some(3), max: Some(2) });
        assert_eq!(violations(&spec), ["workers.min: 3 is more than workers.max 2; set min <= max"]);
    }

    #[test]
    fn corruption_rate_bounds() {
        for rate in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
            let mut spec = valid_spec();
            spec.method = Some(Method::Contrastive(ContrastiveMethod { corruption_rate: Some(rate), ..Default::default() }));
            let spec = fill_defaults(spec);
            assert_eq!(
                violations(&spec),
                [format!("method.contrastive.corruption_rate: {rate} is out of range; expected a number in (0, 1)")],
                "rate {rate}"
            );
        }
    }

    #[test]
    fn missing_uri_and_name_reported_together() {
        let spec = fill_defaults(JobSpec::default());
        let found = violations(&spec);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("name: missing"), "{found:?}");
        assert!(found[1].starts_with("dataset.uri: missing"), "{found:?}");
        assert!(found[2].starts_with("dataset.format: missing"), "{found:?}");
    }

    #[test]
    fn uri_shapes() {
        assert!(check_uri_shape("file:///a.csv").is_ok());
        assert!(check_uri_shape("s3://bucket/key.csv").is_ok());
        assert!(check_uri_shape("file://relative/a.csv").is_err());
        assert!(check_uri_shape("s3://bucket").is_err());
        assert!(check_uri_shape("http://host/a.csv").is_err());
        assert!(check_uri_shape("gs://bucket/a.csv").is_err());
        assert!(check_uri_shape("/data/a.csv").is_err());
    }

    #[test]
    fn unknown_column_type_rejected() {
        let mut spec = valid_spec();
        spec.dataset.as_mut().unwrap().column_types.insert("age".to_owned(), "integer".to_owned());
        assert_eq!(
            violations(&spec),
            [r#"dataset.column_types.age: invalid value "integer"; expected one of numeric, categorical"#]
        );
    }
}
