//! `vmkit automate` and the `yaml-automation-runner` alias as a user runs them: exit codes, diagnostics on
//! stderr, `--json` on stdout, VNC passwords, and the original runner's flags driving a real installer-like app.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vmkit() -> Command {
    Command::cargo_bin("vmkit").expect("vmkit binary")
}

fn alias() -> Command {
    Command::cargo_bin("yaml-automation-runner").expect("alias binary")
}

#[test]
fn check_lists_every_problem_of_every_file_and_exits_2() {
    let dir = root().join("crates/automate/tests/broken");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let out = vmkit().arg("automate").arg("check").args(&files).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        for expect in text.lines().filter_map(|l| l.strip_prefix("# expect: ")) {
            let (pos, message) = expect.split_once(": ").expect("pos: message");
            // "… (did you mean `x`?)" in an expectation: the suggestion ends the reported line.
            let (start, meant) = match message.rsplit_once(" (did you mean `") {
                Some((start, rest)) => (start, rest.strip_suffix("`?)")),
                None => (message, None),
            };
            let prefix = format!("{}:{pos}: error: {start}", file.display());
            let found = stderr.lines().any(|l| {
                l.starts_with(&prefix)
                    && meant.is_none_or(|m| {
                        l.ends_with(&format!("; did you mean `{m}`?")) || l.contains(&format!("(did you mean `{m}`?)"))
                    })
            });
            assert!(found, "missing from stderr: {prefix} (did you mean {meant:?})\n--- stderr:\n{stderr}");
        }
    }
    assert!(stderr.contains(&format!("{} of {} scripts have errors", files.len(), files.len())));
}

#[test]
fn check_accepts_the_examples() {
    // The macOS install scripts too: one per supported version.
    for (dir, count) in [("examples/automate", 1), ("examples/macos", 4)] {
        let examples = root().join(dir);
        let files: Vec<PathBuf> = std::fs::read_dir(&examples)
            .expect("examples")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        assert!(files.len() >= count, "{dir}: {files:?}");
        vmkit().arg("automate").arg("check").args(&files).assert().success();
    }
}

#[test]
fn run_rejects_bad_input_with_exit_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(&bad, "boot_commands:\n  - clik: OK\n").expect("write");
    let out = vmkit().args(["automate", "run", "--vnc", "127.0.0.1:1", "--config"]).arg(&bad).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml:2:5: error: step 1: unknown step `clik`"));

    let good = tmp.path().join("good.yaml");
    std::fs::write(&good, "boot_commands:\n  - delay: 0\n").expect("write");
    for args in [
        vec!["--vnc", "127.0.0.1"],
        vec!["--vnc", "127.0.0.1:99999"],
        vec!["--vnc", "127.0.0.1:5900", "--ssh", "host:nope"],
        vec!["--vnc", "127.0.0.1:5900", "--password-file", "/nonexistent/pw"],
        vec!["--vnc", "127.0.0.1:5900", "--click-timeout", "-1"],
    ] {
        let out = vmkit().args(["automate", "run", "--config"]).arg(&good).args(&args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = alias().args(["--config", "/nonexistent.yaml"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unreachable_server_fails_with_exit_1_and_a_json_result() {
    let tmp = tempfile::tempdir().expect("tmp");
    let script = tmp.path().join("s.yaml");
    std::fs::write(&script, "boot_wait: 0\nboot_commands:\n  - wait: Welcome\n").expect("write");
    let port = testbed::free_port().expect("port");
    let out = vmkit()
        .args(["automate", "run", "--json", "--reconnect-timeout", "1", "--vnc"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--config")
        .arg(&script)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(v["outcome"], "failed");
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["steps"][0]["outcome"], "not_run");
    assert!(v["error"].as_str().expect("error").contains("unreachable"), "{v}");
}

#[test]
fn vnc_password_file_right_and_wrong() {
    let display = testbed::Display::start(testbed::x11::DisplayOptions {
        password: Some("vncpass1".into()),
        ..Default::default()
    })
    .expect("Xvnc with VncAuth");
    let tmp = tempfile::tempdir().expect("tmp");
    let script = tmp.path().join("s.yaml");
    std::fs::write(&script, "boot_wait: 0\nboot_commands:\n  - move_mouse: {x: 5, y: 5}\n").expect("write");
    let right = tmp.path().join("right");
    std::fs::write(&right, "vncpass1\n").expect("write");
    let out = vmkit()
        .args(["automate", "run", "--json", "--vnc", &display.vnc_addr(), "--password-file"])
        .arg(&right)
        .arg("--config")
        .arg(&script)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("vncpass1"));

    let wrong = tmp.path().join("wrong");
    std::fs::write(&wrong, "nottheone\n").expect("write");
    let out = vmkit()
        .args(["automate", "run", "--vnc", &display.vnc_addr(), "--password-file"])
        .arg(&wrong)
        .arg("--config")
        .arg(&script)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "a rejected VNC password is bad input");
    assert!(String::from_utf8_lossy(&out.stderr).contains("authentication failed"));
}

#[test]
fn the_original_runners_command_line_drives_the_installer() {
    let display = testbed::Display::xvnc(1280, 800).expect("Xvnc");
    let scratch = testbed::scratch_dir("alias").expect("scratch");
    let record = scratch.path().join("record.json");
    let mut app = testbed::Installer::start(&display, &record, 2.0).expect("installer app");
    let debug = scratch.path().join("debug");
    let out = alias()
        .arg("--config")
        .arg(root().join("examples/automate/installer.yaml"))
        .args(["--vnc-host", "127.0.0.1", "--vnc-port", &display.port().to_string(), "--json", "--debug"])
        .arg(&debug)
        .timeout(Duration::from_secs(300))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}\napp log:\n{}", app.log());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON result");
    assert_eq!(v["outcome"], "passed");
    assert_eq!(v["steps"].as_array().map(Vec::len), Some(19));
    assert!(v["steps"].as_array().expect("steps").iter().all(|s| s["duration_ms"].as_f64().is_some()));
    assert_eq!(app.wait(Duration::from_secs(20)).expect("app exits"), Some(0));
    let rec: serde_json::Value = serde_json::from_str(&app.record().expect("record")).expect("record JSON");
    assert_eq!(rec["account"]["full_name"], "Ada Lovelace");
    assert!(debug.join("report.html").is_file());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("W0rd") && !stderr.contains("W0rd"));
}
