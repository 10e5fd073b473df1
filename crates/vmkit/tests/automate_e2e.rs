//! Acceptance: a QEMU guest's VGA console driven by a script over QEMU's own VNC server (with a VNC password),
//! followed by the SSH health check against a real sshd — password and key variants, and a wrong password
//! failing with exit 1 after the configured attempts. One guest serves all three runs.

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;

const SSH_PASSWORD: &str = "h3alth-ch3ck!";

fn run(script: &Path, guest: &testbed_guests::Guest, sshd: &testbed::Sshd) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::cargo_bin("vmkit")
        .expect("vmkit binary")
        .args(["automate", "run", "--json", "--vnc", &guest.vnc_addr(), "--ssh", &sshd.addr(), "--password-file"])
        .arg(guest.vnc_password_file().expect("password file"))
        .arg("--config")
        .arg(script)
        .timeout(Duration::from_secs(600))
        .output()
        .expect("run vmkit");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}); stderr:\n{stderr}"));
    (out.status.code(), json, stderr)
}

fn health(user: &str, auth: &str, retries: u32) -> String {
    format!(
        "health_check:\n  type: ssh\n  user: {user}\n  {auth}\n  timeout: 30\n  retries: {retries}\n  retry_delay: 1\n"
    )
}

#[test]
fn e2e_guest_console_script_then_ssh_health_check() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let guest = rt
        .block_on(testbed_guests::Guest::boot_with(testbed_guests::GuestOptions {
            vnc_password: Some("guestvnc".into()),
            ..Default::default()
        }))
        .expect("boot the test guest");
    let sshd = testbed::Sshd::start(SSH_PASSWORD).expect("sshd");
    let dir = testbed::scratch_dir("automate-e2e").expect("scratch");
    let user = sshd.user().to_owned();

    // 1. Drive the console, then log in with the password.
    let console = format!(
        "boot_wait: 0\nboot_commands:\n  - wait: {{text: '{banner}', timeout: 180}}\n  \
         - type: 'echo \"automation $((6 * 7))\"; echo \"serial-$((40 + 2))\" > /dev/ttyS0'\n  - key: enter\n  \
         - wait: {{text: 'automation 42', timeout: 120}}\n{health}",
        banner = "vmkit test guest",
        health = health(&user, &format!("password: '{SSH_PASSWORD}'"), 3),
    );
    let script = dir.path().join("console.yaml");
    std::fs::write(&script, console).expect("write");
    let (code, v, stderr) = run(&script, &guest, &sshd);
    assert_eq!(code, Some(0), "{stderr}\nsshd log:\n{}", sshd.log());
    assert_eq!(v["steps"].as_array().map(Vec::len), Some(4));
    assert_eq!(v["health_check"]["outcome"], "passed");
    assert_eq!(v["health_check"]["attempts"].as_array().map(Vec::len), Some(1));
    let serial = std::fs::read_to_string(guest.serial_log_path()).expect("serial log");
    assert!(serial.contains("serial-42"), "the typed command did not run in the guest:\n{serial}");
    assert!(!stderr.contains(SSH_PASSWORD) && !v.to_string().contains(SSH_PASSWORD), "the SSH password leaked");

    // 2. The key variant.
    let script = dir.path().join("key.yaml");
    let key = format!("key_file: '{}'", sshd.private_key().display());
    std::fs::write(
        &script,
        format!("boot_wait: 0\nboot_commands:\n  - wait: 'vmkit test guest'\n{}", health(&user, &key, 3)),
    )
    .expect("write");
    let (code, v, stderr) = run(&script, &guest, &sshd);
    assert_eq!(code, Some(0), "{stderr}\nsshd log:\n{}", sshd.log());
    assert_eq!(v["health_check"]["outcome"], "passed");

    // 3. A wrong password: every configured attempt is made, then exit 1.
    let script = dir.path().join("wrong.yaml");
    std::fs::write(
        &script,
        format!(
            "boot_wait: 0\nboot_commands:\n  - wait: 'vmkit test guest'\n{}",
            health(&user, "password: 'not-it'", 2)
        ),
    )
    .expect("write");
    let (code, v, stderr) = run(&script, &guest, &sshd);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(v["outcome"], "failed");
    assert_eq!(v["steps"][0]["outcome"], "passed");
    let attempts = v["health_check"]["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2, "{v}");
    assert!(attempts.iter().all(|a| a["error"].as_str().is_some_and(|e| e.contains("refused"))), "{v}");
    assert!(!stderr.contains("not-it"));
}
