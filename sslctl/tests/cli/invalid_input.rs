//! Invalid specs and arguments: each exits 2 with one exact error line and stores nothing.

use std::path::Path;

use crate::support::Coordinator;

/// A valid spec; each case below changes one thing.
const VALID_SPEC: &str = "\
name: bad-input
dataset:
  uri: file:///data/adult/train.csv
  label_column: income
training:
  epochs: 3
";

struct Case {
    name: &'static str,
    file_name: &'static str,
    text: &'static str,
    /// Expected stderr; `{path}` stands for the spec file's path.
    expected: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "malformed yaml",
        file_name: "malformed.yaml",
        text: "name: bad-input\n  dataset: x\n",
        expected: "error: invalid spec file {path}: mapping values are not allowed in this context (line 2, column 10)\n",
    },
    Case {
        name: "unknown field",
        file_name: "unknown-field.yaml",
        text: "name: bad-input\ndataset:\n  uri: file:///data/adult/train.csv\ntraining:\n  epochz: 3\n",
        expected: "error: invalid spec file {path}: training: unknown field `epochz`, expected one of `epochs`, \
                   `global_batch_size`, `optimizer`, `learning_rate`, `schedule`, `seed`, `gradient_clip_norm` \
                   (line 5, column 3)\n",
    },
    Case {
        name: "unknown field in json",
        file_name: "unknown-field.json",
        text: r#"{"name": "bad-input", "dataset": {"url": "file:///data/train.csv"}}"#,
        expected: "error: invalid spec file {path}: dataset.url: unknown field `url`, expected one of `uri`, \
                   `format`, `label_column`, `column_types` (line 1, column 39)\n",
    },
    Case {
        name: "wrong type",
        file_name: "wrong-type.yaml",
        text: "name: bad-input\ndataset:\n  uri: file:///data/adult/train.csv\ntraining:\n  epochs: ten\n",
        expected: "error: invalid spec file {path}: training.epochs: invalid type: string \"ten\", expected i32 \
                   (line 5, column 11)\n",
    },
    Case {
        name: "empty file",
        file_name: "empty.yaml",
        text: "# nothing here\n",
        expected: "error: spec file {path} is empty\n",
    },
    Case {
        name: "negative epochs",
        file_name: "negative-epochs.yaml",
        text: "name: bad-input\ndataset:\n  uri: file:///data/adult/train.csv\ntraining:\n  epochs: -5\n",
        expected: "error: invalid job spec: training.epochs: -5 is out of range; expected an integer from 1 to 100000\n",
    },
    Case {
        name: "min above max workers",
        file_name: "workers.yaml",
        text: "name: bad-input\ndataset:\n  uri: file:///data/adult/train.csv\nworkers:\n  min: 3\n  max: 2\n",
        expected: "error: invalid job spec: workers.min: 3 is more than workers.max 2; set min <= max\n",
    },
    Case {
        name: "corruption rate above 1",
        file_name: "corruption-high.yaml",
        text: "name: bad-input\ndataset:\n  uri: file:///data/adult/train.csv\nmethod:\n  contrastive:\n    corruption_rate: 1.5\n",
        expected: "error: invalid job spec: method.contrastive.corruption_rate: 1.5 is out of range; \
                   expected a number in (0, 1)\n",
    },
    Case {
        name: "corruption rate of 0",
        file_name: "corruption-zero.yaml",
        text: "name: bad-input\ndataset:\n  uri: file:///data/adult/train.csv\nmethod:\n  contrastive:\n    corruption_rate: 0\n",
        expected: "error: invalid job spec: method.contrastive.corruption_rate: 0 is out of range; \
                   expected a number in (0, 1)\n",
    },
    Case {
        name: "missing dataset uri",
        file_name: "missing-uri.yaml",
        text: "name: bad-input\ndataset:\n  format: csv\n  label_column: income\n",
        expected: "error: invalid job spec: dataset.uri: missing; set the table's location, such as \
                   `file:///data/train.csv`\n",
    },
];

fn write_spec(folder: &Path, file_name: &str, text: &str) -> String {
    let path = folder.join(file_name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_specs_exit_2_and_store_nothing() {
    let coordinator = Coordinator::start().await;
    let folder = tempfile::tempdir().unwrap();

    // The valid base spec is accepted, so each case fails for its own change only.
    let valid = write_spec(folder.path(), "valid.yaml", VALID_SPEC);
    let output = coordinator.sslctl(&["submit", "-f", &valid]).await;
    assert_eq!(output.code, 0, "{output}");
    let stored = coordinator.job_ids().await;

    for case in CASES {
        let path = write_spec(folder.path(), case.file_name, case.text);
        let output = coordinator.sslctl(&["submit", "-f", &path]).await;
        assert_eq!(output.code, 2, "{}: {output}", case.name);
        assert_eq!(output.stdout, "", "{}: {output}", case.name);
        assert_eq!(output.stderr, case.expected.replace("{path}", &path), "{}", case.name);
        assert_eq!(coordinator.job_ids().await, stored, "{}: a job was stored", case.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_spec_file_exits_2() {
    let coordinator = Coordinator::start().await;
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("absent.yaml");
    let path = path.to_str().unwrap();

    let output = coordinator.sslctl(&["submit", "-f", path]).await;
    assert_eq!(output.code, 2, "{output}");
    assert_eq!(output.stderr, format!("error: cannot read spec file {path}: No such file or directory (os error 2)\n"));
    assert_eq!(coordinator.job_ids().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_invalid_uuid_exits_2() {
    let coordinator = Coordinator::start().await;

    let output = coordinator.sslctl(&["get", "not-a-uuid"]).await;
    assert_eq!(output.code, 2, "{output}");
    assert_eq!(output.stdout, "", "{output}");
    assert_eq!(
        output.stderr,
        "error: id: invalid value \"not-a-uuid\"; expected a job id (a UUID such as \
         0b6a9c2e-1f3d-4c5e-8a7b-9c0d1e2f3a4b)\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_request_id_exits_2() {
    let coordinator = Coordinator::start().await;
    let spec = super::support::example("adult-contrastive.yaml");

    let output = coordinator.sslctl(&["submit", "-f", spec.to_str().unwrap(), "--request-id", "has spaces"]).await;
    assert_eq!(output.code, 2, "{output}");
    assert_eq!(
        output.stderr,
        "error: request_id: invalid value \"has spaces\"; use 1 to 128 letters, digits, '-' and '_', such as a UUID\n"
    );
    assert_eq!(coordinator.job_ids().await, Vec::<String>::new());
}
