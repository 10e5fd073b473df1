//! Secrets never printed: a script that waits for the VNC password (or a typed secret) does not put it into the
//! `--json` failure, report.html, the log or the debug file names; passwords in URLs and libvirt URIs are masked
//! in error messages.

use std::time::Duration;

use assert_cmd::Command;
use testbed::x11::DisplayOptions;
use testbed::{Display, DisplayKind};

const VNC_PASSWORD: &str = "s3cretpw";
const TYPED: &str = "typed-secret-42";

#[test]
fn a_script_waiting_for_its_secrets_does_not_leak_them() {
    let display = Display::start(DisplayOptions {
        kind: DisplayKind::Xvnc,
        width: 640,
        height: 480,
        password: Some(VNC_PASSWORD.to_owned()),
        ..DisplayOptions::default()
    })
    .expect("Xvnc");
    let tmp = tempfile::tempdir().expect("tmp");
    let script = tmp.path().join("s.yaml");
    std::fs::write(
        &script,
        format!(
            "boot_wait: 0\nboot_commands:\n  - type: {{text: '{TYPED}', secret: true}}\n  \
             - wait: {{text: ['{VNC_PASSWORD}', '{TYPED}'], timeout: 1}}\n"
        ),
    )
    .expect("write");
    let debug = tmp.path().join("debug");
    let out = Command::cargo_bin("vmkit")
        .expect("vmkit")
        .timeout(Duration::from_secs(120))
        .args(["automate", "run", "--json", "--key-delay-ms", "0", "--vnc", &display.vnc_addr(), "--config"])
        .arg(&script)
        .arg("--password-file")
        .arg(display.plain_password_file().expect("password file"))
        .arg("--debug")
        .arg(&debug)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "the wait fails: {stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert!(json["steps"][1]["failure"]["searched"].as_array().is_some_and(|a| a.len() == 2), "{stdout}");
    let mut everything = vec![("stdout".to_owned(), stdout.to_string()), ("stderr".to_owned(), stderr.to_string())];
    for entry in std::fs::read_dir(&debug).expect("debug dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        everything.push((format!("file name {name}"), name.clone()));
        if name.ends_with(".html") || name.ends_with(".log") || name.ends_with(".json") {
            everything.push((name, std::fs::read_to_string(&path).expect("read")));
        }
    }
    assert!(everything.iter().any(|(what, _)| what == "report.html"), "report.html written");
    for (what, text) in &everything {
        for secret in [VNC_PASSWORD, TYPED] {
            assert!(!text.contains(secret), "{what} contains the secret {secret:?}:\n{text}");
        }
    }
}

#[test]
fn passwords_in_urls_and_libvirt_uris_are_masked_in_errors() {
    const PW: &str = "hunter2pw";
    let tmp = tempfile::tempdir().expect("tmp");
    let sha = "0".repeat(64);
    // Nothing listens on port 1: the download fails after its attempts; and a URL that does not parse.
    for url in [format!("http://agent:{PW}@127.0.0.1:1/disk.img"), format!("http://agent:{PW}@[::1/disk.img")] {
        let out = Command::cargo_bin("vmkit")
            .expect("vmkit")
            .timeout(Duration::from_secs(120))
            .args(["-vv", "fetch", &url, "--sha256", &sha, "--progress", "lines", "--cache-dir"])
            .arg(tmp.path())
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains("agent:***@"), "the URL is shown, masked: {stderr}");
        assert!(!stderr.contains(PW), "the password leaked: {stderr}");
    }
    let config = tmp.path().join("d.toml");
    std::fs::write(&config, "[vms.box]\nmemory = \"512M\"\nvcpus = 1\n").expect("write");
    let out = Command::cargo_bin("vmkit")
        .expect("vmkit")
        .timeout(Duration::from_secs(120))
        .args(["desktop", "plan", "--skip-path-checks", "--connect"])
        .arg(format!("qemu+tcp://agent:{PW}@127.0.0.1:1/system"))
        .arg(&config)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("agent:***@127.0.0.1:1"), "{stderr}");
    assert!(!stderr.contains(PW), "the password leaked: {stderr}");
}
