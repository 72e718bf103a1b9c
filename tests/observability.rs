//! Metrics and traces of a real job: a coordinator and two worker processes on
//! PostgreSQL and an S3 server, scraped and traced while they train.
//!
//! The metric checks need `promtool` and `prometheus` (Debian's `prometheus`
//! package) and `python3`; `.ci/run` installs them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use ssl_e2e::{Cluster, TestDatabase, get_job, is_terminal, scrape_metrics, submit, wait_for, write_adult_sample};
use ssl_proto::v1::JobState;

/// The tests start several processes each; one at a time keeps their timing sane.
static SERIAL: Mutex<()> = Mutex::new(());

const JOB_TIMEOUT: Duration = Duration::from_secs(300);

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate is in the repository").to_owned()
}

/// Writes Adult samples to `dir` and returns a spec over 3000 rows, batch 256 (11 steps per epoch) on two workers, with
/// a checkpoint every 5 steps.
fn adult_spec(dir: &Path, epochs: u32) -> String {
    let train = dir.join("train.csv");
    let test = dir.join("test.csv");
    write_adult_sample("train.csv.gz", 7, 3000, &train);
    write_adult_sample("test.csv.gz", 9, 1000, &test);
    format!(
        "name: observed\n\
         dataset:\n  uri: file://{train}\n  label_column: income\n\
         method:\n  contrastive: {{}}\n\
         model:\n  encoder_widths: [64, 64]\n  embedding_size: 32\n\
         training:\n  epochs: {epochs}\n  global_batch_size: 256\n  learning_rate: 0.001\n  seed: 3\n\
         workers:\n  min: 2\n  max: 2\n\
         checkpoint:\n  every_steps: 5\n  keep_last: 2\n\
         evaluation:\n  test_uri: file://{test}\n  label_fractions: [0.1]\n  knn_k: 10\n",
        train = train.display(),
        test = test.display(),
    )
}

/// Metric names that `docs/metrics.md` lists: the first column of its tables.
fn documented_metrics() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repository_root().join("docs/metrics.md")).unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("| `ssl_"))
        .filter_map(|rest| rest.split_once('`').map(|(name, _)| format!("ssl_{name}")))
        .collect()
}

/// Metric families that a scrape declares with `# TYPE`. The prometheus crate
/// leaves out a family without samples, so each one declared also has samples.
fn scraped_families(scrapes: &[String]) -> BTreeSet<String> {
    scrapes
        .iter()
        .flat_map(|scrape| scrape.lines())
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn run_tool(command: &mut Command, install_hint: &str) -> std::process::Output {
    command.output().unwrap_or_else(|error| panic!("cannot run {command:?}: {error}; {install_hint}"))
}

/// Creates a database and starts a coordinator and two registered workers, each
/// process with `environment` set.
async fn start_two_workers(environment: &[(&str, String)]) -> (TestDatabase, Cluster, ssl_e2e::JobClient) {
    let database = TestDatabase::create().await;
    let mut cluster = Cluster::start_with_environment(&database.url, environment);
    cluster.start_worker();
    cluster.start_worker();
    let client = cluster.client().await;
    cluster.wait_for_registrations(2).await;
    (database, cluster, client)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_scrape_matches_docs_and_dashboards() {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (database, cluster, mut client) = start_two_workers(&[]).await;
    let data = tempfile::tempdir().unwrap();
    let job_id = submit(&mut client, &adult_spec(data.path(), 40), data.path()).await;

    // Scrape until every documented metric has appeared at once: the per-job series
    // exist only while the job runs, the checkpoint series after the first checkpoint.
    let documented = documented_metrics();
    assert!(documented.len() >= 25, "docs/metrics.md lists only {documented:?}");
    let ports: Vec<u16> = std::iter::once(cluster.coordinator_metrics_port).chain(cluster.worker_metrics_ports.iter().copied()).collect();
    let deadline = Instant::now() + JOB_TIMEOUT;
    let scrapes = loop {
        let scrapes: Vec<String> = ports.iter().filter_map(|port| scrape_metrics(*port)).collect();
        let families = scraped_families(&scrapes);
        let missing: Vec<&String> = documented.difference(&families).collect();
        if scrapes.len() == ports.len() && missing.is_empty() {
            break scrapes;
        }
        let job = get_job(&mut client, &job_id).await;
        if is_terminal(&job) || Instant::now() > deadline {
            panic!("job {job_id} is {:?} and the scrapes still lack {missing:?}\n{}", job.state(), cluster.logs());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let scrape_dir = tempfile::tempdir().unwrap();
    let mut scrape_files = Vec::new();
    for (scrape, name) in scrapes.iter().zip(["coordinator", "worker-0", "worker-1"]) {
        let path = scrape_dir.path().join(format!("{name}.prom"));
        std::fs::write(&path, scrape).unwrap();
        let output = run_tool(
            Command::new("promtool").args(["check", "metrics"]).stdin(std::fs::File::open(&path).unwrap()),
            "install Debian's prometheus package",
        );
        assert!(output.status.success(), "promtool check metrics rejects the {name} scrape:\n{}\n{scrape}", String::from_utf8_lossy(&output.stderr));
        scrape_files.push(path);
    }

    // Per-job series name the job, and values make sense for a job in progress.
    let coordinator = &scrapes[0];
    assert!(coordinator.contains(&format!("ssl_job_step{{job_id=\"{job_id}\"}}")), "{coordinator}");
    assert!(coordinator.contains("ssl_workers_registered 2"), "{coordinator}");
    assert!(coordinator.contains("ssl_workers_busy 2"), "{coordinator}");
    let ranks: BTreeSet<&str> = scrapes[1..]
        .iter()
        .flat_map(|scrape| scrape.lines())
        .filter(|line| line.starts_with(&format!("ssl_train_step{{job_id=\"{job_id}\"")))
        .filter_map(|line| line.split("rank=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(ranks, BTreeSet::from(["0", "1"]), "each worker reports its own rank");

    let mut dashboards = Command::new("python3");
    dashboards.arg(repository_root().join("deploy/checks/dashboards.py"));
    for path in &scrape_files {
        dashboards.arg("--scrape").arg(path);
    }
    let output = run_tool(&mut dashboards, "install python3");
    assert!(
        output.status.success(),
        "deploy/checks/dashboards.py failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let job = wait_for(&cluster, &mut client, &job_id, JOB_TIMEOUT, is_terminal).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}\n{}", cluster.logs());
    // Once the job has ended, its series are gone from the coordinator.
    let after = scrape_metrics(cluster.coordinator_metrics_port).unwrap();
    assert!(!after.contains(&format!("job_id=\"{job_id}\"")), "{after}");
    assert!(after.contains("ssl_jobs{state=\"succeeded\"} 1"), "{after}");

    drop(cluster);
    database.drop_database().await;
}

/// One exported span: its name, the service that sent it and its string or integer attributes.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    service: String,
    name: String,
    attributes: Vec<(String, String)>,
}

impl ReceivedSpan {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_str())
    }
}

/// An OTLP/gRPC trace collector that keeps every span it receives.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| attribute.value.as_ref())
                .map(|value| text(value.value.as_ref()))
                .unwrap_or_default();
            for span in resource_spans.scope_spans.into_iter().flat_map(|scope| scope.spans) {
                let attributes = span
                    .attributes
                    .iter()
                    .map(|attribute| (attribute.key.clone(), text(attribute.value.as_ref().and_then(|value| value.value.as_ref()))))
                    .collect();
                received.push(ReceivedSpan { service: service.clone(), name: span.name, attributes });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::StringValue(text)) => text.clone(),
        Some(Value::IntValue(number)) => number.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

impl Collector {
    async fn start() -> (Self, std::net::SocketAddr) {
        let collector = Collector::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(collector.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        (collector, address)
    }

    fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_reach_an_otlp_collector() {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (collector, address) = Collector::start().await;
    let environment = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{address}")),
        // Export every 100 ms instead of every 5 s, so the test need not wait.
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ];
    let (database, cluster, mut client) = start_two_workers(&environment).await;
    let data = tempfile::tempdir().unwrap();
    let job_id = submit(&mut client, &adult_spec(data.path(), 2), data.path()).await;
    let job = wait_for(&cluster, &mut client, &job_id, JOB_TIMEOUT, is_terminal).await;
    assert_eq!(job.state(), JobState::Succeeded, "{job:?}\n{}", cluster.logs());
    let generation = job.generation.to_string();

    // Spans of each kind, with the ids that tie them to this job.
    let of_job = |span: &ReceivedSpan| span.attribute("job_id") == Some(job_id.as_str());
    let expectations: [(&str, &str, &dyn Fn(&ReceivedSpan) -> bool); 5] = [
        ("ssl-coordinator", "rpc.submit_job", &|_| true),
        ("ssl-coordinator", "rpc.report_checkpoint", &|span| of_job(span) && span.attribute("generation") == Some(generation.as_str())),
        ("ssl-coordinator", "store.transition_at_generation", &|span| of_job(span) && span.attribute("to") == Some("SUCCEEDED")),
        ("ssl-worker", "train.step", &|span| {
            of_job(span) && span.attribute("generation") == Some(generation.as_str()) && span.attribute("rank").is_some()
        }),
        ("ssl-worker", "checkpoint.write", &|span| of_job(span) && span.attribute("rank") == Some("0") && span.attribute("step").is_some()),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let spans = collector.spans();
        let missing: Vec<&str> = expectations
            .iter()
            .filter(|(service, name, matches)| !spans.iter().any(|span| span.service == *service && span.name == *name && matches(span)))
            .map(|(_, name, _)| *name)
            .collect();
        if missing.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let seen: BTreeSet<String> = spans.iter().map(|span| format!("{}/{}", span.service, span.name)).collect();
            panic!("no matching span for {missing:?}; received {} spans: {seen:?}\n{}", spans.len(), cluster.logs());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let trained_ranks: BTreeSet<String> =
        collector.spans().iter().filter(|span| span.name == "train.step" && of_job(span)).filter_map(|span| span.attribute("rank").map(str::to_owned)).collect();
    assert_eq!(trained_ranks, BTreeSet::from(["0".to_owned(), "1".to_owned()]), "both ranks trace sampled steps");

    drop(cluster);
    database.drop_database().await;
}
