//! Starting and stopping the processes of a local stack.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::binaries;
use super::layout::StackDir;
use super::process::{self, log_tail};
use super::state::{COORDINATOR, StackState, WORKER, running_stack};
use crate::error::Error;

/// How long the coordinator may take to listen after it starts (migrations included).
const COORDINATOR_START: Duration = Duration::from_secs(60);
/// How long a process may take to exit after SIGTERM before it gets SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// Log lines quoted when a process exits early.
const TAIL_LINES: usize = 20;

/// Options of a local stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Worker agents to start, at least 1.
    pub workers: usize,
}

/// A running local stack whose processes are children of this one.
pub struct LocalStack {
    pub dir: StackDir,
    /// URL of the coordinator.
    pub endpoint: String,
    /// Bearer token the coordinator accepts.
    pub api_token: String,
    coordinator: Child,
    /// Worker name and process, in start order.
    workers: Vec<(String, Child)>,
}

impl LocalStack {
    /// Starts a coordinator with SQLite and checkpoints under `dir`, waits until it
    /// listens, starts the workers and records the stack in `stack.json`.
    ///
    /// Children run in their own process group, so a Ctrl-C in the terminal reaches
    /// only `sslctl`, which then stops them in order.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] when a stack already runs in `dir` or an executable is missing,
    /// and [`Error::LocalService`] when the coordinator does not come up. Any process
    /// started is stopped again.
    pub fn start(dir: &Path, options: &StackOptions) -> Result<Self, Error> {
        if let Some(state) = running_stack(dir) {
            return Err(Error::Usage(format!(
                "a local service already runs in {} (coordinator process {}, {}); stop it with `sslctl dev down --data-dir {}` \
                 or choose another --data-dir",
                dir.display(),
                state.coordinator_pid,
                state.endpoint,
                dir.display()
            )));
        }
        let coordinator_binary = binaries::find(COORDINATOR)?;
        let worker_binary = binaries::find(WORKER)?;
        let dir = StackDir::create(dir)?;
        let api_token = dir.token(&dir.api_token_file())?;
        dir.token(&dir.join_token_file())?;

        let address_file = dir.address_file();
        let _ = std::fs::remove_file(&address_file);
        let mut command = Command::new(&coordinator_binary);
        command
            .args(["--listen", "127.0.0.1:0"])
            .arg("--address-file")
            .arg(&address_file)
            .arg("--data-dir")
            .arg(dir.coordinator_data())
            .arg("--token-file")
            .arg(dir.api_token_file())
            .arg("--join-token-file")
            .arg(dir.join_token_file());
        let coordinator = spawn(&mut command, &dir.log("coordinator"))?;
        let mut stack = LocalStack { dir, endpoint: String::new(), api_token, coordinator, workers: Vec::new() };

        let address = match stack.wait_for_address(&address_file) {
            Ok(address) => address,
            Err(error) => {
                stack.stop();
                return Err(error);
            }
        };
        stack.endpoint = format!("http://{address}");

        for index in 1..=options.workers {
            let name = format!("local-{index}");
            let mut command = Command::new(&worker_binary);
            command
                .args(["--coordinator", &stack.endpoint])
                .arg("--join-token-file")
                .arg(stack.dir.join_token_file())
                .args(["--name", &name]);
            match spawn(&mut command, &stack.dir.log(&format!("worker-{index}"))) {
                Ok(child) => stack.workers.push((name, child)),
                Err(error) => {
                    stack.stop();
                    return Err(error);
                }
            }
        }
        if let Err(error) = stack.state().save(&stack.dir) {
            stack.stop();
            return Err(Error::WriteFile { path: stack.dir.state_file(), error });
        }
        Ok(stack)
    }

    /// Returns the `stack.json` record of this stack.
    pub fn state(&self) -> StackState {
        StackState {
            endpoint: self.endpoint.clone(),
            coordinator_pid: self.coordinator.id(),
            worker_pids: self.workers.iter().map(|(_, child)| child.id()).collect(),
        }
    }

    /// Names of the workers, in start order.
    pub fn worker_names(&self) -> Vec<String> {
        self.workers.iter().map(|(name, _)| name.clone()).collect()
    }

    /// Returns an error naming the first process that has exited, with the end of its log.
    ///
    /// # Errors
    ///
    /// [`Error::LocalService`] when the coordinator or a worker is no longer running.
    pub fn check_running(&mut self) -> Result<(), Error> {
        if let Ok(Some(status)) = self.coordinator.try_wait() {
            return Err(exited("the coordinator", status, &self.dir.log("coordinator")));
        }
        for (index, (name, child)) in self.workers.iter_mut().enumerate() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(exited(&format!("worker `{name}`"), status, &self.dir.log(&format!("worker-{}", index + 1))));
            }
        }
        Ok(())
    }

    /// Stops the workers, then the coordinator (SIGTERM, then SIGKILL after 10
    /// seconds), and removes `stack.json`.
    pub fn stop(&mut self) {
        process::stop_children(self.workers.iter_mut().map(|(_, child)| child), STOP_GRACE);
        process::stop_children([&mut self.coordinator], STOP_GRACE);
        let _ = std::fs::remove_file(self.dir.state_file());
        let _ = std::fs::remove_file(self.dir.address_file());
    }

    /// Leaves the processes running after this one exits, as `sslctl dev up` does.
    pub fn detach(self) -> StackState {
        // Dropping a `Child` neither kills nor waits for it.
        self.state()
    }

    /// Waits for the coordinator to write its bound address.
    fn wait_for_address(&mut self, address_file: &Path) -> Result<String, Error> {
        let deadline = Instant::now() + COORDINATOR_START;
        loop {
            if let Ok(address) = std::fs::read_to_string(address_file) {
                return Ok(address.trim().to_owned());
            }
            if let Ok(Some(status)) = self.coordinator.try_wait() {
                return Err(exited("the coordinator", status, &self.dir.log("coordinator")));
            }
            if Instant::now() >= deadline {
                return Err(Error::LocalService(format!(
                    "the coordinator did not listen within {} seconds; see {}",
                    COORDINATOR_START.as_secs(),
                    self.dir.log("coordinator").display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts `command` in its own process group with its output appended to `log`,
/// so the logs of earlier runs stay.
fn spawn(command: &mut Command, log: &Path) -> Result<Child, Error> {
    let log_file = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|error| Error::WriteFile { path: log.to_owned(), error })?;
    let stderr = log_file.try_clone().map_err(|error| Error::WriteFile { path: log.to_owned(), error })?;
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "info");
    }
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|error| Error::LocalService(format!("cannot start {program}: {error}")))
}

fn exited(what: &str, status: std::process::ExitStatus, log: &Path) -> Error {
    Error::LocalService(format!(
        "{what} exited ({status}); the end of {}:\n{}",
        log.display(),
        log_tail(log, TAIL_LINES)
    ))
}
