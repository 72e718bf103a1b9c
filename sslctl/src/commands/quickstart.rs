//! `sslctl quickstart`: one job of the bundled example on a local stack, start to end.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssl_proto::JobState;
use ssl_proto::result::{JobResult, format_percent};
use ssl_proto::spec::parse_spec_file;
use ssl_proto::v1::{CancelJobRequest, JobSpec, ListCheckpointsRequest, ListJobsRequest, SubmitJobRequest, WorkerRange};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::cli::{ConnectionArgs, QuickstartArgs, Token};
use crate::client::{self, JobClient};
use crate::commands::{export, watch};
use crate::error::Error;
use crate::local::{LocalStack, StackOptions, write_example};

/// How often the child processes are checked while the job runs.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// Maximum wait for the cancellation of the job after Ctrl-C.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);
/// Label fraction of the comparison printed after the table.
const FEW_LABELS: f64 = 0.01;

pub async fn run(args: &QuickstartArgs) -> Result<(), Error> {
    // Registered before any child starts, so that Ctrl-C always stops them.
    let mut interrupts = Interrupts::new()?;

    let example_dir = args.data_dir.join("example");
    let spec = example_spec(&example_dir, args)?;
    let workers = args.workers as usize;
    println!(
        "starting a coordinator and {workers} worker{} on 127.0.0.1, with their data in {}",
        if workers == 1 { "" } else { "s" },
        args.data_dir.display()
    );

    let data_dir = args.data_dir.clone();
    let mut starting = tokio::task::spawn_blocking(move || LocalStack::start(&data_dir, &StackOptions { workers }));
    let mut stack = tokio::select! {
        started = &mut starting => started.map_err(|error| Error::LocalService(format!("start failed: {error}")))??,
        () = interrupts.next() => {
            // The start is bounded; stop whatever it started once it returns.
            if let Ok(Ok(stack)) = starting.await {
                stop(stack).await;
            }
            return Err(Error::Interrupted("nothing was submitted, and every process is stopped".to_owned()));
        }
    };
    println!("logs: {}", stack.dir.logs().display());

    let outcome = run_job(&mut stack, spec, &mut interrupts).await;
    let logs = stack.dir.logs();
    println!("stopping the coordinator and the workers");
    stop(stack).await;
    if matches!(outcome, Err(ref error) if !matches!(error, Error::Interrupted(_))) {
        eprintln!("the logs of the coordinator and the workers are in {}", logs.display());
    }
    outcome
}

/// Submits the example, follows it, then prints its evaluation and exports its encoder.
async fn run_job(stack: &mut LocalStack, spec: JobSpec, interrupts: &mut Interrupts) -> Result<(), Error> {
    let connection = ConnectionArgs {
        endpoint: Some(stack.endpoint.clone()),
        ca_cert: None,
        token: Some(Token(stack.api_token.clone())),
    };
    let mut client = client::connect(&connection).await?;
    cancel_leftovers(&mut client).await?;

    let request = SubmitJobRequest { request_id: uuid::Uuid::new_v4().to_string(), spec: Some(spec) };
    let job = client.service.submit_job(request).await.map_err(|status| client.error(status))?.into_inner().job;
    let job_id = job.ok_or_else(|| Error::InvalidResponse("SubmitJob returned no job".to_owned()))?.id;
    let sslctl = std::env::current_exe().map_or_else(|_| "sslctl".to_owned(), |path| path.display().to_string());
    println!("submitted job {job_id}; to look at it from another terminal:");
    println!(
        "  SSLCTL_ENDPOINT={} SSLCTL_TOKEN=\"$(cat {})\" {sslctl} get {job_id}",
        stack.endpoint,
        stack.dir.api_token_file().display()
    );

    let followed = {
        let mut stdout = std::io::stdout();
        let follow = watch::follow(&mut client, &job_id, &mut stdout);
        tokio::pin!(follow);
        let mut checks = tokio::time::interval(CHECK_INTERVAL);
        loop {
            tokio::select! {
                result = &mut follow => break result,
                () = interrupts.next() => break Err(Error::Interrupted(String::new())),
                _ = checks.tick() => {
                    if let Err(error) = stack.check_running() {
                        break Err(error);
                    }
                }
            }
        }
    };
    let job = match followed {
        Ok(job) => job,
        Err(Error::Interrupted(_)) => {
            let request = CancelJobRequest { id: job_id.clone(), message: "quickstart interrupted with Ctrl-C".to_owned() };
            let cancelled = tokio::time::timeout(CANCEL_TIMEOUT, client.service.cancel_job(request)).await;
            let reason = match cancelled {
                Ok(Ok(_)) => format!("job {job_id} is cancelled and every process is stopped"),
                _ => format!("job {job_id} could not be cancelled; every process is stopped"),
            };
            return Err(Error::Interrupted(reason));
        }
        Err(error) => return Err(error),
    };
    print_comparison(&job.result_json)?;
    print_outputs(&mut client, &job_id, stack.dir.root()).await
}

/// Prints how SSL embeddings compare with raw features at 1% of the labels, below the
/// evaluation table that `watch` printed.
fn print_comparison(result_json: &str) -> Result<(), Error> {
    let Some(evaluation) = JobResult::parse(result_json).and_then(|result| result.evaluation) else {
        println!("\nthe job reported no evaluation");
        return Ok(());
    };
    let mut stdout = std::io::stdout().lock();
    if let Some((ssl, raw)) = evaluation.pair_at(FEW_LABELS) {
        let verdict = if ssl.probe_accuracy > raw.probe_accuracy { "beat" } else { "did not beat" };
        writeln!(
            stdout,
            "with {} of the labels ({} rows), SSL embeddings {verdict} raw features: probe accuracy {:.4} vs {:.4}",
            format_percent(FEW_LABELS),
            ssl.train_rows,
            ssl.probe_accuracy,
            raw.probe_accuracy
        )?;
    }
    stdout.flush()?;
    Ok(())
}

/// Exports the newest checkpoint's encoder into the data folder and prints where the
/// checkpoints and the encoder are.
async fn print_outputs(client: &mut JobClient, job_id: &str, root: &Path) -> Result<(), Error> {
    let request = ListCheckpointsRequest { job_id: job_id.to_owned() };
    let checkpoints = client.service.list_checkpoints(request).await.map_err(|status| client.error(status))?.into_inner().checkpoints;
    let mut steps: Vec<i64> = checkpoints.iter().map(|checkpoint| checkpoint.step).collect();
    steps.sort_unstable_by(|a, b| b.cmp(a));
    let folder = checkpoints.first().map(|checkpoint| local_folder(&checkpoint.uri));

    let encoder = root.join("encoder.safetensors");
    let written = export::export(client, job_id, None, &encoder).await?;
    println!();
    if let Some(folder) = folder {
        let noun = if steps.len() == 1 { "checkpoint at step" } else { "checkpoints at steps" };
        let steps: Vec<String> = steps.iter().map(i64::to_string).collect();
        println!("{noun} {}: {}", steps.join(", "), folder.display());
    }
    println!("exported encoder:");
    for path in written {
        println!("  {}", path.display());
    }
    Ok(())
}

/// Returns the folder that contains the step folders of a `file://` checkpoint.
fn local_folder(uri: &str) -> PathBuf {
    let path = PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri).trim_end_matches('/'));
    path.parent().map(Path::to_owned).unwrap_or(path)
}

/// Writes the example and returns its spec with the quickstart's overrides.
fn example_spec(folder: &Path, args: &QuickstartArgs) -> Result<JobSpec, Error> {
    std::fs::create_dir_all(folder).map_err(|error| Error::WriteFile { path: folder.to_owned(), error })?;
    let mut spec = parse_spec_file(&write_example(folder)?)?;
    let workers = args.workers as i32;
    spec.workers = Some(WorkerRange { min: Some(workers), max: Some(workers) });
    if let Some(epochs) = args.epochs {
        spec.training.get_or_insert_with(Default::default).epochs = Some(epochs as i32);
    }
    Ok(spec)
}

/// Cancels the jobs that an interrupted or killed earlier run left unfinished, so that
/// they do not take the workers.
async fn cancel_leftovers(client: &mut JobClient) -> Result<(), Error> {
    let states: Vec<i32> = JobState::ALL.iter().filter(|state| !state.is_terminal()).map(|state| *state as i32).collect();
    let request = ListJobsRequest { states, page_size: 1000, ..Default::default() };
    let jobs = client.service.list_jobs(request).await.map_err(|status| client.error(status))?.into_inner().jobs;
    for job in jobs {
        println!("cancelling job {} ({}), left unfinished by an earlier run", job.id, job.state().short_name());
        let request = CancelJobRequest { id: job.id.clone(), message: "left unfinished by an earlier quickstart".to_owned() };
        client.service.cancel_job(request).await.map_err(|status| client.error(status))?;
    }
    Ok(())
}

async fn stop(mut stack: LocalStack) {
    let _ = tokio::task::spawn_blocking(move || stack.stop()).await;
}

/// SIGINT (Ctrl-C) and SIGTERM, caught for as long as this value lives.
struct Interrupts {
    interrupt: Signal,
    terminate: Signal,
}

impl Interrupts {
    fn new() -> Result<Self, Error> {
        let listen = |kind| signal(kind).map_err(|error| Error::LocalService(format!("cannot catch signals: {error}")));
        Ok(Interrupts { interrupt: listen(SignalKind::interrupt())?, terminate: listen(SignalKind::terminate())? })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        eprintln!("\ninterrupted; stopping");
    }
}
