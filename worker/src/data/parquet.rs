//! Parquet tables, read through the Arrow reader.

use arrow_array::{Array, Float64Array, RecordBatch, StringArray};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::data::table::{RawColumn, RawTable, RawValues, is_missing_token};
use crate::error::{Result, WorkerError};

/// Parses Parquet bytes into a table. Integer, float and decimal columns become
/// numbers; every other type is read as text (categorical). Nulls, and text
/// cells that are missing-value tokens, become `None`.
///
/// # Errors
///
/// [`WorkerError::Read`] for a corrupt file or an unreadable column type and
/// [`WorkerError::EmptyFile`] for a file without columns or rows.
pub fn parse_parquet(uri: &str, bytes: Vec<u8>) -> Result<RawTable> {
    let read_error = |error: &dyn std::fmt::Display| WorkerError::Read { uri: uri.to_owned(), message: error.to_string() };

    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).map_err(|error| read_error(&error))?;
    let schema = builder.schema().clone();
    if schema.fields().is_empty() {
        return Err(WorkerError::EmptyFile { uri: uri.to_owned(), message: "no columns".to_owned() });
    }
    let reader = builder.build().map_err(|error| read_error(&error))?;

    let mut columns: Vec<RawColumn> = schema
        .fields()
        .iter()
        .map(|field| RawColumn {
            name: field.name().clone(),
            values: if is_numeric_type(field.data_type()) { RawValues::Number(Vec::new()) } else { RawValues::Text(Vec::new()) },
        })
        .collect();
    for batch in reader {
        let batch = batch.map_err(|error| read_error(&error))?;
        append_batch(uri, &batch, &mut columns)?;
    }

    let num_rows = columns[0].values.len();
    if num_rows == 0 {
        return Err(WorkerError::EmptyFile { uri: uri.to_owned(), message: "no rows".to_owned() });
    }
    Ok(RawTable { uri: uri.to_owned(), columns, row_lines: (1..=num_rows as u64).collect() })
}

fn is_numeric_type(data_type: &DataType) -> bool {
    data_type.is_integer() || data_type.is_floating() || matches!(data_type, DataType::Decimal128(..) | DataType::Decimal256(..))
}

fn append_batch(uri: &str, batch: &RecordBatch, columns: &mut [RawColumn]) -> Result<()> {
    let cast_error = |name: &str, error: arrow_schema::ArrowError| WorkerError::Read {
        uri: uri.to_owned(),
        message: format!("cannot read column `{name}`: {error}"),
    };
    for (column, array) in columns.iter_mut().zip(batch.columns()) {
        match &mut column.values {
            RawValues::Number(values) => {
                let cast = arrow_cast::cast(array, &DataType::Float64).map_err(|error| cast_error(&column.name, error))?;
                let floats = cast.as_any().downcast_ref::<Float64Array>().expect("cast to Float64 yields a Float64Array");
                values.extend((0..floats.len()).map(|row| floats.is_valid(row).then(|| floats.value(row)).filter(|value| !value.is_nan())));
            }
            RawValues::Text(values) => {
                let cast = arrow_cast::cast(array, &DataType::Utf8).map_err(|error| cast_error(&column.name, error))?;
                let strings = cast.as_any().downcast_ref::<StringArray>().expect("cast to Utf8 yields a StringArray");
                values.extend((0..strings.len()).map(|row| {
                    let text = strings.is_valid(row).then(|| strings.value(row))?;
                    (!is_missing_token(text)).then(|| text.trim().to_owned())
                }));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array};
    use parquet::arrow::ArrowWriter;

    use super::*;

    /// Writes a two-column Parquet file (`age` integers, `city` strings) with one null each.
    pub(crate) fn sample_parquet_bytes() -> Vec<u8> {
        let age: ArrayRef = Arc::new(Int64Array::from(vec![Some(30), None, Some(50)]));
        let city: ArrayRef = Arc::new(StringArray::from(vec![Some("Oslo"), Some("Lima"), None]));
        let batch = RecordBatch::try_from_iter([("age", age), ("city", city)]).unwrap();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        bytes
    }

    #[test]
    fn parquet_types_map_to_raw_values() {
        let table = parse_parquet("t.parquet", sample_parquet_bytes()).unwrap();
        assert_eq!(table.column_names(), vec!["age", "city"]);
        assert_eq!(table.columns[0].values, RawValues::Number(vec![Some(30.0), None, Some(50.0)]));
        assert_eq!(table.columns[1].values, RawValues::Text(vec![Some("Oslo".to_owned()), Some("Lima".to_owned()), None]));
        assert_eq!(table.row_lines, vec![1, 2, 3]);
    }

    #[test]
    fn corrupt_parquet_rejected() {
        let error = parse_parquet("t.parquet", b"not parquet".to_vec()).unwrap_err();
        assert!(matches!(error, WorkerError::Read { .. }), "{error}");
    }
}
