//! The QEMU machine a macOS guest needs, and the host check that runs before anything is downloaded.
//!
//! macOS runs only on hardware it recognises, so the machine imitates a Mac closely enough: an Apple SMC
//! (`isa-applesmc`, which answers macOS's key check with the OSK string), an Intel CPU model with the instruction
//! set the version was compiled for (Ventura and later use AVX2 and stop at the Apple logo without it — the
//! complaint peers hear most), USB keyboard and tablet on an xHCI controller (macOS has no PS/2 driver; the tablet
//! gives absolute pointer positions for the automation), a `vmware-svga` display (macOS ships a driver for it),
//! a virtio NIC (macOS has had `virtio-net` support since 11) and the disks on q35's AHCI controller: OpenCore's
//! disk first, then the installer, then the system disk. UEFI comes from OVMF.
//!
//! [`preflight`] says before a multi-gigabyte download whether this host can run that: KVM that really runs
//! guests (the `qemu` crate's probe), the CPU flags the version needs, and enough memory. Without KVM the build
//! is refused unless TCG was asked for explicitly: macOS under emulation takes many hours to install.

use std::path::PathBuf;

use fetch::macos::MacosVersion;
use qemu::{
    Accel, Cpu, CpuFeature, Device, Display, Drive, Firmware, HostForward, ImageFormat, QemuCommand, Smp, UserNet, Vga,
};

/// The string macOS reads back from the SMC to check it runs on Apple hardware. Every Mac's SMC holds it; QEMU's
/// `isa-applesmc` device answers with whatever it is given.
pub const APPLE_SMC_OSK: &str = "ourhardworkbythesewordsguardedpleasedontsteal(c)AppleComputerInc";

/// The CPU a version gets: an Intel model macOS knows and the features it must see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuProfile {
    /// QEMU's CPU model.
    pub model: &'static str,
    /// Host CPU flags (as `/proc/cpuinfo` names them) the guest needs: without them KVM cannot pass them on.
    pub host_flags: &'static [&'static str],
    /// Features added to the model (QEMU's names).
    pub features: &'static [&'static str],
}

/// Instruction-set features every supported version uses (Ventura and later are built for Haswell and newer).
const FEATURES: &[&str] =
    &["ssse3", "sse4.2", "popcnt", "avx", "avx2", "aes", "fma", "bmi1", "bmi2", "movbe", "xsave", "xsaveopt"];
/// The same, as `/proc/cpuinfo` spells them.
const HOST_FLAGS: &[&str] =
    &["ssse3", "sse4_2", "popcnt", "avx", "avx2", "aes", "fma", "bmi1", "bmi2", "movbe", "xsave", "xsaveopt"];

/// The CPU profile of `version`. Ventura keeps the Haswell model it was the last to support; Sonoma and later get
/// a Skylake client model (their kernels expect its feature set).
pub fn cpu_profile(version: MacosVersion) -> CpuProfile {
    let model = match version {
        MacosVersion::Ventura => "Haswell-noTSX",
        MacosVersion::Sonoma | MacosVersion::Sequoia | MacosVersion::Tahoe => "Skylake-Client-v4",
    };
    CpuProfile { model, host_flags: HOST_FLAGS, features: FEATURES }
}

/// The memory a version needs at least, in MiB.
pub fn min_memory_mib(version: MacosVersion) -> u32 {
    match version {
        MacosVersion::Ventura | MacosVersion::Sonoma => 4096,
        MacosVersion::Sequoia | MacosVersion::Tahoe => 8192,
    }
}

/// A macOS guest's machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacMachine {
    /// The guest name.
    pub name: String,
    /// The version (decides the CPU profile).
    pub version: MacosVersion,
    /// The accelerator.
    pub accel: Accel,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// vCPUs.
    pub cpus: u32,
    /// OVMF's code (read-only) and this VM's copy of its variables.
    pub ovmf_code: PathBuf,
    /// The per-VM variable store.
    pub ovmf_vars: PathBuf,
    /// OpenCore's boot disk (raw, GPT with an EFI partition).
    pub opencore: PathBuf,
    /// The installer disk (raw, from the recovery image), while installing.
    pub installer: Option<PathBuf>,
    /// The system disk (qcow2).
    pub system: PathBuf,
    /// Host port forwarded (on 127.0.0.1) to the guest's SSH port.
    pub ssh_port: u16,
    /// The NIC's MAC address.
    pub mac: String,
}

impl MacMachine {
    /// The QEMU command for this machine. Callers add what differs between build, test and run script (QMP,
    /// VNC, serial log, pidfile).
    pub fn command(&self) -> QemuCommand {
        let mut cmd = QemuCommand::new(self.accel);
        cmd.name = Some(self.name.clone());
        cmd.memory_mib = self.memory_mib;
        cmd.smp = Some(Smp::cpus(self.cpus.max(1)));
        let profile = cpu_profile(self.version);
        let mut cpu = Cpu::model(profile.model);
        cpu.features.push(CpuFeature::Prop("vendor".into(), "GenuineIntel".into()));
        if self.accel == Accel::Kvm {
            // An invariant TSC and its frequency in the VMware CPUID leaf: macOS's clock calibration relies on
            // them; TCG offers neither.
            cpu.features.push(CpuFeature::Prop("kvm".into(), "on".into()));
            cpu.features.push(CpuFeature::Enable("invtsc".into()));
            cpu.features.push(CpuFeature::Prop("vmware-cpuid-freq".into(), "on".into()));
        }
        cpu.features.extend(profile.features.iter().map(|f| CpuFeature::Enable((*f).into())));
        // Warn (not fail) when the accelerator cannot provide a feature: the pre-flight has already checked them.
        cpu.features.push(CpuFeature::Flag("check".into()));
        cmd.cpu = Some(cpu);
        cmd.no_defaults = true;
        cmd.firmware = Firmware::Uefi { code: self.ovmf_code.clone(), vars: self.ovmf_vars.clone(), secure: false };
        cmd.devices.push(Device::new("isa-applesmc").prop("osk", APPLE_SMC_OSK));
        cmd.devices.push(Device::new("qemu-xhci").prop("id", "xhci"));
        cmd.devices.push(Device::new("usb-kbd").prop("bus", "xhci.0"));
        cmd.devices.push(Device::new("usb-tablet").prop("bus", "xhci.0"));
        cmd.vga = Some(Vga::None);
        cmd.devices.push(Device::new("vmware-svga"));
        cmd.display = Some(Display::None);
        let mut disks: Vec<(&str, PathBuf, ImageFormat, bool)> =
            vec![("opencore", self.opencore.clone(), ImageFormat::Raw, false)];
        if let Some(installer) = &self.installer {
            disks.push(("installer", installer.clone(), ImageFormat::Raw, true));
        }
        disks.push(("system", self.system.clone(), ImageFormat::Qcow2, false));
        for (port, (id, file, format, readonly)) in disks.into_iter().enumerate() {
            // q35's own ICH9 AHCI controller, whose ports are the buses `ide.0` … `ide.5`.
            let device = Device::new("ide-hd").prop("bus", format!("ide.{port}")).prop("bootindex", port.to_string());
            let mut drive = Drive::with_device(id, file, format, device);
            // ide-hd cannot be read-only; the installer's writes go to a throwaway overlay instead.
            drive.snapshot = readonly;
            cmd.drives.push(drive);
        }
        let mut net = UserNet::virtio("net0", vec![HostForward::tcp(self.ssh_port, 22)]);
        net.nic = net.nic.prop("mac", &self.mac);
        cmd.nets.push(net);
        cmd
    }
}

/// What the host offers, as read from `/proc` (or given by a test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// Whether KVM runs guests here (the `qemu` crate's probe), with its reason.
    pub kvm_usable: bool,
    /// The probe's reason.
    pub kvm_reason: String,
    /// The CPU flags of the first processor in `/proc/cpuinfo`.
    pub cpu_flags: Vec<String>,
    /// `MemTotal` in MiB.
    pub memory_mib: u64,
}

impl HostFacts {
    /// Reads CPU flags and memory from `cpuinfo` and `meminfo` text; KVM's verdict comes from the probe.
    pub fn from_proc(cpuinfo: &str, meminfo: &str, kvm_usable: bool, kvm_reason: &str) -> Self {
        let cpu_flags = cpuinfo
            .lines()
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == "flags").map(|(_, v)| v))
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let memory_mib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024);
        Self { kvm_usable, kvm_reason: kvm_reason.to_owned(), cpu_flags, memory_mib }
    }
}

/// The pre-flight's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    /// The accelerator to use, when the host can run the version.
    pub accel: Option<Accel>,
    /// Why not (empty when it can), one reason per line.
    pub problems: Vec<String>,
    /// What the user should know even when it can (TCG's slowness).
    pub warnings: Vec<String>,
}

/// Whether `host` can run `version` with `memory_mib` of guest memory. With KVM, the CPU flags the version needs
/// must be on the host (KVM passes the host's features through); without KVM, only `allow_tcg` lets it go on
/// (QEMU then emulates the features itself).
pub fn preflight(version: MacosVersion, memory_mib: u32, host: &HostFacts, allow_tcg: bool) -> Preflight {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let min = min_memory_mib(version);
    if memory_mib < min {
        problems
            .push(format!("macOS {version} needs at least {min} MiB of guest memory; the recipe gives {memory_mib}"));
    }
    if host.memory_mib < u64::from(memory_mib) + 1024 {
        problems.push(format!(
            "the host has {} MiB of memory; a {memory_mib} MiB guest needs at least {} MiB",
            host.memory_mib,
            u64::from(memory_mib) + 1024
        ));
    }
    let accel = if host.kvm_usable {
        let missing: Vec<&str> = cpu_profile(version)
            .host_flags
            .iter()
            .copied()
            .filter(|flag| !host.cpu_flags.iter().any(|f| f == flag))
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "macOS {version} needs these CPU features, which this host's CPU lacks: {} (it would stop at the Apple logo)",
                missing.join(", ")
            ));
        }
        Some(Accel::Kvm)
    } else if allow_tcg {
        warnings.push(format!(
            "KVM is not usable here ({}); emulating with TCG as asked: expect the install to take many hours",
            host.kvm_reason
        ));
        Some(Accel::Tcg)
    } else {
        problems.push(format!(
            "KVM is not usable here ({}); macOS under TCG emulation takes many hours to install, so it runs only when \
             asked for explicitly (--allow-tcg)",
            host.kvm_reason
        ));
        None
    };
    Preflight { accel: if problems.is_empty() { accel } else { None }, problems, warnings }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO_HASWELL: &str = "processor\t: 0\nflags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 popcnt aes xsave avx \
                                   avx2 fma bmi1 bmi2 movbe xsaveopt\n";
    const CPUINFO_IVY: &str = "processor\t: 0\nflags\t\t: fpu sse sse2 ssse3 sse4_2 popcnt aes xsave avx xsaveopt\n";
    const MEMINFO: &str = "MemTotal:       16384000 kB\nMemFree:         100 kB\n";

    #[test]
    fn a_capable_kvm_host_passes() {
        let host = HostFacts::from_proc(CPUINFO_HASWELL, MEMINFO, true, "probe ran");
        assert_eq!(host.memory_mib, 16_000);
        let verdict = preflight(MacosVersion::Sonoma, 4096, &host, false);
        assert_eq!(verdict.accel, Some(Accel::Kvm), "{verdict:?}");
        assert!(verdict.problems.is_empty());
    }

    #[test]
    fn missing_avx2_is_named() {
        let host = HostFacts::from_proc(CPUINFO_IVY, MEMINFO, true, "probe ran");
        let verdict = preflight(MacosVersion::Ventura, 4096, &host, false);
        assert_eq!(verdict.accel, None);
        let text = verdict.problems.join("\n");
        assert!(text.contains("avx2") && text.contains("fma") && text.contains("Apple logo"), "{text}");
    }

    #[test]
    fn no_kvm_needs_the_explicit_flag_and_memory_is_checked() {
        let host = HostFacts::from_proc(CPUINFO_IVY, "MemTotal: 4096000 kB\n", false, "/dev/kvm missing");
        let refused = preflight(MacosVersion::Tahoe, 8192, &host, false);
        assert_eq!(refused.accel, None);
        let text = refused.problems.join("\n");
        assert!(
            text.contains("/dev/kvm missing") && text.contains("--allow-tcg") && text.contains("host has"),
            "{text}"
        );
        let big_host = HostFacts { memory_mib: 64_000, ..host };
        let tcg = preflight(MacosVersion::Tahoe, 8192, &big_host, true);
        assert_eq!(tcg.accel, Some(Accel::Tcg), "{tcg:?}");
        assert!(tcg.warnings[0].contains("hours"));
        let small = preflight(MacosVersion::Tahoe, 4096, &big_host, true);
        assert!(small.problems[0].contains("8192"), "{small:?}");
    }

    #[test]
    fn ventura_and_later_get_avx2() {
        for version in MacosVersion::ALL {
            let profile = cpu_profile(version);
            assert!(profile.features.contains(&"avx2") && profile.host_flags.contains(&"avx2"));
        }
    }
}
