//! A real QEMU guest for tests: Debian's kernel and a busybox initramfs, with VNC, QMP and a serial log.
//!
//! Tests of the screen layer (typing into QEMU's VNC, reading its VGA console), of QMP and of process
//! supervision need a guest that boots in seconds under TCG and needs no disk image. [`Guest::boot`] builds it
//! from Debian packages once (cached under `target/testbed-cache/`, or `$VMKIT_TESTBED_CACHE`), picks the
//! accelerator with vmkit's KVM probe (cached there too; TCG on hosts where KVM is unusable; `VMKIT_ACCEL`
//! overrides), starts QEMU with VNC on a free 127.0.0.1 port, and returns once the shell on the VGA console runs.
//!
//! The guest shows a banner ([`debguest::initramfs::busybox::BANNER`]) and a root shell on both its VGA console
//! (`tty1`, what VNC shows) and its serial port (`ttyS0`, logged to a file and reachable through a Unix socket).
//! It powers off cleanly on the ACPI power button. Dropping the handle kills QEMU.
//!
//! Tests that boot it must be named `e2e_*` (they run one at a time in CI's second tier).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;
use debguest::initramfs::Launch;
use debguest::initramfs::busybox::{self, BusyboxGuest, GuestSpec};
use qemu::{
    Accel, KvmProbe, Pattern, Qemu, Qmp, Secret, SerialConsole, SerialLog, StartOptions, StopPlan, Stopped, Vnc,
};

/// The display devices a test guest can have ([`GuestOptions::vga`]).
pub use qemu::Vga;

/// How to boot a [`Guest`].
#[derive(Debug, Clone)]
pub struct GuestOptions {
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// A VNC password (VNC Authentication); `None` for no authentication.
    pub vnc_password: Option<String>,
    /// `key-delay-ms` of QEMU's VNC server.
    pub key_delay_ms: Option<u32>,
    /// The accelerator; `None` asks vmkit's KVM probe (cached) and honours `VMKIT_ACCEL`.
    pub accel: Option<Accel>,
    /// A token shown in the guest's banner; `None` makes one up.
    pub id: Option<String>,
    /// What the guest is built from.
    pub spec: GuestSpec,
    /// Wait until the shell on the VGA console runs before returning.
    pub wait_ready: bool,
    /// How long booting may take (generous: CI machines are loaded).
    pub ready_timeout: Duration,
    /// The display device; `None` keeps the image's (standard VGA). With [`Vga::Virtio`], add
    /// `virtio_gpu` to the spec's modules so the guest drives it.
    pub vga: Option<Vga>,
    /// Files added to the initramfs for this boot (test programs), appended as a second archive.
    pub extra_files: Vec<GuestFile>,
    /// Devices added to QEMU's command line (e.g. `qemu-xhci` and `usb-tablet`; add the guest's drivers to the
    /// spec's modules).
    pub devices: Vec<qemu::Device>,
}

/// A file put into the guest's initramfs by [`GuestOptions::extra_files`].
#[derive(Debug, Clone)]
pub struct GuestFile {
    /// Absolute path in the guest, e.g. `/bin/vmkit-probe`.
    pub path: String,
    /// Unix permission bits, e.g. `0o755`.
    pub mode: u32,
    /// The content.
    pub data: Vec<u8>,
}

impl Default for GuestOptions {
    fn default() -> Self {
        Self {
            memory_mib: 256,
            vnc_password: None,
            key_delay_ms: None,
            accel: None,
            id: None,
            spec: GuestSpec::default(),
            wait_ready: true,
            ready_timeout: Duration::from_secs(180),
            vga: None,
            extra_files: Vec::new(),
            devices: Vec::new(),
        }
    }
}

/// A running test guest. Dropping it kills QEMU.
#[derive(Debug)]
pub struct Guest {
    // Field order: QEMU goes before the directory holding its sockets.
    qemu: Qemu,
    qmp: Qmp,
    image: BusyboxGuest,
    accel: Accel,
    id: String,
    vnc_port: u16,
    vnc_password: Option<String>,
    password_file: Option<PathBuf>,
    serial_log: PathBuf,
    serial_socket: PathBuf,
    qmp_socket: PathBuf,
    dir: tempfile::TempDir,
}

/// Where the testbed caches guest builds and the KVM probe's verdict: `$VMKIT_TESTBED_CACHE`, else
/// `testbed-cache/` in Cargo's target directory.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VMKIT_TESTBED_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("testbed-cache")
}

/// Builds (or finds in the testbed cache) the busybox guest's kernel and initramfs.
pub async fn build_image(spec: GuestSpec) -> anyhow::Result<BusyboxGuest> {
    let root = cache_dir();
    tokio::task::spawn_blocking(move || BusyboxGuest::build(&spec, &root))
        .await
        .context("guest build task")?
        .context("building the busybox test guest from Debian packages")
}

/// The accelerator tests use: `VMKIT_ACCEL` if set, else the (cached) KVM probe's choice.
pub async fn test_accel() -> anyhow::Result<Accel> {
    let probe = KvmProbe::with_cache_dir(Some(cache_dir().join("kvm-probe")));
    let choice = probe.choose().await.context("choosing an accelerator")?;
    tracing::info!(accel = %choice.accel, reason = %choice.reason, "test guest accelerator");
    Ok(choice.accel)
}

impl Guest {
    /// Boots a guest with the default options and waits for its VGA console shell.
    pub async fn boot() -> anyhow::Result<Self> {
        Self::boot_with(GuestOptions::default()).await
    }

    /// Boots a guest.
    pub async fn boot_with(opts: GuestOptions) -> anyhow::Result<Self> {
        let image = build_image(opts.spec.clone()).await?;
        let accel = match opts.accel {
            Some(a) => a,
            None => test_accel().await?,
        };
        let dir = testbed::scratch_dir("guest")?;
        let id = opts.id.clone().unwrap_or_else(make_id);
        let serial_log = dir.path().join("serial.log");
        let serial_socket = dir.path().join("serial.sock");
        let qmp_socket = dir.path().join("qmp.sock");

        let mut vnc = Vnc::localhost(0);
        vnc.password = opts.vnc_password.is_some();
        vnc.key_delay_ms = opts.key_delay_ms;
        let mut cmd = image.qemu_command(&Launch {
            accel,
            memory_mib: opts.memory_mib,
            vnc,
            id: Some(&id),
            serial_socket: &serial_socket,
            serial_log: &serial_log,
            qmp_socket: &qmp_socket,
            name: format!("vmkit-test-guest-{id}"),
        });
        if let Some(vga) = opts.vga {
            cmd.vga = Some(vga);
        }
        cmd.devices.extend(opts.devices.iter().cloned());
        if !opts.extra_files.is_empty()
            && let Some(boot) = cmd.direct_boot.as_mut()
        {
            boot.initrd = Some(initrd_with(&image.initrd, &opts.extra_files, dir.path())?);
        }

        let qemu = qemu::start_with_port_retry(&mut cmd, StartOptions::default(), 8, qemu::pick_vnc_display)
            .await
            .context("starting the test guest's QEMU")?;
        let vnc_port = cmd.vnc.as_ref().and_then(Vnc::port).context("the guest has no VNC port")?;
        let mut password_file = None;
        if let Some(pw) = &opts.vnc_password {
            qemu.qmp()?.change_vnc_password(&Secret::new(pw.clone())).await.context("setting the VNC password")?;
            let path = dir.path().join("vnc-password.txt");
            testbed::write_private(&path, pw)?;
            password_file = Some(path);
        }
        let qmp = qemu.qmp()?.clone();
        let guest = Self {
            qemu,
            qmp,
            image,
            accel,
            id,
            vnc_port,
            vnc_password: opts.vnc_password,
            password_file,
            serial_log,
            serial_socket,
            qmp_socket,
            dir,
        };
        if opts.wait_ready {
            guest
                .wait_for_serial(busybox::TTY1_READY, opts.ready_timeout)
                .await
                .with_context(|| format!("test guest under {accel} did not get to its VGA console shell"))?;
        }
        Ok(guest)
    }

    /// `127.0.0.1:PORT` of QEMU's VNC server, as vmkit's `--vnc` takes it.
    pub fn vnc_addr(&self) -> String {
        format!("127.0.0.1:{}", self.vnc_port)
    }

    /// The VNC TCP port on 127.0.0.1.
    pub fn vnc_port(&self) -> u16 {
        self.vnc_port
    }

    /// The VNC password, if one was set.
    pub fn vnc_password(&self) -> Option<&str> {
        self.vnc_password.as_deref()
    }

    /// A file (0600) holding the VNC password in plain text, as vmkit's `--password-file` reads it.
    pub fn vnc_password_file(&self) -> Option<&Path> {
        self.password_file.as_deref()
    }

    /// The serial log file (everything the guest wrote to ttyS0).
    pub fn serial_log_path(&self) -> &Path {
        &self.serial_log
    }

    /// A reader of the serial log from its beginning; call [`SerialLog::skip_to_end`] to see only new output.
    pub fn serial_log(&self) -> SerialLog {
        SerialLog::new(&self.serial_log)
    }

    /// Waits until the serial log (from its beginning) matches `pattern`; fails at once if QEMU exits.
    pub async fn wait_for_serial(&self, pattern: impl Into<Pattern>, timeout: Duration) -> anyhow::Result<qemu::Match> {
        let pattern = pattern.into();
        Ok(self.serial_log().wait_for(&pattern, timeout, Some(&self.qemu)).await?)
    }

    /// Connects to the serial port's socket, to type into the serial shell.
    pub async fn serial_console(&self) -> anyhow::Result<SerialConsole> {
        Ok(SerialConsole::connect(&self.serial_socket).await?)
    }

    /// Runs a shell command on the serial console and returns what it printed (without the echoed input).
    pub async fn serial_command(&self, command: &str, timeout: Duration) -> anyhow::Result<String> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        // The marker is split in the typed line ("vmkit-""end-N"), so only the output contains it whole.
        let begin = format!("vmkit-begin-{n}");
        let end = format!("vmkit-end-{n}");
        let mut log = self.serial_log();
        log.skip_to_end()?;
        let mut console = self.serial_console().await?;
        console.send_line(&format!("echo vmkit-\"\"begin-{n}; {command}; echo vmkit-\"\"end-{n}")).await?;
        let expr = format!("(?s)\n{begin}\r?\n(.*?){end}\r?\n");
        let pattern = Pattern::regex(&expr)?;
        let m = log.wait_for(&pattern, timeout, Some(&self.qemu)).await?;
        Ok(m.groups.first().cloned().flatten().unwrap_or_default().replace("\r\n", "\n"))
    }

    /// The QMP connection.
    pub fn qmp(&self) -> &Qmp {
        &self.qmp
    }

    /// The QEMU process.
    pub fn qemu(&self) -> &Qemu {
        &self.qemu
    }

    /// The accelerator the guest runs under.
    pub fn accel(&self) -> Accel {
        self.accel
    }

    /// The token in the guest's banner.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The kernel and initramfs it booted.
    pub fn image(&self) -> &BusyboxGuest {
        &self.image
    }

    /// The QMP socket path.
    pub fn qmp_socket(&self) -> &Path {
        &self.qmp_socket
    }

    /// A scratch directory that lives as long as the guest.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Powers the guest off: ACPI power button (the guest's acpid powers off), then QMP `quit`, then SIGKILL.
    pub async fn shutdown(&self) -> anyhow::Result<Stopped> {
        let plan =
            StopPlan { guest: None, powerdown: Some(Duration::from_secs(90)), quit: Some(Duration::from_secs(10)) };
        Ok(self.qemu.stop(plan).await?)
    }
}

/// The image's initramfs followed by a second archive holding `files` (Linux unpacks concatenated archives,
/// each starting on a 4-byte boundary; zeros between them are skipped), written into `dir`.
pub fn initrd_with(base: &Path, files: &[GuestFile], dir: &Path) -> anyhow::Result<PathBuf> {
    let mut archive = debguest::initramfs::cpio::Archive::new();
    for f in files {
        let rel = f.path.trim_start_matches('/');
        // Parent directories first (the first archive may not have them).
        if let Some((dirs, _)) = rel.rsplit_once('/') {
            let mut parent = String::new();
            for part in dirs.split('/') {
                parent = if parent.is_empty() { part.to_owned() } else { format!("{parent}/{part}") };
                archive.dir(&parent, 0o755)?;
            }
        }
        archive.file(rel, f.mode, f.data.clone())?;
    }
    let mut bytes = std::fs::read(base).with_context(|| format!("reading {}", base.display()))?;
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    bytes.extend(archive.to_bytes()?);
    let path = dir.join("initrd-extra.cpio");
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn make_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{:08x}", h.finish() as u32)
}
