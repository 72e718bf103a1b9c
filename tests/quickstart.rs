//! `sslctl quickstart` as a user runs it: a process that starts a coordinator and
//! workers, trains the bundled example and stops everything, or is interrupted.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ssl_e2e::binary;

/// Maximum time of one quickstart run in a debug build on two cores.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

fn quickstart(data_dir: &Path, epochs: u32) -> Command {
    let mut command = Command::new(binary("sslctl"));
    command
        .arg("quickstart")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--epochs", &epochs.to_string(), "--workers", "2"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for `child` with a deadline, killing it when the deadline passes.
fn wait_with_timeout(mut child: Child, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!("quickstart ran past {timeout:?}\n{}", describe(&output));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    child.wait_with_output().unwrap()
}

fn describe(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Process ids whose command line mentions `data_dir`: the stack's coordinator and workers.
fn processes_using(data_dir: &Path) -> Vec<String> {
    let needle = data_dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) && !cmdline.contains("quickstart") {
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

/// Score values of the evaluation table rows (`1%  ssl  ...`), as numbers.
fn table_rows(stdout: &str) -> Vec<(String, String, Vec<f64>)> {
    stdout
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let (labels, features) = (cells.first()?, cells.get(1)?);
            if !labels.ends_with('%') || !matches!(*features, "ssl" | "raw") {
                return None;
            }
            let scores = cells[3..].iter().filter_map(|cell| cell.parse::<f64>().ok()).collect();
            Some(((*labels).to_owned(), (*features).to_owned(), scores))
        })
        .collect()
}

#[test]
fn quickstart_trains_evaluates_exports_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("qs");
    let output = wait_with_timeout(quickstart(&data_dir, 1).spawn().unwrap(), RUN_TIMEOUT);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(stdout.contains("RUNNING -> SUCCEEDED"), "{}", describe(&output));
    assert!(stdout.contains("with 1% of the labels"), "{stdout}");

    let rows = table_rows(&stdout);
    let labels: Vec<(&str, &str)> = rows.iter().map(|(labels, features, _)| (labels.as_str(), features.as_str())).collect();
    assert_eq!(labels, [("1%", "ssl"), ("1%", "raw"), ("10%", "ssl"), ("10%", "raw"), ("100%", "ssl"), ("100%", "raw")], "{stdout}");
    for (labels, features, scores) in &rows {
        // Accuracy, macro-F1, ROC AUC and kNN accuracy.
        assert_eq!(scores.len(), 4, "{labels} {features}: {stdout}");
        assert!(scores.iter().all(|score| (0.0..=1.0).contains(score)), "{labels} {features}: {stdout}");
        // Always predicting the majority class scores about 0.76 on this test split.
        assert!(scores[0] > 0.7, "{labels} {features}: accuracy far below the majority rate: {stdout}");
    }

    let encoder = data_dir.join("encoder.safetensors");
    assert!(std::fs::metadata(&encoder).unwrap().len() > 1000, "{}", encoder.display());
    assert!(data_dir.join("encoder.profile.json").exists());
    assert!(data_dir.join("encoder.encoder_config.json").exists());
    assert!(stdout.contains(&encoder.display().to_string()), "{stdout}");
    let manifests = manifests_under(&data_dir.join("coordinator/checkpoints"));
    assert!(!manifests.is_empty(), "no committed checkpoint under {}", data_dir.display());
    assert!(stdout.contains("checkpoints at steps ") || stdout.contains("checkpoint at step "), "{stdout}");

    assert_eq!(processes_using(&data_dir), Vec::<String>::new(), "processes left running");
    assert!(!data_dir.join("stack.json").exists());
}

#[test]
fn interrupted_quickstart_stops_everything_and_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("qs");
    let mut child = quickstart(&data_dir, 50).spawn().unwrap();

    // Interrupt once the job trains: its progress lines come on stdout.
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            seen.push_str(&line);
            seen.push('\n');
            let _ = lines.send(line);
        }
        seen
    });
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        let line = received.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("training starts");
        if line.contains(", step ") && line.contains("samples/s") {
            break;
        }
    }
    // SIGINT to sslctl alone, as a terminal's Ctrl-C reaches it; the children run in
    // their own process group.
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "quickstart did not stop after SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let stdout = reader.join().unwrap();
    assert_eq!(status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(stderr.contains("is cancelled and every process is stopped"), "{stderr}");
    assert_eq!(processes_using(&data_dir), Vec::<String>::new(), "processes left running after SIGINT");
    assert!(!data_dir.join("stack.json").exists());

    let output = wait_with_timeout(quickstart(&data_dir, 1).spawn().unwrap(), RUN_TIMEOUT);
    assert!(output.status.success(), "second run\n{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("left unfinished by an earlier run"), "the interrupted job was not cancelled: {stdout}");
    assert!(stdout.contains("RUNNING -> SUCCEEDED"), "{stdout}");
    assert_eq!(processes_using(&data_dir), Vec::<String>::new(), "processes left running after the second run");
}

/// Paths of the `manifest.json` files under a checkpoint root.
fn manifests_under(root: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.file_name().is_some_and(|name| name == "manifest.json") {
                found.push(path);
            }
        }
    }
    found
}
