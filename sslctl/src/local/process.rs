//! Signals and liveness checks for the processes of a local stack.

use std::process::Child;
use std::time::{Duration, Instant};

/// How often a stop checks whether the processes are gone.
const POLL: Duration = Duration::from_millis(100);

/// Sends `signal` to process `pid`; a process that is already gone is not an error.
pub fn signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: kill(2) takes plain integers and has no memory effects on this process.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Returns whether process `pid` runs the executable `name`. On Linux the command
/// line is compared, so a recycled process id is not mistaken for a stack process;
/// elsewhere any live process counts.
pub fn runs(pid: u32, name: &str) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => {
            let program = cmdline.split(|&byte| byte == 0).next().unwrap_or_default();
            String::from_utf8_lossy(program).rsplit('/').next() == Some(name)
        }
        Err(_) if std::path::Path::new("/proc/self").exists() => false,
        Err(_) => {
            let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
            // SAFETY: signal 0 only checks that the process exists.
            unsafe { libc::kill(pid, 0) == 0 }
        }
    }
}

/// Stops processes that are not children of this one: SIGTERM, then SIGKILL for those
/// still running after `grace`. Returns the ids that needed SIGKILL.
pub fn stop_processes(processes: &[(u32, &str)], grace: Duration) -> Vec<u32> {
    let running = |&&(pid, name): &&(u32, &str)| runs(pid, name);
    for (pid, _) in processes.iter().filter(running) {
        signal(*pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while processes.iter().any(|process| running(&process)) && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    let stubborn: Vec<u32> = processes.iter().filter(running).map(|(pid, _)| *pid).collect();
    for pid in &stubborn {
        signal(*pid, libc::SIGKILL);
    }
    stubborn
}

/// Stops child processes: SIGTERM, then SIGKILL for those still running after
/// `grace`; waits for all of them. Returns how many needed SIGKILL.
pub fn stop_children<'a>(children: impl IntoIterator<Item = &'a mut Child>, grace: Duration) -> usize {
    let mut children: Vec<&mut Child> = children.into_iter().collect();
    for child in &mut children {
        if matches!(child.try_wait(), Ok(None)) {
            signal(child.id(), libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + grace;
    let mut killed = 0;
    for child in children {
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    killed += 1;
                    break;
                }
            }
        }
    }
    killed
}

/// Returns the last `lines` lines of a log file for error messages, or nothing when it
/// cannot be read.
pub fn log_tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
