//! The README's main job, end to end, under TCG on real components: `vmkit image build examples/debian-12.toml`
//! (debootstrap from the host's Debian mirror, QEMU, cloud-init, OpenSSH in the guest).
//!
//! One test function walks the whole life of an image so that CI boots as few guests as possible (a TCG boot
//! costs tens of seconds on two cores): a build whose QEMU dies mid-boot fails at once; a build interrupted with
//! Ctrl-C and one killed with SIGKILL mid-boot leave no output directory (and no QEMU); the next build succeeds; the image accepts the generated key (vmkit's SSH
//! client and OpenSSH's), refuses passwords, has cloud-init done, the configured hostname and user, and ran the
//! recipe's provisioning; `vmkit image test` passes (and then answers from its cache); a second build is a cache
//! hit. The Debian base is cached in the testbed cache, so only the first run ever pays for debootstrap.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn vmkit() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("vmkit"))
}

fn recipe() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/debian-12.toml")
}

fn cache() -> PathBuf {
    testbed_guests::guest::cache_dir().join("vmkit-cache")
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn partial_dirs(parent: &Path, name: &str) -> Vec<PathBuf> {
    std::fs::read_dir(parent)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!(".{name}.partial-")))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn alive(pid: u32) -> bool {
    // A zombie has no cmdline; a live QEMU has one.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

/// Starts a build of `out`, waits until the guest's kernel is booting, sends `signal` to the build (or, with
/// `to_qemu`, SIGKILL to its QEMU), and returns the build's exit code, the pid of its QEMU, its stderr and how long
/// it took to end after the signal.
fn interrupt_mid_boot(out: &Path, signal: &str, to_qemu: bool) -> (Option<i32>, u32, String, Duration) {
    let parent = out.parent().unwrap();
    let name = out.file_name().unwrap().to_string_lossy().into_owned();
    let log = parent.join(format!("{name}-{signal}.log"));
    let mut child = vmkit()
        .args(["image", "build"])
        .arg(recipe())
        .arg("--out")
        .arg(out)
        .arg("--cache-dir")
        .arg(cache())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Up to 30 minutes: the first run on a machine builds the Debian base first.
    let deadline = Instant::now() + Duration::from_secs(1800);
    let qemu_pid = loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the build ended early: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        assert!(
            Instant::now() < deadline,
            "the guest never started booting: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        let booting = partial_dirs(parent, &name).into_iter().find_map(|dir| {
            let serial = std::fs::read_to_string(dir.join("serial.log")).ok()?;
            let pid = std::fs::read_to_string(dir.join("qemu.pid")).ok()?.trim().parse::<u32>().ok()?;
            serial.contains("Linux version").then_some(pid)
        });
        if let Some(pid) = booting {
            break pid;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let victim = if to_qemu { qemu_pid } else { child.id() };
    let status = Command::new("kill").args(["-s", signal, &victim.to_string()]).status().unwrap();
    assert!(status.success());
    let signalled = Instant::now();
    // Generous, yet far below the build's 20-minute SSH timeout: the build must react to the event itself.
    let deadline = signalled + Duration::from_secs(120);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(Instant::now() < deadline, "the build did not stop after SIG{signal}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let reacted = signalled.elapsed();
    assert!(!out.exists(), "SIG{signal} mid-boot left an output directory");
    (code, qemu_pid, std::fs::read_to_string(&log).unwrap_or_default(), reacted)
}

fn ssh_cli(port: u16, key: &Path, extra: &[&str], command: &str) -> (i32, String, String) {
    run(Command::new("ssh")
        .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"])
        .args(["-o", "ConnectTimeout=30", "-p", &port.to_string(), "-i"])
        .arg(key)
        .args(extra)
        .arg("agent@127.0.0.1")
        .arg(command))
}

#[test]
fn e2e_debian_image_lifecycle() {
    let parent = tempfile::Builder::new().prefix("vmkit-e2e-image-").tempdir().unwrap();
    let out = parent.path().join("debian-12");

    // A QEMU that dies mid-boot ends the build at once (not at the SSH timeout), with QEMU's exit in the error.
    let (code, _, stderr, reacted) = interrupt_mid_boot(&out, "KILL", true);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("QEMU exited while waiting for SSH") && stderr.contains("signal 9"), "{stderr}");
    assert!(partial_dirs(parent.path(), "debian-12").is_empty(), "a failed build left a work directory");
    eprintln!("the build noticed QEMU's death after {reacted:?}");

    // Ctrl-C mid-boot: exit 130, nothing left behind, QEMU gone.
    let (code, qemu_pid, _, _) = interrupt_mid_boot(&out, "INT", false);
    assert_eq!(code, Some(130));
    assert!(partial_dirs(parent.path(), "debian-12").is_empty(), "Ctrl-C left a work directory");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(qemu_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(qemu_pid), "Ctrl-C left QEMU running");

    // SIGKILL mid-boot: no output directory; the next build cleans up what the killed one could not.
    let (code, orphan, _, _) = interrupt_mid_boot(&out, "KILL", false);
    assert_eq!(code, None, "killed by a signal");

    let started = Instant::now();
    let (code, stdout, stderr) =
        run(vmkit().args(["image", "build"]).arg(recipe()).arg("--out").arg(&out).arg("--cache-dir").arg(cache()));
    assert_eq!(code, 0, "build failed:\n{stderr}");
    eprintln!("build took {:.0}s:\n{stderr}", started.elapsed().as_secs_f64());
    assert!(
        stdout.contains(": built") && stdout.contains("ssh -i") && stdout.contains("-p 2222 agent@127.0.0.1"),
        "{stdout}"
    );
    assert!(!alive(orphan), "the killed build's QEMU is still running after the next build");
    assert!(partial_dirs(parent.path(), "debian-12").is_empty(), "the killed build's work directory is still there");

    // The output directory.
    let manifest = images::manifest::Manifest::load(&out).unwrap();
    for file in ["disk.qcow2", "seed.iso", "vmlinuz", "initrd.img", "id_ed25519", "id_ed25519.pub", "run", "serial.log"]
    {
        assert!(manifest.outputs.contains_key(file), "manifest lacks {file}: {:?}", manifest.outputs.keys());
        assert!(out.join(file).is_file(), "{file} missing");
    }
    assert!(manifest.changed_outputs(&out).is_empty(), "every output matches its SHA-256");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(out.join("id_ed25519")).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(out.join("run")).unwrap().permissions().mode() & 0o111, 0o111);
    assert!(run(Command::new("sh").arg("-n").arg(out.join("run"))).0 == 0, "run is valid sh");
    let run_script = std::fs::read_to_string(out.join("run")).unwrap();
    assert!(run_script.contains("hostfwd=tcp:127.0.0.1:2222-:22"), "{run_script}");
    assert_ne!(manifest.shutdown, "kill", "the guest powered off cleanly");
    let info = run(Command::new("qemu-img").args(["info", "--output=json"]).arg(out.join("disk.qcow2")));
    assert!(!info.1.contains("backing-filename"), "the disk stands alone: {}", info.1);

    // Boot it and look around.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let booted = images::boottest::BootedImage::start(&out, &cache(), None).await.unwrap();
        booted.wait_ssh(Duration::from_secs(1200)).await.unwrap();
        let port = booted.ssh.target.port;
        let key = out.join("id_ed25519");
        let q = |cmd: &'static str| {
            let ssh = booted.ssh.clone();
            async move { ssh.run(cmd, Duration::from_secs(600), 2).await.unwrap() }
        };
        assert_eq!(q("id -un").await.trim(), "agent");
        assert_eq!(q("hostname").await.trim(), "debian-12");
        assert!(q("cloud-init status --wait").await.contains("status: done"));
        assert_eq!(q("sudo -n cat /etc/vmkit-image").await.trim(), "vmkit image", "the provisioning command ran");
        assert!(q("cat /etc/motd").await.contains("Built by vmkit"), "the recipe's file was written");
        assert!(
            q("df -B1 --output=size / | tail -1").await.trim().parse::<u64>().unwrap() > 15 << 30,
            "root grew to diskSize"
        );

        // OpenSSH's client agrees: the key works, a password is not even offered.
        let (code, stdout, stderr) =
            tokio::task::spawn_blocking(move || ssh_cli(port, &key, &[], "echo key-ok")).await.unwrap();
        assert_eq!((code, stdout.trim()), (0, "key-ok"), "{stderr}");
        let (code, _, stderr) = tokio::task::spawn_blocking(move || {
            ssh_cli(
                port,
                Path::new("/dev/null"),
                &["-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive"],
                "true",
            )
        })
        .await
        .unwrap();
        assert_ne!(code, 0);
        assert!(stderr.contains("Permission denied (publickey)"), "password login must be refused: {stderr}");
        // And vmkit's own client, trying a password: rejected, only publickey on offer.
        let check = ssh::HealthCheck {
            user: "agent".into(),
            password: Some(ssh::Secret::new("agent")),
            key_file: None,
            host: None,
            port: None,
            command: "true".into(),
            timeout: Duration::from_secs(60),
            retries: 1,
            retry_delay: Duration::ZERO,
        };
        let report = ssh::run_health_check(&check, &booted.ssh.target, |_| {}).await;
        let err =
            report.attempts.last().and_then(|a| a.result.as_ref().err()).map(ToString::to_string).unwrap_or_default();
        assert!(err.contains("refused") && err.contains("offers publickey"), "{err}");

        let stopped = booted.shutdown().await.unwrap();
        assert_ne!(stopped.by, qemu::StopStep::Kill, "the booted image powers off when asked");
    });

    // The boot test, then its cached answer.
    let (code, stdout, stderr) =
        run(vmkit().args(["image", "test"]).arg(&out).arg("--cache-dir").arg(cache()).arg("--no-cache"));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("passed") && stdout.contains("hostname debian-12"), "{stdout}");
    // The image was generalised: the build boot's identity is recorded, and the VM made its own.
    let built = manifest.build_identity.as_ref().expect("the manifest records the build boot's identity");
    assert!(!built.host_keys.is_empty());
    assert!(stdout.contains("its own machine id and SSH host keys"), "{stdout}");

    // `run` keeps the VM's changes beside the image: its first start makes IMAGE.state with an overlay on a
    // pinned copy of the disk (QEMU is only asked for its version here; the boot itself is the boot test's).
    let (code, _, stderr) = run(Command::new(out.join("run")).arg("-version"));
    assert_eq!(code, 0, "{stderr}");
    let state = qemu::VmState::dir_for(&out);
    assert!(stderr.contains("kept in"), "{stderr}");
    let build = std::fs::read_to_string(state.join("build")).unwrap();
    let info = run(Command::new("qemu-img").args(["info", "--output=json"]).arg(state.join("disk.qcow2")));
    assert!(info.1.contains(&format!("\"backing-filename\": \"{}/disk.qcow2\"", build.trim())), "{}", info.1);
    assert!(manifest.changed_outputs(&out).is_empty(), "the image is unchanged");
    let (code, stdout, _) = run(vmkit().args(["image", "test"]).arg(&out).arg("--cache-dir").arg(cache()));
    assert_eq!(code, 0);
    assert!(stdout.contains("cached"), "{stdout}");

    // Same inputs: nothing to do, nothing touched.
    let before = std::fs::read(out.join("manifest.json")).unwrap();
    let (code, stdout, stderr) =
        run(vmkit().args(["image", "build"]).arg(recipe()).arg("--out").arg(&out).arg("--cache-dir").arg(cache()));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("up to date"), "{stdout}");
    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), before);

    std::fs::remove_dir_all(&state).unwrap();

    // A tampered image fails its test.
    std::fs::write(out.join("seed.iso"), b"not the seed").unwrap();
    let (code, stdout, _) = run(vmkit().args(["image", "test"]).arg(&out).arg("--cache-dir").arg(cache()));
    assert_eq!(code, 1);
    assert!(stdout.contains("FAILED") && stdout.contains("seed.iso"), "{stdout}");
}
