//! CSV tables with a header row, plain or gzip-compressed.

use std::io::Read;

use crate::data::table::{RawColumn, RawTable, RawValues, is_missing_token};
use crate::error::{Result, WorkerError};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Parses CSV bytes (gzip-compressed when they start with the gzip magic number)
/// into a table of text cells. The first row names the columns; missing-value
/// tokens (`?`, `NA`, empty) become `None`.
///
/// # Errors
///
/// [`WorkerError::EmptyFile`] without a header or without data rows,
/// [`WorkerError::RaggedRow`] when a row's field count differs from the header's,
/// [`WorkerError::InvalidUtf8`] naming the line and column of a bad cell, and
/// [`WorkerError::Read`] for a corrupt gzip stream or a CSV syntax error.
pub fn parse_csv(uri: &str, bytes: &[u8]) -> Result<RawTable> {
    let text_bytes = decompress_if_gzip(uri, bytes)?;
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(text_bytes.as_slice());

    let header = reader.byte_headers().map_err(|error| csv_error(uri, error))?.clone();
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        return Err(WorkerError::EmptyFile { uri: uri.to_owned(), message: "no header row".to_owned() });
    }
    let names = decode_header(uri, &header)?;

    let mut cells: Vec<Vec<Option<String>>> = vec![Vec::new(); names.len()];
    let mut row_lines = Vec::new();
    let mut record = csv::ByteRecord::new();
    while reader.read_byte_record(&mut record).map_err(|error| csv_error(uri, error))? {
        let line = record.position().map_or(0, |position| position.line());
        if record.len() != names.len() {
            return Err(WorkerError::RaggedRow { uri: uri.to_owned(), line, expected: names.len(), found: record.len() });
        }
        for (index, field) in record.iter().enumerate() {
            let text = std::str::from_utf8(field).map_err(|_| WorkerError::InvalidUtf8 {
                uri: uri.to_owned(),
                line,
                column: names[index].clone(),
            })?;
            cells[index].push((!is_missing_token(text)).then(|| text.trim().to_owned()));
        }
        row_lines.push(line);
    }
    if row_lines.is_empty() {
        return Err(WorkerError::EmptyFile { uri: uri.to_owned(), message: "no data rows after the header".to_owned() });
    }

    let columns = names
        .into_iter()
        .zip(cells)
        .map(|(name, values)| RawColumn { name, values: RawValues::Text(values) })
        .collect();
    Ok(RawTable { uri: uri.to_owned(), columns, row_lines })
}

fn decompress_if_gzip(uri: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(bytes.to_vec());
    }
    let mut text = Vec::with_capacity(bytes.len() * 4);
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut text)
        .map_err(|error| WorkerError::Read { uri: uri.to_owned(), message: format!("invalid gzip data: {error}") })?;
    Ok(text)
}

fn decode_header(uri: &str, header: &csv::ByteRecord) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::with_capacity(header.len());
    for (index, field) in header.iter().enumerate() {
        let name = std::str::from_utf8(field).map_err(|_| WorkerError::InvalidUtf8 {
            uri: uri.to_owned(),
            line: 1,
            column: format!("#{}", index + 1),
        })?;
        let name = name.trim().to_owned();
        if names.contains(&name) {
            return Err(WorkerError::InvalidTable { uri: uri.to_owned(), message: format!("column `{name}` appears twice in the header") });
        }
        names.push(name);
    }
    Ok(names)
}

fn csv_error(uri: &str, error: csv::Error) -> WorkerError {
    let line = error.position().map(|position| position.line());
    let message = match line {
        Some(line) => format!("invalid CSV at line {line}: {error}"),
        None => format!("invalid CSV: {error}"),
    };
    WorkerError::Read { uri: uri.to_owned(), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_column(table: &RawTable, index: usize) -> &[Option<String>] {
        match &table.columns[index].values {
            RawValues::Text(values) => values,
            RawValues::Number(_) => panic!("expected text"),
        }
    }

    #[test]
    fn plain_csv_with_missing_tokens() {
        let table = parse_csv("t.csv", b"a,b\n1,x\n?,NA\n3,\n").unwrap();
        assert_eq!(table.column_names(), vec!["a", "b"]);
        assert_eq!(text_column(&table, 0), &[Some("1".to_owned()), None, Some("3".to_owned())]);
        assert_eq!(text_column(&table, 1), &[Some("x".to_owned()), None, None]);
        assert_eq!(table.row_lines, vec![2, 3, 4]);
    }

    #[test]
    fn gzip_csv_detected_by_magic() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"a\n5\n").unwrap();
        let table = parse_csv("t.csv.gz", &encoder.finish().unwrap()).unwrap();
        assert_eq!(text_column(&table, 0), &[Some("5".to_owned())]);
    }

    #[test]
    fn ragged_row_names_line() {
        let error = parse_csv("t.csv", b"a,b\n1,2\n3\n").unwrap_err();
        assert!(matches!(error, WorkerError::RaggedRow { line: 3, expected: 2, found: 1, .. }), "{error}");
    }

    #[test]
    fn invalid_utf8_names_line_and_column() {
        let error = parse_csv("t.csv", b"a,b\n1,2\n3,\xff\xfe\n").unwrap_err();
        let WorkerError::InvalidUtf8 { line, column, .. } = &error else { panic!("{error}") };
        assert_eq!(*line, 3);
        assert_eq!(column, "b");
    }

    #[test]
    fn empty_and_header_only_rejected() {
        assert!(matches!(parse_csv("t.csv", b"").unwrap_err(), WorkerError::EmptyFile { .. }));
        assert!(matches!(parse_csv("t.csv", b"a,b\n").unwrap_err(), WorkerError::EmptyFile { .. }));
    }
}
