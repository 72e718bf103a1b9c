//! Column types: inferred from the cells or taken from the spec, and the typed
//! table that results.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::data::table::{RawTable, RawValues};
use crate::error::{Result, WorkerError};

/// Encoding of a feature column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Standardised real values with a missing indicator.
    Numeric,
    /// Indices into a vocabulary, with a learned embedding.
    Categorical,
}

impl ColumnKind {
    /// Parses the spec's `numeric` or `categorical`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "numeric" => Some(ColumnKind::Numeric),
            "categorical" => Some(ColumnKind::Categorical),
            _ => None,
        }
    }
}

/// Feature columns with their kinds, and the label column, in file order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSchema {
    pub features: Vec<(String, ColumnKind)>,
    pub label: Option<String>,
}

/// Cells of one typed feature column.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedValues {
    Numeric(Vec<Option<f64>>),
    Categorical(Vec<Option<String>>),
}

/// A table split into typed feature columns and an optional label column.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedTable {
    pub uri: String,
    /// Feature columns in schema order, each with its name.
    pub features: Vec<(String, TypedValues)>,
    /// Label cells; `None` entries are rows without a label.
    pub label: Option<Vec<Option<String>>>,
    pub row_lines: Vec<u64>,
}

impl TypedTable {
    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.row_lines.len()
    }

    /// Stacks tables typed with one schema into one table named `uri`.
    pub fn concat(uri: &str, tables: Vec<TypedTable>) -> TypedTable {
        let mut tables = tables.into_iter();
        let mut stacked = tables.next().unwrap_or(TypedTable { uri: String::new(), features: Vec::new(), label: None, row_lines: Vec::new() });
        stacked.uri = uri.to_owned();
        for table in tables {
            for ((_, values), (_, more)) in stacked.features.iter_mut().zip(table.features) {
                match (values, more) {
                    (TypedValues::Numeric(cells), TypedValues::Numeric(more)) => cells.extend(more),
                    (TypedValues::Categorical(cells), TypedValues::Categorical(more)) => cells.extend(more),
                    _ => unreachable!("tables typed with one schema have the same column kinds"),
                }
            }
            if let (Some(labels), Some(more)) = (stacked.label.as_mut(), table.label) {
                labels.extend(more);
            }
            stacked.row_lines.extend(table.row_lines);
        }
        stacked
    }

    /// Keeps only the rows at `rows`, in that order.
    pub fn select_rows(&self, rows: &[usize]) -> TypedTable {
        let features = self
            .features
            .iter()
            .map(|(name, values)| {
                let values = match values {
                    TypedValues::Numeric(cells) => TypedValues::Numeric(rows.iter().map(|&row| cells[row]).collect()),
                    TypedValues::Categorical(cells) => TypedValues::Categorical(rows.iter().map(|&row| cells[row].clone()).collect()),
                };
                (name.clone(), values)
            })
            .collect();
        TypedTable {
            uri: self.uri.clone(),
            features,
            label: self.label.as_ref().map(|cells| rows.iter().map(|&row| cells[row].clone()).collect()),
            row_lines: rows.iter().map(|&row| self.row_lines[row]).collect(),
        }
    }
}

/// Decides each column's kind. Columns listed in `column_types` take that kind;
/// the others are numeric when every present cell parses as a finite number and
/// categorical otherwise. The label column is not a feature.
///
/// # Errors
///
/// [`WorkerError::UnknownColumn`] for a `column_types` entry or label that names no
/// column, [`WorkerError::InvalidConfig`] for a kind other than `numeric` or
/// `categorical`, and [`WorkerError::AllMissing`] for a column without any value.
pub fn infer_schema(table: &RawTable, column_types: &HashMap<String, String>, label: Option<&str>) -> Result<TableSchema> {
    let mut given_names: Vec<&String> = column_types.keys().collect();
    given_names.sort();
    for name in given_names {
        check_column_exists(table, name, "`dataset.column_types`")?;
    }
    if let Some(label) = label {
        check_column_exists(table, label, "the label column")?;
    }

    let mut features = Vec::new();
    for column in &table.columns {
        if (0..column.values.len()).all(|row| column.values.is_missing(row)) {
            return Err(WorkerError::AllMissing { uri: table.uri.clone(), column: column.name.clone() });
        }
        if Some(column.name.as_str()) == label {
            continue;
        }
        let kind = match column_types.get(&column.name) {
            Some(kind_name) => ColumnKind::parse(kind_name).ok_or_else(|| {
                WorkerError::InvalidConfig(format!(
                    "`dataset.column_types.{}` is `{kind_name}`; expected `numeric` or `categorical`",
                    column.name
                ))
            })?,
            None => infer_kind(&column.values),
        };
        features.push((column.name.clone(), kind));
    }
    if features.is_empty() {
        return Err(WorkerError::InvalidTable { uri: table.uri.clone(), message: "no feature columns besides the label".to_owned() });
    }
    Ok(TableSchema { features, label: label.map(str::to_owned) })
}

fn check_column_exists(table: &RawTable, name: &str, context: &str) -> Result<()> {
    if table.column_index(name).is_some() {
        return Ok(());
    }
    Err(WorkerError::UnknownColumn {
        uri: table.uri.clone(),
        column: name.to_owned(),
        context: context.to_owned(),
        available: table.column_names().iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", "),
    })
}

fn infer_kind(values: &RawValues) -> ColumnKind {
    match values {
        RawValues::Number(_) => ColumnKind::Numeric,
        RawValues::Text(cells) => {
            let all_numbers = cells.iter().flatten().all(|cell| parse_number(cell).is_some());
            if all_numbers { ColumnKind::Numeric } else { ColumnKind::Categorical }
        }
    }
}

/// Parses a cell as a finite number.
pub(crate) fn parse_number(cell: &str) -> Option<f64> {
    cell.parse::<f64>().ok().filter(|value| value.is_finite())
}

/// Applies `schema` to a raw table: picks and orders the feature columns, parses
/// numeric cells and takes out the label. A table read for evaluation must have
/// the label column; pass `require_label = false` where it may be absent.
///
/// # Errors
///
/// [`WorkerError::UnknownColumn`] for a schema column the table lacks and
/// [`WorkerError::InvalidValue`] naming the line and column of a numeric cell
/// that is not a finite number.
pub fn apply_schema(table: &RawTable, schema: &TableSchema, require_label: bool) -> Result<TypedTable> {
    let mut features = Vec::with_capacity(schema.features.len());
    for (name, kind) in &schema.features {
        check_column_exists(table, name, "the dataset's schema")?;
        let column = &table.columns[table.column_index(name).expect("checked above")];
        let values = match kind {
            ColumnKind::Numeric => TypedValues::Numeric(numeric_cells(table, name, &column.values)?),
            ColumnKind::Categorical => TypedValues::Categorical((0..column.values.len()).map(|row| column.values.text(row)).collect()),
        };
        features.push((name.clone(), values));
    }

    let label = match &schema.label {
        Some(name) if require_label || table.column_index(name).is_some() => {
            check_column_exists(table, name, "the label column")?;
            let column = &table.columns[table.column_index(name).expect("checked above")];
            Some((0..column.values.len()).map(|row| column.values.text(row)).collect())
        }
        _ => None,
    };
    Ok(TypedTable { uri: table.uri.clone(), features, label, row_lines: table.row_lines.clone() })
}

fn numeric_cells(table: &RawTable, name: &str, values: &RawValues) -> Result<Vec<Option<f64>>> {
    match values {
        RawValues::Number(cells) => Ok(cells.clone()),
        RawValues::Text(cells) => cells
            .iter()
            .enumerate()
            .map(|(row, cell)| match cell {
                None => Ok(None),
                Some(text) => parse_number(text).map(Some).ok_or_else(|| WorkerError::InvalidValue {
                    uri: table.uri.clone(),
                    line: table.row_lines[row],
                    column: name.to_owned(),
                    message: format!("`{text}` is not a number, but the column is numeric"),
                }),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::csv::parse_csv;

    fn table() -> RawTable {
        parse_csv("file:///t.csv", b"age,city,income\n30,Oslo,yes\n?,Lima,no\n50,3,yes\n").unwrap()
    }

    #[test]
    fn kinds_inferred_and_label_excluded() {
        let schema = infer_schema(&table(), &HashMap::new(), Some("income")).unwrap();
        assert_eq!(schema.features, vec![("age".to_owned(), ColumnKind::Numeric), ("city".to_owned(), ColumnKind::Categorical)]);
        assert_eq!(schema.label.as_deref(), Some("income"));
    }

    #[test]
    fn given_kind_overrides_inference() {
        let types = HashMap::from([("age".to_owned(), "categorical".to_owned())]);
        let schema = infer_schema(&table(), &types, None).unwrap();
        assert_eq!(schema.features[0], ("age".to_owned(), ColumnKind::Categorical));
        assert_eq!(schema.features.len(), 3);
    }

    #[test]
    fn unknown_columns_named() {
        let types = HashMap::from([("salary".to_owned(), "numeric".to_owned())]);
        let error = infer_schema(&table(), &types, None).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("`salary`"), "{message}");
        assert!(message.contains("column_types"), "{message}");
        assert!(message.contains("file:///t.csv"), "{message}");

        let error = infer_schema(&table(), &HashMap::new(), Some("target")).unwrap_err();
        assert!(matches!(&error, WorkerError::UnknownColumn { column, .. } if column == "target"), "{error}");
    }

    #[test]
    fn numeric_override_on_text_names_line() {
        let types = HashMap::from([("city".to_owned(), "numeric".to_owned())]);
        let schema = infer_schema(&table(), &types, None).unwrap();
        let error = apply_schema(&table(), &schema, false).unwrap_err();
        let WorkerError::InvalidValue { line, column, .. } = &error else { panic!("{error}") };
        assert_eq!((*line, column.as_str()), (2, "city"));
    }

    #[test]
    fn all_missing_column_rejected() {
        let table = parse_csv("file:///t.csv", b"a,b\n1,?\n2,NA\n").unwrap();
        let error = infer_schema(&table, &HashMap::new(), None).unwrap_err();
        assert!(matches!(&error, WorkerError::AllMissing { column, .. } if column == "b"), "{error}");
    }

    #[test]
    fn typed_table_parses_numbers() {
        let schema = infer_schema(&table(), &HashMap::new(), Some("income")).unwrap();
        let typed = apply_schema(&table(), &schema, true).unwrap();
        assert_eq!(typed.features[0].1, TypedValues::Numeric(vec![Some(30.0), None, Some(50.0)]));
        assert_eq!(typed.label.as_ref().unwrap()[1].as_deref(), Some("no"));
    }
}
