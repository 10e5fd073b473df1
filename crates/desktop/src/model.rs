//! The resolved Desktop VMs config: every option of `virtualisation.desktopVMs` with its effective value.
//!
//! The loader (`load`) fills these types from a TOML or JSON file; by then defaults and the profile have been
//! applied and every value validated, so the XML generator, the host plan and the libvirt code never see an
//! "unset" option or a string that still has to be parsed. Options that vmkit adds beyond the original's set
//! are marked as extensions in their docs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::values::{ByteSize, CpuSet, MacAddr, PciAddress, PciId, Uuid};
use crate::xml::{Element, XmlError};

/// The global profile: the defaults it gives, which explicit options override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Profile {
    /// VMs started by hand now and then: no hugepages, no autostart, the balloon gives memory back.
    #[serde(rename = "occasional")]
    Occasional,
    /// VMs that run all the time: hugepages, autostart, no balloon deflation or free page reporting.
    #[serde(rename = "always-on")]
    AlwaysOn,
}

/// What a profile sets when the option is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileDefaults {
    /// `hugepages.enable`.
    pub hugepages: bool,
    /// `vms.<name>.autoStart`.
    pub auto_start: bool,
    /// `vms.<name>.memballoon.autodeflate`.
    pub autodeflate: bool,
    /// `vms.<name>.memballoon.freePageReporting`.
    pub free_page_reporting: bool,
}

impl Profile {
    /// The profile's defaults.
    pub const fn defaults(self) -> ProfileDefaults {
        match self {
            Profile::Occasional => {
                ProfileDefaults { hugepages: false, auto_start: false, autodeflate: true, free_page_reporting: true }
            }
            Profile::AlwaysOn => {
                ProfileDefaults { hugepages: true, auto_start: true, autodeflate: false, free_page_reporting: false }
            }
        }
    }

    /// The name as written in the config.
    pub const fn as_str(self) -> &'static str {
        match self {
            Profile::Occasional => "occasional",
            Profile::AlwaysOn => "always-on",
        }
    }
}

/// A huge page size the kernel offers on x86-64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum PageSize {
    /// 2 MiB pages.
    #[serde(rename = "2M")]
    M2,
    /// 1 GiB pages (reserved at boot).
    #[serde(rename = "1G")]
    G1,
}

impl PageSize {
    /// The page size in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::M2 => 2 << 20,
            PageSize::G1 => 1 << 30,
        }
    }

    /// The page size in KiB (libvirt's `<page size>` and sysfs's directory names use it).
    pub const fn kib(self) -> u64 {
        self.bytes() / 1024
    }

    /// "2M" or "1G".
    pub const fn as_str(self) -> &'static str {
        match self {
            PageSize::M2 => "2M",
            PageSize::G1 => "1G",
        }
    }
}

/// `hugepages`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hugepages {
    /// Whether VMs are backed by huge pages (profile default).
    pub enable: bool,
    /// The page size.
    pub size: PageSize,
    /// The number of pages to reserve: as given, or computed from the enabled VMs.
    pub count: u64,
    /// Whether `count` was given in the config.
    pub count_given: bool,
    /// Pages the enabled VMs need together (each VM's memory rounded up to whole pages).
    pub needed: u64,
}

/// `firewallPorts`: accepted for compatibility. vmkit's listeners are on 127.0.0.1, so no port is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FirewallPorts {
    /// `spice` (default true).
    pub spice: bool,
    /// `vnc` (default false).
    pub vnc: bool,
    /// Whether the config set `firewallPorts` at all.
    #[serde(skip)]
    pub given: bool,
}

/// The host CPU vendor, which decides the IOMMU kernel parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuVendor {
    /// `intel_iommu=on`.
    Intel,
    /// `amd_iommu=on`.
    Amd,
}

/// `gpuPassthrough`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GpuPassthrough {
    /// Whether the host is set up for GPU passthrough (IOMMU, vfio-pci binding).
    pub enable: bool,
    /// Vendor:device IDs bound to vfio-pci at boot (`vfio-pci.ids=`).
    #[serde(serialize_with = "display_vec")]
    pub pci_ids: Vec<PciId>,
    /// The host CPU vendor; found from /proc/cpuinfo when not given.
    pub cpu_vendor: Option<CpuVendor>,
}

/// `lookingGlass`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LookingGlass {
    /// Whether Looking Glass is available to VMs with `display = "looking-glass"`.
    pub enable: bool,
    /// The desktop user who runs the Looking Glass client (owns the shared memory file).
    pub user: Option<String>,
    /// Size of the shared memory (ivshmem) in MiB, a power of two (default 128).
    pub shared_memory_mb: u32,
}

/// UEFI firmware files (vmkit extension `ovmf`; discovered on the host when not given).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FirmwarePaths {
    /// OVMF code with Secure Boot support and SMM (`secureCode`).
    pub secure_code: PathBuf,
    /// OVMF variables template with Microsoft's keys enrolled (`secureVars`).
    pub secure_vars: PathBuf,
    /// Plain OVMF code (`code`).
    pub code: PathBuf,
    /// Plain OVMF variables template (`vars`).
    pub vars: PathBuf,
}

/// The libvirt domain type (vmkit extension `domainType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainType {
    /// Hardware virtualisation (the default).
    Kvm,
    /// QEMU's TCG emulation, for hosts where KVM is unusable (nested, CI). The CPU is QEMU's `maximum` model.
    Qemu,
}

impl DomainType {
    /// "kvm" or "qemu".
    pub const fn as_str(self) -> &'static str {
        match self {
            DomainType::Kvm => "kvm",
            DomainType::Qemu => "qemu",
        }
    }
}

/// `vms.<name>.display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Display {
    /// SPICE on 127.0.0.1 with clipboard and USB redirection (default).
    Spice,
    /// VNC on 127.0.0.1.
    Vnc,
    /// A passed-through GPU shown through Looking Glass (ivshmem); SPICE carries keyboard and mouse.
    LookingGlass,
}

impl Display {
    /// The name as written in the config.
    pub const fn as_str(self) -> &'static str {
        match self {
            Display::Spice => "spice",
            Display::Vnc => "vnc",
            Display::LookingGlass => "looking-glass",
        }
    }
}

/// `vms.<name>.osType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OsType {
    /// Windows: Hyper-V enlightenments, local-time clock, TPM and Secure Boot by default.
    Windows,
    /// Linux (default).
    Linux,
    /// macOS: host-side `kvm.ignore_msrs`, USB input, VGA video; OpenCore is the user's to supply.
    Macos,
}

impl OsType {
    /// The name as written in the config.
    pub const fn as_str(self) -> &'static str {
        match self {
            OsType::Windows => "windows",
            OsType::Linux => "linux",
            OsType::Macos => "macos",
        }
    }
}

/// `vms.<name>.videoModel`: libvirt's `<video><model type=…>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoModel {
    /// virtio-gpu.
    Virtio,
    /// QXL (SPICE's paravirtual card; Windows guests with the QXL driver).
    Qxl,
    /// Standard VGA.
    Vga,
    /// Bochs display.
    Bochs,
    /// Cirrus (legacy).
    Cirrus,
    /// ramfb.
    Ramfb,
    /// VMware SVGA.
    Vmvga,
    /// No emulated card (Looking Glass with a passed-through GPU).
    None,
}

impl VideoModel {
    /// All models with their config names.
    pub const ALL: [(&'static str, VideoModel); 8] = [
        ("virtio", VideoModel::Virtio),
        ("qxl", VideoModel::Qxl),
        ("vga", VideoModel::Vga),
        ("bochs", VideoModel::Bochs),
        ("cirrus", VideoModel::Cirrus),
        ("ramfb", VideoModel::Ramfb),
        ("vmvga", VideoModel::Vmvga),
        ("none", VideoModel::None),
    ];

    /// The libvirt model type.
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, m)| *m == self).map_or("none", |(n, _)| n)
    }

    /// The default for an OS and display.
    pub const fn default_for(os: OsType, display: Display) -> Self {
        match (display, os) {
            (Display::LookingGlass, _) => VideoModel::None,
            (_, OsType::Windows) => VideoModel::Qxl,
            (_, OsType::Macos) => VideoModel::Vga,
            (_, OsType::Linux) => VideoModel::Virtio,
        }
    }
}

/// The firmware a VM boots with (vmkit extension `vms.<name>.firmware`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FirmwareKind {
    /// OVMF (UEFI), the default.
    Efi,
    /// SeaBIOS, for old guests and direct kernel boot.
    Bios,
}

/// `vms.<name>.memballoon`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Memballoon {
    /// A virtio balloon device (default true); `false` gives `<memballoon model='none'/>`.
    pub enable: bool,
    /// Deflate the balloon when the guest runs out of memory (profile default).
    pub autodeflate: bool,
    /// The guest reports freed pages to the host (profile default).
    pub free_page_reporting: bool,
    /// Seconds between guest memory statistics updates (default 5; 0 turns them off).
    pub stats_interval: u32,
}

/// `extraDevices`: libvirt device XML that is known to be well-formed (it can only be made by parsing it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraDevices {
    text: String,
    elements: Vec<Element>,
}

impl ExtraDevices {
    /// Parses device XML: zero or more well-formed elements.
    pub fn parse(text: &str) -> Result<Self, XmlError> {
        let elements = crate::xml::parse_fragment(text)?;
        Ok(ExtraDevices { text: text.to_owned(), elements })
    }

    /// The XML as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The devices.
    pub fn elements(&self) -> &[Element] {
        &self.elements
    }
}

impl serde::Serialize for ExtraDevices {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// Direct kernel boot (vmkit extension `vms.<name>.directBoot`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DirectBoot {
    /// The kernel image.
    pub kernel: PathBuf,
    /// The initramfs, if any.
    pub initrd: Option<PathBuf>,
    /// The kernel command line.
    pub cmdline: Option<String>,
}

/// How `vmkit vm NAME ssh` reaches the guest (vmkit extension `vms.<name>.ssh`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SshSettings {
    /// Login user (default: ssh's own default).
    pub user: Option<String>,
    /// Host name or address; when unset, the guest's address is asked from libvirt.
    pub host: Option<String>,
    /// Port (default 22).
    pub port: u16,
    /// Private key for `ssh -i` (`identityFile`).
    pub identity_file: Option<PathBuf>,
}

/// One VM, `vms.<name>`, with every option resolved.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VmConfig {
    /// The name (the libvirt domain name).
    pub name: String,
    /// Whether the VM is defined (default true).
    pub enable: bool,
    /// The domain UUID: given, or derived from the name.
    #[serde(serialize_with = "display")]
    pub uuid: Uuid,
    /// The NIC's MAC address: given, or derived from the name.
    #[serde(serialize_with = "display")]
    pub mac_address: MacAddr,
    /// Memory (default 4G).
    #[serde(serialize_with = "display")]
    pub memory: ByteSize,
    /// Virtual CPUs (default 2).
    pub vcpus: u32,
    /// Size of the VM's disk volume; no disk when unset.
    #[serde(serialize_with = "display_opt")]
    pub disk_size: Option<ByteSize>,
    /// Storage pool of the disk volume (default: `defaultStoragePool`).
    pub storage_pool: String,
    /// Host cpuset per vCPU, in vCPU order (may be shorter than `vcpus`).
    #[serde(serialize_with = "display_vec")]
    pub cpu_pinning: Vec<CpuSet>,
    /// Where QEMU's emulator threads run when pinning is used (extension `emulatorPinning`; default: the union of
    /// the vCPU cpusets).
    #[serde(serialize_with = "display_opt")]
    pub emulator_pinning: Option<CpuSet>,
    /// The display.
    pub display: Display,
    /// The video card.
    pub video_model: VideoModel,
    /// virtiofs shares: tag → host directory.
    pub shared_folders: BTreeMap<String, PathBuf>,
    /// The guest OS family.
    pub os_type: OsType,
    /// A TPM 2.0 (default: true for Windows).
    pub tpm: bool,
    /// Secure Boot (default: true for Windows).
    pub secure_boot: bool,
    /// Start with the host (profile default).
    pub auto_start: bool,
    /// The memory balloon.
    pub memballoon: Memballoon,
    /// Host PCI devices passed through.
    #[serde(serialize_with = "display_vec")]
    pub pci_devices: Vec<PciAddress>,
    /// Raw libvirt device XML appended to `<devices>` (checked to be well-formed).
    pub extra_devices: Option<ExtraDevices>,
    /// Installation media attached as CD-ROMs (extension `installMedia`).
    pub install_media: Vec<PathBuf>,
    /// UEFI or BIOS (extension `firmware`).
    pub firmware: FirmwareKind,
    /// Direct kernel boot (extension `directBoot`).
    pub direct_boot: Option<DirectBoot>,
    /// The libvirt network of the NIC (extension `network`; default `defaultNetwork`), `None` for no NIC.
    pub network: Option<String>,
    /// How `vm ssh` connects (extension `ssh`).
    pub ssh: SshSettings,
    /// Whether this VM's memory is backed by huge pages (from `hugepages.enable`).
    pub hugepages: bool,
}

impl VmConfig {
    /// The name of the VM's disk volume.
    pub fn volume_name(&self) -> String {
        format!("{}.qcow2", self.name)
    }
}

/// The whole `virtualisation.desktopVMs` set, resolved.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DesktopConfig {
    /// Whether vmkit manages the VMs at all.
    pub enable: bool,
    /// The profile.
    pub profile: Profile,
    /// Huge pages.
    pub hugepages: Hugepages,
    /// Firewall ports (compatibility only).
    pub firewall_ports: FirewallPorts,
    /// Default storage pool for disks (default "default").
    pub default_storage_pool: String,
    /// Directory of the default pool, created as a libvirt `dir` pool when missing (default
    /// "/var/lib/libvirt/images").
    pub default_storage_path: PathBuf,
    /// GPU passthrough.
    pub gpu_passthrough: GpuPassthrough,
    /// Looking Glass.
    pub looking_glass: LookingGlass,
    /// UEFI firmware files.
    pub firmware: FirmwarePaths,
    /// Domain type.
    pub domain_type: DomainType,
    /// The virtiofsd binary (extension `virtiofsd`).
    pub virtiofsd: PathBuf,
    /// The libvirt network NICs join by default (extension `defaultNetwork`, default "default").
    pub default_network: String,
    /// The VMs by name.
    pub vms: BTreeMap<String, VmConfig>,
}

impl DesktopConfig {
    /// The VMs vmkit defines: all enabled VMs, or none when the whole module is disabled.
    pub fn enabled_vms(&self) -> impl Iterator<Item = &VmConfig> {
        self.vms.values().filter(move |vm| self.enable && vm.enable)
    }
}

fn display<T: fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn display_opt<T: fmt::Display, S: serde::Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

fn display_vec<T: fmt::Display, S: serde::Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(ToString::to_string))
}
