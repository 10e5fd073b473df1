//! The libvirt domain of a desktop VM as a typed model, built from the config and written as XML.
//!
//! [`Domain::from_config`] holds every decision about what a tuned desktop VM looks like (the rules the original
//! got wrong are enforced here: Secure Boot always comes with SMM and a secure loader, shared folders always
//! come with shared memory backing and an explicit virtiofsd, listeners are on 127.0.0.1). [`Domain::to_element`]
//! only renders; every value goes through the XML writer, so a path or name with quotes or angle brackets
//! cannot break the document.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::model::{
    DesktopConfig, DirectBoot, Display, DomainType, FirmwareKind, Memballoon, OsType, VideoModel, VmConfig,
};
use crate::values::{CpuSet, MacAddr, PciAddress, Uuid};
use crate::xml::{self, Element};

/// The XML namespace of vmkit's `<metadata>` element, which marks domains vmkit manages.
pub const METADATA_NS: &str = "urn:vmkit:desktop:1";
/// The prefix used for [`METADATA_NS`].
pub const METADATA_PREFIX: &str = "vmkit";
/// The key (local name) of vmkit's metadata element.
pub const METADATA_KEY: &str = "vm";

/// vmkit's bookkeeping in the domain's `<metadata>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VmkitMetadata {
    /// SHA-256 of the canonical XML vmkit generated (without metadata): changes when the config changes.
    pub config_hash: String,
    /// SHA-256 of the canonical XML libvirt returned right after vmkit defined the domain (without metadata):
    /// differs from the current one when someone edited the domain outside vmkit.
    pub defined_hash: Option<String>,
}

impl VmkitMetadata {
    /// The element as stored inside `<metadata>`.
    pub fn to_element(&self) -> Element {
        Element::new(format!("{METADATA_PREFIX}:{METADATA_KEY}"))
            .attr(&format!("xmlns:{METADATA_PREFIX}"), METADATA_NS)
            .attr("config", &self.config_hash)
            .attr_opt("defined", self.defined_hash.as_ref())
    }

    /// Reads vmkit's metadata from a domain's XML, if it has any.
    pub fn from_domain(domain: &Element) -> Option<Self> {
        let meta = domain.find("metadata")?;
        let vm = meta.elements().find(|e| {
            e.name.rsplit(':').next() == Some(METADATA_KEY) && e.attrs.iter().any(|(_, v)| v == METADATA_NS)
        })?;
        Some(VmkitMetadata {
            config_hash: vm.get_attr("config")?.to_owned(),
            defined_hash: vm.get_attr("defined").map(str::to_owned),
        })
    }
}

/// The canonical hash of a domain element, ignoring `<metadata>`, formatting and the order of `<devices>`.
///
/// libvirt moves devices around in its own XML (it lists controllers it added after the first start in another
/// place), and once libvirt has assigned every device an address the order carries no meaning; sorting the
/// devices keeps such shuffles from looking like edits.
pub fn domain_hash(domain: &Element) -> String {
    let mut canonical = xml::canonical(domain, &["metadata"]);
    for child in &mut canonical.children {
        if let xml::Child::Element(devices) = child
            && devices.name == "devices"
        {
            devices.children.sort_by_cached_key(|c| match c {
                xml::Child::Element(e) => xml::render_compact(e),
                xml::Child::Text(t) => t.clone(),
            });
        }
    }
    hex::encode(Sha256::digest(xml::render_compact(&canonical).as_bytes()))
}

/// A libvirt domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    /// `kvm` or `qemu`.
    pub kind: DomainType,
    /// Domain name.
    pub name: String,
    /// Domain UUID.
    pub uuid: Uuid,
    /// vmkit's metadata, when rendered for libvirt.
    pub metadata: Option<VmkitMetadata>,
    /// Maximum memory in KiB.
    pub memory_kib: u64,
    /// Memory at boot in KiB.
    pub current_memory_kib: u64,
    /// Memory backing, when anything but the default.
    pub memory_backing: Option<MemoryBacking>,
    /// vCPU count.
    pub vcpus: u32,
    /// CPU pinning.
    pub cputune: Option<CpuTune>,
    /// Machine, firmware, kernel.
    pub os: Os,
    /// Machine features.
    pub features: Features,
    /// Guest CPU model and topology.
    pub cpu: Cpu,
    /// Clock.
    pub clock: Clock,
    /// Devices, in output order.
    pub devices: Vec<Device>,
}

/// `<memoryBacking>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryBacking {
    /// Huge page size in KiB, when backed by huge pages.
    pub hugepage_kib: Option<u64>,
    /// memfd source with shared access (required by vhost-user devices such as virtiofs).
    pub memfd_shared: bool,
}

/// `<cputune>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuTune {
    /// (vCPU, host cpuset).
    pub vcpupins: Vec<(u32, CpuSet)>,
    /// Where emulator threads run.
    pub emulatorpin: Option<CpuSet>,
}

/// `<os>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Os {
    /// Machine type.
    pub machine: String,
    /// UEFI loader; `None` boots SeaBIOS.
    pub loader: Option<Loader>,
    /// Direct kernel boot.
    pub direct: Option<DirectBoot>,
}

/// An OVMF loader with its NVRAM template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loader {
    /// The code file (read-only pflash).
    pub code: PathBuf,
    /// Secure Boot capable (needs SMM).
    pub secure: bool,
    /// The variables template copied to the VM's NVRAM.
    pub vars_template: PathBuf,
}

/// `<features>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    /// System Management Mode (required by Secure Boot).
    pub smm: bool,
    /// Hyper-V enlightenments (Windows).
    pub hyperv: Option<Hyperv>,
    /// Hide the KVM signature (GPU passthrough to Windows).
    pub kvm_hidden: bool,
}

/// Hyper-V enlightenments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hyperv {
    /// A vendor id to report instead of KVM's (GPU drivers that refuse to run in a VM).
    pub vendor_id: Option<String>,
}

/// `<cpu>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu {
    /// The CPU model mode.
    pub mode: CpuMode,
    /// Cores in the one socket (= vCPUs).
    pub cores: u32,
}

/// How the guest CPU is modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuMode {
    /// The host CPU exactly (KVM).
    HostPassthrough,
    /// Everything the hypervisor can emulate (TCG).
    Maximum,
}

/// `<clock>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// The RTC shows local time (Windows expects it).
    pub localtime: bool,
    /// The Hyper-V reference clock (Windows).
    pub hypervclock: bool,
}

/// A device in `<devices>`.
#[derive(Debug, Clone, PartialEq)]
pub enum Device {
    /// The VM's disk, a volume in a storage pool.
    VolumeDisk {
        /// Pool name.
        pool: String,
        /// Volume name.
        volume: String,
        /// Target device name (vda, sda).
        target: String,
        /// Bus (virtio, sata).
        bus: &'static str,
        /// Boot order.
        boot_order: Option<u32>,
    },
    /// A CD-ROM with an installation medium.
    Cdrom {
        /// The image file.
        file: PathBuf,
        /// Target device name.
        target: String,
        /// Boot order.
        boot_order: Option<u32>,
    },
    /// A virtiofs share.
    Filesystem {
        /// The virtiofsd binary.
        virtiofsd: PathBuf,
        /// Host directory.
        source: PathBuf,
        /// Mount tag.
        tag: String,
    },
    /// A NIC on a libvirt network.
    Interface {
        /// MAC address.
        mac: MacAddr,
        /// Network name.
        network: String,
        /// NIC model.
        model: &'static str,
    },
    /// A USB controller.
    UsbController,
    /// An input device.
    Input {
        /// tablet, mouse, keyboard.
        kind: &'static str,
        /// usb, virtio.
        bus: &'static str,
    },
    /// A graphics listener on 127.0.0.1.
    Graphics {
        /// spice or vnc.
        kind: GraphicsKind,
    },
    /// The SPICE agent channel (clipboard, resolution).
    SpiceChannel,
    /// The QEMU guest agent channel.
    GuestAgentChannel,
    /// USB redirection over SPICE.
    UsbRedir,
    /// A sound card whose audio goes to SPICE.
    Sound,
    /// The audio backend (SPICE).
    SpiceAudio,
    /// The video card.
    Video(VideoModel),
    /// Serial port on a pty (for `virsh console`).
    Serial,
    /// The console on the serial port.
    Console,
    /// virtio-rng.
    Rng,
    /// TPM 2.0 CRB emulated by swtpm.
    Tpm,
    /// ivshmem shared memory (Looking Glass).
    Shmem {
        /// Name (the /dev/shm file).
        name: String,
        /// Size in MiB.
        size_mb: u32,
    },
    /// A host PCI device.
    Hostdev(PciAddress),
    /// The memory balloon (`None`: no balloon).
    Memballoon(Option<Memballoon>),
    /// Raw device XML from `extraDevices`.
    Raw(Element),
}

/// The graphics protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphicsKind {
    /// SPICE.
    Spice,
    /// VNC.
    Vnc,
}

impl Domain {
    /// The domain for one VM of a config.
    pub fn from_config(cfg: &DesktopConfig, vm: &VmConfig) -> Domain {
        let windows = vm.os_type == OsType::Windows;
        let macos = vm.os_type == OsType::Macos;
        let passthrough = !vm.pci_devices.is_empty();

        let memory_backing = (vm.hugepages || !vm.shared_folders.is_empty()).then(|| MemoryBacking {
            hugepage_kib: vm.hugepages.then(|| cfg.hugepages.size.kib()),
            memfd_shared: !vm.shared_folders.is_empty(),
        });

        let cputune = (!vm.cpu_pinning.is_empty()).then(|| {
            let union = vm.cpu_pinning.iter().fold(CpuSet::default(), |acc, s| acc.union(s));
            CpuTune {
                vcpupins: vm
                    .cpu_pinning
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (u32::try_from(i).unwrap_or(0), s.clone()))
                    .collect(),
                emulatorpin: Some(vm.emulator_pinning.clone().unwrap_or(union)),
            }
        });

        let loader = (vm.firmware == FirmwareKind::Efi).then(|| {
            if vm.secure_boot {
                Loader {
                    code: cfg.firmware.secure_code.clone(),
                    secure: true,
                    vars_template: cfg.firmware.secure_vars.clone(),
                }
            } else {
                Loader { code: cfg.firmware.code.clone(), secure: false, vars_template: cfg.firmware.vars.clone() }
            }
        });
        let secure = loader.as_ref().is_some_and(|l| l.secure);

        let features = Features {
            smm: secure,
            hyperv: windows.then(|| Hyperv {
                vendor_id: (passthrough && cfg.gpu_passthrough.enable).then(|| "vmkitvmkit".to_owned()),
            }),
            kvm_hidden: windows && passthrough && cfg.gpu_passthrough.enable && cfg.domain_type == DomainType::Kvm,
        };

        let cpu = Cpu {
            mode: match cfg.domain_type {
                DomainType::Kvm => CpuMode::HostPassthrough,
                DomainType::Qemu => CpuMode::Maximum,
            },
            cores: vm.vcpus,
        };

        let mut devices = Vec::new();
        let disk_bus = if macos { "sata" } else { "virtio" };
        let mut sata_index = 0usize;
        let mut next_sata = || {
            let name = disk_name("sd", sata_index);
            sata_index += 1;
            name
        };
        let mut boot = 0u32;
        let mut next_boot = || {
            boot += 1;
            (vm.direct_boot.is_none()).then_some(boot)
        };
        if vm.disk_size.is_some() {
            let target = if disk_bus == "sata" { next_sata() } else { "vda".to_owned() };
            devices.push(Device::VolumeDisk {
                pool: vm.storage_pool.clone(),
                volume: vm.volume_name(),
                target,
                bus: disk_bus,
                boot_order: next_boot(),
            });
        }
        for media in &vm.install_media {
            devices.push(Device::Cdrom { file: media.clone(), target: next_sata(), boot_order: next_boot() });
        }
        for (tag, dir) in &vm.shared_folders {
            devices.push(Device::Filesystem {
                virtiofsd: cfg.virtiofsd.clone(),
                source: dir.clone(),
                tag: tag.clone(),
            });
        }
        if let Some(network) = &vm.network {
            devices.push(Device::Interface {
                mac: vm.mac_address,
                network: network.clone(),
                model: if macos { "vmxnet3" } else { "virtio" },
            });
        }
        devices.push(Device::UsbController);
        match vm.display {
            Display::LookingGlass => {
                devices.push(Device::Input { kind: "mouse", bus: "virtio" });
                devices.push(Device::Input { kind: "keyboard", bus: "virtio" });
            }
            Display::Spice | Display::Vnc => devices.push(Device::Input { kind: "tablet", bus: "usb" }),
        }
        if macos {
            devices.push(Device::Input { kind: "keyboard", bus: "usb" });
        }
        match vm.display {
            Display::Spice | Display::LookingGlass => {
                devices.push(Device::Graphics { kind: GraphicsKind::Spice });
                devices.push(Device::SpiceChannel);
                devices.push(Device::UsbRedir);
                devices.push(Device::UsbRedir);
                devices.push(Device::Sound);
                devices.push(Device::SpiceAudio);
            }
            Display::Vnc => devices.push(Device::Graphics { kind: GraphicsKind::Vnc }),
        }
        devices.push(Device::GuestAgentChannel);
        devices.push(Device::Video(vm.video_model));
        devices.push(Device::Serial);
        devices.push(Device::Console);
        devices.push(Device::Rng);
        if vm.tpm {
            devices.push(Device::Tpm);
        }
        if vm.display == Display::LookingGlass {
            devices.push(Device::Shmem { name: "looking-glass".into(), size_mb: cfg.looking_glass.shared_memory_mb });
        }
        devices.extend(vm.pci_devices.iter().copied().map(Device::Hostdev));
        devices.push(Device::Memballoon(vm.memballoon.enable.then_some(vm.memballoon)));
        if let Some(extra) = &vm.extra_devices {
            devices.extend(extra.elements().iter().cloned().map(Device::Raw));
        }

        let memory_kib = vm.memory.kib_ceil();
        Domain {
            kind: cfg.domain_type,
            name: vm.name.clone(),
            uuid: vm.uuid,
            metadata: None,
            memory_kib,
            current_memory_kib: memory_kib,
            memory_backing,
            vcpus: vm.vcpus,
            cputune,
            os: Os { machine: "q35".into(), loader, direct: vm.direct_boot.clone() },
            features,
            cpu,
            clock: Clock { localtime: windows, hypervclock: windows },
            devices,
        }
    }

    /// The domain with vmkit's metadata (the config hash) added, ready to define.
    pub fn with_metadata(mut self) -> Domain {
        self.metadata = None;
        let hash = domain_hash(&self.to_element());
        self.metadata = Some(VmkitMetadata { config_hash: hash, defined_hash: None });
        self
    }

    /// The domain XML as an element tree.
    pub fn to_element(&self) -> Element {
        let mut d = Element::new("domain")
            .attr("type", self.kind.as_str())
            .child(Element::new("name").text(&self.name))
            .child(Element::new("uuid").text(self.uuid));
        if let Some(meta) = &self.metadata {
            d = d.child(Element::new("metadata").child(meta.to_element()));
        }
        d = d
            .child(Element::new("memory").attr("unit", "KiB").text(self.memory_kib))
            .child(Element::new("currentMemory").attr("unit", "KiB").text(self.current_memory_kib))
            .child_opt(self.memory_backing.as_ref().map(MemoryBacking::to_element))
            .child(Element::new("vcpu").attr("placement", "static").text(self.vcpus))
            .child_opt(self.cputune.as_ref().map(CpuTune::to_element))
            .child(self.os.to_element())
            .child(self.features.to_element())
            .child(self.cpu.to_element())
            .child(self.clock.to_element())
            .child(
                Element::new("pm")
                    .child(Element::new("suspend-to-mem").attr("enabled", "no"))
                    .child(Element::new("suspend-to-disk").attr("enabled", "no")),
            )
            .child(Element::new("devices").children(self.devices.iter().map(Device::to_element)));
        d
    }

    /// The domain XML.
    pub fn to_xml(&self) -> String {
        xml::render(&self.to_element())
    }
}

/// A disk target name as libvirt numbers them: `sda` … `sdz`, `sdaa`, `sdab`, …
pub fn disk_name(prefix: &str, index: usize) -> String {
    let mut letters = Vec::new();
    let mut i = index + 1;
    while i > 0 {
        i -= 1;
        letters.push(char::from(b'a' + u8::try_from(i % 26).unwrap_or(0)));
        i /= 26;
    }
    letters.reverse();
    format!("{prefix}{}", letters.into_iter().collect::<String>())
}

fn on(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

impl MemoryBacking {
    fn to_element(&self) -> Element {
        let mut e = Element::new("memoryBacking");
        if let Some(kib) = self.hugepage_kib {
            e = e.child(Element::new("hugepages").child(Element::new("page").attr("size", kib).attr("unit", "KiB")));
        }
        if self.memfd_shared {
            e = e
                .child(Element::new("source").attr("type", "memfd"))
                .child(Element::new("access").attr("mode", "shared"));
        }
        e
    }
}

impl CpuTune {
    fn to_element(&self) -> Element {
        Element::new("cputune")
            .children(self.vcpupins.iter().map(|(v, s)| Element::new("vcpupin").attr("vcpu", v).attr("cpuset", s)))
            .child_opt(self.emulatorpin.as_ref().map(|s| Element::new("emulatorpin").attr("cpuset", s)))
    }
}

impl Os {
    fn to_element(&self) -> Element {
        let mut e = Element::new("os")
            .child(Element::new("type").attr("arch", "x86_64").attr("machine", &self.machine).text("hvm"));
        if let Some(l) = &self.loader {
            e = e
                .child(
                    Element::new("loader")
                        .attr("readonly", "yes")
                        .attr("secure", if l.secure { "yes" } else { "no" })
                        .attr("type", "pflash")
                        .text(l.code.display()),
                )
                .child(Element::new("nvram").attr("template", l.vars_template.display()));
        }
        if let Some(d) = &self.direct {
            e = e
                .child(Element::new("kernel").text(d.kernel.display()))
                .child_opt(d.initrd.as_ref().map(|i| Element::new("initrd").text(i.display())))
                .child_opt(d.cmdline.as_ref().map(|c| Element::new("cmdline").text(c)));
        }
        e
    }
}

impl Features {
    fn to_element(&self) -> Element {
        let mut e = Element::new("features").child(Element::new("acpi")).child(Element::new("apic"));
        if let Some(h) = &self.hyperv {
            let state = |name: &str| Element::new(name).attr("state", "on");
            let hv = Element::new("hyperv")
                .attr("mode", "custom")
                .child(state("relaxed"))
                .child(state("vapic"))
                .child(state("spinlocks").attr("retries", 8191))
                .child(state("vpindex"))
                .child(state("runtime"))
                .child(state("synic"))
                .child(state("stimer"))
                .child(state("reset"))
                .child_opt(h.vendor_id.as_ref().map(|v| state("vendor_id").attr("value", v)))
                .child(state("frequencies"))
                .child(state("tlbflush"))
                .child(state("ipi"));
            e = e.child(hv);
        }
        if self.kvm_hidden {
            e = e.child(Element::new("kvm").child(Element::new("hidden").attr("state", "on")));
        }
        e = e.child(Element::new("vmport").attr("state", "off"));
        if self.smm {
            e = e.child(Element::new("smm").attr("state", "on"));
        }
        e
    }
}

impl Cpu {
    fn to_element(self) -> Element {
        let topology =
            Element::new("topology").attr("sockets", 1).attr("dies", 1).attr("cores", self.cores).attr("threads", 1);
        match self.mode {
            CpuMode::HostPassthrough => Element::new("cpu")
                .attr("mode", "host-passthrough")
                .attr("check", "none")
                .attr("migratable", "on")
                .child(topology)
                .child(Element::new("cache").attr("mode", "passthrough")),
            CpuMode::Maximum => Element::new("cpu").attr("mode", "maximum").attr("check", "none").child(topology),
        }
    }
}

impl Clock {
    fn to_element(self) -> Element {
        let timer = |name: &str| Element::new("timer").attr("name", name);
        Element::new("clock")
            .attr("offset", if self.localtime { "localtime" } else { "utc" })
            .child(timer("rtc").attr("tickpolicy", "catchup"))
            .child(timer("pit").attr("tickpolicy", "delay"))
            .child(timer("hpet").attr("present", "no"))
            .child_opt(self.hypervclock.then(|| timer("hypervclock").attr("present", "yes")))
    }
}

impl Device {
    fn to_element(&self) -> Element {
        match self {
            Device::VolumeDisk { pool, volume, target, bus, boot_order } => Element::new("disk")
                .attr("type", "volume")
                .attr("device", "disk")
                .child(Element::new("driver").attr("name", "qemu").attr("type", "qcow2").attr("discard", "unmap"))
                .child(Element::new("source").attr("pool", pool).attr("volume", volume))
                .child(Element::new("target").attr("dev", target).attr("bus", bus))
                .child_opt(boot_order.map(|o| Element::new("boot").attr("order", o))),
            Device::Cdrom { file, target, boot_order } => Element::new("disk")
                .attr("type", "file")
                .attr("device", "cdrom")
                .child(Element::new("driver").attr("name", "qemu").attr("type", "raw"))
                .child(Element::new("source").attr("file", file.display()))
                .child(Element::new("target").attr("dev", target).attr("bus", "sata"))
                .child(Element::new("readonly"))
                .child_opt(boot_order.map(|o| Element::new("boot").attr("order", o))),
            Device::Filesystem { virtiofsd, source, tag } => Element::new("filesystem")
                .attr("type", "mount")
                .attr("accessmode", "passthrough")
                .child(Element::new("driver").attr("type", "virtiofs"))
                .child(Element::new("binary").attr("path", virtiofsd.display()))
                .child(Element::new("source").attr("dir", source.display()))
                .child(Element::new("target").attr("dir", tag)),
            Device::Interface { mac, network, model } => Element::new("interface")
                .attr("type", "network")
                .child(Element::new("mac").attr("address", mac))
                .child(Element::new("source").attr("network", network))
                .child(Element::new("model").attr("type", model)),
            Device::UsbController => {
                Element::new("controller").attr("type", "usb").attr("model", "qemu-xhci").attr("ports", 15)
            }
            Device::Input { kind, bus } => Element::new("input").attr("type", kind).attr("bus", bus),
            Device::Graphics { kind } => {
                let listen = Element::new("listen").attr("type", "address").attr("address", "127.0.0.1");
                match kind {
                    GraphicsKind::Spice => Element::new("graphics")
                        .attr("type", "spice")
                        .attr("autoport", "yes")
                        .child(listen)
                        .child(Element::new("image").attr("compression", "off")),
                    GraphicsKind::Vnc => Element::new("graphics")
                        .attr("type", "vnc")
                        .attr("port", -1)
                        .attr("autoport", "yes")
                        .child(listen),
                }
            }
            Device::SpiceChannel => Element::new("channel")
                .attr("type", "spicevmc")
                .child(Element::new("target").attr("type", "virtio").attr("name", "com.redhat.spice.0")),
            Device::GuestAgentChannel => Element::new("channel")
                .attr("type", "unix")
                .child(Element::new("target").attr("type", "virtio").attr("name", "org.qemu.guest_agent.0")),
            Device::UsbRedir => Element::new("redirdev").attr("bus", "usb").attr("type", "spicevmc"),
            Device::Sound => Element::new("sound").attr("model", "ich9").child(Element::new("audio").attr("id", 1)),
            Device::SpiceAudio => Element::new("audio").attr("id", 1).attr("type", "spice"),
            Device::Video(model) => {
                let m = Element::new("model").attr("type", model.as_str());
                let m = if *model == VideoModel::None { m } else { m.attr("heads", 1).attr("primary", "yes") };
                Element::new("video").child(m)
            }
            Device::Serial => Element::new("serial").attr("type", "pty").child(Element::new("target").attr("port", 0)),
            Device::Console => Element::new("console")
                .attr("type", "pty")
                .child(Element::new("target").attr("type", "serial").attr("port", 0)),
            Device::Rng => Element::new("rng")
                .attr("model", "virtio")
                .child(Element::new("backend").attr("model", "random").text("/dev/urandom")),
            Device::Tpm => Element::new("tpm")
                .attr("model", "tpm-crb")
                .child(Element::new("backend").attr("type", "emulator").attr("version", "2.0")),
            Device::Shmem { name, size_mb } => Element::new("shmem")
                .attr("name", name)
                .child(Element::new("model").attr("type", "ivshmem-plain"))
                .child(Element::new("size").attr("unit", "M").text(size_mb)),
            Device::Hostdev(a) => {
                Element::new("hostdev").attr("mode", "subsystem").attr("type", "pci").attr("managed", "yes").child(
                    Element::new("source").child(
                        Element::new("address")
                            .attr("domain", format!("0x{:04x}", a.domain))
                            .attr("bus", format!("0x{:02x}", a.bus))
                            .attr("slot", format!("0x{:02x}", a.slot))
                            .attr("function", format!("0x{:x}", a.function)),
                    ),
                )
            }
            Device::Memballoon(None) => Element::new("memballoon").attr("model", "none"),
            Device::Memballoon(Some(b)) => Element::new("memballoon")
                .attr("model", "virtio")
                .attr("autodeflate", on(b.autodeflate))
                .attr("freePageReporting", on(b.free_page_reporting))
                .child_opt((b.stats_interval > 0).then(|| Element::new("stats").attr("period", b.stats_interval))),
            Device::Raw(e) => e.clone(),
        }
    }
}

/// The XML of a storage volume for a VM disk: qcow2 of `capacity` bytes.
pub fn volume_xml(name: &str, capacity: u64) -> String {
    let e = Element::new("volume")
        .attr("type", "file")
        .child(Element::new("name").text(name))
        .child(Element::new("capacity").attr("unit", "bytes").text(capacity))
        .child(Element::new("target").child(Element::new("format").attr("type", "qcow2")));
    xml::render(&e)
}

/// The XML of a directory storage pool.
pub fn dir_pool_xml(name: &str, path: &std::path::Path) -> String {
    let e = Element::new("pool")
        .attr("type", "dir")
        .child(Element::new("name").text(name))
        .child(Element::new("target").child(Element::new("path").text(path.display())));
    xml::render(&e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_user_value_is_escaped() {
        use crate::Format;
        use crate::load::{LoadOptions, load_str};
        use crate::model::FirmwarePaths;
        let nasty = "x'\"<&>]]>\\";
        let json = serde_json::json!({
            "enable": true,
            "defaultNetwork": nasty,
            "virtiofsd": format!("/usr/lib/{nasty}"),
            "vms": {"a": {
                "diskSize": "1G",
                "storagePool": nasty,
                "sharedFolders": {"t": format!("/srv/{nasty}")},
                "installMedia": [format!("/iso/{nasty}.iso")],
                "directBoot": {"kernel": format!("/k/{nasty}"), "cmdline": format!("console=ttyS0 x={nasty}")},
            }},
        });
        let opts = LoadOptions { check_paths: false, firmware: FirmwarePaths::debian(), virtiofsd: "/v".into() };
        let cfg = load_str("t.json", &json.to_string(), Format::Json, &opts).unwrap_or_else(|e| panic!("{e}")).config;
        let xml = crate::domain_xml(&cfg, &cfg.vms["a"]);
        let d = xml::parse_document(&xml).unwrap_or_else(|e| panic!("{e:?}\n{xml}"));
        let devices = d.find("devices").unwrap_or_else(|| panic!("{xml}"));
        let attr = |el: &str, child: &str, a: &str| -> Option<String> {
            devices.elements().filter(|e| e.name == el).find_map(|e| e.find(child)?.get_attr(a).map(str::to_owned))
        };
        assert_eq!(attr("filesystem", "source", "dir"), Some(format!("/srv/{nasty}")));
        assert_eq!(attr("filesystem", "binary", "path"), Some(format!("/usr/lib/{nasty}")));
        assert_eq!(attr("interface", "source", "network"), Some(nasty.to_owned()));
        assert_eq!(attr("disk", "source", "pool"), Some(nasty.to_owned()));
        assert_eq!(attr("disk", "source", "file"), Some(format!("/iso/{nasty}.iso")));
        let os = d.find("os").unwrap_or_else(|| panic!("{xml}"));
        assert_eq!(os.find("kernel").map(Element::text_content), Some(format!("/k/{nasty}")));
        assert_eq!(os.find("cmdline").map(Element::text_content), Some(format!("console=ttyS0 x={nasty}")));
    }

    #[test]
    fn disk_names_follow_libvirt() {
        let names: Vec<String> = [0, 1, 25, 26, 27, 51, 52, 701, 702].iter().map(|&i| disk_name("sd", i)).collect();
        assert_eq!(names, ["sda", "sdb", "sdz", "sdaa", "sdab", "sdaz", "sdba", "sdzz", "sdaaa"]);
    }
}
