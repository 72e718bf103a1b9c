//! Pretraining on a sample of UCI Adult: the loss falls and a linear probe on the
//! embeddings beats the majority class.

mod support;

use burn::tensor::Device;
use ssl_worker::eval::FeatureSet;
use ssl_worker::job::{PreparedJob, evaluate_trainer, pretrain};

fn pretrain_and_probe(method: &str) {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.csv");
    let test = dir.path().join("test.csv");
    support::write_adult_sample("train.csv.gz", 5, 6000, &train);
    support::write_adult_sample("test.csv.gz", 8, 2000, &test);
    let spec_path = dir.path().join("spec.yaml");
    // 6000 rows / batch 128 = 46 steps per epoch; 7 epochs = 322 steps.
    std::fs::write(&spec_path, support::adult_spec(method, &train, &test, 7, "[0.1]")).unwrap();

    let spec = ssl_proto::spec::normalize(ssl_proto::spec::parse_spec_file(&spec_path).unwrap()).unwrap();
    let job = PreparedJob::from_spec(&spec).unwrap();
    assert_eq!(job.rows.num_rows, 6000);
    assert_eq!(job.profile.numeric_columns().count(), 6);
    assert_eq!(job.profile.categorical_columns().count(), 8);

    let device = Device::flex();
    let mut trainer = job.trainer(&device).unwrap();
    assert_eq!(trainer.total_steps(), 322);
    let mut losses = Vec::new();
    pretrain(&mut trainer, |report| losses.push(report.loss)).unwrap();
    assert_eq!(losses.len(), 322);
    assert!(losses.iter().all(|loss| loss.is_finite()));

    let first: f64 = losses[..30].iter().sum::<f64>() / 30.0;
    let last: f64 = losses[losses.len() - 30..].iter().sum::<f64>() / 30.0;
    // NT-Xent at temperature 1 can fall by at most about 2 nats from its start
    // near ln(2B - 1), so the bar is an absolute drop.
    assert!(last < first - 0.1, "{method}: loss did not fall: first 30 steps {first:.4}, last 30 {last:.4}");

    let report = evaluate_trainer(&trainer, job.evaluation.as_ref().unwrap(), &device).unwrap();
    println!("{method}: loss {first:.4} -> {last:.4}\n{}", report.to_table());
    let ssl = report.scores.iter().find(|score| score.features == FeatureSet::Ssl).unwrap();
    assert!(report.majority_rate > 0.7, "majority {}", report.majority_rate);
    assert!(report.majority_rate < 0.8, "majority {}", report.majority_rate);
    assert!(ssl.probe_accuracy > report.majority_rate + 0.03, "{method}: probe {} vs majority {}", ssl.probe_accuracy, report.majority_rate);
    assert!(ssl.probe_roc_auc.unwrap() > 0.75, "{method}: AUC {:?}", ssl.probe_roc_auc);
    assert!(ssl.knn_accuracy > report.majority_rate, "{method}: kNN {}", ssl.knn_accuracy);
}

#[test]
fn contrastive_pretraining_on_adult() {
    pretrain_and_probe("contrastive");
}

#[test]
fn masked_pretraining_on_adult() {
    pretrain_and_probe("masked");
}
