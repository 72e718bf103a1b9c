//! Checkpoints: round trip, bit-identical resume, and encoder export.

mod support;

use burn::tensor::Device;
use ssl_worker::checkpoint::{decode_checkpoint, encode_checkpoint, export_encoder, load_exported_encoder};
use ssl_worker::data::FeatureLayout;
use ssl_worker::eval::embed;
use ssl_worker::job::PreparedJob;
use ssl_worker::trainers::AnyTrainer;

fn small_job(method: &str, dir: &std::path::Path) -> PreparedJob {
    let train = dir.join("train.csv");
    let test = dir.join("test.csv");
    support::write_adult_sample("train.csv.gz", 40, 800, &train);
    support::write_adult_sample("test.csv.gz", 40, 300, &test);
    let spec_path = dir.join("spec.yaml");
    std::fs::write(&spec_path, support::adult_spec(method, &train, &test, 3, "[1.0]")).unwrap();
    let spec = ssl_proto::spec::normalize(ssl_proto::spec::parse_spec_file(&spec_path).unwrap()).unwrap();
    PreparedJob::from_spec(&spec).unwrap()
}

fn resume_is_bit_identical(method: &str) {
    let dir = tempfile::tempdir().unwrap();
    let job = small_job(method, dir.path());
    let device = Device::flex();

    let mut original = job.trainer(&device).unwrap();
    for _ in 0..5 {
        original.step().unwrap();
    }
    let bytes = original.to_checkpoint().unwrap();
    let mut resumed = AnyTrainer::from_checkpoint(&bytes, job.rows.clone(), &device).unwrap();
    assert_eq!(resumed.state(), original.state());
    assert_eq!(resumed.profile(), original.profile());

    for _ in 0..2 {
        let expected = original.step().unwrap();
        let actual = resumed.step().unwrap();
        assert_eq!(actual.loss.to_bits(), expected.loss.to_bits(), "{method}: loss {} vs {}", actual.loss, expected.loss);
        assert_eq!(actual.learning_rate, expected.learning_rate);
        assert_eq!(actual.gradient_norm.to_bits(), expected.gradient_norm.to_bits());
    }
    // Gradients of the following step depend on every weight and on the
    // optimizer's moments through the last update.
    let expected = original.compute_gradients().unwrap();
    let actual = resumed.compute_gradients().unwrap();
    assert_eq!(actual.gradients.len(), expected.gradients.len());
    let differing = actual.gradients.iter().zip(&expected.gradients).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    assert_eq!(differing, 0, "{method}: {differing} gradient values differ after resume");
}

#[test]
fn contrastive_resume_bit_identical() {
    resume_is_bit_identical("contrastive");
}

#[test]
fn masked_resume_bit_identical() {
    resume_is_bit_identical("masked");
}

#[test]
fn checkpoint_bytes_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let job = small_job("masked", dir.path());
    let mut trainer = job.trainer(&Device::flex()).unwrap();
    trainer.step().unwrap();
    let bytes = trainer.to_checkpoint().unwrap();

    let parts = decode_checkpoint(&bytes).unwrap();
    assert_eq!(parts.header.state.global_step, 1);
    assert_eq!(parts.header.state.batch_in_epoch, 1);
    assert_eq!(&parts.header.profile, trainer.profile());
    assert_eq!(encode_checkpoint(&parts).unwrap(), bytes);

    assert!(decode_checkpoint(&bytes[..bytes.len() - 1]).is_err());
    assert!(decode_checkpoint(b"not a checkpoint").is_err());
}

#[test]
fn exported_encoder_reproduces_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let job = small_job("contrastive", dir.path());
    let device = Device::flex();
    let mut trainer = job.trainer(&device).unwrap();
    for _ in 0..3 {
        trainer.step().unwrap();
    }
    let encoder = trainer.encoder();
    let exported = export_encoder(&encoder, &trainer.encoder_config(), trainer.profile(), &dir.path().join("export")).unwrap();
    assert!(exported.weights.exists());
    assert!(exported.profile.exists());
    assert!(exported.config.exists());

    let (loaded, config, profile) = load_exported_encoder(&exported, &device).unwrap();
    assert_eq!(&profile, trainer.profile());
    assert_eq!(config, trainer.encoder_config());
    let layout = FeatureLayout::from_profile(&profile);
    let rows = job.rows.select(&(0..50).collect::<Vec<_>>());
    let before = embed(&encoder, &rows, &layout, &device).unwrap();
    let after = embed(&loaded, &rows, &layout, &device).unwrap();
    assert_eq!(before.len(), 50 * 64);
    assert_eq!(before, after);
}
