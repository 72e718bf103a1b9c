//! Tables as read from a file, before typing and encoding.

use crate::error::{Result, WorkerError};

/// One column's cells as read. `None` is a missing cell (`?`, `NA`, empty, or a
/// Parquet null).
#[derive(Debug, Clone, PartialEq)]
pub enum RawValues {
    /// Text cells, as in CSV files or Parquet string columns.
    Text(Vec<Option<String>>),
    /// Numbers from typed Parquet columns.
    Number(Vec<Option<f64>>),
}

impl RawValues {
    /// Number of cells.
    pub fn len(&self) -> usize {
        match self {
            RawValues::Text(values) => values.len(),
            RawValues::Number(values) => values.len(),
        }
    }

    /// Whether the column has no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the cell at `row` is missing.
    pub fn is_missing(&self, row: usize) -> bool {
        match self {
            RawValues::Text(values) => values[row].is_none(),
            RawValues::Number(values) => values[row].is_none(),
        }
    }

    /// The cell at `row` as text, numbers printed in their shortest form.
    pub fn text(&self, row: usize) -> Option<String> {
        match self {
            RawValues::Text(values) => values[row].clone(),
            RawValues::Number(values) => values[row].map(|value| value.to_string()),
        }
    }

    /// Appends `other`'s cells. Mixed kinds become text, numbers printed in
    /// their shortest form.
    fn append(&mut self, other: &RawValues) {
        match (&mut *self, other) {
            (RawValues::Text(cells), RawValues::Text(more)) => cells.extend(more.iter().cloned()),
            (RawValues::Number(cells), RawValues::Number(more)) => cells.extend(more.iter().copied()),
            _ => {
                let mut cells: Vec<Option<String>> = (0..self.len()).map(|row| self.text(row)).collect();
                cells.extend((0..other.len()).map(|row| other.text(row)));
                *self = RawValues::Text(cells);
            }
        }
    }

    /// Keeps only the cells at `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> RawValues {
        match self {
            RawValues::Text(values) => RawValues::Text(rows.iter().map(|&row| values[row].clone()).collect()),
            RawValues::Number(values) => RawValues::Number(rows.iter().map(|&row| values[row]).collect()),
        }
    }
}

/// A named column of raw cells.
#[derive(Debug, Clone, PartialEq)]
pub struct RawColumn {
    pub name: String,
    pub values: RawValues,
}

/// A table read from one object, column by column.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTable {
    /// URI the table was read from, used in error messages.
    pub uri: String,
    pub columns: Vec<RawColumn>,
    /// 1-based line in the file of each row (CSV), or the 1-based row number
    /// (Parquet), so errors can point at the source.
    pub row_lines: Vec<u64>,
}

impl RawTable {
    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.row_lines.len()
    }

    /// Column names in file order.
    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|column| column.name.as_str()).collect()
    }

    /// Index of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|column| column.name == name)
    }

    /// Stacks `tables`, which must have the same columns in the same order, into
    /// one table named `uri`. Its line numbers are those within each table.
    ///
    /// # Errors
    ///
    /// [`WorkerError::InvalidTable`] naming the first table whose columns differ
    /// from the first table's.
    pub fn concat(uri: &str, tables: &[RawTable]) -> Result<RawTable> {
        let Some((first, rest)) = tables.split_first() else {
            return Err(WorkerError::InvalidTable { uri: uri.to_owned(), message: "no table to read".to_owned() });
        };
        let mut stacked = RawTable { uri: uri.to_owned(), ..first.clone() };
        for table in rest {
            check_same_columns(first, table)?;
            for (column, more) in stacked.columns.iter_mut().zip(&table.columns) {
                column.values.append(&more.values);
            }
            stacked.row_lines.extend_from_slice(&table.row_lines);
        }
        Ok(stacked)
    }

    /// Keeps only the rows at `rows`, in that order.
    pub fn select_rows(&self, rows: &[usize]) -> RawTable {
        RawTable {
            uri: self.uri.clone(),
            columns: self
                .columns
                .iter()
                .map(|column| RawColumn { name: column.name.clone(), values: column.values.select(rows) })
                .collect(),
            row_lines: rows.iter().map(|&row| self.row_lines[row]).collect(),
        }
    }
}

/// Checks that `table` has the columns of `first`, in the same order.
///
/// # Errors
///
/// [`WorkerError::InvalidTable`] naming `table` and the first column that differs.
pub fn check_same_columns(first: &RawTable, table: &RawTable) -> Result<()> {
    let (names, expected) = (table.column_names(), first.column_names());
    if names == expected {
        return Ok(());
    }
    let difference = match names.iter().zip(&expected).position(|(name, other)| name != other) {
        Some(index) => format!("column {} is `{}`, but `{}` in `{}`", index + 1, names[index], expected[index], first.uri),
        None => format!("{} columns, but {} in `{}`", names.len(), expected.len(), first.uri),
    };
    Err(WorkerError::InvalidTable {
        uri: table.uri.clone(),
        message: format!("{difference}; every file of a dataset needs the same columns in the same order"),
    })
}

/// Whether a text cell means "no value": empty, `?` or `NA` after trimming.
pub fn is_missing_token(cell: &str) -> bool {
    matches!(cell.trim(), "" | "?" | "NA")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tokens_recognised() {
        for token in ["", " ", "?", " ? ", "NA"] {
            assert!(is_missing_token(token), "{token:?}");
        }
        for token in ["0", "na", "N", "??"] {
            assert!(!is_missing_token(token), "{token:?}");
        }
    }

    fn one_column(uri: &str, values: RawValues) -> RawTable {
        let rows = values.len() as u64;
        RawTable { uri: uri.to_owned(), columns: vec![RawColumn { name: "a".to_owned(), values }], row_lines: (2..rows + 2).collect() }
    }

    #[test]
    fn concat_stacks_rows_and_keeps_lines() {
        let first = one_column("file:///d/1.csv", RawValues::Number(vec![Some(1.0), None]));
        let second = one_column("file:///d/2.csv", RawValues::Number(vec![Some(3.0)]));
        let stacked = RawTable::concat("file:///d/", &[first, second]).unwrap();
        assert_eq!(stacked.uri, "file:///d/");
        assert_eq!(stacked.columns[0].values, RawValues::Number(vec![Some(1.0), None, Some(3.0)]));
        assert_eq!(stacked.row_lines, vec![2, 3, 2]);
    }

    #[test]
    fn concat_mixed_kinds_become_text() {
        let first = one_column("file:///d/1.parquet", RawValues::Number(vec![Some(1.5)]));
        let second = one_column("file:///d/2.parquet", RawValues::Text(vec![Some("x".to_owned()), None]));
        let stacked = RawTable::concat("file:///d/", &[first, second]).unwrap();
        assert_eq!(stacked.columns[0].values, RawValues::Text(vec![Some("1.5".to_owned()), Some("x".to_owned()), None]));
    }

    #[test]
    fn concat_rejects_other_columns() {
        let first = one_column("file:///d/1.csv", RawValues::Text(vec![None]));
        let mut second = one_column("file:///d/2.csv", RawValues::Text(vec![None]));
        second.columns[0].name = "b".to_owned();
        let message = RawTable::concat("file:///d/", &[first, second]).unwrap_err().to_string();
        assert!(message.starts_with("`file:///d/2.csv`: column 1 is `b`, but `a` in `file:///d/1.csv`;"), "{message}");
    }

    #[test]
    fn select_rows_keeps_order_and_lines() {
        let table = RawTable {
            uri: "file:///t.csv".to_owned(),
            columns: vec![RawColumn {
                name: "a".to_owned(),
                values: RawValues::Number(vec![Some(1.0), None, Some(3.0)]),
            }],
            row_lines: vec![2, 3, 4],
        };
        let selected = table.select_rows(&[2, 0]);
        assert_eq!(selected.columns[0].values, RawValues::Number(vec![Some(3.0), Some(1.0)]));
        assert_eq!(selected.row_lines, vec![4, 2]);
    }
}
