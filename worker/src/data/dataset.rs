//! Loading the training table and the evaluation table a job names.

use std::collections::HashMap;

use crate::data::csv::parse_csv;
#[cfg(feature = "parquet")]
use crate::data::parquet::parse_parquet;
use crate::data::schema::{TableSchema, TypedTable, apply_schema, infer_schema};
use crate::data::source::fetch_bytes;
use crate::data::table::RawTable;
use crate::error::{Result, WorkerError};

/// File format of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// Comma-separated text with a header row, optionally gzip-compressed.
    Csv,
    Parquet,
}

impl TableFormat {
    /// Parses the spec's `csv` or `parquet`; when `name` is `None`, infers the
    /// format from the URI's extension (`.csv`, `.csv.gz`, `.parquet`, `.pq`).
    ///
    /// # Errors
    ///
    /// [`WorkerError::InvalidConfig`] for another name or an unknown extension, and
    /// for Parquet in a build without the `parquet` feature.
    pub fn resolve(name: Option<&str>, uri: &str) -> Result<Self> {
        let lower = uri.to_ascii_lowercase();
        let name = name.map(str::to_owned).or_else(|| {
            let path = lower.strip_suffix(".gz").unwrap_or(&lower);
            if path.ends_with(".csv") {
                Some("csv".to_owned())
            } else if path.ends_with(".parquet") || path.ends_with(".pq") {
                Some("parquet".to_owned())
            } else {
                None
            }
        });
        match name.as_deref() {
            Some("csv") => Ok(TableFormat::Csv),
            Some("parquet") if cfg!(feature = "parquet") => Ok(TableFormat::Parquet),
            Some("parquet") => Err(parquet_not_built(uri)),
            Some(other) => Err(WorkerError::InvalidConfig(format!("unknown dataset format `{other}`; expected `csv` or `parquet`"))),
            None => Err(WorkerError::InvalidConfig(format!("cannot tell the format of `{uri}` from its extension; set `dataset.format`"))),
        }
    }
}

/// Builds the error for a Parquet table in a build without the `parquet` feature.
fn parquet_not_built(uri: &str) -> WorkerError {
    WorkerError::InvalidConfig(format!(
        "`{uri}` is a Parquet file, and this ssl-worker was built without Parquet support; \
         rebuild it with `cargo build --release --features ssl-worker/parquet`, or convert the file to CSV"
    ))
}

/// Fetches and parses one table.
///
/// # Errors
///
/// Any [`WorkerError`] from fetching or parsing, naming `uri`.
pub fn read_table(uri: &str, format: TableFormat) -> Result<RawTable> {
    let bytes = fetch_bytes(uri)?;
    if bytes.is_empty() {
        return Err(WorkerError::EmptyFile { uri: uri.to_owned(), message: "the file has no bytes".to_owned() });
    }
    match format {
        TableFormat::Csv => parse_csv(uri, &bytes),
        #[cfg(feature = "parquet")]
        TableFormat::Parquet => parse_parquet(uri, bytes),
        #[cfg(not(feature = "parquet"))]
        TableFormat::Parquet => Err(parquet_not_built(uri)),
    }
}

/// The typed training table and, when the job names one, the typed test table.
#[derive(Debug, Clone)]
pub struct LoadedDataset {
    pub schema: TableSchema,
    pub train: TypedTable,
    /// Labelled rows to score the probe on, read from `evaluation.test_uri`.
    pub test: Option<TypedTable>,
}

/// Reads the training table, decides column types, and reads the test table
/// with the same schema.
///
/// # Errors
///
/// Any data error; a test table that lacks a schema column or the label column
/// yields [`WorkerError::UnknownColumn`] naming the test file.
pub fn load_dataset(
    uri: &str,
    format: Option<&str>,
    column_types: &HashMap<String, String>,
    label: Option<&str>,
    test_uri: Option<&str>,
) -> Result<LoadedDataset> {
    let raw = read_table(uri, TableFormat::resolve(format, uri)?)?;
    let schema = infer_schema(&raw, column_types, label)?;
    let train = apply_schema(&raw, &schema, label.is_some())?;
    drop(raw);

    let test = match test_uri {
        Some(test_uri) => {
            let raw_test = read_table(test_uri, TableFormat::resolve(format, test_uri)?)?;
            Some(apply_schema(&raw_test, &schema, true)?)
        }
        None => None,
    };
    Ok(LoadedDataset { schema, train, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_name_or_extension() {
        assert_eq!(TableFormat::resolve(None, "s3://b/t.csv.gz").unwrap(), TableFormat::Csv);
        assert_eq!(TableFormat::resolve(None, "file:///t.PARQUET").unwrap(), TableFormat::Parquet);
        assert_eq!(TableFormat::resolve(Some("parquet"), "file:///t.bin").unwrap(), TableFormat::Parquet);
        assert!(TableFormat::resolve(None, "file:///t.bin").is_err());
    }

    #[test]
    fn test_table_without_label_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let train = dir.path().join("train.csv");
        let test = dir.path().join("test.csv");
        std::fs::write(&train, "x,y\n1,a\n2,b\n").unwrap();
        std::fs::write(&test, "x\n3\n").unwrap();

        let error = load_dataset(train.to_str().unwrap(), None, &HashMap::new(), Some("y"), Some(test.to_str().unwrap())).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("test.csv"), "{message}");
        assert!(message.contains("`y`"), "{message}");
    }
}
