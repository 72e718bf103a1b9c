//! Reaching the coordinator: tokens, refused connections and TLS.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use ssl_coordinator::server::TlsConfig;

use crate::support::{Coordinator, TOKEN, run, sslctl_command};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_token_rejected() {
    let coordinator = Coordinator::start().await;
    let mut command = sslctl_command(&["list"]);
    command.env("SSLCTL_ENDPOINT", &coordinator.endpoint);

    let output = run(command).await;
    assert_eq!(output.code, 1, "{output}");
    assert_eq!(output.stdout, "", "{output}");
    assert_eq!(
        output.stderr,
        "error: missing bearer token in the `authorization` metadata; pass a valid token with --token or SSLCTL_TOKEN\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_rejected_without_echo() {
    let coordinator = Coordinator::start().await;
    let mut command = sslctl_command(&["list", "--token", "wrong-token-value"]);
    command.env("SSLCTL_ENDPOINT", &coordinator.endpoint);

    let output = run(command).await;
    assert_eq!(output.code, 1, "{output}");
    assert_eq!(output.stderr, "error: invalid bearer token; pass a valid token with --token or SSLCTL_TOKEN\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_flag_overrides_environment() {
    let coordinator = Coordinator::start().await;
    let mut command = sslctl_command(&["list", "--token", TOKEN]);
    command.env("SSLCTL_ENDPOINT", &coordinator.endpoint).env("SSLCTL_TOKEN", "stale-token");

    let output = run(command).await;
    assert_eq!(output.code, 0, "{output}");
    assert_eq!(output.stderr, "no jobs found\n", "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_names_endpoint() {
    // Binding and dropping a listener yields a local port that nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = format!("http://127.0.0.1:{port}");

    let output = run(sslctl_command(&["get", "00000000-0000-4000-8000-000000000000", "--endpoint", &endpoint])).await;
    assert_eq!(output.code, 1, "{output}");
    assert_eq!(output.stdout, "", "{output}");
    let stderr = output.stderr.as_str();
    assert!(stderr.starts_with(&format!("error: cannot connect to coordinator at {endpoint}: ")), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(
        stderr.ends_with("; is it running? set --endpoint or SSLCTL_ENDPOINT, or start a local one with `sslctl dev up`\n"),
        "{stderr}"
    );
}

/// Returns a CA certificate in PEM and a coordinator certificate for 127.0.0.1 that it
/// signed.
fn private_ca_and_server_cert() -> (String, TlsConfig) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let server_params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();

    let tls = TlsConfig { cert_pem: server_cert.pem().into_bytes(), key_pem: server_key.serialize_pem().into_bytes() };
    (ca.pem(), tls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_private_ca() {
    let (ca_pem, tls) = private_ca_and_server_cert();
    let folder = tempfile::tempdir().unwrap();
    let ca_path = folder.path().join("ca.pem");
    std::fs::write(&ca_path, ca_pem).unwrap();
    let coordinator = Coordinator::start_tls(tls).await;
    assert!(coordinator.endpoint.starts_with("https://127.0.0.1:"));

    let mut command = coordinator.command(&["list", "-o", "json"]);
    command.env("SSLCTL_CA_CERT", &ca_path);
    let output = run(command).await;
    assert_eq!(output.code, 0, "{output}");
    assert_eq!(output.stdout, "[]\n", "{output}");

    // Without the CA, the coordinator's certificate is not trusted.
    let output = coordinator.sslctl(&["list"]).await;
    assert_eq!(output.code, 1, "{output}");
    assert!(
        output.stderr.starts_with(&format!("error: cannot connect to coordinator at {}: ", coordinator.endpoint)),
        "{output}"
    );
    assert!(output.stderr.contains("certificate"), "{output}");
}
