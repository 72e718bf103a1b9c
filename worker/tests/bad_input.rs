//! Bad input files: each error names the file and, where one applies, the line
//! and column.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ssl_worker::WorkerError;
use ssl_worker::data::{TableSource, load_dataset};

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
    let uri = uri(path);
    load_dataset(&uri, &[TableSource::whole(&uri)], None, &types, label, None).unwrap_err()
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
    let train = uri(&train);
    let error = load_dataset(&train, &[TableSource::whole(&train)], None, &HashMap::new(), Some("income"), Some(&uri(&test))).unwrap_err();
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

fn listed(path: &Path) -> TableSource {
    TableSource { uri: uri(path), size_bytes: Some(std::fs::metadata(path).unwrap().len()) }
}

#[test]
fn shards_stack_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), "part-0.csv", b"age,city\n30,a\n40,b\n");
    let second = write(dir.path(), "part-1.csv", b"age,city\n50,c\n");
    let folder = format!("file://{}/", dir.path().display());
    let loaded = load_dataset(&folder, &[listed(&first), listed(&second)], Some("csv"), &HashMap::new(), None, None).unwrap();
    assert_eq!(loaded.train.uri, folder);
    assert_eq!(loaded.train.row_lines, vec![2, 3, 2]);
    assert_eq!(loaded.train.features[0].1, ssl_worker::data::TypedValues::Numeric(vec![Some(30.0), Some(40.0), Some(50.0)]));
}

#[test]
fn shard_invalid_cell_names_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), "part-0.csv", b"age\n30\n");
    let second = write(dir.path(), "part-1.csv", b"age\n40\nold\n");
    let folder = format!("file://{}/", dir.path().display());
    let types = HashMap::from([("age".to_owned(), "numeric".to_owned())]);
    let error = load_dataset(&folder, &[listed(&first), listed(&second)], Some("csv"), &types, None, None).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, WorkerError::InvalidValue { line: 3, .. }), "{message}");
    assert!(message.contains("part-1.csv"), "{message}");
}

#[test]
fn shard_with_other_columns_named() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), "part-0.csv", b"age,city\n30,a\n");
    let second = write(dir.path(), "part-1.csv", b"age,town\n40,b\n");
    let folder = format!("file://{}/", dir.path().display());
    let message = load_dataset(&folder, &[listed(&first), listed(&second)], Some("csv"), &HashMap::new(), None, None)
        .unwrap_err()
        .to_string();
    assert!(message.contains("part-1.csv`: column 2 is `town`, but `city` in"), "{message}");
    assert!(message.contains("same columns"), "{message}");
}

#[test]
fn changed_shard_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "part-0.csv", b"age\n30\n");
    let source = listed(&path);
    write(dir.path(), "part-0.csv", b"age\n30\n41\n");
    let message = load_dataset(&source.uri.clone(), &[source], Some("csv"), &HashMap::new(), None, None).unwrap_err().to_string();
    assert!(message.contains("the object is 10 bytes long, but was 7 bytes when the job was admitted"), "{message}");
}
