//! `sslctl get`: one job with its spec, state and progress.

use ssl_proto::v1::GetJobRequest;

use crate::cli::{ConnectionArgs, GetArgs};
use crate::client;
use crate::error::Error;
use crate::output;

pub async fn run(connection: &ConnectionArgs, args: &GetArgs) -> Result<(), Error> {
    let mut client = client::connect(connection).await?;
    let request = GetJobRequest { id: args.id.clone() };
    let job = client.service.get_job(request).await.map_err(|status| client.error(status))?.into_inner();

    output::write_job(&mut std::io::stdout().lock(), &job, args.output)
}
