//! `sslctl cancel`: moves a job to CANCELLED and prints its new state.

use std::io::Write;

use ssl_proto::v1::CancelJobRequest;

use crate::cli::{CancelArgs, ConnectionArgs};
use crate::client;
use crate::error::Error;

pub async fn run(connection: &ConnectionArgs, args: &CancelArgs) -> Result<(), Error> {
    let mut client = client::connect(connection).await?;
    let request = CancelJobRequest { id: args.id.clone(), message: args.message.clone().unwrap_or_default() };
    let job = client.service.cancel_job(request).await.map_err(|status| client.error(status))?.into_inner();

    writeln!(std::io::stdout().lock(), "{}", job.state().short_name())?;
    Ok(())
}
