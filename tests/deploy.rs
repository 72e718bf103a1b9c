//! Checks of `deploy/`: the Kubernetes manifests render and validate, and the
//! Prometheus alert rules load and pass their unit tests.
//!
//! They need `kubectl` (with its built-in kustomize), `kubernetes-validate` (PyPI)
//! and `promtool` (Debian's `prometheus` package); `.ci/run` installs what is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate is in the repository").to_owned()
}

fn run(command: &mut Command, install_hint: &str) -> Output {
    command.current_dir(repository_root()).output().unwrap_or_else(|error| panic!("cannot run {command:?}: {error}; {install_hint}"))
}

fn describe(output: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn manifests_render_and_validate() {
    let output = run(Command::new("bash").arg("deploy/checks/manifests.sh"), "install bash");
    assert!(output.status.success(), "deploy/checks/manifests.sh failed:\n{}", describe(&output));
    let report = String::from_utf8_lossy(&output.stdout);
    for overlay in ["base", "overlays/dev", "overlays/dev-monitoring", "overlays/gpu"] {
        assert!(report.contains(&format!("ok   {overlay}:")), "{overlay} was not checked:\n{report}");
    }
}

#[test]
fn alert_rules_load() {
    let output = run(Command::new("promtool").args(["check", "rules", "deploy/prometheus/alerts.yaml"]), "install Debian's prometheus package");
    assert!(output.status.success(), "promtool check rules failed:\n{}", describe(&output));
    assert!(describe(&output).contains("SUCCESS"), "{}", describe(&output));
}

#[test]
fn alert_rules_pass_unit_tests() {
    let output =
        run(Command::new("promtool").args(["test", "rules", "deploy/prometheus/alerts_test.yaml"]), "install Debian's prometheus package");
    assert!(output.status.success(), "promtool test rules failed:\n{}", describe(&output));
}
