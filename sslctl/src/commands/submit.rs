//! `sslctl submit`: queues a job from a spec file and prints its id.

use std::io::Write;
use std::time::Duration;

use ssl_proto::spec::parse_spec_file;
use ssl_proto::v1::{JobSpec, SubmitJobRequest, SubmitJobResponse};
use tonic::Code;

use crate::cli::{ConnectionArgs, SubmitArgs};
use crate::client::{self, JobClient};
use crate::commands::watch;
use crate::error::Error;

/// Waits before each retry of a submission that failed with UNAVAILABLE. Retries reuse
/// the request id, and `SubmitJob` is idempotent on it, so a retry cannot create a
/// second job.
const RETRY_DELAYS: [Duration; 3] = [Duration::from_millis(500), Duration::from_secs(1), Duration::from_secs(2)];

pub async fn run(connection: &ConnectionArgs, args: &SubmitArgs) -> Result<(), Error> {
    // The spec is read before connecting, so a bad file is reported without a server.
    let spec = parse_spec_file(&args.file)?;
    let request_id = args.request_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());

    let mut client = client::connect(connection).await?;
    let response = submit_with_retries(&mut client, &request_id, spec).await?;
    let Some(job) = response.job else {
        return Err(Error::InvalidResponse("SubmitJob returned no job".to_owned()));
    };
    if !response.created {
        eprintln!("request id `{request_id}` was submitted before; showing the job it created");
    }

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", job.id)?;
    stdout.flush()?;
    drop(stdout);

    if !args.wait {
        return Ok(());
    }
    // Progress goes to stderr so that stdout holds only the job id, as without --wait.
    watch::follow(&mut client, &job.id, &mut std::io::stderr()).await.map(|_| ())
}

/// Sends `SubmitJob`, retrying with the same request id while the coordinator is
/// unavailable.
async fn submit_with_retries(client: &mut JobClient, request_id: &str, spec: JobSpec) -> Result<SubmitJobResponse, Error> {
    let request = SubmitJobRequest { request_id: request_id.to_owned(), spec: Some(spec) };
    let mut delays = RETRY_DELAYS.iter();
    loop {
        let status = match client.service.submit_job(request.clone()).await {
            Ok(response) => return Ok(response.into_inner()),
            Err(status) => status,
        };
        let Some(delay) = delays.next().filter(|_| status.code() == Code::Unavailable) else {
            return Err(client.error(status));
        };
        eprintln!("warning: submit failed: {}; retrying in {delay:?} with request id `{request_id}`", status.message());
        tokio::time::sleep(*delay).await;
    }
}
