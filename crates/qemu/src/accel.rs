//! Which accelerator to use: a KVM probe that boots something and checks that it ran, cached per host.
//!
//! "`/dev/kvm` opens" is not enough. On some hosts (a paravirtual KVM nested in a microVM) QEMU starts under
//! KVM, SeaBIOS draws its screen, and then a Linux kernel never finishes booting: every guest instruction runs
//! hundreds of times slower than under TCG. So the probe boots a tiny payload (`probe/kvm-probe.S`, a multiboot
//! image of under 500 bytes) with `-accel kvm -cpu host`: it enters long mode with paging like an early kernel,
//! runs a memory-heavy loop (1 Mi random read-modify-writes over 8 MiB) and prints a checksum on the serial port.
//! The probe times the loop between the payload's two serial markers and checks the checksum:
//!
//! * usable — the right checksum within [`KvmProbe::workload_budget`] (1 s). Real KVM needs a few milliseconds
//!   (that host is not available here to measure; it is the expected figure for native execution of ~15 M
//!   instructions), TCG about 0.2 s on the 2-core machine vmkit is developed on.
//! * unusable — QEMU refused (`/dev/kvm` missing, "failed to set MSR", …), the payload did not start in time,
//!   the loop overran the budget (the broken host above needs about 7 s), or the checksum was wrong.
//!
//! Timing only the loop keeps firmware start-up (about 1.5 s under the broken KVM, a fraction under real KVM)
//! out of the verdict. Verdicts are cached in `<cache>/kvm-probe/` keyed by QEMU's version, the host kernel's
//! release and the probe's revision, so the probe runs once per host configuration; the cheap check that
//! `/dev/kvm` opens read-write runs every time. `VMKIT_ACCEL=kvm|tcg` overrides the probe.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::model::{Accel, Device, DirectBoot, Display, KernelCmdline, Machine, QemuCommand, Serial};
use crate::process::{Qemu, StartOptions};

/// The probe payload (assembled from `probe/kvm-probe.S`).
pub const PROBE_PAYLOAD: &[u8] = include_bytes!("../probe/kvm-probe.bin");
/// The checksum the payload prints when it ran correctly.
pub const PROBE_CHECKSUM: u64 = 0x2a6c_3b66_4566_1a47;
/// Bump when the payload or the verdict rules change: old cached verdicts are then ignored.
const PROBE_REVISION: u32 = 1;
/// The environment variable that forces an accelerator.
pub const ACCEL_ENV: &str = "VMKIT_ACCEL";
/// The environment variable that moves vmkit's cache.
pub use store::CACHE_DIR_ENV;

const START_MARKER: &str = "VMKIT-PROBE-START";
const DONE_MARKER: &str = "VMKIT-PROBE-DONE ";

/// Failures of the probe's own machinery (not verdicts about KVM).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Writing the payload or the cache failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `qemu-system-x86_64 --version` failed.
    #[error("cannot run {program} --version: {detail} (is QEMU installed? Debian package qemu-system-x86)")]
    QemuVersion {
        /// The program.
        program: String,
        /// What went wrong.
        detail: String,
    },
    /// `VMKIT_ACCEL` holds something else than `kvm` or `tcg`.
    #[error("{ACCEL_ENV}={value:?}: expected kvm or tcg")]
    BadOverride {
        /// The value.
        value: String,
    },
}

/// The probe's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Whether KVM runs guests properly here.
    pub usable: bool,
    /// Why, in words.
    pub reason: String,
    /// `qemu --version`'s first line.
    pub qemu_version: String,
    /// The host kernel's release.
    pub host_kernel: String,
    /// From QEMU's start to the payload's first marker, when it got there.
    pub start_ms: Option<u64>,
    /// The payload's loop, when it finished.
    pub workload_ms: Option<u64>,
    /// The whole probe.
    pub total_ms: u64,
    /// Whether this verdict came from the cache.
    #[serde(skip)]
    pub cached: bool,
}

/// The accelerator chosen for this host, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccelChoice {
    /// The accelerator (its CPU model is [`Accel::cpu`]).
    pub accel: Accel,
    /// Why it was chosen.
    pub reason: String,
}

/// The KVM probe and its settings.
#[derive(Debug, Clone)]
pub struct KvmProbe {
    /// The QEMU program.
    pub program: PathBuf,
    /// Where verdicts are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// How long QEMU and firmware may take until the payload's first marker.
    pub start_timeout: Duration,
    /// How long the payload's loop may take.
    pub workload_budget: Duration,
    /// The KVM device.
    pub kvm_device: PathBuf,
    /// The accelerator the payload runs under: KVM for the real verdict. TCG lets a test exercise the verdict
    /// logic (checksum, timing) on a host whose KVM is unusable.
    pub accel: Accel,
}

impl Default for KvmProbe {
    fn default() -> Self {
        Self {
            program: PathBuf::from("qemu-system-x86_64"),
            cache_dir: default_cache_root().map(|r| r.join("kvm-probe")),
            start_timeout: Duration::from_secs(10),
            workload_budget: Duration::from_secs(1),
            kvm_device: PathBuf::from("/dev/kvm"),
            accel: Accel::Kvm,
        }
    }
}

/// vmkit's cache root: `$VMKIT_CACHE_DIR`, else the XDG cache directory (`~/.cache/vmkit`) ([`store::cache_root`]).
pub fn default_cache_root() -> Option<PathBuf> {
    store::cache_root(None).ok()
}

impl KvmProbe {
    /// A probe with the defaults and the given cache directory (`None`: no cache).
    pub fn with_cache_dir(cache_dir: Option<PathBuf>) -> Self {
        Self { cache_dir, ..Self::default() }
    }

    /// The accelerator to use: `VMKIT_ACCEL` if set, else KVM if the (cached) probe says it is usable, else TCG.
    pub async fn choose(&self) -> Result<AccelChoice, ProbeError> {
        if let Some(value) = std::env::var_os(ACCEL_ENV).filter(|v| !v.is_empty()) {
            let text = value.to_string_lossy().into_owned();
            let accel: Accel = text.parse().map_err(|_| ProbeError::BadOverride { value: text.clone() })?;
            return Ok(AccelChoice { accel, reason: format!("{ACCEL_ENV}={text}") });
        }
        let report = self.run_cached().await?;
        let accel = if report.usable { Accel::Kvm } else { Accel::Tcg };
        let from = if report.cached { " (cached probe)" } else { "" };
        Ok(AccelChoice { accel, reason: format!("KVM {}{from}: {}", usable_word(report.usable), report.reason) })
    }

    /// The verdict from the cache, or from a fresh probe (then cached).
    pub async fn run_cached(&self) -> Result<ProbeReport, ProbeError> {
        let (qemu_version, host_kernel) = self.identity().await?;
        if let Err(reason) = self.device_opens() {
            return Ok(ProbeReport {
                usable: false,
                reason,
                qemu_version,
                host_kernel,
                start_ms: None,
                workload_ms: None,
                total_ms: 0,
                cached: false,
            });
        }
        let cache_file = self.cache_dir.as_ref().map(|d| d.join(cache_name(self.accel, &qemu_version, &host_kernel)));
        if let Some(file) = &cache_file
            && let Some(mut report) =
                std::fs::read(file).ok().and_then(|b| serde_json::from_slice::<ProbeReport>(&b).ok())
        {
            report.cached = true;
            return Ok(report);
        }
        let report = self.boot(qemu_version, host_kernel).await?;
        if let Some(file) = &cache_file {
            store(file, &report)?;
        }
        Ok(report)
    }

    /// A fresh probe, bypassing the cache.
    pub async fn run(&self) -> Result<ProbeReport, ProbeError> {
        let (qemu_version, host_kernel) = self.identity().await?;
        if let Err(reason) = self.device_opens() {
            return Ok(ProbeReport {
                usable: false,
                reason,
                qemu_version,
                host_kernel,
                start_ms: None,
                workload_ms: None,
                total_ms: 0,
                cached: false,
            });
        }
        self.boot(qemu_version, host_kernel).await
    }

    fn device_opens(&self) -> Result<(), String> {
        if self.accel != Accel::Kvm {
            return Ok(());
        }
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.kvm_device)
            .map(drop)
            .map_err(|e| format!("cannot open {} read-write: {e}", self.kvm_device.display()))
    }

    async fn identity(&self) -> Result<(String, String), ProbeError> {
        let out = tokio::process::Command::new(&self.program)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| ProbeError::QemuVersion {
                program: self.program.display().to_string(),
                detail: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(ProbeError::QemuVersion {
                program: self.program.display().to_string(),
                detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
        let version = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").trim().to_owned();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned();
        Ok((version, kernel))
    }

    /// The QEMU command the probe runs for `payload`.
    pub fn command(&self, payload: &Path) -> QemuCommand {
        let mut cmd = QemuCommand::new(self.accel);
        cmd.program = self.program.clone();
        cmd.machine = Machine::new("q35");
        cmd.memory_mib = 64;
        cmd.no_defaults = true;
        cmd.no_reboot = true;
        cmd.display = Some(Display::None);
        cmd.serials = vec![Serial::Stdio];
        cmd.devices = vec![Device::new("isa-debug-exit").prop("iobase", "0xf4").prop("iosize", "0x04")];
        cmd.direct_boot = Some(DirectBoot { kernel: payload.to_owned(), initrd: None, cmdline: KernelCmdline::new() });
        cmd
    }

    async fn boot(&self, qemu_version: String, host_kernel: String) -> Result<ProbeReport, ProbeError> {
        let dir = tempfile::Builder::new().prefix("vmkit-kvm-probe-").tempdir().map_err(|source| ProbeError::Io {
            op: "creating a temp dir in",
            path: std::env::temp_dir(),
            source,
        })?;
        let payload = dir.path().join("kvm-probe.bin");
        std::fs::write(&payload, PROBE_PAYLOAD).map_err(|source| ProbeError::Io {
            op: "writing",
            path: payload.clone(),
            source,
        })?;
        let began = Instant::now();
        let verdict = self.observe(&self.command(&payload), began).await;
        let total_ms = millis(began.elapsed());
        let report = ProbeReport {
            usable: verdict.usable,
            reason: verdict.reason,
            qemu_version,
            host_kernel,
            start_ms: verdict.start.map(millis),
            workload_ms: verdict.workload.map(millis),
            total_ms,
            cached: false,
        };
        tracing::info!(usable = report.usable, reason = %report.reason, total_ms, "KVM probe");
        Ok(report)
    }

    async fn observe(&self, cmd: &QemuCommand, began: Instant) -> Verdict {
        let options = StartOptions { capture_stdout: true, ..StartOptions::default() };
        let mut qemu = match Qemu::start_with(cmd, options).await {
            Ok(q) => q,
            Err(e) => return Verdict::unusable(format!("QEMU did not start under {}: {e}", self.accel), None, None),
        };
        let Some(stdout) = qemu.take_stdout() else {
            return Verdict::unusable("QEMU's output was not captured".to_owned(), None, None);
        };
        let mut lines = BufReader::new(stdout);
        let exited = qemu.exited();
        tokio::pin!(exited);
        let mut start: Option<Instant> = None;
        let mut deadline = tokio::time::Instant::from_std(began + self.start_timeout);
        let mut seen = 0usize;
        loop {
            let event = tokio::select! {
                r = read_line(&mut lines) => Event::Line(r),
                exit = &mut exited => Event::Exit(exit),
                () = tokio::time::sleep_until(deadline) => Event::Deadline,
            };
            let line = match event {
                Event::Line(Ok(line)) if !line.is_empty() => line,
                Event::Line(_) => {
                    // Output closed: QEMU is exiting.
                    let exit = tokio::time::timeout(Duration::from_secs(5), &mut exited).await;
                    let detail = exit.map(|e| e.to_string()).unwrap_or_else(|_| "its output closed".to_owned());
                    return Verdict::unusable(
                        format!("QEMU exited before the payload finished ({detail})"),
                        start.map(|s| s - began),
                        None,
                    );
                }
                Event::Exit(exit) => {
                    return Verdict::unusable(
                        format!("QEMU exited before the payload finished ({exit})"),
                        start.map(|s| s - began),
                        None,
                    );
                }
                Event::Deadline => {
                    return match start {
                        None => Verdict::unusable(
                            format!("the probe payload did not start within {} ms", millis(self.start_timeout)),
                            None,
                            None,
                        ),
                        Some(s) => Verdict::unusable(
                            format!(
                                "the probe payload's loop did not finish within {} ms (TCG needs about 200 ms): \
                                 guest code runs far slower under this KVM than under emulation",
                                millis(self.workload_budget)
                            ),
                            Some(s - began),
                            None,
                        ),
                    };
                }
            };
            seen += line.len();
            if seen > 4096 {
                return Verdict::unusable("the probe payload printed unexpected output".to_owned(), None, None);
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            if text == START_MARKER && start.is_none() {
                let now = Instant::now();
                start = Some(now);
                deadline = tokio::time::Instant::from_std(now + self.workload_budget);
            } else if let (Some(s), Some(hex)) = (start, text.strip_prefix(DONE_MARKER)) {
                let workload = s.elapsed();
                let startup = Some(s - began);
                return match u64::from_str_radix(hex.trim(), 16) {
                    Ok(PROBE_CHECKSUM) => Verdict {
                        usable: true,
                        reason: format!(
                            "the probe payload ran its loop in {} ms (budget {} ms)",
                            millis(workload),
                            millis(self.workload_budget)
                        ),
                        start: startup,
                        workload: Some(workload),
                    },
                    _ => Verdict::unusable(
                        format!("the probe payload computed a wrong checksum ({hex}); the vCPU misbehaves"),
                        startup,
                        Some(workload),
                    ),
                };
            }
        }
    }
}

enum Event {
    Line(std::io::Result<Vec<u8>>),
    Exit(crate::process::Exit),
    Deadline,
}

/// One line of at most 512 bytes (a longer one is returned in pieces).
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    reader.take(512).read_until(b'\n', &mut line).await?;
    Ok(line)
}

struct Verdict {
    usable: bool,
    reason: String,
    start: Option<Duration>,
    workload: Option<Duration>,
}

impl Verdict {
    fn unusable(reason: String, start: Option<Duration>, workload: Option<Duration>) -> Self {
        Self { usable: false, reason, start, workload }
    }
}

fn usable_word(usable: bool) -> &'static str {
    if usable { "usable" } else { "unusable" }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The cache file name for a host configuration: readable, and safe as a file name.
fn cache_name(accel: Accel, qemu_version: &str, host_kernel: &str) -> String {
    let raw = format!("r{PROBE_REVISION}-{accel}-{qemu_version}-kernel-{host_kernel}");
    let mut name: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+') { c } else { '_' }).collect();
    name.truncate(200);
    name.push_str(".json");
    name
}

fn store(file: &Path, report: &ProbeReport) -> Result<(), ProbeError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|source| ProbeError::Io { op: "creating", path: dir.to_owned(), source })?;
    let json = serde_json::to_vec_pretty(report).unwrap_or_default();
    store::write_atomic(file, &json, 0o600).map_err(|source| ProbeError::Io {
        op: "writing",
        path: file.to_owned(),
        source,
    })
}

/// The accelerator for this host with the default probe and cache (see [`KvmProbe::choose`]).
pub async fn choose_accel() -> Result<AccelChoice, ProbeError> {
    KvmProbe::default().choose().await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Rust twin of the payload's loop: the checksum the host expects.
    fn expected_checksum() -> u64 {
        const BUF_SIZE: u64 = 0x80_0000;
        let mut buf = vec![0u64; (BUF_SIZE / 8) as usize];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..0x10_0000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = ((x & (BUF_SIZE - 8)) / 8) as usize;
            buf[i] = buf[i].wrapping_add(x);
        }
        buf.iter().fold(x, |acc, v| acc.wrapping_add(*v))
    }

    #[test]
    fn checksum_matches_the_payloads_algorithm() {
        assert_eq!(expected_checksum(), PROBE_CHECKSUM);
    }

    #[test]
    fn cache_names_are_plain() {
        let n = cache_name(Accel::Kvm, "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7)", "6.1.0/x y");
        assert!(n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_')), "{n}");
        assert!(n.starts_with("r1-kvm-QEMU_emulator_version_7.2.22"), "{n}");
    }
}
