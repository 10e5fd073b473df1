//! Hostile input on the command line: every kind of file a user names is read with a bound, so an endless file
//! (`/dev/zero`) is refused at once with exit 2 and a message naming it, instead of a hang that eats memory.

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;

fn vmkit() -> Command {
    let mut cmd = Command::cargo_bin("vmkit").expect("vmkit binary");
    cmd.timeout(Duration::from_secs(30));
    cmd
}

fn assert_refused(cmd: &mut Command, what: &str) {
    let started = std::time::Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert!(stderr.contains("/dev/zero") && stderr.contains("larger than"), "{what}: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "{what} took {:?}", started.elapsed());
}

#[test]
fn endless_files_of_every_kind_are_refused_with_exit_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    let script = tmp.path().join("ok.yaml");
    std::fs::write(&script, "boot_commands:\n  - delay: 0\n").expect("write");
    let public = tmp.path().join("id.pub");
    std::fs::write(
        &public,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ me@host\n",
    )
    .expect("write");
    let recipe = tmp.path().join("r.toml");
    std::fs::write(
        &recipe,
        "name = \"r\"\nusername = \"agent\"\nsource = { debian = { suite = \"bookworm\" } }\n\
         [provision]\nfiles = [{ path = \"/etc/x\", source = \"/dev/zero\" }]\n",
    )
    .expect("write");
    let zero = Path::new("/dev/zero");

    assert_refused(vmkit().args(["automate", "check"]).arg(zero), "automate check");
    assert_refused(vmkit().args(["automate", "run", "--vnc", "127.0.0.1:1", "--config"]).arg(zero), "automate script");
    assert_refused(
        vmkit()
            .args(["automate", "run", "--vnc", "127.0.0.1:1", "--config"])
            .arg(&script)
            .arg("--password-file")
            .arg(zero),
        "automate password file",
    );
    assert_refused(
        Command::cargo_bin("yaml-automation-runner")
            .expect("alias")
            .timeout(Duration::from_secs(30))
            .arg("--config")
            .arg(&script)
            .arg("--password-file")
            .arg(zero),
        "runner password file",
    );
    assert_refused(
        vmkit()
            .args(["screen", "--vnc", "127.0.0.1:1", "--password-file"])
            .arg(zero)
            .args(["capture", "-o"])
            .arg(tmp.path().join("s.png")),
        "screen password file",
    );
    assert_refused(vmkit().args(["desktop", "xml"]).arg(zero), "desktop config");
    assert_refused(vmkit().args(["image", "build"]).arg(zero), "image recipe");
    assert_refused(vmkit().args(["image", "build"]).arg(&recipe), "recipe file source");
    assert_refused(
        vmkit()
            .args(["cloud-init", "seed", "--hostname", "h", "--user", "agent", "--ssh-key"])
            .arg(zero)
            .arg("--out")
            .arg(tmp.path().join("a.iso")),
        "public key file",
    );
    assert_refused(
        vmkit()
            .args(["cloud-init", "seed", "--hostname", "h", "--user", "agent", "--ssh-key"])
            .arg(&public)
            .arg("--write-file")
            .arg("/etc/x=/dev/zero")
            .arg("--out")
            .arg(tmp.path().join("b.iso")),
        "write-file content",
    );
}
