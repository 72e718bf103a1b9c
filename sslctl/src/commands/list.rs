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
    let (jobs, more_available) = fetch_jobs(&mut client, args).await?;

    if args.output != OutputFormat::Table {
        return output::write_jobs(&mut std::io::stdout().lock(), &jobs, args.output);
    }
    if jobs.is_empty() {
        eprintln!("no jobs found");
        return Ok(());
    }
    output::write_jobs(&mut std::io::stdout().lock(), &jobs, args.output)?;
    if more_available {
        eprintln!("more jobs match than --limit {} shows; raise --limit to see them", args.limit);
    }
    Ok(())
}

/// Follows `next_page_token` until `args.limit` jobs are collected or the last page is
/// read. Returns the jobs and whether the coordinator has more.
async fn fetch_jobs(client: &mut JobClient, args: &ListArgs) -> Result<(Vec<Job>, bool), Error> {
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
        let last_page = page.next_page_token.is_empty();
        if last_page || jobs.len() >= limit {
            let more_available = !last_page || jobs.len() > limit;
            jobs.truncate(limit);
            return Ok((jobs, more_available));
        }
        page_token = page.next_page_token;
    }
}
