//! `sslctl checkpoints`: a job's committed checkpoints.

use ssl_proto::v1::ListCheckpointsRequest;

use crate::cli::{CheckpointsArgs, ConnectionArgs, OutputFormat};
use crate::client;
use crate::error::Error;
use crate::output;

pub async fn run(connection: &ConnectionArgs, args: &CheckpointsArgs) -> Result<(), Error> {
    let mut client = client::connect(connection).await?;
    let request = ListCheckpointsRequest { job_id: args.job_id.clone() };
    let response =
        client.service.list_checkpoints(request).await.map_err(|status| client.error(status))?.into_inner();

    if response.checkpoints.is_empty() && args.output == OutputFormat::Table {
        eprintln!("job `{}` has no committed checkpoints", args.job_id);
        return Ok(());
    }
    output::write_checkpoints(&mut std::io::stdout().lock(), &response.checkpoints, args.output)
}
