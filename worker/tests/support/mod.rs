//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

// Each test binary uses only some of these.
#[allow(unused_imports)]
pub use ssl_e2e::{adult_path, write_adult_sample};

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
