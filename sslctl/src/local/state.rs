//! `stack.json`: how to reach a running local stack and which processes it has.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::layout::StackDir;
use super::process;
use super::stack::STOP_GRACE;

/// Executable name of the coordinator.
pub const COORDINATOR: &str = "ssl-coordinator";
/// Executable name of a worker agent.
pub const WORKER: &str = "ssl-worker";

/// A local stack as `stack.json` records it while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackState {
    /// URL of the coordinator, such as `http://127.0.0.1:40123`.
    pub endpoint: String,
    pub coordinator_pid: u32,
    pub worker_pids: Vec<u32>,
}

impl StackState {
    /// Writes the state to the directory's `stack.json`.
    pub fn save(&self, dir: &StackDir) -> std::io::Result<()> {
        let path = dir.state_file();
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(temporary, path)
    }

    /// Returns whether the coordinator still runs.
    pub fn coordinator_runs(&self) -> bool {
        process::runs(self.coordinator_pid, COORDINATOR)
    }

    /// Stops the recorded processes, workers first, with SIGTERM and then SIGKILL after
    /// a grace period, and removes `stack.json`. Returns how many needed SIGKILL.
    pub fn stop(&self, dir: &StackDir) -> usize {
        let workers: Vec<(u32, &str)> = self.worker_pids.iter().map(|&pid| (pid, WORKER)).collect();
        let mut killed = process::stop_processes(&workers, STOP_GRACE).len();
        killed += process::stop_processes(&[(self.coordinator_pid, COORDINATOR)], STOP_GRACE).len();
        let _ = std::fs::remove_file(dir.state_file());
        let _ = std::fs::remove_file(dir.address_file());
        killed
    }

    /// Workers that still run.
    pub fn running_workers(&self) -> usize {
        self.worker_pids.iter().filter(|&&pid| process::runs(pid, WORKER)).count()
    }
}

/// Returns the stack recorded in `dir` when its coordinator still runs.
pub fn running_stack(dir: &Path) -> Option<StackState> {
    let text = std::fs::read(StackDir::open(dir).state_file()).ok()?;
    let state: StackState = serde_json::from_slice(&text).ok()?;
    state.coordinator_runs().then_some(state)
}
