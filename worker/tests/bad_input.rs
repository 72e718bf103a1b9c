//! Bad input files: each error names the file and, where one applies, the line
//! and column.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ssl_worker::WorkerError;
use ssl_worker::data::load_dataset;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn load(path: &Path, column_types: &[(&str, &str)], label: Option<&str>) -> WorkerError {
    let types: HashMap<String, String> = column_types.iter().map(|(name, kind)| (name.to_string(), kind.to_string())).collect();
    load_dataset(&uri(path), None, &types, label, None).unwrap_err()
}

#[test]
fn missing_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.csv");
    let error = load(&path, &[], None);
    assert!(matches!(error, WorkerError::NotFound { .. }), "{error}");
    assert!(error.to_string().contains("absent.csv"), "{error}");
}

#[test]
fn unknown_column_type_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "t.csv", b"age,city\n30,Oslo\n");
    let error = load(&path, &[("salary", "numeric")], None);
    let message = error.to_string();
    assert!(matches!(error, WorkerError::UnknownColumn { .. }), "{message}");
    assert!(message.contains("t.csv"), "{message}");
    assert!(message.contains("`salary`"), "{message}");
    assert!(message.contains("column_types"), "{message}");
    assert!(message.contains("`age`, `city`"), "{message}");
}

#[test]
fn unknown_label_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "t.csv", b"age,city\n30,Oslo\n");
    let message = load(&path, &[], Some("income")).to_string();
    assert!(message.contains("t.csv"), "{message}");
    assert!(message.contains("`income`"), "{message}");
    assert!(message.contains("label"), "{message}");
}

#[test]
fn test_file_missing_label_named() {
    let dir = tempfile::tempdir().unwrap();
    let train = write(dir.path(), "train.csv", b"age,income\n30,yes\n40,no\n");
    let test = write(dir.path(), "test.csv", b"age\n35\n");
    let error = load_dataset(&uri(&train), None, &HashMap::new(), Some("income"), Some(&uri(&test))).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, WorkerError::UnknownColumn { .. }), "{message}");
    assert!(message.contains("test.csv"), "{message}");
    assert!(message.contains("`income`"), "{message}");
}

#[test]
fn all_missing_column_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "t.csv", b"age,city\n30,?\n40,\n50,NA\n");
    let error = load(&path, &[], None);
    let message = error.to_string();
    assert!(matches!(error, WorkerError::AllMissing { .. }), "{message}");
    assert!(message.contains("t.csv"), "{message}");
    assert!(message.contains("`city`"), "{message}");
}

#[test]
fn ragged_row_names_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "t.csv", b"age,city\n30,Oslo\n40,Lima\n50\n");
    let error = load(&path, &[], None);
    let message = error.to_string();
    assert!(matches!(error, WorkerError::RaggedRow { line: 4, expected: 2, found: 1, .. }), "{message}");
    assert!(message.contains("t.csv"), "{message}");
    assert!(message.contains("line 4"), "{message}");
}

#[test]
fn invalid_utf8_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "t.csv", b"age,city\n30,Oslo\n40,L\xffma\n");
    let error = load(&path, &[], None);
    let message = error.to_string();
    assert!(matches!(error, WorkerError::InvalidUtf8 { line: 3, .. }), "{message}");
    assert!(message.contains("t.csv"), "{message}");
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("`city`"), "{message}");
}

#[test]
fn non_numeric_cell_in_numeric_column_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "t.csv", b"age,city\n30,Oslo\nold,Lima\n");
    let error = load(&path, &[("age", "numeric")], None);
    let message = error.to_string();
    assert!(matches!(error, WorkerError::InvalidValue { line: 3, .. }), "{message}");
    assert!(message.contains("`age`"), "{message}");
    assert!(message.contains("`old`"), "{message}");
}

#[test]
fn empty_files_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("empty.csv", &b""[..]), ("header.csv", &b"age,city\n"[..])] {
        let path = write(dir.path(), name, bytes);
        let error = load(&path, &[], None);
        assert!(matches!(error, WorkerError::EmptyFile { .. }), "{name}: {error}");
        assert!(error.to_string().contains(name), "{error}");
    }
}
