//! Benchmark: the busybox test guest and the KVM probe.
//!
//! Measures, on this host:
//! * the KVM probe, fresh (no cache) and from its cache;
//! * building the guest from cached packages (cold) and finding it built (warm);
//! * boot to the banner and to the VGA console's shell under TCG, supervised by vmkit (`Qemu::start`, QMP
//!   handshake, serial-log wait) and, as the baseline, the same argv (the one `vmkit demo` and the test guests
//!   run) started bare with `std::process::Command` and its serial log polled.
//!
//! Run: `cargo bench -p debguest --bench guest_boot` (add `-- N` for N boots per variant, default 5).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use debguest::initramfs::Launch;
use debguest::initramfs::busybox::{BANNER, BusyboxGuest, GuestSpec, TTY1_READY};
use qemu::{Accel, KvmProbe, Pattern, QemuCommand, SerialLog, Vnc};

fn cache_root() -> PathBuf {
    std::env::var_os("VMKIT_TESTBED_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/testbed-cache"))
}

fn stats(name: &str, samples: &mut [Duration]) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64;
    println!(
        "{name:<44} n={:<2} median {:>8.0} ms  mean {:>8.0} ms  min {:>8.0} ms  max {:>8.0} ms",
        samples.len(),
        ms(samples[samples.len() / 2]),
        mean,
        ms(samples[0]),
        ms(samples[samples.len() - 1])
    );
}

/// The same command `vmkit demo` and the test guests run.
fn guest_command(guest: &BusyboxGuest, dir: &Path, display: u16) -> QemuCommand {
    guest.qemu_command(&Launch {
        accel: Accel::Tcg,
        memory_mib: 256,
        vnc: Vnc::localhost(display),
        id: Some("bench"),
        serial_socket: &dir.join("serial.sock"),
        serial_log: &dir.join("serial.log"),
        qmp_socket: &dir.join("qmp.sock"),
        name: "vmkit-bench".to_owned(),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5);
    println!("load average at start: {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());

    // KVM probe.
    let mut fresh = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let t = Instant::now();
        let report = KvmProbe::with_cache_dir(None).run().await.expect("probe");
        fresh.push(t.elapsed());
        last = Some(report);
    }
    if let Some(r) = &last {
        println!("KVM probe verdict: usable={} start={:?} ms ({})", r.usable, r.start_ms, r.reason);
    }
    stats("KVM probe, fresh", &mut fresh);
    let cache = tempfile::tempdir().unwrap();
    let probe = KvmProbe::with_cache_dir(Some(cache.path().to_owned()));
    probe.run_cached().await.expect("probe");
    let mut cached = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        probe.run_cached().await.expect("probe");
        cached.push(t.elapsed());
    }
    stats("KVM probe, cached verdict", &mut cached);

    // Guest build.
    let root = cache_root();
    let guest = BusyboxGuest::build(&GuestSpec::default(), &root).expect("build (downloads once)");
    let fresh_root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(fresh_root.path().join("debs")).unwrap();
    for pkg in [&guest.manifest.kernel_package, &guest.manifest.busybox_package] {
        std::fs::copy(root.join("debs").join(pkg.file_name()), fresh_root.path().join("debs").join(pkg.file_name()))
            .unwrap();
    }
    let t = Instant::now();
    BusyboxGuest::build(&GuestSpec::default(), fresh_root.path()).expect("cold build");
    let mut cold = vec![t.elapsed()];
    stats("guest build from cached .debs (cold)", &mut cold);
    let mut warm = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let g = BusyboxGuest::build(&GuestSpec::default(), &root).expect("warm build");
        assert!(g.cache_hit);
        warm.push(t.elapsed());
    }
    stats("guest build, cache hit", &mut warm);

    // Boot under TCG, vmkit-supervised and bare, interleaved so both see the same machine load.
    let mut to_banner = Vec::new();
    let mut to_shell = Vec::new();
    let mut bare_banner = Vec::new();
    let mut bare_shell = Vec::new();
    for _ in 0..runs {
        let (banner, shell) = boot_vmkit(&guest).await;
        to_banner.push(banner);
        to_shell.push(shell);
        let (banner, shell) = boot_bare(&guest);
        bare_banner.push(banner);
        bare_shell.push(shell);
    }
    stats("TCG boot to banner, vmkit (start+QMP+wait)", &mut to_banner);
    stats("TCG boot to banner, bare QEMU (baseline)", &mut bare_banner);
    stats("TCG boot to tty1 shell, vmkit", &mut to_shell);
    stats("TCG boot to tty1 shell, bare QEMU", &mut bare_shell);
}

/// vmkit: `Qemu::start` (spawn + QMP handshake) and serial-log waits that would fail at once if QEMU died.
async fn boot_vmkit(guest: &BusyboxGuest) -> (Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = guest_command(guest, dir.path(), 0);
    let t = Instant::now();
    let qemu = qemu::start_with_port_retry(&mut cmd, qemu::StartOptions::default(), 5, qemu::pick_vnc_display)
        .await
        .expect("start");
    let mut log = SerialLog::new(dir.path().join("serial.log"));
    log.wait_for(&Pattern::text(BANNER), Duration::from_secs(300), Some(&qemu)).await.expect("banner");
    let banner = t.elapsed();
    log.wait_for(&Pattern::text(TTY1_READY), Duration::from_secs(300), Some(&qemu)).await.expect("shell");
    let shell = t.elapsed();
    qemu.kill().await.expect("kill");
    (banner, shell)
}

/// Baseline: the same argv started with `std::process::Command`, its serial log polled every 5 ms.
fn boot_bare(guest: &BusyboxGuest) -> (Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let display = qemu::free_vnc_display(std::net::Ipv4Addr::LOCALHOST.into()).unwrap();
    let argv = guest_command(guest, dir.path(), display).argv().unwrap();
    let log = dir.path().join("serial.log");
    let t = Instant::now();
    let mut child = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("qemu");
    let mut banner = None;
    let shell = loop {
        let text = std::fs::read(&log).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        if banner.is_none() && text.contains(BANNER) {
            banner = Some(t.elapsed());
        }
        if text.contains(TTY1_READY) {
            break t.elapsed();
        }
        assert!(t.elapsed() < Duration::from_secs(300), "bare boot timed out");
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = child.kill();
    let _ = child.wait();
    (banner.unwrap_or_default(), shell)
}
