//! `sslctl dev up|down|status`: a local stack that outlives the command.

use std::path::PathBuf;

use crate::cli::{DevArgs, DevCommand, DevDirArgs, DevUpArgs};
use crate::error::Error;
use crate::local::{LocalStack, StackDir, StackOptions, default_dev_dir, running_stack};

pub async fn run(args: &DevArgs) -> Result<(), Error> {
    match &args.command {
        DevCommand::Up(args) => up(args).await,
        DevCommand::Down(args) => down(args).await,
        DevCommand::Status(args) => status(args),
    }
}

async fn up(args: &DevUpArgs) -> Result<(), Error> {
    let dir = data_dir(&args.dir)?;
    let workers = args.workers as usize;
    let start_dir = dir.clone();
    let stack = tokio::task::spawn_blocking(move || LocalStack::start(&start_dir, &StackOptions { workers }))
        .await
        .map_err(|error| Error::LocalService(format!("start failed: {error}")))??;
    let workers = stack.worker_names();
    let stack_dir = stack.dir.clone();
    let state = stack.detach();
    println!("local service running in {}", stack_dir.root().display());
    println!("  coordinator: {} (process {})", state.endpoint, state.coordinator_pid);
    println!("  workers:     {}", workers.join(", "));
    println!("  logs:        {}", stack_dir.logs().display());
    println!("  checkpoints: {}", stack_dir.checkpoints().display());
    if is_default(&dir) {
        println!("sslctl connects to it by default, for example: sslctl submit -f job.yaml --wait");
    } else {
        println!("connect with: export SSLCTL_DEV_DIR={}", stack_dir.root().display());
    }
    println!("stop it with: sslctl dev down");
    Ok(())
}

async fn down(args: &DevDirArgs) -> Result<(), Error> {
    let dir = data_dir(args)?;
    let Some(state) = running_stack(&dir) else {
        println!("no local service runs in {}", dir.display());
        return Ok(());
    };
    let stack_dir = StackDir::open(&dir);
    let killed = tokio::task::spawn_blocking(move || state.stop(&stack_dir))
        .await
        .map_err(|error| Error::LocalService(format!("stop failed: {error}")))?;
    if killed > 0 {
        println!("stopped; {killed} process(es) ignored SIGTERM and were killed");
    } else {
        println!("stopped; jobs, checkpoints and logs stay in {}", dir.display());
    }
    Ok(())
}

fn status(args: &DevDirArgs) -> Result<(), Error> {
    let dir = data_dir(args)?;
    match running_stack(&dir) {
        Some(state) => {
            println!("running in {}", dir.display());
            println!("  coordinator: {} (process {})", state.endpoint, state.coordinator_pid);
            println!("  workers:     {} of {} running", state.running_workers(), state.worker_pids.len());
            println!("  logs:        {}", StackDir::open(&dir).logs().display());
        }
        None => println!("no local service runs in {}; start one with `sslctl dev up`", dir.display()),
    }
    Ok(())
}

fn data_dir(args: &DevDirArgs) -> Result<PathBuf, Error> {
    args.data_dir.clone().or_else(default_dev_dir).ok_or_else(|| {
        Error::Usage("cannot tell where the local service keeps its data: HOME is not set; pass --data-dir DIR".to_owned())
    })
}

/// Whether `dir` is where the other commands look for a local service.
fn is_default(dir: &std::path::Path) -> bool {
    let absolute = |path: &std::path::Path| std::path::absolute(path).ok();
    default_dev_dir().is_some_and(|default| absolute(&default) == absolute(dir))
}
