//! Tables as read from a file, before typing and encoding.

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
