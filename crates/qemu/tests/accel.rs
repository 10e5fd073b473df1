//! The KVM probe: its payload is built from the committed source, its verdict on this host agrees with what the
//! CPU advertises, and its verdict logic (checksum, time budget) works — exercised under TCG, which runs the
//! payload everywhere.
//!
//! On the machines vmkit is developed on, `/dev/kvm` opens but guests cannot use it (a paravirtual KVM nested in a
//! microVM whose CPU shows no vmx/svm): on some, guests run hundreds of times slower than under TCG; on others
//! QEMU aborts at once (`failed to set MSR 0x10a`). The probe must say "unusable" there, and why. On a
//! host with real KVM (vmx/svm present) it must say "usable"; that host is not available here, so that branch of
//! `e2e_kvm_probe_verdict_matches_the_host` has only run in the reasoning, not on a machine.

use std::path::Path;
use std::time::Duration;

use qemu::{Accel, KvmProbe};

/// The committed `kvm-probe.bin` is exactly what the committed `kvm-probe.S` assembles to.
#[test]
fn payload_matches_source() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("probe/kvm-probe.S");
    let obj = dir.path().join("kvm-probe.o");
    let bin = dir.path().join("kvm-probe.bin");
    let run = |cmd: &mut std::process::Command| {
        let out = cmd.output().expect("GNU as and ld (Debian package binutils)");
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(std::process::Command::new("as").args(["--64", "-o"]).arg(&obj).arg(&src));
    run(std::process::Command::new("ld")
        .args(["-m", "elf_x86_64", "-Ttext=0x100000", "--oformat", "binary", "-o"])
        .arg(&bin)
        .arg(&obj));
    assert_eq!(std::fs::read(&bin).unwrap(), qemu::accel::PROBE_PAYLOAD);
}

fn cpu_has_virtualization() -> bool {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo.lines().filter(|l| l.starts_with("flags")).any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_kvm_probe_verdict_matches_the_host() {
    let probe = KvmProbe::with_cache_dir(None);
    let report = probe.run().await.unwrap();
    eprintln!("{report:#?}");
    let kvm_opens = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok();
    if cpu_has_virtualization() && kvm_opens {
        assert!(report.usable, "real KVM judged unusable: {}", report.reason);
        assert!(report.workload_ms.is_some());
    } else {
        assert!(!report.usable, "KVM without hardware virtualization judged usable: {}", report.reason);
        if kvm_opens {
            // Hosts differ in how an unusable KVM fails: here QEMU starts and the payload's loop crawls; on
            // others QEMU aborts at once (`failed to set MSR 0x10a`). Either way the report names the cause.
            assert_names_a_cause(&report.reason);
        }
    }
    assert!(report.qemu_version.starts_with("QEMU emulator version"), "{}", report.qemu_version);
}

/// The reason of an "unusable" verdict says which of the probe's checks failed, and with what detail.
fn assert_names_a_cause(reason: &str) {
    let crawled = reason.contains("did not finish within");
    let never_started = reason.contains("did not start within");
    let exited = reason.contains("QEMU exited before the payload finished (")
        && (reason.contains("exit code") || reason.contains("killed by signal"));
    let refused = reason.starts_with("QEMU did not start under ");
    assert!(crawled || never_started || exited || refused, "the reason names no cause: {reason}");
}

/// A QEMU that aborts as soon as it starts the vCPU (what a paravirtual KVM does on some hosts): the verdict is
/// "unusable" at once, with the signal and QEMU's own message in the reason.
#[tokio::test]
async fn a_qemu_that_aborts_at_start_is_unusable_with_its_message() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("qemu-system-x86_64");
    std::fs::write(
        &fake,
        "#!/bin/sh\n\
         if [ \"$1\" = --version ]; then echo 'QEMU emulator version 10.0.2'; exit 0; fi\n\
         echo 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0' >&2\n\
         kill -ABRT $$\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let probe = KvmProbe { accel: Accel::Tcg, program: fake, ..KvmProbe::with_cache_dir(None) };
    let started = std::time::Instant::now();
    let report = probe.run().await.unwrap();
    assert!(!report.usable);
    assert_names_a_cause(&report.reason);
    assert!(report.reason.contains("signal 6"), "{}", report.reason);
    assert!(report.reason.contains("failed to set MSR 0x10a"), "{}", report.reason);
    assert!(started.elapsed() < Duration::from_secs(20), "an abort is a verdict at once, not a time-out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_probe_logic_accepts_a_fast_accelerator_and_rejects_a_slow_one() {
    // Under TCG with a generous budget the payload runs and prints the right checksum: "usable".
    let probe =
        KvmProbe { accel: Accel::Tcg, workload_budget: Duration::from_secs(60), ..KvmProbe::with_cache_dir(None) };
    let report = probe.run().await.unwrap();
    assert!(report.usable, "{}", report.reason);
    assert!(report.workload_ms.is_some());
    assert!(report.reason.contains("ran its loop"), "{}", report.reason);

    // The same run against a budget nothing can meet: "unusable", because of the time.
    let probe =
        KvmProbe { accel: Accel::Tcg, workload_budget: Duration::from_millis(1), ..KvmProbe::with_cache_dir(None) };
    let report = probe.run().await.unwrap();
    assert!(!report.usable);
    assert!(report.reason.contains("did not finish within 1 ms"), "{}", report.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_probe_verdicts_are_cached() {
    let dir = tempfile::tempdir().unwrap();
    let probe = KvmProbe {
        accel: Accel::Tcg,
        workload_budget: Duration::from_secs(60),
        ..KvmProbe::with_cache_dir(Some(dir.path().to_owned()))
    };
    let first = probe.run_cached().await.unwrap();
    assert!(!first.cached);
    let started = std::time::Instant::now();
    let second = probe.run_cached().await.unwrap();
    assert!(second.cached);
    assert_eq!(second.usable, first.usable);
    // A lookup, not another boot (a boot takes seconds; the bound is loose for a loaded machine).
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn a_missing_kvm_device_is_unusable_without_booting() {
    let probe = KvmProbe { kvm_device: "/nonexistent/kvm".into(), ..KvmProbe::with_cache_dir(None) };
    let report = probe.run().await.unwrap();
    assert!(!report.usable);
    assert!(report.reason.contains("/nonexistent/kvm"), "{}", report.reason);
    assert_eq!(report.total_ms, 0);
}
