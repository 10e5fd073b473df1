//! `vmkit fetch` as a user runs it, against the testbed's HTTP server on 127.0.0.1: the path of the verified file
//! on stdout, a cache hit with the server gone, exit 1 for a wrong digest (nothing cached), exit 2 for bad input.

use assert_cmd::Command;
use predicates::prelude::*;

fn sha256_hex(data: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(data)?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_owned()
}

#[test]
fn fetch_prints_the_cached_path_and_reuses_it_offline() {
    let cache = tempfile::tempdir().unwrap();
    let mut server = testbed::HttpServer::start().unwrap();
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    server.add("/base.img", body.clone());
    let hex = sha256_hex(&body);
    let url = server.url("/base.img");

    let out = Command::cargo_bin("vmkit")
        .unwrap()
        .args(["fetch", &url, "--sha256", &hex, "--progress", "lines", "--cache-dir"])
        .arg(cache.path())
        .assert()
        .success()
        .stderr(predicate::str::contains("base.img"))
        .get_output()
        .stdout
        .clone();
    let path = String::from_utf8(out).unwrap().trim().to_owned();
    assert_eq!(path, cache.path().join("sha256").join(&hex).display().to_string());
    assert_eq!(std::fs::read(&path).unwrap(), body);

    server.stop();
    Command::cargo_bin("vmkit")
        .unwrap()
        .args(["fetch", &url, "--sha256", &hex, "--cache-dir"])
        .arg(cache.path())
        .env("VMKIT_CACHE_DIR", "/nonexistent-the-flag-wins")
        .assert()
        .success()
        .stdout(format!("{path}\n"))
        .stderr(predicate::str::contains("cached"));
}

#[test]
fn wrong_digest_fails_with_exit_1_and_caches_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let server = testbed::HttpServer::start().unwrap();
    server.add("/base.img", b"hello".to_vec());
    let wrong = "0".repeat(64);
    Command::cargo_bin("vmkit")
        .unwrap()
        .args(["fetch", &server.url("/base.img"), "--sha256", &wrong, "--progress", "off"])
        .env("VMKIT_CACHE_DIR", cache.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("SHA-256 mismatch").and(predicate::str::contains("nothing was cached")));
    let cached = std::fs::read_dir(cache.path().join("sha256")).map(Iterator::count).unwrap_or(0);
    assert_eq!(cached, 0);
}

#[test]
fn bad_input_exits_2() {
    // The help renders (clap checks the whole command tree then).
    Command::cargo_bin("vmkit").unwrap().args(["fetch", "--help"]).assert().success();
    Command::cargo_bin("vmkit").unwrap().args(["fetch", "ubuntu", "--help"]).assert().success();
    let cache = tempfile::tempdir().unwrap();
    for args in [
        vec!["fetch", "http://127.0.0.1:9/x", "--sha256", "abc"],
        vec!["fetch", "ftp://example.org/x", "--sha256", &"a".repeat(64)],
        vec!["fetch", "http://127.0.0.1:9/x"],
        vec!["fetch", "ubuntu", "--release", "24.04", "--codename", "Noble!", "--sha256", &"a".repeat(64)],
        vec!["fetch", "virtio-win", "--build", "0.1.999-1"],
    ] {
        let out =
            Command::cargo_bin("vmkit").unwrap().args(&args).env("VMKIT_CACHE_DIR", cache.path()).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn progress_off_prints_nothing_on_stderr() {
    let cache = tempfile::tempdir().unwrap();
    let file = cache.path().join("input.img");
    let body = b"vmkit fetch --progress off".repeat(1000);
    std::fs::write(&file, &body).unwrap();
    let hex = sha256_hex(&body);
    let url = format!("file://{}", file.display());
    // The download, then the cache hit: both silent on stderr, the path on stdout.
    for _ in 0..2 {
        Command::cargo_bin("vmkit")
            .unwrap()
            .args(["fetch", &url, "--sha256", &hex, "--progress", "off", "--cache-dir"])
            .arg(cache.path().join("cache"))
            .assert()
            .success()
            .stdout(predicate::str::contains(&hex))
            .stderr("");
    }
}
