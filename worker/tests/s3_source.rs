//! Reading tables from `s3://` URIs through a real S3 server: s3s-fs in this
//! process on 127.0.0.1, which checks SigV4 signatures.

mod support;

use std::net::SocketAddr;

use ssl_e2e::{S3_ACCESS_KEY, S3_SECRET_KEY, start_s3_server};
use ssl_worker::WorkerError;
use ssl_worker::data::{TableFormat, TableSource, read_table};

const BUCKET: &str = "datasets";

/// Points object_store's environment configuration at the test server.
fn configure_environment(address: SocketAddr, secret: &str) {
    // SAFETY: this test binary has a single test, so no other thread reads the
    // environment while it changes.
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL", format!("http://{address}"));
        std::env::set_var("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", secret);
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_ALLOW_HTTP", "true");
    }
}

#[test]
fn s3_tables_read_with_signed_requests() {
    let root = tempfile::tempdir().unwrap();
    // s3s-fs keeps each bucket as a folder and each object as a file under it.
    let object_dir = root.path().join(BUCKET).join("adult");
    std::fs::create_dir_all(&object_dir).unwrap();
    std::fs::copy(support::adult_path("test.csv.gz"), object_dir.join("test.csv.gz")).unwrap();
    let address = start_s3_server(root.path());
    configure_environment(address, S3_SECRET_KEY);

    let uri = format!("s3://{BUCKET}/adult/test.csv.gz");
    let table = read_table(&TableSource::whole(&uri), TableFormat::Csv).unwrap();
    assert_eq!(table.num_rows(), 16_281);
    assert_eq!(table.column_names().len(), 15);
    assert_eq!(table.column_names()[14], "income");
    assert_eq!(table.uri, uri);

    let missing = format!("s3://{BUCKET}/adult/nope.csv");
    let error = read_table(&TableSource::whole(&missing), TableFormat::Csv).unwrap_err();
    assert!(matches!(error, WorkerError::NotFound { .. }), "{error}");
    assert!(error.to_string().contains(&missing), "{error}");

    // A wrong secret makes the signature invalid, and the server rejects the request.
    configure_environment(address, "not-the-secret");
    let error = read_table(&TableSource::whole(&uri), TableFormat::Csv).unwrap_err();
    assert!(matches!(error, WorkerError::Read { .. }), "{error}");
    assert!(error.to_string().contains(&uri), "{error}");
}
