//! The SSH health check against a real OpenSSH sshd (started by testbed on 127.0.0.1 with its own test user):
//! password and key logins, a wrong password failing after the configured attempts, a failing command.

use std::path::Path;
use std::time::Duration;

use ssh::{HealthCheck, Secret};
use ssh::{SshError, SshTarget, run_health_check};

const PASSWORD: &str = "p@ss w0rd!#$%^&*()'\"";

fn check(password: Option<&str>, key: Option<&Path>, command: &str, retries: u32) -> HealthCheck {
    HealthCheck {
        user: testbed::sshd::USER.to_owned(),
        password: password.map(Secret::new),
        key_file: key.map(Path::to_owned),
        host: None,
        port: None,
        command: command.to_owned(),
        timeout: Duration::from_secs(30),
        retries,
        retry_delay: Duration::from_millis(200),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

#[test]
fn password_key_wrong_password_and_failing_command() {
    let sshd = testbed::Sshd::start(PASSWORD).expect("sshd");
    let target = SshTarget { host: "127.0.0.1".into(), port: sshd.port() };
    let rt = runtime();

    let report = rt.block_on(run_health_check(&check(Some(PASSWORD), None, "echo SSH OK; id -un", 3), &target, |_| {}));
    assert!(report.passed(), "password login: {report:?}\nsshd log:\n{}", sshd.log());
    assert_eq!(report.attempts.len(), 1);
    let out = report.attempts[0].result.as_ref().expect("ok");
    assert_eq!(out.trim(), format!("SSH OK\n{}", testbed::sshd::USER));

    let report = rt.block_on(run_health_check(&check(None, Some(sshd.private_key()), "true", 3), &target, |_| {}));
    assert!(report.passed(), "key login: {report:?}\nsshd log:\n{}", sshd.log());

    let mut seen = Vec::new();
    let report = rt
        .block_on(run_health_check(&check(Some("wrong password"), None, "true", 3), &target, |a| seen.push(a.number)));
    assert!(!report.passed());
    assert_eq!(seen, vec![1, 2, 3], "every configured attempt is made");
    for a in &report.attempts {
        match &a.result {
            Err(e @ SshError::AuthRejected { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("refused") && !msg.contains("wrong password"), "{msg}");
            }
            other => panic!("attempt {}: expected AuthRejected, got {other:?}", a.number),
        }
    }

    let report =
        rt.block_on(run_health_check(&check(Some(PASSWORD), None, "echo boom >&2; exit 3", 1), &target, |_| {}));
    match &report.attempts[0].result {
        Err(SshError::CommandFailed { status, stderr, .. }) => {
            assert_eq!(status, "status 3");
            assert_eq!(stderr.trim(), "boom");
        }
        other => panic!("expected CommandFailed, got {other:?}"),
    }
}

#[test]
fn nothing_listening_fails_with_a_connect_error() {
    let port = testbed::free_port().expect("port");
    let target = SshTarget { host: "127.0.0.1".into(), port };
    let report = runtime().block_on(run_health_check(&check(Some("x"), None, "true", 2), &target, |_| {}));
    assert_eq!(report.attempts.len(), 2);
    assert!(matches!(report.attempts[1].result, Err(SshError::Connect { .. })), "{report:?}");
}
