//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};

/// Path of a file under the repository's `examples/data/adult/`.
pub fn adult_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/adult").join(name)
}

/// Writes the header and every `step`-th data row (up to `max_rows`) of an Adult
/// split to `target` as plain CSV.
pub fn write_adult_sample(split: &str, step: usize, max_rows: usize, target: &Path) {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(adult_path(split)).unwrap()).read_to_string(&mut text).unwrap();
    let mut lines = text.lines();
    let mut sample = vec![lines.next().unwrap().to_owned()];
    sample.extend(lines.step_by(step).take(max_rows).map(str::to_owned));
    std::fs::write(target, sample.join("\n") + "\n").unwrap();
}

/// Returns a YAML spec that pretrains on `train` and scores on `test`.
pub fn adult_spec(method: &str, train: &Path, test: &Path, epochs: u32, fractions: &str) -> String {
    format!(
        "name: adult-test\n\
         dataset:\n  uri: file://{}\n  label_column: income\n\
         method:\n  {method}: {{}}\n\
         model:\n  encoder_widths: [128, 128]\n  embedding_size: 64\n\
         training:\n  epochs: {epochs}\n  global_batch_size: 128\n  learning_rate: 0.001\n  seed: 5\n\
         evaluation:\n  test_uri: file://{}\n  label_fractions: {fractions}\n  knn_k: 10\n",
        train.display(),
        test.display()
    )
}
