//! `ssl-worker train` as a process: exit statuses and messages for bad input.

use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_ssl-worker");

fn train(spec: &std::path::Path) -> (Option<i32>, String) {
    let output = Command::new(BINARY).arg("train").arg("--spec").arg(spec).env("RUST_LOG", "warn").output().unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn missing_spec_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("absent.yaml");
    let (status, stderr) = train(&spec);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains(&format!("cannot read spec file {}", spec.display())), "{stderr}");
}

#[test]
fn unknown_spec_field_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("job.yaml");
    std::fs::write(&spec, "name: adult\ndataset:\n  uri: train.csv\ntraining:\n  epochz: 3\n").unwrap();
    let (status, stderr) = train(&spec);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("training: unknown field `epochz`"), "{stderr}");
    assert!(stderr.contains("(line 5, column 3)"), "{stderr}");
}

#[test]
fn out_of_range_spec_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("job.yaml");
    std::fs::write(&spec, "name: adult\ndataset:\n  uri: train.csv\ntraining:\n  epochs: -5\n").unwrap();
    let (status, stderr) = train(&spec);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("training.epochs: -5 is out of range; expected an integer from 1 to 100000"), "{stderr}");
}

#[test]
fn missing_dataset_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("job.yaml");
    std::fs::write(&spec, "name: adult\ndataset:\n  uri: no-such-table.csv\n").unwrap();
    let (status, stderr) = train(&spec);
    assert_eq!(status, Some(2), "{stderr}");
    let expected = format!("error: dataset.uri: `file://{}` not found", dir.path().join("no-such-table.csv").display());
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn missing_test_table_names_field() {
    let dir = tempfile::tempdir().unwrap();
    let train_table = dir.path().join("train.csv");
    std::fs::write(&train_table, "x,label\n1,a\n2,b\n3,a\n4,b\n").unwrap();
    let spec = dir.path().join("job.yaml");
    std::fs::write(
        &spec,
        "name: tiny\ndataset:\n  uri: train.csv\n  label_column: label\nevaluation:\n  test_uri: no-such-test.csv\n",
    )
    .unwrap();
    let (status, stderr) = train(&spec);
    assert_eq!(status, Some(2), "{stderr}");
    let expected = format!("error: evaluation.test_uri: `file://{}` not found", dir.path().join("no-such-test.csv").display());
    assert!(stderr.contains(&expected), "{stderr}");
}
