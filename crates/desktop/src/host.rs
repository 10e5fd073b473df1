//! What the host must provide for a config, and checks of the running host against it.
//!
//! [`HostPlan::for_config`] is pure: the kernel parameters, sysctl settings, mounts and files the VMs need
//! (huge pages of the configured size, IOMMU for PCI passthrough, vfio-pci binding, `kvm.ignore_msrs` for
//! macOS, the Looking Glass shared memory file). vmkit does not edit boot loaders or /etc — on NixOS these are
//! module options, elsewhere the user applies them — but it says exactly what is needed and why.
//!
//! [`preflight`] reads the running host (under a root directory, so tests can build a fake sysfs) and reports
//! each requirement as ok, warning or failure: free huge pages against what the VMs need, the IOMMU groups of
//! the passed-through devices, whether KVM really runs guests (vmkit's boot probe, not just "/dev/kvm opens"),
//! and whether OVMF, swtpm and virtiofsd are installed.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::model::{CpuVendor, DesktopConfig, DomainType, FirmwareKind, OsType, PageSize};
use crate::values::{ByteSize, CpuSet, PciAddress};

/// One setting with the reason it is needed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Setting {
    /// Parameter or key.
    pub key: String,
    /// Value (empty for flag-style kernel parameters).
    pub value: String,
    /// Why the VMs need it.
    pub why: String,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = if self.value.is_empty() { self.key.clone() } else { format!("{}={}", self.key, self.value) };
        f.pad(&text)
    }
}

/// A file system to mount (an fstab line).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MountSpec {
    /// Source.
    pub what: String,
    /// Mount point.
    pub target: PathBuf,
    /// File system type.
    pub fstype: String,
    /// Mount options.
    pub options: String,
    /// Why.
    pub why: String,
}

/// What the host needs for a config.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HostPlan {
    /// Kernel command line parameters.
    pub kernel_params: Vec<Setting>,
    /// sysctl settings.
    pub sysctl: Vec<Setting>,
    /// Mounts.
    pub mounts: Vec<MountSpec>,
    /// systemd-tmpfiles lines (files that must exist with an owner).
    pub tmpfiles: Vec<Setting>,
    /// Things worth knowing that are not settings.
    pub notes: Vec<String>,
}

impl HostPlan {
    /// The plan for `cfg`; `detected_vendor` is used when `gpuPassthrough.cpuVendor` is not set.
    pub fn for_config(cfg: &DesktopConfig, detected_vendor: Option<CpuVendor>) -> HostPlan {
        let mut plan = HostPlan::default();
        let vms: Vec<_> = cfg.enabled_vms().collect();
        let size = cfg.hugepages.size;

        if cfg.hugepages.enable && cfg.hugepages.count > 0 {
            let count = cfg.hugepages.count;
            let why = format!(
                "{count} huge pages of {} ({}) back the VMs' memory{}",
                size.as_str(),
                ByteSize(count * size.bytes()),
                if cfg.hugepages.count_given { "" } else { " (computed from the enabled VMs)" }
            );
            match size {
                PageSize::M2 => {
                    plan.sysctl.push(Setting {
                        key: "vm.nr_hugepages".into(),
                        value: count.to_string(),
                        why: why.clone(),
                    });
                    plan.kernel_params.push(Setting {
                        key: "hugepages".into(),
                        value: count.to_string(),
                        why: format!("{why}; reserving them at boot avoids fragmentation (alternative to the sysctl)"),
                    });
                }
                PageSize::G1 => {
                    plan.kernel_params.push(Setting {
                        key: "default_hugepagesz".into(),
                        value: "1G".into(),
                        why: "1 GiB pages as the default huge page size".into(),
                    });
                    plan.kernel_params.push(Setting { key: "hugepagesz".into(), value: "1G".into(), why: why.clone() });
                    plan.kernel_params.push(Setting {
                        key: "hugepages".into(),
                        value: count.to_string(),
                        why: format!("{why}; 1 GiB pages can only be reserved at boot"),
                    });
                }
            }
            let (target, opts) = match size {
                PageSize::M2 => ("/dev/hugepages", "pagesize=2M"),
                PageSize::G1 => ("/dev/hugepages1G", "pagesize=1G"),
            };
            plan.mounts.push(MountSpec {
                what: "hugetlbfs".into(),
                target: target.into(),
                fstype: "hugetlbfs".into(),
                options: opts.into(),
                why: format!("libvirt allocates {} huge pages from a hugetlbfs mount of that size", size.as_str()),
            });
        }

        let passthrough: Vec<_> = vms.iter().filter(|vm| !vm.pci_devices.is_empty()).collect();
        if cfg.gpu_passthrough.enable || !passthrough.is_empty() {
            let why = if passthrough.is_empty() {
                "gpuPassthrough.enable: PCI passthrough needs the IOMMU".to_owned()
            } else {
                let names: Vec<&str> = passthrough.iter().map(|vm| vm.name.as_str()).collect();
                format!("PCI passthrough ({}) needs the IOMMU", names.join(", "))
            };
            match cfg.gpu_passthrough.cpu_vendor.or(detected_vendor) {
                Some(CpuVendor::Intel) => {
                    plan.kernel_params.push(Setting { key: "intel_iommu".into(), value: "on".into(), why: why.clone() })
                }
                Some(CpuVendor::Amd) => {
                    plan.kernel_params.push(Setting { key: "amd_iommu".into(), value: "on".into(), why: why.clone() })
                }
                None => plan.notes.push(
                    "the CPU vendor is unknown: add intel_iommu=on (Intel) or amd_iommu=on (AMD), or set \
                     gpuPassthrough.cpuVendor"
                        .into(),
                ),
            }
            plan.kernel_params.push(Setting {
                key: "iommu".into(),
                value: "pt".into(),
                why: "IOMMU passthrough mode for host devices: no translation overhead for the host".into(),
            });
        }
        if cfg.gpu_passthrough.enable && !cfg.gpu_passthrough.pci_ids.is_empty() {
            let ids: Vec<String> = cfg.gpu_passthrough.pci_ids.iter().map(ToString::to_string).collect();
            plan.kernel_params.push(Setting {
                key: "vfio-pci.ids".into(),
                value: ids.join(","),
                why: "bind the passed-through GPU functions to vfio-pci before the host's GPU driver claims them"
                    .into(),
            });
            plan.notes.push(
                "vfio-pci must load before the GPU driver: put vfio, vfio_iommu_type1 and vfio_pci in the initramfs \
                 (on NixOS: boot.initrd.kernelModules)"
                    .into(),
            );
        }

        let macs: Vec<&str> = vms.iter().filter(|vm| vm.os_type == OsType::Macos).map(|vm| vm.name.as_str()).collect();
        if !macs.is_empty() {
            plan.kernel_params.push(Setting {
                key: "kvm.ignore_msrs".into(),
                value: "1".into(),
                why: format!(
                    "macOS ({}) reads MSRs KVM does not emulate; without this the guest panics",
                    macs.join(", ")
                ),
            });
            plan.kernel_params.push(Setting {
                key: "kvm.report_ignored_msrs".into(),
                value: "0".into(),
                why: "keeps the ignored MSR accesses out of the kernel log".into(),
            });
        }

        if cfg.looking_glass.enable && vms.iter().any(|vm| vm.display == crate::model::Display::LookingGlass) {
            let user = cfg.looking_glass.user.clone().unwrap_or_else(|| "root".into());
            plan.tmpfiles.push(Setting {
                key: "f /dev/shm/looking-glass".into(),
                value: format!("0660 {user} kvm -"),
                why: format!(
                    "the Looking Glass shared memory ({} MiB) must be readable by the client's user",
                    cfg.looking_glass.shared_memory_mb
                ),
            });
        }

        if cfg.firewall_ports.given && (cfg.firewall_ports.spice || cfg.firewall_ports.vnc) {
            plan.notes.push(
                "firewallPorts: no port is opened; SPICE and VNC listen on 127.0.0.1 only. Reach them from another \
                 machine through SSH (virt-viewer --connect qemu+ssh://HOST/system NAME)"
                    .into(),
            );
        }
        plan
    }

    /// Whether the plan asks for nothing.
    pub fn is_empty(&self) -> bool {
        self.kernel_params.is_empty() && self.sysctl.is_empty() && self.mounts.is_empty() && self.tmpfiles.is_empty()
    }
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Probably fine, or could not be decided.
    Warn,
    /// The VMs will not start (or not as configured).
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        })
    }
}

/// One pre-flight check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Outcome.
    pub status: Status,
    /// Details: what was found, what to do.
    pub detail: String,
}

/// What is known about KVM on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvmState {
    /// vmkit's boot probe ran a guest under KVM.
    Usable(String),
    /// The boot probe says KVM does not run guests properly.
    Unusable(String),
    /// `/dev/kvm` exists but no probe ran.
    PresentNotProbed,
    /// No `/dev/kvm`.
    Absent,
}

/// Asks vmkit's KVM boot probe (cached per host; see the `qemu` crate).
pub async fn probe_kvm() -> KvmState {
    if !Path::new("/dev/kvm").exists() {
        return KvmState::Absent;
    }
    match qemu::KvmProbe::default().run_cached().await {
        Ok(r) if r.usable => KvmState::Usable(r.reason),
        Ok(r) => KvmState::Unusable(r.reason),
        Err(e) => KvmState::Unusable(format!("the probe could not run: {e}")),
    }
}

/// The CPU vendor from `/proc/cpuinfo` under `root`.
pub fn detect_cpu_vendor(root: &Path) -> Option<CpuVendor> {
    let text = std::fs::read_to_string(root.join("proc/cpuinfo")).ok()?;
    let line = text.lines().find(|l| l.starts_with("vendor_id"))?;
    if line.contains("GenuineIntel") {
        Some(CpuVendor::Intel)
    } else if line.contains("AuthenticAMD") {
        Some(CpuVendor::Amd)
    } else {
        None
    }
}

fn read_trim(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn under(root: &Path, abs: &Path) -> PathBuf {
    root.join(abs.strip_prefix("/").unwrap_or(abs))
}

fn program_present(root: &Path, name: &str) -> Option<PathBuf> {
    if root == Path::new("/") {
        return crate::discover::which(name);
    }
    ["usr/bin", "usr/sbin", "bin", "sbin"].iter().map(|d| root.join(d).join(name)).find(|p| p.is_file())
}

/// Checks the host under `root` ("/" for the running one) against what `cfg` needs.
pub fn preflight(cfg: &DesktopConfig, root: &Path, kvm: &KvmState) -> Vec<Check> {
    let mut checks = Vec::new();
    let vms: Vec<_> = cfg.enabled_vms().collect();
    let mut check = |name: &str, status: Status, detail: String| {
        checks.push(Check { name: name.to_owned(), status, detail });
    };

    match (cfg.domain_type, kvm) {
        (DomainType::Qemu, _) => check("kvm", Status::Ok, "not needed: domainType = \"qemu\" (emulation)".into()),
        (DomainType::Kvm, KvmState::Usable(why)) => check("kvm", Status::Ok, format!("usable ({why})")),
        (DomainType::Kvm, KvmState::Unusable(why)) => check(
            "kvm",
            Status::Fail,
            format!(
                "/dev/kvm is present but KVM does not run guests properly: {why}; set domainType = \"qemu\" to emulate"
            ),
        ),
        (DomainType::Kvm, KvmState::PresentNotProbed) => {
            check("kvm", Status::Warn, "/dev/kvm present (not probed: whether guests really run is unknown)".into())
        }
        (DomainType::Kvm, KvmState::Absent) => check(
            "kvm",
            Status::Fail,
            "no /dev/kvm: enable virtualisation in the firmware and load kvm_intel or kvm_amd".into(),
        ),
    }

    if !vms.is_empty() {
        let total: u64 = vms.iter().map(|vm| vm.memory.0).sum();
        if let Some(mem_kib) = read_trim(&root.join("proc/meminfo")).and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        }) {
            let host = mem_kib * 1024;
            let status = if total > host { Status::Warn } else { Status::Ok };
            check(
                "memory",
                status,
                format!(
                    "the enabled VMs have {} together; the host has {}",
                    ByteSize(total).approx(),
                    ByteSize(host).approx()
                ),
            );
        }
    }

    if cfg.hugepages.enable && cfg.hugepages.needed > 0 {
        let size = cfg.hugepages.size;
        let dir = root.join(format!("sys/kernel/mm/hugepages/hugepages-{}kB", size.kib()));
        let needed = cfg.hugepages.needed;
        match (read_trim(&dir.join("nr_hugepages")), read_trim(&dir.join("free_hugepages"))) {
            (Some(total), Some(free)) => {
                let free_n: u64 = free.parse().unwrap_or(0);
                let status = if free_n >= needed { Status::Ok } else { Status::Fail };
                check(
                    &format!("hugepages {}", size.as_str()),
                    status,
                    format!("{free} free of {total} reserved; the enabled VMs need {needed}"),
                );
            }
            _ => check(
                &format!("hugepages {}", size.as_str()),
                Status::Fail,
                format!("the kernel offers no {} huge pages ({} missing)", size.as_str(), dir.display()),
            ),
        }
        let wants_mount = vms.iter().any(|vm| vm.hugepages && vm.shared_folders.is_empty());
        if wants_mount {
            let mounts = read_trim(&root.join("proc/mounts")).unwrap_or_default();
            let found = mounts.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(2) == Some(&"hugetlbfs")
                    && f.get(3).is_some_and(|o| {
                        o.contains(&format!("pagesize={}", size.as_str()))
                            || o.contains(&format!("pagesize={}", ByteSize(size.bytes())))
                    })
            });
            let status = if found { Status::Ok } else { Status::Warn };
            check(
                "hugetlbfs",
                status,
                if found {
                    format!("a hugetlbfs mount with {} pages exists", size.as_str())
                } else {
                    format!("no hugetlbfs mount with pagesize={}: libvirt cannot allocate the pages", size.as_str())
                },
            );
        }
    }

    let online = read_trim(&root.join("sys/devices/system/cpu/online")).and_then(|s| s.parse::<CpuSet>().ok());
    for vm in &vms {
        let pinned = vm.cpu_pinning.iter().chain(vm.emulator_pinning.iter()).fold(CpuSet::default(), |a, s| a.union(s));
        if pinned.0.is_empty() {
            continue;
        }
        match &online {
            Some(online) => {
                let missing: BTreeSet<u32> = pinned.0.difference(&online.0).copied().collect();
                if missing.is_empty() {
                    check(&format!("cpu pinning {}", vm.name), Status::Ok, format!("host CPUs {pinned} are online"));
                } else {
                    check(
                        &format!("cpu pinning {}", vm.name),
                        Status::Fail,
                        format!("host CPUs {} do not exist (online: {online})", CpuSet(missing)),
                    );
                }
            }
            None => check(&format!("cpu pinning {}", vm.name), Status::Warn, "cannot read the online CPUs".into()),
        }
    }

    for vm in &vms {
        for dev in &vm.pci_devices {
            let (status, detail) = iommu_check(root, dev, &vm.pci_devices);
            check(&format!("pci {dev} ({})", vm.name), status, detail);
        }
    }

    let efi: Vec<_> = vms.iter().filter(|vm| vm.firmware == FirmwareKind::Efi).collect();
    let mut files: Vec<(&str, &Path)> = Vec::new();
    if efi.iter().any(|vm| vm.secure_boot) {
        files.push(("OVMF Secure Boot code", &cfg.firmware.secure_code));
        files.push(("OVMF Microsoft-keys variables", &cfg.firmware.secure_vars));
    }
    if efi.iter().any(|vm| !vm.secure_boot) {
        files.push(("OVMF code", &cfg.firmware.code));
        files.push(("OVMF variables", &cfg.firmware.vars));
    }
    for (what, path) in files {
        let ok = under(root, path).is_file();
        check(
            what,
            if ok { Status::Ok } else { Status::Fail },
            if ok { path.display().to_string() } else { format!("{} missing (Debian package ovmf)", path.display()) },
        );
    }
    if vms.iter().any(|vm| vm.tpm) {
        for prog in ["swtpm", "swtpm_setup"] {
            match program_present(root, prog) {
                Some(p) => check(prog, Status::Ok, p.display().to_string()),
                None => check(
                    prog,
                    Status::Fail,
                    format!("{prog} not found: the TPM needs it (Debian packages swtpm, swtpm-tools)"),
                ),
            }
        }
    }
    if vms.iter().any(|vm| !vm.shared_folders.is_empty()) {
        let ok = under(root, &cfg.virtiofsd).is_file();
        check(
            "virtiofsd",
            if ok { Status::Ok } else { Status::Fail },
            if ok {
                cfg.virtiofsd.display().to_string()
            } else {
                format!(
                    "{} missing: shared folders need it (Debian 12: qemu-system-common; later: virtiofsd)",
                    cfg.virtiofsd.display()
                )
            },
        );
    }
    if vms.iter().any(|vm| vm.os_type == OsType::Macos) {
        let value = read_trim(&root.join("sys/module/kvm/parameters/ignore_msrs"));
        let ok = matches!(value.as_deref(), Some("Y" | "1"));
        check(
            "kvm.ignore_msrs",
            if ok { Status::Ok } else { Status::Fail },
            match value {
                Some(v) => format!("is {v}; macOS needs Y"),
                None => "the kvm module is not loaded".into(),
            },
        );
    }
    checks
}

fn iommu_check(root: &Path, dev: &PciAddress, same_vm: &[PciAddress]) -> (Status, String) {
    let dev_dir = root.join(format!("sys/bus/pci/devices/{dev}"));
    if !dev_dir.exists() {
        return (Status::Fail, "no such device on this host (lspci -D lists the addresses)".into());
    }
    let group = std::fs::read_link(dev_dir.join("iommu_group"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let Some(group) = group else {
        return (Status::Fail, "no IOMMU group: the IOMMU is off (see the kernel parameters above)".into());
    };
    let driver = std::fs::read_link(dev_dir.join("driver"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "none".into());
    let members: Vec<String> = std::fs::read_dir(root.join(format!("sys/kernel/iommu_groups/{group}/devices")))
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let mut others = Vec::new();
    for m in &members {
        let passed = m.parse::<PciAddress>().is_ok_and(|a| same_vm.contains(&a));
        let class = read_trim(&root.join(format!("sys/bus/pci/devices/{m}/class"))).unwrap_or_default();
        let bridge = class.starts_with("0x0604");
        if !passed && !bridge {
            others.push(m.clone());
        }
    }
    if others.is_empty() {
        (Status::Ok, format!("IOMMU group {group}, driver {driver} (libvirt binds vfio-pci on start)"))
    } else {
        others.sort();
        (
            Status::Warn,
            format!(
                "IOMMU group {group} also holds {}: pass those through to this VM too, or the VM will not start",
                others.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;
    use crate::load::{LoadOptions, load_str};
    use crate::model::FirmwarePaths;

    fn cfg(text: &str) -> DesktopConfig {
        let opts = LoadOptions {
            check_paths: false,
            firmware: FirmwarePaths::debian(),
            virtiofsd: "/usr/lib/qemu/virtiofsd".into(),
        };
        match load_str("t.toml", text, Format::Toml, &opts) {
            Ok(l) => l.config,
            Err(e) => panic!("{e}"),
        }
    }

    fn keys(s: &[Setting]) -> Vec<String> {
        s.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn plan_for_hugepages_iommu_and_macos() {
        let c = cfg("enable = true\nprofile = \"always-on\"\nhugepages.size = \"1G\"\n\
             gpuPassthrough = { enable = true, pciIDs = [\"10de:2484\"] }\n\
             [vms.a]\nmemory = \"8G\"\npciDevices = [\"0000:0b:00.0\"]\n[vms.m]\nosType = \"macos\"\nmemory = \"4G\"\n");
        let p = HostPlan::for_config(&c, Some(CpuVendor::Amd));
        assert_eq!(
            keys(&p.kernel_params),
            [
                "default_hugepagesz=1G",
                "hugepagesz=1G",
                "hugepages=12",
                "amd_iommu=on",
                "iommu=pt",
                "vfio-pci.ids=10de:2484",
                "kvm.ignore_msrs=1",
                "kvm.report_ignored_msrs=0"
            ]
        );
        assert_eq!(p.mounts[0].target, PathBuf::from("/dev/hugepages1G"));
        let two = cfg("enable = true\nhugepages.enable = true\n[vms.a]\nmemory = \"3G\"\n");
        let p = HostPlan::for_config(&two, None);
        assert_eq!(keys(&p.sysctl), ["vm.nr_hugepages=1536"]);
        let none = cfg("enable = true\n[vms.a]\n");
        assert!(HostPlan::for_config(&none, None).is_empty());
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let _ = std::fs::write(p, text);
    }

    #[test]
    fn preflight_against_a_fake_sysfs() -> std::io::Result<()> {
        let root = tempfile::tempdir()?;
        let r = root.path();
        write(r, "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "1024\n");
        write(r, "sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "1000\n");
        write(r, "sys/devices/system/cpu/online", "0-3\n");
        write(r, "proc/meminfo", "MemTotal:       8000000 kB\n");
        write(r, "proc/mounts", "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n");
        // Device 01:00.0 in group 7 with its audio function 01:00.1 (not passed) and a bridge.
        for (dev, class) in [("0000:01:00.0", "0x030000"), ("0000:01:00.1", "0x040300"), ("0000:00:01.0", "0x060400")] {
            write(r, &format!("sys/bus/pci/devices/{dev}/class"), class);
            std::fs::create_dir_all(r.join("sys/kernel/iommu_groups/7/devices"))?;
            std::os::unix::fs::symlink(
                "../../../../bus/pci/devices",
                r.join(format!("sys/kernel/iommu_groups/7/devices/{dev}")),
            )?;
        }
        std::os::unix::fs::symlink(
            "../../../kernel/iommu_groups/7",
            r.join("sys/bus/pci/devices/0000:01:00.0/iommu_group"),
        )?;
        write(r, "usr/share/OVMF/OVMF_CODE_4M.fd", "");
        let c = cfg("enable = true\nhugepages.enable = true\n[vms.a]\nmemory = \"2G\"\ncpuPinning = [\"2\", \"5\"]\n\
             pciDevices = [\"0000:01:00.0\", \"0000:02:00.0\"]\n");
        let checks = preflight(&c, r, &KvmState::PresentNotProbed);
        let get =
            |n: &str| checks.iter().find(|c| c.name == n).cloned().unwrap_or_else(|| panic!("no {n}: {checks:?}"));
        assert_eq!(get("kvm").status, Status::Warn);
        assert!(get("kvm").detail.contains("present (not probed"));
        let hp = get("hugepages 2M");
        assert_eq!(
            (hp.status, hp.detail.as_str()),
            (Status::Fail, "1000 free of 1024 reserved; the enabled VMs need 1024")
        );
        assert_eq!(get("hugetlbfs").status, Status::Ok);
        let pin = get("cpu pinning a");
        assert_eq!((pin.status, pin.detail.as_str()), (Status::Fail, "host CPUs 5 do not exist (online: 0-3)"));
        let g = get("pci 0000:01:00.0 (a)");
        assert_eq!(g.status, Status::Warn, "{g:?}");
        assert!(g.detail.contains("also holds 0000:01:00.1"), "{g:?}");
        assert_eq!(get("pci 0000:02:00.0 (a)").status, Status::Fail);
        assert_eq!(get("OVMF code").status, Status::Ok);
        assert_eq!(get("OVMF variables").status, Status::Fail);
        Ok(())
    }
}
