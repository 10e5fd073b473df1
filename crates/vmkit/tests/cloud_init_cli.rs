//! `vmkit cloud-init seed` as a user runs it: a seed that independent tools read, a generated key pair with a
//! private key of mode 0600, and exit 2 for bad input with nothing written.

use std::os::unix::fs::PermissionsExt;

use assert_cmd::Command;
use predicates::prelude::*;

#[test]
fn seed_with_generated_key_is_readable_and_the_key_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.iso");
    let keys = dir.path().join("keys");
    let files = dir.path().join("files");
    let motd = dir.path().join("motd");
    std::fs::write(&motd, "built by vmkit\n").unwrap();
    Command::cargo_bin("vmkit")
        .unwrap()
        .args(["cloud-init", "seed", "--hostname", "ci-box", "--user", "agent", "--package", "htop"])
        .arg("--write-file")
        .arg(format!("/etc/motd={}", motd.display()))
        .args(["--run", "touch /var/tmp/first-boot"])
        .arg("--key-dir")
        .arg(&keys)
        .arg("--files-dir")
        .arg(&files)
        .arg("--out")
        .arg(&seed)
        .assert()
        .success()
        .stdout(predicate::str::contains("private key:"));

    let private = keys.join("id_ed25519");
    assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o600);
    // ssh-keygen agrees it is a valid key and derives the same public key.
    let derived = std::process::Command::new("ssh-keygen").arg("-y").arg("-f").arg(&private).output().unwrap();
    assert!(derived.status.success(), "{}", String::from_utf8_lossy(&derived.stderr));
    let public = std::fs::read_to_string(keys.join("id_ed25519.pub")).unwrap();
    let derived = String::from_utf8(derived.stdout).unwrap();
    assert_eq!(
        public.split_whitespace().take(2).collect::<Vec<_>>(),
        derived.split_whitespace().take(2).collect::<Vec<_>>()
    );

    let user_data = std::fs::read_to_string(files.join("user-data")).unwrap();
    assert!(user_data.contains(public.trim()), "{user_data}");
    assert!(user_data.contains("built by vmkit"));
    let schema = std::process::Command::new("cloud-init")
        .args(["schema", "--config-file"])
        .arg(files.join("user-data"))
        .output()
        .unwrap();
    assert!(schema.status.success(), "{}", String::from_utf8_lossy(&schema.stdout));

    let blkid = std::process::Command::new("blkid").args(["-p", "-o", "export"]).arg(&seed).output().unwrap();
    let blkid = String::from_utf8_lossy(&blkid.stdout);
    assert!(blkid.contains("LABEL=cidata") && blkid.contains("TYPE=iso9660"), "{blkid}");
}

#[test]
fn vfat_seed_with_a_given_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("me.pub");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "me@host", "-f"])
        .arg(dir.path().join("me"))
        .status()
        .unwrap();
    assert!(status.success());
    let seed = dir.path().join("seed.img");
    Command::cargo_bin("vmkit")
        .unwrap()
        .args(["cloud-init", "seed", "--hostname", "box", "--user", "me", "--format", "vfat", "--ssh-key"])
        .arg(&key)
        .arg("--out")
        .arg(&seed)
        .assert()
        .success();
    let user_data =
        std::process::Command::new("mtype").arg("-i").arg(&seed).arg("::/user-data").output().unwrap().stdout;
    let user_data = String::from_utf8(user_data).unwrap();
    assert!(user_data.contains("me@host"), "{user_data}");
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.iso");
    let keys = dir.path().join("keys");
    for (host, user) in [("bad_host", "agent"), ("ok", "Bad User"), ("ok", "root")] {
        Command::cargo_bin("vmkit")
            .unwrap()
            .args(["cloud-init", "seed", "--hostname", host, "--user", user, "--key-dir"])
            .arg(&keys)
            .arg("--out")
            .arg(&seed)
            .assert()
            .code(2);
    }
    // No key at all.
    Command::cargo_bin("vmkit")
        .unwrap()
        .args(["cloud-init", "seed", "--hostname", "ok", "--user", "agent", "--out"])
        .arg(&seed)
        .assert()
        .code(2);
    assert!(!seed.exists() && !keys.exists());
}

#[test]
fn key_dir_never_overwrites_a_key_and_a_failed_seed_writes_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.iso");
    let keys = dir.path().join("keys");
    let seed_cmd = |extra: &[&str]| {
        let mut cmd = Command::cargo_bin("vmkit").unwrap();
        cmd.args(["cloud-init", "seed", "--hostname", "ok", "--user", "agent", "--key-dir"])
            .arg(&keys)
            .arg("--out")
            .arg(&seed)
            .args(extra);
        cmd
    };
    // A command that fails after the key was (formerly) generated leaves no key behind.
    seed_cmd(&["--write-file", "/etc/x=/nonexistent/file"]).assert().code(2);
    assert!(!keys.join("id_ed25519").exists() && !keys.join("id_ed25519.pub").exists(), "a failed seed wrote a key");
    assert!(!seed.exists());

    // An existing key is never replaced, and nothing else is written either.
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("id_ed25519"), "precious\n").unwrap();
    seed_cmd(&[]).assert().code(2).stderr(predicate::str::contains("never overwrites a key"));
    assert_eq!(std::fs::read_to_string(keys.join("id_ed25519")).unwrap(), "precious\n");
    assert!(!keys.join("id_ed25519.pub").exists() && !seed.exists());

    // A free directory gets its pair.
    std::fs::remove_file(keys.join("id_ed25519")).unwrap();
    seed_cmd(&[]).assert().success();
    assert!(keys.join("id_ed25519").is_file() && keys.join("id_ed25519.pub").is_file() && seed.is_file());
}
