//! `sslctl list`: jobs newest first, fetched page by page up to `--limit`.

use ssl_proto::v1::{Job, ListJobsRequest};

use crate::cli::{ConnectionArgs, ListArgs, OutputFormat};
use crate::client::{self, JobClient};
use crate::error::Error;
use crate::output;

/// Largest page the coordinator serves.
const MAX_PAGE_SIZE: u32 = 1000;

pub async fn run(connection: &ConnectionArgs, args: &ListArgs) -> Result<(), Error> {
    let mut client = client::connect(connection).await?;
    let jobs = fetch_jobs(&mut client, args).await?;

    if jobs.is_empty() && args.output == OutputFormat::Table {
        eprintln!("no jobs found");
        return Ok(());
    }
    output::write_jobs(&mut std::io::stdout().lock(), &jobs, args.output)
}

/// Follows `next_page_token` until `args.limit` jobs are collected or the last page is read.
async fn fetch_jobs(client: &mut JobClient, args: &ListArgs) -> Result<Vec<Job>, Error> {
    let limit = args.limit as usize;
    let mut jobs = Vec::new();
    let mut page_token = String::new();
    loop {
        let page_size = (limit - jobs.len()).min(MAX_PAGE_SIZE as usize) as i32;
        let request = ListJobsRequest {
            states: args.states.iter().map(|state| *state as i32).collect(),
            name: args.name.clone().unwrap_or_default(),
            page_size,
            page_token,
        };
        let page = client.service.list_jobs(request).await.map_err(|status| client.error(status))?.into_inner();

        jobs.extend(page.jobs);
        if page.next_page_token.is_empty() || jobs.len() >= limit {
            jobs.truncate(limit);
            return Ok(jobs);
        }
        page_token = page.next_page_token;
    }
}
