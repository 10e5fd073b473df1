//! A running system libvirt daemon for tests, started by hand (no systemd on CI machines).
//!
//! [`ensure_libvirtd`] makes sure `virtlogd` and `libvirtd` answer on `qemu:///system`, starting them with
//! `virtlogd -d` and `libvirtd -d` when they do not. It is idempotent and safe to call from parallel test
//! processes (an exclusive file lock serialises the check-and-start), and it never stops the daemons: they are
//! shared by every test and outlive the test run, like the system service they stand in for.
//!
//! One more thing udev would do on a normal host: give `/dev/kvm` to the `kvm` group (mode 0660). Where no udev
//! ran, the device stays root-only; libvirt then probes QEMU's capabilities with KVM but checks KVM access as
//! the `libvirt-qemu` user, decides its capability cache is stale, and re-probes forever — every define hangs.
//! [`ensure_libvirtd`] applies udev's rule before starting the daemon.
//!
//! Tests must name the domains, pools and files they create uniquely (see [`unique_name`]) and remove them.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The URI of the system daemon.
pub const SYSTEM_URI: &str = "qemu:///system";

const LIBVIRT_SOCKET: &str = "/run/libvirt/libvirt-sock";
const VIRTLOGD_SOCKET: &str = "/run/libvirt/virtlogd-sock";

/// A name no other test process uses: `PREFIX-PID-N`.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Removes what a test made in libvirt when dropped, even when the test fails: each domain is destroyed and
/// undefined (with its NVRAM), then the storage pool is stopped and undefined. Files stay, as `apply` leaves them.
#[derive(Debug, Default)]
pub struct Cleanup {
    /// Domains to destroy and undefine.
    pub domains: Vec<String>,
    /// The storage pool to stop and undefine.
    pub pool: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let t = Duration::from_secs(60);
        for d in &self.domains {
            let _ = virsh(&["destroy", d], t);
            let _ = virsh(&["undefine", d, "--nvram"], t);
        }
        let _ = virsh(&["pool-destroy", &self.pool], t);
        let _ = virsh(&["pool-undefine", &self.pool], t);
    }
}

fn answers(socket: &str) -> bool {
    UnixStream::connect(socket).is_ok()
}

/// Runs `virsh -c qemu:///system ARGS` with a timeout; returns stdout, or an error with stderr.
pub fn virsh(args: &[&str], timeout: Duration) -> anyhow::Result<String> {
    let mut child = Command::new("virsh")
        .arg("-c")
        .arg(SYSTEM_URI)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running virsh (Debian package libvirt-clients)")?;
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("virsh {} did not answer within {timeout:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("virsh {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Gives /dev/kvm to the kvm group with mode 0660, as udev's default rule does, when it is root-only.
fn apply_udev_kvm_rule() -> anyhow::Result<()> {
    let dev = Path::new("/dev/kvm");
    let Ok(meta) = std::fs::metadata(dev) else { return Ok(()) };
    let Some(gid) = group_id("kvm")? else { return Ok(()) };
    if meta.gid() == 0 && meta.mode() & 0o077 == 0 {
        std::os::unix::fs::chown(dev, None, Some(gid)).context("chgrp kvm /dev/kvm")?;
        std::fs::set_permissions(dev, std::fs::Permissions::from_mode(0o660)).context("chmod 0660 /dev/kvm")?;
        tracing::info!("gave /dev/kvm to the kvm group (mode 0660), as udev would");
    }
    Ok(())
}

fn group_id(name: &str) -> anyhow::Result<Option<u32>> {
    let text = std::fs::read_to_string("/etc/group").context("reading /etc/group")?;
    Ok(text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next() == Some(name)).then(|| f.nth(1).and_then(|g| g.parse().ok())).flatten()
    }))
}

/// Makes sure the system libvirt daemon answers, starting `virtlogd` and `libvirtd` by hand when needed.
pub fn ensure_libvirtd() -> anyhow::Result<()> {
    let lock_path = std::env::temp_dir().join("vmkit-testbed-libvirtd.lock");
    let lock = File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;

    apply_udev_kvm_rule()?;
    if answers(LIBVIRT_SOCKET) && virsh(&["version"], Duration::from_secs(30)).is_ok() {
        return Ok(());
    }
    if !answers(VIRTLOGD_SOCKET) {
        run_daemon("virtlogd")?;
    }
    run_daemon("libvirtd")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if answers(LIBVIRT_SOCKET) && virsh(&["version"], Duration::from_secs(30)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("libvirtd started but does not answer on {SYSTEM_URI} after 60 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn run_daemon(program: &str) -> anyhow::Result<()> {
    let status = Command::new(program)
        .arg("-d")
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("starting {program} -d (Debian package libvirt-daemon-system)"))?;
    if !status.success() {
        bail!("{program} -d failed ({status})");
    }
    Ok(())
}

/// Makes sure the libvirt network `name` is active (starting it needs dnsmasq: Debian package dnsmasq-base).
pub fn ensure_network(name: &str) -> anyhow::Result<()> {
    let info = virsh(&["net-info", name], Duration::from_secs(30))?;
    let active = info.lines().any(|l| l.starts_with("Active:") && l.trim_end().ends_with("yes"));
    if !active {
        // Another test process may start it at the same moment: only fail if it is still inactive after.
        let started = virsh(&["net-start", name], Duration::from_secs(60));
        let info = virsh(&["net-info", name], Duration::from_secs(30))?;
        if !info.lines().any(|l| l.starts_with("Active:") && l.trim_end().ends_with("yes")) {
            started.with_context(|| format!("starting libvirt network {name}"))?;
        }
    }
    Ok(())
}
