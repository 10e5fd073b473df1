//! `vmkit desktop` and `vmkit vm` as a user runs them, against a real libvirt daemon (started by hand when it is
//! not running) and a real guest: a Debian kernel with a busybox initramfs booted by libvirt under QEMU's
//! emulator (`domainType = "qemu"`), so the test does not depend on a usable KVM.
//!
//! The guest test (`e2e_*`) walks the life of a desktop VM: plan, apply (volume created, domain defined), a
//! second apply with nothing to do, start, status, memstats, setmem, its DHCP address, a graceful stop, a
//! forced stop, and `apply --prune` undefining a VM removed from the file while its disk stays. The config with
//! twenty-odd mistakes checks that each is reported at its line:col and that nothing reaches libvirt.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;
use testbed::libvirt::{Cleanup, SYSTEM_URI, ensure_libvirtd, ensure_network, unique_name, virsh};

fn vmkit() -> Command {
    Command::cargo_bin("vmkit").unwrap()
}

fn examples(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/desktop").join(name)
}

/// Runs vmkit and returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = vmkit().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "vmkit {} failed ({code}):\n{out}\n{err}", args.join(" "));
    out
}

#[test]
fn config_mistakes_are_all_reported_at_their_line_and_column_and_nothing_is_applied() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/desktop-mistakes.toml");
    let f = file.display().to_string();
    let (code, out, err) = run(&["desktop", "apply", &f, "--connect", SYSTEM_URI]);
    assert_eq!(code, 2, "{out}\n{err}");
    let expected: [(u32, u32, &str); 23] = [
        (3, 11, "profile: \"sometimes\" is not one of \"occasional\", \"always-on\""),
        (4, 37, "hugepages.size: \"4M\" is not one of \"2M\", \"1G\""),
        (5, 22, "defaultStoragePath: storage path \"relative/path\" must be an absolute path"),
        (6, 45, "gpuPassthrough.pciIDs[0]: invalid PCI ID \"10de-2484\""),
        (6, 71, "gpuPassthrough.cpuVendor: \"via\" is not one of \"intel\", \"amd\""),
        (7, 51, "lookingGlass.sharedMemoryMB: 100 is not a power of two"),
        (8, 1, "unknown option `firewallPort`; did you mean `firewallPorts`?"),
        (11, 10, "vms.vmkit-mistakes-win.memory: invalid size \"16 GB\": there is a space before the unit"),
        (13, 35, "vms.vmkit-mistakes-win.cpuPinning has 5 entries but vcpus is 4"),
        (
            14,
            26,
            "vms.vmkit-mistakes-win.sharedFolders.home: shared folder \"/nonexistent/vmkit-share\" does not exist",
        ),
        (15, 11, "vms.vmkit-mistakes-win.display = \"looking-glass\" needs lookingGlass.enable = true"),
        (17, 14, "vms.vmkit-mistakes-win.secureBoot: macOS guests boot through OpenCore"),
        (18, 8, "vms.vmkit-mistakes-win.uuid: invalid UUID \"not-a-uuid\""),
        (
            19,
            14,
            "vms.vmkit-mistakes-win.macAddress: invalid MAC address \"01:00:5e:00:00:01\": it is a multicast address",
        ),
        (20, 15, "vms.vmkit-mistakes-win.pciDevices[0]: invalid PCI address \"0000:01:00\""),
        (21, 17, "vms.vmkit-mistakes-win.extraDevices: not well-formed XML: <watchdog> is never closed"),
        (22, 14, "vms.vmkit-mistakes-win.videoModel: \"voodoo\" is not one of \"virtio\""),
        (23, 32, "vms.vmkit-mistakes-win.memballoon.statsInterval: -5 is out of range (0 to 86400)"),
        (24, 7, "vms.vmkit-mistakes-win.tpm: expected true or false, found a string"),
        (26, 6, "invalid VM name \"vmkit/mistakes\": libvirt rejects '/' in domain names"),
        (31, 12, "vms.vmkit-mistakes-a.diskSize: 0 is too small (at least 1M)"),
        (
            34,
            8,
            "vms.vmkit-mistakes-b.uuid: 4dea22b3-1d52-d8f3-2516-782e98ab3fa0 is already the UUID of vms.vmkit-mistakes-a",
        ),
        (35, 15, "vms.vmkit-mistakes-b.cpuPinning[0]: invalid cpuset \"3-1\": range 3-1 runs backwards"),
    ];
    assert!(err.contains(&format!("{f} has {} errors:", expected.len())), "{err}");
    let error_lines: Vec<&str> = err.lines().filter(|l| l.trim_start().starts_with(&format!("{f}:"))).collect();
    assert_eq!(error_lines.len(), expected.len(), "{err}");
    for (line, col, msg) in expected {
        let prefix = format!("{f}:{line}:{col}: error: ");
        assert!(
            error_lines.iter().any(|l| l.trim_start().starts_with(&prefix) && l.contains(msg)),
            "missing {prefix}{msg}\nin:\n{err}"
        );
    }
    // Nothing reached libvirt: none of the file's VMs exists.
    ensure_libvirtd().unwrap();
    for vm in ["vmkit-mistakes-win", "vmkit-mistakes-a", "vmkit-mistakes-b"] {
        assert!(virsh(&["dominfo", vm], Duration::from_secs(60)).is_err(), "{vm} was defined");
    }
    // plan and xml reject the file the same way.
    for sub in ["plan", "xml"] {
        vmkit()
            .args(["desktop", sub, &f])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!("{f} has 23 errors")));
    }
}

#[test]
fn syntax_errors_in_toml_and_json_have_positions() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("c.toml");
    std::fs::write(&toml, "enable = true\n[vms.a]\nmemory = = \"4G\"\n").unwrap();
    vmkit()
        .args(["desktop", "xml"])
        .arg(&toml)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("{}:3:10: error: TOML syntax", toml.display())));
    let json = dir.path().join("c.json");
    std::fs::write(&json, "{\"enable\": true,\n \"vms\": {\"a\": {\"memory\": \"4G\",}}}").unwrap();
    vmkit()
        .args(["desktop", "xml"])
        .arg(&json)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("{}:2:31: error: JSON syntax", json.display())));
    // The JSON form of a config works like the TOML form.
    std::fs::write(&json, "{\"enable\": true, \"vms\": {\"a\": {\"memory\": \"4G\", \"osType\": \"windows\"}}}")
        .unwrap();
    vmkit()
        .args(["desktop", "xml", "--validate"])
        .arg(&json)
        .assert()
        .success()
        .stdout(predicate::str::contains("<smm state=\"on\"/>"));
}

#[test]
fn xml_prints_valid_domains() {
    let out = ok(&["desktop", "xml", examples("windows.toml").to_str().unwrap(), "--skip-path-checks", "--validate"]);
    assert!(out.starts_with("<domain type=\"kvm\">"), "{out}");
    assert!(out.contains(
        "<loader readonly=\"yes\" secure=\"yes\" type=\"pflash\">/usr/share/OVMF/OVMF_CODE_4M.secboot.fd</loader>"
    ));
    let one = ok(&["desktop", "xml", examples("linux-shares.toml").to_str().unwrap(), "dev", "--skip-path-checks"]);
    assert_eq!(one.matches("<filesystem ").count(), 2, "{one}");
    vmkit()
        .args(["desktop", "xml", examples("linux-shares.toml").to_str().unwrap(), "nope", "--skip-path-checks"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no VM \"nope\""));
}

#[test]
fn host_plan_lists_settings_and_checks_a_host() {
    // A fake host without huge pages or the passed-through devices: the checks fail, exit 1.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("sys/devices/system/cpu")).unwrap();
    std::fs::write(root.path().join("sys/devices/system/cpu/online"), "0-15\n").unwrap();
    let (code, out, err) = run(&[
        "desktop",
        "host-plan",
        examples("looking-glass.toml").to_str().unwrap(),
        "--skip-path-checks",
        "--host-root",
        root.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}\n{err}");
    for want in [
        "hugepagesz=1G",
        "hugepages=16",
        "amd_iommu=on",
        "iommu=pt",
        "vfio-pci.ids=10de:2484,10de:228b",
        "f /dev/shm/looking-glass 0660 alice kvm -",
        "FAIL  hugepages 1G: the kernel offers no 1G huge pages",
        "FAIL  pci 0000:0b:00.0 (gaming): no such device on this host",
        "ok    cpu pinning gaming: host CPUs 4-7,12-15 are online",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // This host with a config that needs nothing special: every check passes, exit 0; JSON form too.
    let out =
        ok(&["desktop", "host-plan", examples("kernel-boot.toml").to_str().unwrap(), "--skip-path-checks", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["checks"].as_array().unwrap().iter().all(|c| c["status"] != "fail"), "{out}");
    // KVM without the probe is reported honestly as not probed.
    let out = ok(&[
        "desktop",
        "host-plan",
        examples("vnc-only.toml").to_str().unwrap(),
        "--skip-path-checks",
        "--no-kvm-probe",
    ]);
    assert!(out.contains("/dev/kvm present (not probed"), "{out}");
}

#[test]
fn launcher_scripts_call_vmkit_vm() {
    // libvirt's test driver (test:///default, in-process) has a running domain called "test".
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "enable = true\n[vms.test]\nmemory = \"1G\"\n[vms.gone]\nenable = false\n").unwrap();
    let bin = dir.path().join("bin");
    let out = ok(&[
        "desktop",
        "scripts",
        cfg.to_str().unwrap(),
        bin.to_str().unwrap(),
        "--connect",
        "test:///default",
        "--vmkit",
        assert_cmd::cargo::cargo_bin("vmkit").to_str().unwrap(),
    ]);
    assert!(out.contains("vm-test"), "{out}");
    assert!(!bin.join("vm-gone").exists());
    let script = bin.join("vm-test");
    assert_eq!(std::fs::metadata(&script).unwrap().permissions().mode() & 0o777, 0o755);
    let status = std::process::Command::new(&script).arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}{}", String::from_utf8_lossy(&status.stderr));
    assert!(text.contains("state:       running"), "{text}");
    let missing = std::process::Command::new(&script).args(["setmem", "16 GB"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn ssh_uses_the_configs_address_user_and_key() {
    // A real sshd on 127.0.0.1 stands in for the guest; the VM itself is libvirt's test driver's "test" domain.
    let sshd = testbed::Sshd::start("not-used").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "enable = true\n[vms.test]\nssh = {{ host = \"127.0.0.1\", port = {}, user = \"{}\", identityFile = \"{}\" }}\n",
            sshd.port(),
            sshd.user(),
            sshd.private_key().display()
        ),
    )
    .unwrap();
    let out = ok(&[
        "vm",
        "--connect",
        "test:///default",
        "--config",
        cfg.to_str().unwrap(),
        "test",
        "ssh",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "--",
        "echo",
        "ssh-$((6*7))-ok",
        "$(id -un)",
    ]);
    assert_eq!(out.trim(), format!("ssh-42-ok {}", sshd.user()), "{}", sshd.log());
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn memstats(vm: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let (code, out, _) = run(&["vm", vm, "memstats", "--json"]);
    if code != 0 {
        return None;
    }
    serde_json::from_str::<serde_json::Value>(&out).ok()?.as_object().cloned()
}

fn status(vm: &str) -> serde_json::Value {
    serde_json::from_str(&ok(&["vm", vm, "status", "--json"])).unwrap()
}

/// Runs `vmkit vm NAME console` under `script` (a pty), types a command into the guest's serial shell, waits for
/// its output and leaves with Ctrl+].
fn console_runs_a_command(vm: &str) {
    use std::io::Read;
    use std::sync::{Arc, Mutex};
    let bin = assert_cmd::cargo::cargo_bin("vmkit");
    let inner = format!("{} vm {vm} console", bin.display());
    let mut child = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &inner, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = Arc::clone(&seen);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    wait_for("virsh console to connect", Duration::from_secs(60), || {
        seen.lock().unwrap().contains("Escape character").then_some(())
    });
    // The guest echoes what it reads; the marker is computed by the guest's shell, so seeing the result proves
    // the command ran there.
    stdin.write_all(b"\recho console-$((6 * 7))-ok\r").unwrap();
    wait_for("the command's output on the console", Duration::from_secs(60), || {
        seen.lock().unwrap().contains("console-42-ok").then_some(())
    });
    stdin.write_all(&[0x1d]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "virsh console did not leave on Ctrl+]:\n{}", seen.lock().unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stdin);
    let _ = reader.join();
}

#[test]
fn e2e_a_small_domain_lives_through_the_cli() {
    ensure_libvirtd().unwrap();
    ensure_network("default").unwrap();

    // The guest: Debian's kernel and a busybox initramfs with virtio_balloon, virtio_net and acpid.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let image = rt.block_on(testbed_guests::guest::build_image(Default::default())).unwrap();

    // Files QEMU reads (it runs as libvirt-qemu) live in a world-readable directory.
    let dir = tempfile::Builder::new().prefix("vmkit-desktop-e2e-").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let kernel = dir.path().join("vmlinuz");
    let initrd = dir.path().join("initrd.cpio");
    std::fs::copy(&image.kernel, &kernel).unwrap();
    std::fs::copy(&image.initrd, &initrd).unwrap();
    for f in [&kernel, &initrd] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    let tag = unique_name("vmkit-e2e");
    let tiny = format!("{tag}-tiny");
    let other = format!("{tag}-other");
    let pool_dir = dir.path().join("pool");
    let _cleanup = Cleanup { domains: vec![tiny.clone(), other.clone()], pool: tag.clone() };
    let head = format!(
        "enable = true\ndomainType = \"qemu\"\ndefaultStoragePool = \"{tag}\"\ndefaultStoragePath = \"{}\"\n\n\
         [vms.{tiny}]\nmemory = \"256M\"\nvcpus = 1\nfirmware = \"bios\"\ndisplay = \"vnc\"\ndiskSize = \"64M\"\n\
         directBoot = {{ kernel = \"{}\", initrd = \"{}\", cmdline = \"console=ttyS0 panic=-1\" }}\n\
         memballoon = {{ statsInterval = 1 }}\n",
        pool_dir.display(),
        kernel.display(),
        initrd.display()
    );
    let other_vm =
        format!("\n[vms.{other}]\nmemory = \"128M\"\nfirmware = \"bios\"\nnetwork = \"none\"\ndiskSize = \"16M\"\n");
    let cfg = dir.path().join("desktop.toml");
    std::fs::write(&cfg, format!("{head}{other_vm}")).unwrap();
    let cfg = cfg.to_str().unwrap().to_owned();

    // plan, apply, and a second apply with nothing to do.
    let plan = ok(&["desktop", "plan", &cfg]);
    for want in [
        format!("+ create storage pool {tag}"),
        format!("+ create volume {tag}/{tiny}.qcow2 (64M, qcow2) for {tiny}"),
        format!("+ define {tiny}"),
        format!("+ define {other}"),
    ] {
        assert!(plan.contains(&want), "missing {want:?} in:\n{plan}");
    }
    let applied = ok(&["desktop", "apply", &cfg]);
    assert!(applied.contains(&format!("done: define {tiny}")), "{applied}");
    assert!(pool_dir.join(format!("{tiny}.qcow2")).is_file());
    let again = ok(&["desktop", "apply", &cfg]);
    assert!(again.starts_with("No changes: 2 VM(s) already as configured."), "{again}");

    // start; wait for the balloon driver's statistics (the guest is up, acpid runs right after its modules).
    assert!(ok(&["vm", &tiny, "start"]).contains("started"));
    assert!(ok(&["vm", &tiny, "start"]).contains("already running"));
    let stats = wait_for("the guest's balloon statistics", Duration::from_secs(240), || {
        memstats(&tiny).filter(|m| m.contains_key("usable") && m.contains_key("available"))
    });
    assert_eq!(stats["actual"], 262_144, "{stats:?}");
    std::thread::sleep(Duration::from_secs(3));

    let s = status(&tiny);
    assert_eq!(s["state"], "running");
    assert_eq!(s["managed"], true);
    assert_eq!(s["max_memory_kib"], 262_144);
    let graphics = s["graphics"][0].as_str().unwrap_or_default().to_owned();
    assert!(graphics.starts_with("vnc://127.0.0.1:"), "{s}");
    let console = s["console"].as_str().unwrap().to_owned();

    // Nothing changes while it runs either.
    assert!(ok(&["desktop", "apply", &cfg]).starts_with("No changes"));

    // setmem: the balloon inflates to the new target; above the maximum is refused.
    assert!(ok(&["vm", &tiny, "setmem", "192M"]).contains("memory set to 192M"));
    wait_for("the balloon to reach 192M", Duration::from_secs(120), || {
        memstats(&tiny).filter(|m| m.get("actual").and_then(serde_json::Value::as_u64) == Some(196_608))
    });
    vmkit().args(["vm", &tiny, "setmem", "1G"]).assert().code(2).stderr(predicate::str::contains("maximum memory"));

    // The guest asks the default network for an address on its serial console; `vm address` finds the lease.
    let mut tty = std::fs::OpenOptions::new().write(true).open(&console).unwrap();
    tty.write_all(b"\nip link set eth0 up; udhcpc -i eth0 -n -q -t 10\n").unwrap();
    let addr = wait_for("a DHCP lease", Duration::from_secs(120), || {
        let (code, out, _) = run(&["vm", &tiny, "address"]);
        (code == 0).then(|| out.lines().next().unwrap_or_default().to_owned())
    });
    assert!(addr.starts_with("192.168.122."), "{addr}");

    drop(tty);

    // view: virt-viewer on an X display connects to the domain's VNC server (QEMU lists it as a client).
    let display = testbed::Display::xvnc(1024, 768).unwrap();
    let mut cmd = display.command(assert_cmd::cargo::cargo_bin("vmkit").to_str().unwrap());
    cmd.args(["vm", &tiny, "view"]);
    let viewer = display.spawn("vmkit-vm-view", cmd).unwrap();
    display.wait_for_window(&tiny, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e:#}\n{}", viewer.log()));
    wait_for("virt-viewer's VNC connection", Duration::from_secs(60), || {
        let info = virsh(&["qemu-monitor-command", &tiny, "--hmp", "info vnc"], Duration::from_secs(30)).ok()?;
        info.contains("Client:").then_some(())
    });
    drop(viewer);
    drop(display);

    // console: `virsh console` on the serial port (it wants a terminal: `script` gives it one).
    console_runs_a_command(&tiny);

    // A graceful stop (ACPI power button → acpid → poweroff), then start again and pull the plug.
    assert!(ok(&["vm", &tiny, "stop", "--timeout", "180"]).contains("stopped"));
    assert_eq!(status(&tiny)["state"], "shut off");
    ok(&["vm", &tiny, "start"]);
    assert!(ok(&["vm", &tiny, "force-stop"]).contains("stopped (forced)"));
    assert_eq!(status(&tiny)["state"], "shut off");
    assert!(ok(&["vm", &tiny, "force-stop"]).contains("not running"));
    vmkit().args(["vm", &tiny, "memstats"]).assert().code(2).stderr(predicate::str::contains("not running"));

    // The other VM leaves the file: kept without --prune, undefined with it; its disk stays.
    std::fs::write(&cfg, &head).unwrap();
    let kept = ok(&["desktop", "apply", &cfg]);
    assert!(
        kept.contains(&format!("kept (managed by vmkit but not in the file; --prune undefines them): {other}")),
        "{kept}"
    );
    assert!(virsh(&["dominfo", &other], Duration::from_secs(60)).is_ok());
    let plan = ok(&["desktop", "plan", &cfg, "--prune"]);
    assert!(plan.contains(&format!("- undefine {other}")), "{plan}");
    let pruned = ok(&["desktop", "apply", &cfg, "--prune"]);
    assert!(pruned.contains(&format!("done: undefine {other}")), "{pruned}");
    assert!(virsh(&["dominfo", &other], Duration::from_secs(60)).is_err());
    assert!(pool_dir.join(format!("{other}.qcow2")).is_file(), "the pruned VM's disk was deleted");
    assert!(ok(&["desktop", "apply", &cfg, "--prune"]).starts_with("No changes: 1 VM(s) already as configured."));
    vmkit().args(["vm", &other, "status"]).assert().code(2).stderr(predicate::str::contains("no VM named"));
}

/// `--connect qemu+ssh://…`: libvirt's own SSH transport to a real sshd (root with a key, on 127.0.0.1), whose
/// far side reaches this machine's libvirt daemon; plan, apply, a second apply and `vm status` go through it.
#[test]
fn plan_apply_and_status_work_over_qemu_ssh() {
    ensure_libvirtd().unwrap();
    let sshd = testbed::Sshd::start_with_root("unused-password").unwrap();
    let dir = testbed::scratch_dir("desktop-remote").unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // libvirt runs `ssh` itself; this one keeps the test's throwaway host key out of the user's known_hosts.
    let ssh = dir.path().join("ssh");
    std::fs::write(
        &ssh,
        "#!/bin/sh\nexec ssh -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let uri = format!(
        "qemu+ssh://root@127.0.0.1:{}/system?keyfile={}&no_tty=1&command={}",
        sshd.port(),
        sshd.private_key().display(),
        ssh.display()
    );

    let tag = unique_name("vmkit-remote");
    let vm = format!("{tag}-vm");
    let _cleanup = Cleanup { domains: vec![vm.clone()], pool: tag.clone() };
    let cfg = dir.path().join("desktop.toml");
    std::fs::write(
        &cfg,
        format!(
            "enable = true\ndomainType = \"qemu\"\ndefaultStoragePool = \"{tag}\"\ndefaultStoragePath = \"{}\"\n\n\
             [vms.{vm}]\nmemory = \"128M\"\nfirmware = \"bios\"\nnetwork = \"none\"\ndiskSize = \"16M\"\n",
            dir.path().join("pool").display()
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();

    let plan = ok(&["desktop", "plan", cfg, "--connect", &uri]);
    assert!(plan.contains(&format!("+ define {vm}")), "{plan}");
    let applied = ok(&["desktop", "apply", cfg, "--connect", &uri]);
    assert!(applied.contains(&format!("done: define {vm}")), "{applied}");
    // The same daemon, seen locally: the domain is there.
    virsh(&["dominfo", &vm], Duration::from_secs(30)).unwrap();
    let again = ok(&["desktop", "apply", cfg, "--connect", &uri]);
    assert!(again.starts_with("No changes: 1 VM(s) already as configured."), "{again}");
    let status: serde_json::Value =
        serde_json::from_str(&ok(&["vm", &vm, "status", "--json", "--connect", &uri])).unwrap();
    assert_eq!(status["state"], "shut off", "{status}");
    assert!(sshd.log().contains("Accepted publickey for root"), "the calls went through sshd:\n{}", sshd.log());
}
