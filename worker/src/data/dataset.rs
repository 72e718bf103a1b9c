//! Loading the training table and the evaluation table a job names.

use std::collections::HashMap;

use crate::data::csv::parse_csv;
#[cfg(feature = "parquet")]
use crate::data::parquet::parse_parquet;
use crate::data::schema::{ColumnKind, TableSchema, TypedTable, apply_schema, infer_schema, parse_number};
use crate::data::source::fetch_bytes;
use crate::data::table::{RawTable, RawValues, check_same_columns};
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

/// One object of a dataset: the dataset URI itself, or a shard that the
/// coordinator listed when it admitted the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSource {
    pub uri: String,
    /// Size the object had when it was listed; `None` when it was not listed.
    pub size_bytes: Option<u64>,
}

impl TableSource {
    /// Returns the object at `uri`, read as it is now.
    pub fn whole(uri: &str) -> Self {
        TableSource { uri: uri.to_owned(), size_bytes: None }
    }
}

/// Fetches and parses one table.
///
/// # Errors
///
/// Any [`WorkerError`] from fetching or parsing, naming the source's URI, and
/// [`WorkerError::InvalidTable`] when the object's size differs from the listed one.
pub fn read_table(source: &TableSource, format: TableFormat) -> Result<RawTable> {
    let uri = source.uri.as_str();
    let bytes = fetch_bytes(uri)?;
    if let Some(listed) = source.size_bytes
        && bytes.len() as u64 != listed
    {
        return Err(WorkerError::InvalidTable {
            uri: uri.to_owned(),
            message: format!(
                "the object is {} bytes long, but was {listed} bytes when the job was admitted; the dataset changed, \
                 so submit the job again",
                bytes.len()
            ),
        });
    }
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

/// Reads the training table from `sources` in order, decides column types over
/// all of them, and reads the test table with the same schema. `uri` names the
/// stacked training table in messages.
///
/// # Errors
///
/// Any data error. A source whose columns differ from the first one's yields
/// [`WorkerError::InvalidTable`]. A test table that lacks a schema column or the
/// label column yields [`WorkerError::UnknownColumn`] naming the test file.
pub fn load_dataset(
    uri: &str,
    sources: &[TableSource],
    format: Option<&str>,
    column_types: &HashMap<String, String>,
    label: Option<&str>,
    test_uri: Option<&str>,
) -> Result<LoadedDataset> {
    let mut raws = Vec::with_capacity(sources.len());
    for source in sources {
        let raw = read_table(source, TableFormat::resolve(format, &source.uri)?)?;
        if let Some(first) = raws.first() {
            check_same_columns(first, &raw)?;
        }
        raws.push(raw);
    }
    let train = match raws.as_slice() {
        [raw] => {
            let schema = infer_schema(raw, column_types, label)?;
            let train = apply_schema(raw, &schema, label.is_some())?;
            (schema, train)
        }
        _ => {
            // Types are decided over every row; cells are typed file by file so
            // that an invalid cell is reported with its own file and line.
            let schema = infer_schema(&RawTable::concat(uri, &raws)?, column_types, label)?;
            let typed = raws.iter().map(|raw| apply_schema(raw, &schema, label.is_some())).collect::<Result<Vec<_>>>()?;
            (schema, TypedTable::concat(uri, typed))
        }
    };
    let (schema, train) = train;
    for (name, kind) in &schema.features {
        if *kind != ColumnKind::Categorical || column_types.contains_key(name) {
            continue;
        }
        if let Some((uri, line, value, non_numbers)) = stray_non_number(&raws, name) {
            tracing::warn!(
                %uri,
                line,
                column = %name,
                %value,
                non_numbers,
                "column inferred categorical because a few cells are not numbers; fix them, or set \
                 `dataset.column_types.{name}: numeric` to have each one reported"
            );
        }
    }
    drop(raws);

    let test = match test_uri {
        Some(test_uri) => {
            let raw_test = read_table(&TableSource::whole(test_uri), TableFormat::resolve(format, test_uri)?)?;
            Some(apply_schema(&raw_test, &schema, true)?)
        }
        None => None,
    };
    Ok(LoadedDataset { schema, train, test })
}

/// Share of numbers among an inferred categorical column's present cells from
/// which its other cells more likely are errors than categories.
const MOSTLY_NUMBERS: f64 = 0.99;

/// Finds the first cell that is not a number in the column `name`, with its
/// file, line and the count of such cells. Returns `None` unless nearly all
/// present cells of the column are numbers, the case where one bad cell makes
/// the whole column categorical.
fn stray_non_number(raws: &[RawTable], name: &str) -> Option<(String, u64, String, usize)> {
    let mut present = 0usize;
    let mut others = 0usize;
    let mut first_other: Option<(String, u64, String)> = None;
    for raw in raws {
        let Some(RawValues::Text(cells)) = raw.column_index(name).map(|index| &raw.columns[index].values) else { continue };
        for (row, cell) in cells.iter().enumerate() {
            let Some(cell) = cell else { continue };
            present += 1;
            if parse_number(cell).is_none() {
                others += 1;
                first_other.get_or_insert_with(|| (raw.uri.clone(), raw.row_lines[row], cell.clone()));
            }
        }
    }
    let (uri, line, value) = first_other?;
    let numbers = present - others;
    (present >= 100 && numbers as f64 >= MOSTLY_NUMBERS * present as f64).then_some((uri, line, value, others))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_table(uri: &str, cells: &[&str]) -> RawTable {
        let values = RawValues::Text(cells.iter().map(|cell| Some((*cell).to_owned())).collect());
        let row_lines = (2..cells.len() as u64 + 2).collect();
        RawTable { uri: uri.to_owned(), columns: vec![crate::data::table::RawColumn { name: "age".to_owned(), values }], row_lines }
    }

    #[test]
    fn stray_non_number_named_with_its_file() {
        let first = text_table("file:///d/1.csv", &["30"; 150]);
        let mut cells = vec!["40"; 50];
        cells[7] = "old";
        let second = text_table("file:///d/2.csv", &cells);
        let found = stray_non_number(&[first, second], "age");
        assert_eq!(found, Some(("file:///d/2.csv".to_owned(), 9, "old".to_owned(), 1)));
    }

    #[test]
    fn categories_are_not_stray() {
        let mut cells = vec!["30"; 150];
        cells[3] = "old";
        cells[4] = "young";
        assert!(stray_non_number(&[text_table("file:///t.csv", &cells)], "age").is_none());
        assert!(stray_non_number(&[text_table("file:///t.csv", &["a", "b"])], "age").is_none());
    }

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

        let train = train.to_str().unwrap();
        let error = load_dataset(train, &[TableSource::whole(train)], None, &HashMap::new(), Some("y"), Some(test.to_str().unwrap()))
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("test.csv"), "{message}");
        assert!(message.contains("`y`"), "{message}");
    }
}
