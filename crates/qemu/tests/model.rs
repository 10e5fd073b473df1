//! The QEMU model rendered to argv and to a run script: snapshots of what vmkit's jobs run, escaping checked by a
//! real shell, and the rendered options accepted by the real QEMU (with swtpm and OVMF).

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use qemu::{
    Accel, Boot, Chardev, Cpu, CpuFeature, Device, DirectBoot, Display, Drive, Firmware, Global, HostForward,
    ImageFormat, KernelCmdline, Machine, Media, ModelError, Qemu, QemuCommand, RtcBase, RunScript, Serial, Smbios, Smp,
    Tpm, TpmModel, UserNet, Vga, Vnc,
};

fn lines(argv: &[OsString]) -> String {
    argv.iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join("\n")
}

/// A Windows-install-like machine: q35 with SMM, Secure Boot UEFI, TPM 2.0, virtio disk, installer CD on SATA,
/// a forward for SSH and RDP, VNC with a password, a serial log and QMP.
fn windows_like(dir: &Path) -> QemuCommand {
    let mut cmd = QemuCommand::new(Accel::Kvm);
    cmd.name = Some("win11, build 1".to_owned());
    cmd.machine = Machine { kind: "q35".to_owned(), smm: Some(true), props: vec![] };
    cmd.memory_mib = 4096;
    cmd.smp = Some(Smp::cpus(2));
    cmd.firmware = Firmware::Uefi {
        code: PathBuf::from("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"),
        vars: dir.join("OVMF_VARS,copy.fd"),
        secure: true,
    };
    cmd.boot = Some(Boot { order: Some("cd".to_owned()), once: None, menu: Some(false) });
    cmd.rtc = Some(RtcBase::Localtime);
    let mut disk = Drive::with_device(
        "disk0",
        dir.join("my disk, v2.qcow2"),
        ImageFormat::Qcow2,
        Device::new("virtio-blk-pci").prop("bootindex", "1"),
    );
    disk.discard_unmap = true;
    disk.cache = Some("unsafe".to_owned());
    cmd.drives.push(disk);
    let mut cd = Drive::with_device("cd0", dir.join("Win11.iso"), ImageFormat::Raw, Device::new("ide-cd"));
    cd.media = Some(Media::Cdrom);
    cd.readonly = true;
    cmd.drives.push(cd);
    let mut scratch = Drive::virtio(dir.join("scratch.raw"), ImageFormat::Raw);
    scratch.snapshot = true;
    cmd.drives.push(scratch);
    cmd.nets.push(UserNet::virtio("net0", vec![HostForward::tcp(2222, 22), HostForward::tcp(3389, 3389)]));
    cmd.serial_socket(dir.join("serial.sock"), dir.join("serial.log"));
    cmd.qmp = Some(dir.join("qmp.sock"));
    cmd.tpm = Some(Tpm { id: "tpm0".to_owned(), socket: dir.join("swtpm.sock"), model: TpmModel::Crb });
    cmd.vga = Some(Vga::Std);
    cmd.display = Some(Display::None);
    let mut vnc = Vnc::localhost(7);
    vnc.password = true;
    vnc.key_delay_ms = Some(10);
    cmd.vnc = Some(vnc);
    cmd.devices.push(Device::new("qemu-xhci"));
    cmd.devices.push(Device::new("usb-tablet"));
    cmd.globals.push(Global {
        driver: "ICH9-LPC".to_owned(),
        property: "disable_s3".to_owned(),
        value: "1".to_owned(),
    });
    cmd.smbios.push(Smbios { kind: 1, fields: vec![("serial".to_owned(), "vmkit,1".to_owned())] });
    cmd.pidfile = Some(dir.join("qemu.pid"));
    cmd
}

/// The test guest: direct kernel boot under TCG.
fn guest_like() -> QemuCommand {
    let mut cmd = QemuCommand::new(Accel::Tcg);
    cmd.name = Some("vmkit-test-guest".to_owned());
    cmd.memory_mib = 256;
    cmd.direct_boot = Some(DirectBoot {
        kernel: PathBuf::from("/cache/guests/busybox-0123/vmlinuz"),
        initrd: Some(PathBuf::from("/cache/guests/busybox-0123/initrd.cpio")),
        cmdline: KernelCmdline::new().arg("console", "ttyS0").arg("panic", "-1").arg("vmkit.id", "a b"),
    });
    cmd.no_defaults = true;
    cmd.no_reboot = true;
    cmd.vga = Some(Vga::Std);
    cmd.display = Some(Display::None);
    cmd.vnc = Some(Vnc::localhost(42));
    cmd.serial_socket("/run/g/serial.sock", "/run/g/serial.log");
    cmd.qmp = Some(PathBuf::from("/run/g/qmp.sock"));
    cmd
}

#[test]
fn argv_windows_like() {
    insta::assert_snapshot!(lines(&windows_like(Path::new("/vm/out")).argv().unwrap()));
}

#[test]
fn argv_test_guest() {
    insta::assert_snapshot!(lines(&guest_like().argv().unwrap()));
}

#[test]
fn argv_macos_cpu_and_the_kvm_probe() {
    let mut cmd = QemuCommand::new(Accel::Kvm);
    cmd.cpu = Some(Cpu {
        model: "Penryn".to_owned(),
        features: vec![
            CpuFeature::Disable("hle".to_owned()),
            CpuFeature::Prop("kvm".to_owned(), "on".to_owned()),
            CpuFeature::Prop("vendor".to_owned(), "GenuineIntel".to_owned()),
            CpuFeature::Enable("invtsc".to_owned()),
            CpuFeature::Flag("check".to_owned()),
        ],
    });
    cmd.devices.push(Device::new("isa-applesmc").prop("osk", "our hard work, by these words guarded"));
    cmd.smbios.push(Smbios { kind: 2, fields: vec![] });
    let probe = qemu::KvmProbe::default().command(Path::new("/tmp/kvm-probe.bin"));
    insta::assert_snapshot!(format!("{}\n--\n{}", lines(&cmd.argv().unwrap()), lines(&probe.argv().unwrap())));
}

#[test]
fn run_script_snapshot() {
    let script = RunScript {
        comments: vec!["vmkit image: debian-12\nlog in: ssh -p 2222 debian@127.0.0.1".to_owned()],
        cd_to_script_dir: true,
        pass_args: true,
        before: vec![],
        state: None,
    };
    insta::assert_snapshot!(script.render(&guest_like()).unwrap());
}

#[test]
fn invalid_models_are_errors_naming_the_input() {
    let mut cmd = guest_like();
    cmd.devices.push(Device::new("virtio-rng-pci").prop("max-bytes=1", "2"));
    let err = cmd.argv().unwrap_err().to_string();
    assert!(err.contains("max-bytes=1"), "{err}");

    let mut cmd = guest_like();
    cmd.chardevs.push(Chardev::socket_server("serial0", "/x"));
    assert!(matches!(cmd.argv(), Err(ModelError::DuplicateId { id }) if id == "serial0"));

    let mut cmd = guest_like();
    cmd.serials.push(Serial::Chardev("nope".to_owned()));
    assert!(cmd.argv().unwrap_err().to_string().contains("nope"));

    let mut cmd = windows_like(Path::new("/vm"));
    cmd.machine.smm = None;
    assert!(cmd.argv().unwrap_err().to_string().contains("smm=on"));

    let mut cmd = guest_like();
    cmd.direct_boot.as_mut().unwrap().cmdline = KernelCmdline::new().arg("init", "/bin/sh -c \"x\"");
    assert!(cmd.argv().unwrap_err().to_string().contains("double quote"));

    let mut cmd = guest_like();
    cmd.vnc = Some(Vnc::localhost(60000));
    assert!(cmd.argv().is_err());
}

/// The run script, executed by a real `sh`, hands QEMU exactly the argv the model renders — including values with
/// spaces, single and double quotes, `$`, backticks, commas and globs.
#[test]
fn run_script_passes_every_argument_unchanged_through_sh() {
    let dir = tempfile::tempdir().unwrap();
    let printer = dir.path().join("print args");
    std::fs::write(&printer, "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done\n").unwrap();
    make_executable(&printer);

    let mut cmd = windows_like(Path::new("/vm/it's a \"dir\", $HOME `id` *"));
    cmd.program = printer.clone();
    cmd.direct_boot = Some(DirectBoot {
        kernel: PathBuf::from("/k/vmlinuz"),
        initrd: None,
        cmdline: KernelCmdline::new().arg("note", "it's $x `y`").flag("quiet"),
    });
    cmd.extra = vec![OsString::from("-S"), OsString::from("a\nnewline"), OsString::from("")];
    let script = RunScript {
        comments: vec!["a comment\n\nwith an empty line".to_owned()],
        cd_to_script_dir: true,
        pass_args: true,
        before: vec![],
        state: None,
    }
    .render(&cmd)
    .unwrap();
    let path = dir.path().join("run");
    std::fs::write(&path, &script).unwrap();
    make_executable(&path);

    let out = std::process::Command::new("sh").arg(&path).args(["extra arg", "x,y"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<OsString> = out
        .stdout
        .split(|&b| b == 0)
        .map(|s| OsString::from(String::from_utf8(s.to_vec()).unwrap()))
        .collect::<Vec<_>>();
    let mut expected = cmd.args().unwrap();
    expected.push("extra arg".into());
    expected.push("x,y".into());
    expected.push("".into()); // the split after the last NUL
    assert_eq!(got, expected, "script:\n{script}");
}

/// A run script with a VM state: the first run pins the image's files and boots an overlay in `IMAGE.state`; the
/// image is never written; a script from a later build keeps booting the build the state was made from and says
/// so; `$VMKIT_STATE` puts a second VM elsewhere. Run by a real `sh` with the real `qemu-img`.
#[test]
fn run_script_keeps_the_vm_state_beside_the_image_across_rebuilds() {
    let root = tempfile::tempdir().unwrap();
    let image = root.path().join("my image");
    std::fs::create_dir(&image).unwrap();
    let status = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(image.join("disk.qcow2"))
        .arg("16M")
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(image.join("seed.iso"), b"seed").unwrap();
    std::fs::write(image.join("vars.fd"), b"built vars").unwrap();
    std::fs::create_dir(image.join("tpm")).unwrap();
    std::fs::write(image.join("tpm/state"), b"built tpm").unwrap();
    let printer = root.path().join("qemu");
    std::fs::write(&printer, "#!/bin/sh\npwd\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n").unwrap();
    make_executable(&printer);
    let mut cmd = QemuCommand::new(Accel::Tcg);
    cmd.program = printer;
    cmd.drives.push(Drive::with_device(
        "disk0",
        PathBuf::from(qemu::VmState::OVERLAY),
        ImageFormat::Qcow2,
        Device::new("virtio-blk-pci"),
    ));
    let write = |build: &str| {
        let script = RunScript {
            cd_to_script_dir: true,
            state: Some(qemu::VmState {
                build: build.to_owned(),
                pinned: vec![PathBuf::from("disk.qcow2"), PathBuf::from("seed.iso")],
                disk: PathBuf::from("disk.qcow2"),
                copied: vec![PathBuf::from("vars.fd"), PathBuf::from("tpm")],
            }),
            ..RunScript::default()
        }
        .render(&cmd)
        .unwrap();
        let path = image.join("run");
        std::fs::write(&path, script).unwrap();
        make_executable(&path);
        path
    };
    let run = |script: &Path, env: Option<&Path>| {
        let mut c = std::process::Command::new(script);
        c.env_remove("VMKIT_STATE");
        if let Some(dir) = env {
            c.env("VMKIT_STATE", dir);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let disk_before = std::fs::read(image.join("disk.qcow2")).unwrap();

    let script = write("b1");
    let (out, err) = run(&script, None);
    let state = root.path().join("my image.state");
    assert_eq!(qemu::VmState::dir_for(&image), state);
    assert!(out.starts_with(&format!("{}\n", state.join("b1").display())), "{out}");
    assert!(out.contains("file=../disk.qcow2"), "{out}");
    assert!(err.contains("kept in"), "{err}");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(std::fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o700);
    let pinned = std::fs::metadata(state.join("b1/disk.qcow2")).unwrap();
    assert_eq!(pinned.ino(), std::fs::metadata(image.join("disk.qcow2")).unwrap().ino(), "a hard link");
    let info = std::process::Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(state.join("disk.qcow2"))
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["backing-filename"], "b1/disk.qcow2", "{info}");
    assert_eq!(std::fs::read_to_string(state.join("build")).unwrap(), "b1\n");
    // What the VM writes is its own copy.
    assert_ne!(
        std::fs::metadata(state.join("b1/vars.fd")).unwrap().ino(),
        std::fs::metadata(image.join("vars.fd")).unwrap().ino()
    );
    assert_eq!(std::fs::read(state.join("b1/tpm/state")).unwrap(), b"built tpm");

    // A second run reuses the state, quietly.
    let (_, err) = run(&script, None);
    assert!(err.is_empty(), "{err}");

    // A rebuild: the image's disk is replaced by a new file; the state keeps booting build b1, and says so.
    std::fs::remove_file(image.join("disk.qcow2")).unwrap();
    let status = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(image.join("disk.qcow2"))
        .arg("32M")
        .status()
        .unwrap();
    assert!(status.success());
    let script = write("b2");
    let (out, err) = run(&script, None);
    assert!(out.starts_with(&format!("{}\n", state.join("b1").display())), "{out}");
    assert!(err.contains("earlier build") && err.contains("rm -r"), "{err}");
    assert_eq!(std::fs::read(state.join("b1/disk.qcow2")).unwrap(), disk_before, "the old build's disk is kept");

    // Another VM from the same image, elsewhere.
    let other = root.path().join("second vm");
    let (out, _) = run(&script, Some(&other));
    assert!(out.starts_with(&format!("{}\n", other.join("b2").display())), "{out}");
    assert!(
        !std::fs::read_dir(root.path()).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains(".new-"))
    );

    // A first run that fails half-way (here: the image's disk is not a disk) leaves no state, half-made or not.
    std::fs::write(image.join("disk.qcow2"), b"not a disk").unwrap();
    let third = root.path().join("third vm");
    let out = std::process::Command::new(&script).env("VMKIT_STATE", &third).output().unwrap();
    assert!(!out.status.success());
    assert!(!third.exists());
    assert!(
        !std::fs::read_dir(root.path()).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains(".new-"))
    );
}

/// A state whose build id or pinned names could escape the state directory is refused.
#[test]
fn run_script_state_refuses_unsafe_names() {
    let cmd = guest_like();
    for (build, pinned) in [("../x", "disk.qcow2"), ("", "disk.qcow2"), ("b1", "../disk.qcow2"), ("b1", "/disk.qcow2")]
    {
        let script = RunScript {
            cd_to_script_dir: true,
            state: Some(qemu::VmState {
                build: build.to_owned(),
                pinned: vec![PathBuf::from(pinned)],
                disk: PathBuf::from(pinned),
                copied: vec![],
            }),
            ..RunScript::default()
        };
        assert!(script.render(&cmd).is_err(), "{build:?} {pinned:?}");
    }
    let script = RunScript {
        cd_to_script_dir: true,
        state: Some(qemu::VmState {
            build: "b1".to_owned(),
            pinned: vec![PathBuf::from("disk.qcow2")],
            disk: PathBuf::from("disk.qcow2"),
            copied: vec![PathBuf::from("../tpm")],
        }),
        ..RunScript::default()
    };
    assert!(script.render(&cmd).is_err());
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The Windows-like model — Secure Boot pflash with SMM, swtpm TPM 2.0 on CRB, drives with commas and spaces in
/// their paths, host forwards, VNC with a password and key delay, QMP, a serial log — is accepted by the real QEMU
/// (under TCG, paused before the guest runs), and QMP sees what the model asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_accepts_the_rendered_windows_like_model() {
    let dir = tempfile::Builder::new().prefix("vmkit-qemu-model-").tempdir().unwrap();
    let d = dir.path();
    std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.ms.fd", d.join("OVMF_VARS,copy.fd")).unwrap();
    let status = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(d.join("my disk, v2.qcow2"))
        .arg("64M")
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(d.join("Win11.iso"), vec![0u8; 1 << 20]).unwrap();
    std::fs::write(d.join("scratch.raw"), vec![0u8; 1 << 20]).unwrap();
    let tpm_state = d.join("tpm");
    std::fs::create_dir(&tpm_state).unwrap();
    let mut swtpm = std::process::Command::new("swtpm")
        .args(["socket", "--tpm2", "--tpmstate"])
        .arg(format!("dir={}", tpm_state.display()))
        .arg("--ctrl")
        .arg(format!("type=unixio,path={}", d.join("swtpm.sock").display()))
        .spawn()
        .expect("swtpm (Debian package swtpm)");
    for _ in 0..200 {
        if d.join("swtpm.sock").exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }

    let mut cmd = windows_like(d);
    cmd.accel = vec![Accel::Tcg];
    cmd.cpu = Some(Accel::Tcg.cpu());
    cmd.memory_mib = 512;
    cmd.extra = vec![OsString::from("-S")];
    let qemu =
        qemu::start_with_port_retry(&mut cmd, qemu::StartOptions::default(), 5, qemu::pick_vnc_display).await.unwrap();
    let qmp = qemu.qmp().unwrap();
    assert_eq!(qmp.query_status().await.unwrap().status, qemu::RunState::Prelaunch);
    let tpms = qmp.query_tpm().await.unwrap();
    assert_eq!(tpms.len(), 1);
    assert_eq!(
        (tpms[0].id.as_str(), tpms[0].model.as_str(), tpms[0].options.kind.as_str()),
        ("tpm0", "tpm-crb", "emulator")
    );
    qmp.change_vnc_password(&qemu::Secret::new("s3cret")).await.unwrap();
    let blocks = qmp.execute("query-block", None).await.unwrap().to_string();
    assert!(blocks.contains("my disk, v2.qcow2"), "{blocks}");
    let vnc = qmp.execute("query-vnc", None).await.unwrap();
    assert_eq!(vnc["host"], "127.0.0.1");
    assert_eq!(vnc["auth"], "vnc");
    assert_eq!(vnc["service"], cmd.vnc.as_ref().unwrap().port().unwrap().to_string());
    let pid: u32 = std::fs::read_to_string(d.join("qemu.pid")).unwrap().trim().parse().unwrap();
    assert_eq!(pid, qemu.pid());

    let stopped =
        qemu.stop(qemu::StopPlan { guest: None, powerdown: None, quit: Some(Duration::from_secs(10)) }).await.unwrap();
    assert_eq!(stopped.by, qemu::StopStep::Quit);
    assert!(stopped.exit.success(), "{}", stopped.exit);
    let _ = swtpm.kill();
    let _ = swtpm.wait();
}

/// A forward bound to an address the host does not have fails QEMU at start-up: the error carries QEMU's own
/// message at once.
#[tokio::test]
async fn a_bad_option_fails_start_with_qemus_message() {
    let mut cmd = guest_like();
    cmd.accel = vec![Accel::Tcg];
    cmd.direct_boot = None;
    cmd.vnc = None;
    cmd.serials.clear();
    cmd.chardevs.clear();
    let dir = tempfile::tempdir().unwrap();
    cmd.qmp = Some(dir.path().join("qmp.sock"));
    cmd.nets.push(UserNet {
        id: "n0".to_owned(),
        forwards: vec![HostForward {
            host_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            ..HostForward::tcp(2222, 22)
        }],
        restrict: true,
        nic: Device::new("virtio-net-pci"),
    });
    let err = Qemu::start(&cmd).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("QEMU exited during start-up"), "{text}");
    assert!(text.contains("Could not set up host forwarding rule 'tcp:192.0.2.1:2222-:22'"), "{text}");
}

/// When another process holds the VNC port QEMU was given, the start is retried on another display.
#[tokio::test]
async fn a_taken_vnc_port_is_retried_on_another() {
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = QemuCommand::new(Accel::Tcg);
    cmd.machine = Machine::new("q35");
    cmd.memory_mib = 64;
    cmd.no_defaults = true;
    cmd.display = Some(Display::None);
    cmd.qmp = Some(dir.path().join("qmp.sock"));
    cmd.extra = vec![OsString::from("-S")];
    cmd.vnc = Some(Vnc::localhost(0));
    let mut attempts = 0;
    assert!(taken_port > 5900, "ephemeral ports lie above 5900");
    let qemu = qemu::start_with_port_retry(&mut cmd, qemu::StartOptions::default(), 3, |cmd| {
        attempts += 1;
        if attempts == 1 {
            // The first pick is the port somebody holds (as if taken between the check and QEMU's bind).
            cmd.vnc = Some(Vnc::localhost(taken_port - 5900));
            Ok(())
        } else {
            qemu::pick_vnc_display(cmd)
        }
    })
    .await
    .unwrap();
    assert_eq!(attempts, 2);
    assert_ne!(cmd.vnc.as_ref().unwrap().port(), Some(taken_port));
    qemu.qmp().unwrap().quit().await.unwrap();
    assert!(qemu.exited().await.success());
    drop(taken);
}

#[tokio::test]
async fn a_missing_qemu_is_an_error_naming_the_package() {
    let mut cmd = guest_like();
    cmd.program = PathBuf::from("/nonexistent/qemu-system-x86_64");
    let err = Qemu::start(&cmd).await.unwrap_err().to_string();
    assert!(err.contains("/nonexistent/qemu-system-x86_64"), "{err}");
    assert!(err.contains("qemu-system-x86"), "{err}");
}
