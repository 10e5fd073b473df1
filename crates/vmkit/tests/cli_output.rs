//! Output and flags as a shell user meets them: a closed stdout pipe (`vmkit … | head -c 10`) ends a command
//! quietly instead of a panic with exit 101, and `--debug` works bare, as in the original runner.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs vmkit with its stdout a pipe whose reader is already gone; returns the exit code and stderr.
fn with_closed_stdout(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("vmkit"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vmkit");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_closed_stdout_ends_commands_quietly() {
    let desktop = root().join("examples/desktop/vnc-only.toml");
    let script = root().join("examples/automate/installer.yaml");
    for args in [
        vec!["desktop".as_ref(), "xml".as_ref(), "--skip-path-checks".as_ref(), desktop.as_os_str()],
        vec!["automate".as_ref(), "check".as_ref(), script.as_os_str()],
    ] {
        let (code, stderr) = with_closed_stdout(&args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked") && stderr.is_empty(), "{args:?}: {stderr}");
    }
}

#[test]
fn bare_debug_is_accepted_by_automate_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let script = tmp.path().join("s.yaml");
    std::fs::write(&script, "boot_commands:\n  - delay: 0\n").expect("write");
    // Nothing listens on port 1: the run fails (exit 1) at once — after the flags were accepted.
    let out = Command::new(assert_cmd::cargo::cargo_bin("vmkit"))
        .args(["automate", "run", "--vnc", "127.0.0.1:1", "--reconnect-timeout", "0", "--config"])
        .arg(&script)
        .arg("--debug")
        .env("TMPDIR", tmp.path())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let made: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("tmp")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("unattended-"))
        .collect();
    assert_eq!(made.len(), 1, "a fresh debug directory under the temp dir: {stderr}");
}
