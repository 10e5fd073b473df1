//! Reads the config model from a TOML or JSON file, applying defaults and the profile, and validates it.
//!
//! The file *is* the `virtualisation.desktopVMs` attribute set of the original, keys spelled exactly as there
//! (camelCase, `vms.<name>.…`), so a Nix module can pass its options through unchanged as JSON. Every mistake
//! is collected with its file:line:col — unknown keys (with a suggestion), wrong types, bad values, and options
//! that contradict each other — and nothing is returned unless there are no errors. Warnings (a hugepage count
//! that is too small, an option that has no effect) come back with the config.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::model::{
    CpuVendor, DesktopConfig, DirectBoot, Display, DomainType, ExtraDevices, FirewallPorts, FirmwareKind,
    FirmwarePaths, GpuPassthrough, Hugepages, LookingGlass, Memballoon, OsType, PageSize, Profile, SshSettings,
    VideoModel, VmConfig,
};
use crate::options;
use crate::values::{self, ByteSize, CpuSet, MacAddr, PciAddress, PciId, Uuid};
use diag::doc::{self, Entry, Format, Node, Value};
use diag::{Checker, Diagnostic, Fields, Rejected, SourceText};

/// Defaults that depend on the host, and whether host paths named in the config must exist.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Check that shared folders, install media and kernels exist on this machine.
    pub check_paths: bool,
    /// Firmware used when the config does not name it.
    pub firmware: FirmwarePaths,
    /// virtiofsd used when the config does not name it.
    pub virtiofsd: PathBuf,
}

impl LoadOptions {
    /// Defaults discovered on the running host, with path checks on.
    pub fn for_host() -> Self {
        let root = Path::new("/");
        LoadOptions {
            check_paths: true,
            firmware: FirmwarePaths::discover(root),
            virtiofsd: crate::discover::virtiofsd(root),
        }
    }
}

/// A loaded config with the warnings found while loading it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The resolved config.
    pub config: DesktopConfig,
    /// Warnings, in file order.
    pub warnings: Vec<Diagnostic>,
}

/// Why a config file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file has mistakes.
    #[error(transparent)]
    Config(#[from] Rejected),
}

/// Loads a config file; `.json` files are read as JSON, others as TOML.
pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let text = userfile::read_to_string(path, userfile::Limit::Config)
        .map_err(|e| LoadError::Read { path: path.to_owned(), source: e.into_io() })?;
    Ok(load_str(&path.display().to_string(), &text, Format::from_path(path), opts)?)
}

/// Loads a config from text; `name` is used in diagnostics.
pub fn load_str(name: &str, text: &str, format: Format, opts: &LoadOptions) -> Result<Loaded, Rejected> {
    let src = SourceText::new(name, text);
    let root = doc::parse(&src, format).map_err(|d| Rejected(vec![d]))?;
    let mut r = Reader { c: Checker::new(&src).calling_keys("option"), opts };
    let config = r.config(&root);
    let warnings = r.c.finish()?;
    Ok(Loaded { config, warnings })
}

/// The smallest memory a VM may have: below this no OS boots, and it is almost certainly a unit mistake.
const MIN_MEMORY: ByteSize = ByteSize::mib(32);
/// The most vCPUs a q35 machine takes without an emulated IOMMU with interrupt remapping.
const MAX_VCPUS: u64 = 255;

struct Reader<'a> {
    c: Checker<'a>,
    opts: &'a LoadOptions,
}

impl Reader<'_> {
    /// An absolute path; when `must_exist` and path checks are on, it must exist (as a directory if `dir`).
    fn path_value(&mut self, path: &str, node: &Node, what: &str, must_exist: bool, dir: bool) -> Option<PathBuf> {
        let s = self.c.node_str(path, node)?;
        let p = PathBuf::from(s);
        if !p.is_absolute() {
            self.c.error(&node.span, format!("{path}: {what} \"{s}\" must be an absolute path"));
            return None;
        }
        if must_exist && self.opts.check_paths {
            match std::fs::metadata(&p) {
                Err(_) => {
                    self.c.error(&node.span, format!("{path}: {what} \"{s}\" does not exist"));
                    return None;
                }
                Ok(m) if dir && !m.is_dir() => {
                    self.c.error(&node.span, format!("{path}: {what} \"{s}\" is not a directory"));
                    return None;
                }
                Ok(_) => {}
            }
        }
        Some(p)
    }

    fn config(&mut self, root: &Node) -> DesktopConfig {
        let top = self.c.fields(root, "", &options::keys(&[]));
        let enable = self.c.bool(&top, "enable").unwrap_or(false);
        if !enable && let Some(e) = top.get("vms") {
            self.c.warn(&e.key_span, "`enable` is false (the default): plan and apply will not define any VM");
        }
        let profile = self
            .c
            .choice(&top, "profile", &[("occasional", Profile::Occasional), ("always-on", Profile::AlwaysOn)])
            .unwrap_or(Profile::Occasional);
        let defaults = profile.defaults();

        let (hp_enable, hp_size, hp_count) = match top.get("hugepages") {
            Some(e) => {
                let f = self.c.fields(&e.node, "hugepages", &options::keys(&["hugepages"]));
                let enable = self.c.bool(&f, "enable");
                let size = self.c.choice(&f, "size", &[("2M", PageSize::M2), ("1G", PageSize::G1)]);
                let count =
                    self.c.uint(&f, "count", 0, 1 << 40).map(|c| (c, f.get("count").map(|e| e.node.span.clone())));
                (enable, size, count)
            }
            None => (None, None, None),
        };
        let hp_enable = hp_enable.unwrap_or(defaults.hugepages);
        let hp_size = hp_size.unwrap_or(PageSize::M2);

        let firewall_ports = match top.get("firewallPorts") {
            Some(e) => {
                let f = self.c.fields(&e.node, "firewallPorts", &options::keys(&["firewallPorts"]));
                FirewallPorts {
                    spice: self.c.bool(&f, "spice").unwrap_or(true),
                    vnc: self.c.bool(&f, "vnc").unwrap_or(false),
                    given: true,
                }
            }
            None => FirewallPorts { spice: true, vnc: false, given: false },
        };

        let default_storage_pool = self.name_like(&top, "defaultStoragePool").unwrap_or_else(|| "default".into());
        let default_storage_path = top
            .get("defaultStoragePath")
            .and_then(|e| self.path_value("defaultStoragePath", &e.node, "storage path", false, true))
            .unwrap_or_else(|| PathBuf::from("/var/lib/libvirt/images"));

        let gpu_passthrough = match top.get("gpuPassthrough") {
            Some(e) => {
                let f = self.c.fields(&e.node, "gpuPassthrough", &options::keys(&["gpuPassthrough"]));
                let enable = self.c.bool(&f, "enable").unwrap_or(false);
                let ids = self.c.list(&f, "pciIDs");
                let path = f.path("pciIDs");
                let pci_ids: Vec<PciId> = ids
                    .iter()
                    .enumerate()
                    .filter_map(|(i, n)| self.c.node_parsed(&format!("{path}[{i}]"), n))
                    .collect();
                let cpu_vendor =
                    self.c.choice(&f, "cpuVendor", &[("intel", CpuVendor::Intel), ("amd", CpuVendor::Amd)]);
                GpuPassthrough { enable, pci_ids, cpu_vendor }
            }
            None => GpuPassthrough { enable: false, pci_ids: Vec::new(), cpu_vendor: None },
        };

        let (looking_glass, lg_span) = match top.get("lookingGlass") {
            Some(e) => {
                let f = self.c.fields(&e.node, "lookingGlass", &options::keys(&["lookingGlass"]));
                let enable = self.c.bool(&f, "enable").unwrap_or(false);
                let user = self.c.string(&f, "user");
                if let (Some(u), Some(e)) = (&user, f.get("user"))
                    && !is_user_name(u)
                {
                    self.c.error(
                        &e.node.span,
                        format!(
                            "lookingGlass.user: {u:?} is not a user name (lower-case letters, digits, `_` and `-`, \
                             starting with a letter or `_`, at most 32 characters)"
                        ),
                    );
                }
                let mut shared_memory_mb = 128;
                if let Some(mb) = self.c.uint(&f, "sharedMemoryMB", 1, 8192) {
                    if mb.is_power_of_two() {
                        shared_memory_mb = u32::try_from(mb).unwrap_or(128);
                    } else if let Some(e) = f.get("sharedMemoryMB") {
                        self.c.error(
                            &e.node.span,
                            format!(
                                "lookingGlass.sharedMemoryMB: {mb} is not a power of two (ivshmem needs one: 32, 64, \
                                 128, 256, ...)"
                            ),
                        );
                    }
                }
                (LookingGlass { enable, user, shared_memory_mb }, Some(e.key_span.clone()))
            }
            None => (LookingGlass { enable: false, user: None, shared_memory_mb: 128 }, None),
        };

        let firmware = match top.get("ovmf") {
            Some(e) => {
                let f = self.c.fields(&e.node, "ovmf", &options::keys(&["ovmf"]));
                let d = &self.opts.firmware;
                let mut fw = d.clone();
                for (key, slot) in [
                    ("secureCode", &mut fw.secure_code),
                    ("secureVars", &mut fw.secure_vars),
                    ("code", &mut fw.code),
                    ("vars", &mut fw.vars),
                ] {
                    if let Some(e) = f.get(key)
                        && let Some(p) = self.path_value(&f.path(key), &e.node, "firmware file", true, false)
                    {
                        *slot = p;
                    }
                }
                fw
            }
            None => self.opts.firmware.clone(),
        };

        let domain_type = self
            .c
            .choice(&top, "domainType", &[("kvm", DomainType::Kvm), ("qemu", DomainType::Qemu)])
            .unwrap_or(DomainType::Kvm);
        let virtiofsd = top
            .get("virtiofsd")
            .and_then(|e| self.path_value("virtiofsd", &e.node, "virtiofsd binary", true, false))
            .unwrap_or_else(|| self.opts.virtiofsd.clone());
        let default_network = self.name_like(&top, "defaultNetwork").unwrap_or_else(|| "default".into());

        let mut cfg = DesktopConfig {
            enable,
            profile,
            hugepages: Hugepages {
                enable: hp_enable,
                size: hp_size,
                count: 0,
                count_given: hp_count.is_some(),
                needed: 0,
            },
            firewall_ports,
            default_storage_pool,
            default_storage_path,
            gpu_passthrough,
            looking_glass,
            firmware,
            domain_type,
            virtiofsd,
            default_network,
            vms: BTreeMap::new(),
        };

        let mut memory_spans = BTreeMap::new();
        if let Some(e) = top.get("vms") {
            let Value::Table(vms) = &e.node.value else {
                self.c.type_error("vms", &e.node, "a table of VMs (vms.<name>)");
                return cfg;
            };
            let mut seen_uuid: BTreeMap<Uuid, String> = BTreeMap::new();
            let mut seen_mac: BTreeMap<MacAddr, String> = BTreeMap::new();
            let mut seen_pci: BTreeMap<PciAddress, String> = BTreeMap::new();
            let mut seen_cpu: BTreeMap<u32, String> = BTreeMap::new();
            for vm_entry in vms {
                let Some(vm) = self.vm(&cfg, vm_entry, &mut memory_spans) else { continue };
                let path = format!("vms.{}", vm.name);
                let vm_fields = Fields::of(&vm_entry.node, path.clone());
                self.check_pinning(&vm, &vm_fields, &mut seen_cpu, &vm_entry.key_span);
                if let Some(other) = seen_uuid.insert(vm.uuid, vm.name.clone()) {
                    let span = vm_fields.get("uuid").map_or(vm_entry.key_span.clone(), |e| e.node.span.clone());
                    self.c.error(&span, format!("{path}.uuid: {} is already the UUID of vms.{other}", vm.uuid));
                }
                if vm.network.is_some()
                    && let Some(other) = seen_mac.insert(vm.mac_address, vm.name.clone())
                {
                    let span = vm_fields.get("macAddress").map_or(vm_entry.key_span.clone(), |e| e.node.span.clone());
                    self.c
                        .error(&span, format!("{path}.macAddress: {} is already used by vms.{other}", vm.mac_address));
                }
                for (i, dev) in vm.pci_devices.iter().enumerate() {
                    if let Some(other) = seen_pci.insert(*dev, vm.name.clone()) {
                        let span = pci_span(&vm_fields, i).unwrap_or(vm_entry.key_span.clone());
                        self.c.warn(
                            &span,
                            format!(
                                "{path}.pciDevices: {dev} is also passed to vms.{other}; only one can run at a time"
                            ),
                        );
                    }
                }
                cfg.vms.insert(vm.name.clone(), vm);
            }
        }

        self.hugepage_count(&mut cfg, hp_count, &memory_spans);

        if cfg.looking_glass.enable
            && !cfg.vms.values().any(|vm| vm.display == Display::LookingGlass)
            && let Some(span) = lg_span
        {
            self.c.warn(&span, "lookingGlass.enable is set but no VM has display = \"looking-glass\"");
        }
        cfg
    }

    /// A libvirt object name (pool, network): no '/', not empty.
    /// Warns when two of a VM's vCPUs are pinned to the same single host CPU (they take turns on it), and when
    /// a host CPU is pinned by two VMs (they fight over it whenever both run). `seen` maps each host CPU to the
    /// first VM that pinned it.
    fn check_pinning(
        &mut self,
        vm: &VmConfig,
        fields: &Fields<'_>,
        seen: &mut BTreeMap<u32, String>,
        fallback: &Range<usize>,
    ) {
        let path = fields.table_path().to_owned();
        let span = fields.get("cpuPinning").map_or(fallback.clone(), |e| e.node.span.clone());
        let mut alone: BTreeMap<u32, usize> = BTreeMap::new();
        for (i, set) in vm.cpu_pinning.iter().enumerate() {
            if let (1, Some(cpu)) = (set.0.len(), set.0.first())
                && let Some(first) = alone.insert(*cpu, i)
            {
                self.c.warn(
                    &span,
                    format!("{path}.cpuPinning: vCPUs {first} and {i} are both pinned to host CPU {cpu} alone; they take turns on it"),
                );
            }
        }
        let mut shared: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for cpu in vm.cpu_pinning.iter().flat_map(|s| s.0.iter()).collect::<BTreeSet<_>>() {
            match seen.get(cpu) {
                Some(other) if *other != vm.name => shared.entry(other.clone()).or_default().push(*cpu),
                Some(_) => {}
                None => {
                    seen.insert(*cpu, vm.name.clone());
                }
            }
        }
        for (other, cpus) in shared {
            let list: Vec<String> = cpus.iter().map(ToString::to_string).collect();
            self.c.warn(
                &span,
                format!(
                    "{path}.cpuPinning: host CPU {} also pinned by vms.{other}; the two VMs slow each other down when both run",
                    list.join(", ")
                ),
            );
        }
    }

    fn name_like(&mut self, f: &Fields<'_>, key: &str) -> Option<String> {
        let e = f.get(key)?;
        let path = f.path(key);
        let s = self.c.node_str(&path, &e.node)?;
        if s.is_empty() || s.contains('/') || s.chars().any(char::is_control) {
            self.c.error(
                &e.node.span,
                format!("{path}: \"{s}\" is not a valid libvirt name (empty, '/' or control characters)"),
            );
            return None;
        }
        Some(s.to_owned())
    }

    fn hugepage_count(
        &mut self,
        cfg: &mut DesktopConfig,
        given: Option<(u64, Option<Range<usize>>)>,
        memory_spans: &BTreeMap<String, Range<usize>>,
    ) {
        let size = cfg.hugepages.size;
        let mut needed = 0u64;
        if cfg.hugepages.enable {
            let names: Vec<String> = cfg.enabled_vms().map(|vm| vm.name.clone()).collect();
            for name in names {
                let Some(vm) = cfg.vms.get(&name) else { continue };
                if !vm.memory.0.is_multiple_of(size.bytes()) {
                    let span = memory_spans.get(&name).cloned().unwrap_or(0..0);
                    self.c.error(
                        &span,
                        format!(
                            "vms.{name}.memory: {} is not a whole number of {} huge pages; use a multiple of {}",
                            vm.memory,
                            size.as_str(),
                            size.as_str()
                        ),
                    );
                }
                needed += vm.memory.0.div_ceil(size.bytes());
            }
        }
        cfg.hugepages.needed = needed;
        cfg.hugepages.count = match given {
            Some((count, span)) => {
                if cfg.hugepages.enable && count < needed {
                    self.c.warn(
                        &span.unwrap_or(0..0),
                        format!(
                            "hugepages.count = {count} is too small: the enabled VMs need {needed} pages of {} ({}); \
                             VMs will fail to start once the pages run out",
                            size.as_str(),
                            ByteSize(needed * size.bytes())
                        ),
                    );
                }
                count
            }
            None => needed,
        };
    }

    fn vm(
        &mut self,
        cfg: &DesktopConfig,
        entry: &Entry,
        memory_spans: &mut BTreeMap<String, Range<usize>>,
    ) -> Option<VmConfig> {
        let name = entry.key.clone();
        let name_ok = match values::check_vm_name(&name) {
            Ok(()) => true,
            Err(msg) => {
                self.c.error(&entry.key_span, format!("vms.{name}: {msg}"));
                false
            }
        };
        let path = format!("vms.{name}");
        let f = self.c.fields(&entry.node, &path, &options::keys(&["vms", "*"]));
        let defaults = cfg.profile.defaults();

        let enable = self.c.bool(&f, "enable").unwrap_or(true);
        let uuid = self.c.parsed::<Uuid>(&f, "uuid").map_or_else(|| Uuid::derived(&name), |(u, _)| u);
        let mac_address =
            self.c.parsed::<MacAddr>(&f, "macAddress").map_or_else(|| MacAddr::derived(&name), |(m, _)| m);

        let memory = match self.c.parsed::<ByteSize>(&f, "memory") {
            Some((m, span)) => {
                memory_spans.insert(name.clone(), span.clone());
                if m < MIN_MEMORY {
                    self.c.error(&span, format!("{path}.memory: {m} is too small (at least {MIN_MEMORY})"));
                }
                m
            }
            None => ByteSize::gib(4),
        };
        let vcpus = u32::try_from(self.c.uint(&f, "vcpus", 1, MAX_VCPUS).unwrap_or(2)).unwrap_or(2);
        let disk_size = self.c.parsed::<ByteSize>(&f, "diskSize").and_then(|(s, span)| {
            if s < ByteSize::mib(1) {
                self.c.error(&span, format!("{path}.diskSize: {s} is too small (at least 1M)"));
                None
            } else {
                Some(s)
            }
        });
        let storage_pool = self.name_like(&f, "storagePool").unwrap_or_else(|| cfg.default_storage_pool.clone());

        let pin_nodes = self.c.list(&f, "cpuPinning");
        let mut cpu_pinning = Vec::new();
        for (i, n) in pin_nodes.iter().enumerate() {
            if i == usize::try_from(vcpus).unwrap_or(usize::MAX) {
                self.c.error(
                    &n.span,
                    format!(
                        "{path}.cpuPinning has {} entries but vcpus is {vcpus}: give one host cpuset per vCPU",
                        pin_nodes.len()
                    ),
                );
            }
            if let Some(set) = self.c.node_parsed::<CpuSet>(&format!("{path}.cpuPinning[{i}]"), n) {
                cpu_pinning.push(set);
            }
        }
        cpu_pinning.truncate(usize::try_from(vcpus).unwrap_or(0));
        let emulator_pinning = self.c.parsed::<CpuSet>(&f, "emulatorPinning").map(|(s, _)| s);

        let display = self
            .c
            .choice(
                &f,
                "display",
                &[("spice", Display::Spice), ("vnc", Display::Vnc), ("looking-glass", Display::LookingGlass)],
            )
            .unwrap_or(Display::Spice);
        if display == Display::LookingGlass
            && !cfg.looking_glass.enable
            && let Some(e) = f.get("display")
        {
            self.c.error(
                &e.node.span,
                format!("{path}.display = \"looking-glass\" needs lookingGlass.enable = true (the global option)"),
            );
        }
        let os_type = self
            .c
            .choice(&f, "osType", &[("windows", OsType::Windows), ("linux", OsType::Linux), ("macos", OsType::Macos)])
            .unwrap_or(OsType::Linux);
        let video_model =
            self.c.choice(&f, "videoModel", &VideoModel::ALL).unwrap_or(VideoModel::default_for(os_type, display));

        let mut shared_folders = BTreeMap::new();
        if let Some(e) = f.get("sharedFolders") {
            // Every key is a tag chosen by the user, so there are no unknown keys here.
            let sf_path = f.path("sharedFolders");
            let tags: &[Entry] = match &e.node.value {
                Value::Table(entries) => entries,
                _ => {
                    self.c.type_error(&sf_path, &e.node, "a table of tag = \"/host/dir\"");
                    &[]
                }
            };
            for t in tags {
                let tpath = format!("{sf_path}.{}", t.key);
                if let Err(msg) = values::check_share_tag(&t.key) {
                    self.c.error(&t.key_span, format!("{tpath}: {msg}"));
                    continue;
                }
                if let Some(p) = self.path_value(&tpath, &t.node, "shared folder", true, true) {
                    shared_folders.insert(t.key.clone(), p);
                }
            }
            if os_type == OsType::Macos && !shared_folders.is_empty() {
                self.c.warn(&e.key_span, format!("{path}.sharedFolders: macOS guests have no virtiofs driver"));
            }
        }

        let firmware = self
            .c
            .choice(&f, "firmware", &[("efi", FirmwareKind::Efi), ("bios", FirmwareKind::Bios)])
            .unwrap_or(FirmwareKind::Efi);
        let windows = os_type == OsType::Windows;
        let tpm = self.c.bool(&f, "tpm").unwrap_or(windows);
        let secure_boot = match self.c.bool(&f, "secureBoot") {
            Some(sb) => {
                let span = f.get("secureBoot").map(|e| e.node.span.clone()).unwrap_or(0..0);
                if sb && os_type == OsType::Macos {
                    self.c.error(
                        &span,
                        format!("{path}.secureBoot: macOS guests boot through OpenCore, not Secure Boot"),
                    );
                } else if sb && firmware == FirmwareKind::Bios {
                    self.c.error(
                        &span,
                        format!("{path}.secureBoot needs UEFI firmware, but {path}.firmware is \"bios\""),
                    );
                }
                sb
            }
            None => windows && firmware == FirmwareKind::Efi,
        };
        let auto_start = self.c.bool(&f, "autoStart").unwrap_or(defaults.auto_start);

        let memballoon = match f.get("memballoon") {
            Some(e) => {
                let mf = self.c.fields(&e.node, &f.path("memballoon"), &options::keys(&["vms", "*", "memballoon"]));
                Memballoon {
                    enable: self.c.bool(&mf, "enable").unwrap_or(true),
                    autodeflate: self.c.bool(&mf, "autodeflate").unwrap_or(defaults.autodeflate),
                    free_page_reporting: self.c.bool(&mf, "freePageReporting").unwrap_or(defaults.free_page_reporting),
                    stats_interval: u32::try_from(self.c.uint(&mf, "statsInterval", 0, 86_400).unwrap_or(5))
                        .unwrap_or(5),
                }
            }
            None => Memballoon {
                enable: true,
                autodeflate: defaults.autodeflate,
                free_page_reporting: defaults.free_page_reporting,
                stats_interval: 5,
            },
        };

        let pci_path = f.path("pciDevices");
        let pci_devices: Vec<PciAddress> = self
            .c
            .list(&f, "pciDevices")
            .iter()
            .enumerate()
            .filter_map(|(i, n)| self.c.node_parsed(&format!("{pci_path}[{i}]"), n))
            .collect();

        let extra_devices = f.get("extraDevices").and_then(|e| self.extra_devices(&f.path("extraDevices"), &e.node));

        let media_path = f.path("installMedia");
        let install_media: Vec<PathBuf> = self
            .c
            .list(&f, "installMedia")
            .iter()
            .enumerate()
            .filter_map(|(i, n)| self.path_value(&format!("{media_path}[{i}]"), n, "install medium", true, false))
            .collect();

        let direct_boot = f.get("directBoot").and_then(|e| {
            let df = self.c.fields(&e.node, &f.path("directBoot"), &options::keys(&["vms", "*", "directBoot"]));
            let initrd =
                df.get("initrd").and_then(|i| self.path_value(&df.path("initrd"), &i.node, "initrd", true, false));
            let cmdline = self.c.string(&df, "cmdline");
            let Some(k) = df.get("kernel") else {
                self.c.error(&e.key_span, format!("{path}.directBoot needs `kernel`"));
                return None;
            };
            let kernel = self.path_value(&df.path("kernel"), &k.node, "kernel", true, false)?;
            Some(DirectBoot { kernel, initrd, cmdline })
        });

        let network = match self.name_like(&f, "network") {
            Some(n) if n == "none" => None,
            Some(n) => Some(n),
            None => Some(cfg.default_network.clone()),
        };

        let ssh = match f.get("ssh") {
            Some(e) => {
                let sf = self.c.fields(&e.node, &f.path("ssh"), &options::keys(&["vms", "*", "ssh"]));
                SshSettings {
                    user: self.c.string(&sf, "user"),
                    host: self.c.string(&sf, "host"),
                    port: u16::try_from(self.c.uint(&sf, "port", 1, 65535).unwrap_or(22)).unwrap_or(22),
                    identity_file: sf.get("identityFile").and_then(|i| {
                        self.path_value(&sf.path("identityFile"), &i.node, "identity file", false, false)
                    }),
                }
            }
            None => SshSettings { user: None, host: None, port: 22, identity_file: None },
        };

        if !name_ok {
            return None;
        }
        Some(VmConfig {
            name,
            enable,
            uuid,
            mac_address,
            memory,
            vcpus,
            disk_size,
            storage_pool,
            cpu_pinning,
            emulator_pinning,
            display,
            video_model,
            shared_folders,
            os_type,
            tpm,
            secure_boot,
            auto_start,
            memballoon,
            pci_devices,
            extra_devices,
            install_media,
            firmware,
            direct_boot,
            network,
            ssh,
            hugepages: cfg.hugepages.enable,
        })
    }

    /// `extraDevices`: one string or a list of strings of libvirt device XML, each well-formed.
    fn extra_devices(&mut self, path: &str, node: &Node) -> Option<ExtraDevices> {
        let parts: Vec<&Node> = match &node.value {
            Value::Array(items) => items.iter().collect(),
            _ => vec![node],
        };
        let mut texts = Vec::new();
        let mut ok = true;
        for (i, part) in parts.iter().enumerate() {
            let ppath = if matches!(node.value, Value::Array(_)) { format!("{path}[{i}]") } else { path.to_owned() };
            let Some(xml) = self.c.node_text(&ppath, part, true) else {
                ok = false;
                continue;
            };
            if let Err(err) = crate::xml::parse_fragment(xml) {
                ok = false;
                // Point into the string when its text appears verbatim in the file (literal strings, or basic
                // strings without escapes); otherwise at the string's start.
                let raw = self.c.src().text().get(part.span.clone()).unwrap_or_default();
                let offset = match raw.find(xml) {
                    Some(i) if !xml.is_empty() => part.span.start + i + err.offset.min(xml.len()),
                    _ => part.span.start,
                };
                self.c.error(&(offset..offset + 1), format!("{ppath}: not well-formed XML: {}", err.message));
                continue;
            }
            texts.push(xml);
        }
        let joined = texts.join("\n");
        if !ok || joined.trim().is_empty() {
            return None;
        }
        // Each part parsed on its own, so the whole does too (well-formed fragments concatenate).
        match ExtraDevices::parse(&joined) {
            Ok(d) => {
                for addr in remote_listeners(d.elements()) {
                    self.c.warn(
                        &node.span,
                        format!(
                            "{path}: a <graphics> listener on {addr} is reachable from other machines; vmkit's own \
                             displays listen on 127.0.0.1 only (reach them through an SSH tunnel)"
                        ),
                    );
                }
                Some(d)
            }
            Err(err) => {
                self.c.error(&node.span, format!("{path}: not well-formed XML: {}", err.message));
                None
            }
        }
    }
}

/// The non-loopback addresses `<graphics>` elements among `elements` listen on (`listen="…"` or
/// `<listen address="…"/>`; `0.0.0.0` and `::` are every interface).
fn remote_listeners(elements: &[crate::xml::Element]) -> Vec<String> {
    let loopback = |a: &str| a.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) || a == "localhost";
    let mut found = Vec::new();
    for g in elements.iter().filter(|e| e.name == "graphics") {
        let addrs = g
            .get_attr("listen")
            .into_iter()
            .chain(g.elements().filter(|l| l.name == "listen").filter_map(|l| l.get_attr("address")));
        found.extend(addrs.filter(|a| !loopback(a)).map(str::to_owned));
    }
    found
}

/// A POSIX-portable user name as `useradd` accepts it by default: it lands in host files (tmpfiles.d rules,
/// udev rules) printed for root to apply.
fn is_user_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 32
        && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn pci_span(f: &Fields<'_>, i: usize) -> Option<Range<usize>> {
    match &f.get("pciDevices")?.node.value {
        Value::Array(items) => items.get(i).map(|n| n.span.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> LoadOptions {
        LoadOptions {
            check_paths: false,
            firmware: FirmwarePaths::debian(),
            virtiofsd: "/usr/lib/qemu/virtiofsd".into(),
        }
    }

    fn load(text: &str) -> Result<Loaded, Rejected> {
        load_str("t.toml", text, Format::Toml, &opts())
    }

    fn errors(text: &str) -> Vec<String> {
        match load(text) {
            Ok(l) => panic!("accepted: {:?}", l.config),
            Err(e) => e.errors().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn defaults_follow_the_occasional_profile() -> Result<(), Rejected> {
        let l = load("enable = true\n[vms.a]\n")?;
        let vm = &l.config.vms["a"];
        assert_eq!(vm.memory, ByteSize::gib(4));
        assert_eq!(vm.vcpus, 2);
        assert!(!vm.auto_start && vm.memballoon.autodeflate && vm.memballoon.free_page_reporting);
        assert!(!l.config.hugepages.enable);
        assert_eq!(vm.memballoon.stats_interval, 5);
        assert_eq!(l.config.looking_glass.shared_memory_mb, 128);
        assert!(l.config.firewall_ports.spice && !l.config.firewall_ports.vnc);
        assert_eq!(vm.uuid, Uuid::derived("a"));
        assert_eq!(vm.network.as_deref(), Some("default"));
        Ok(())
    }

    #[test]
    fn always_on_profile_and_explicit_overrides() -> Result<(), Rejected> {
        let l = load(
            "enable = true\nprofile = \"always-on\"\n[vms.a]\nmemory = \"3G\"\n[vms.b]\nmemory = \"1G\"\nautoStart = false\n\
             memballoon.autodeflate = true\n",
        )?;
        let (a, b) = (&l.config.vms["a"], &l.config.vms["b"]);
        assert!(a.auto_start && !a.memballoon.autodeflate && !a.memballoon.free_page_reporting && a.hugepages);
        assert!(!b.auto_start && b.memballoon.autodeflate && !b.memballoon.free_page_reporting);
        // 3G + 1G in 2M pages.
        assert_eq!(l.config.hugepages.needed, 2048);
        assert_eq!(l.config.hugepages.count, 2048);
        Ok(())
    }

    #[test]
    fn hugepage_count_too_small_is_a_warning() -> Result<(), Rejected> {
        let l =
            load("enable = true\nhugepages = { enable = true, size = \"1G\", count = 4 }\n[vms.a]\nmemory = \"8G\"\n")?;
        assert_eq!(l.config.hugepages.count, 4);
        assert_eq!(l.config.hugepages.needed, 8);
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
        assert_eq!((l.warnings[0].line, l.warnings[0].col), (2, 51));
        assert!(l.warnings[0].message.contains("need 8 pages of 1G"), "{}", l.warnings[0].message);
        Ok(())
    }

    #[test]
    fn windows_defaults() -> Result<(), Rejected> {
        let l = load("enable = true\n[vms.w]\nosType = \"windows\"\n")?;
        let w = &l.config.vms["w"];
        assert!(w.tpm && w.secure_boot);
        assert_eq!(w.video_model, VideoModel::Qxl);
        Ok(())
    }

    #[test]
    fn unknown_keys_get_suggestions() {
        let e = errors("enable = true\nprofil = \"occasional\"\n[vms.a]\ncpu_pinning = []\n");
        assert!(e[0].contains("t.toml:2:1: error: unknown option `profil`; did you mean `profile`?"), "{e:?}");
        assert!(
            e[1].contains("t.toml:4:1: error: unknown option `vms.a.cpu_pinning`; did you mean `cpuPinning`?"),
            "{e:?}"
        );
    }

    #[test]
    fn pinning_longer_than_vcpus() {
        let e = errors("enable = true\n[vms.a]\nvcpus = 2\ncpuPinning = [\"0\", \"1\", \"2\"]\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("t.toml:4:25: error: vms.a.cpuPinning has 3 entries but vcpus is 2"), "{e:?}");
    }

    #[test]
    fn json_reads_the_same_model() -> Result<(), Rejected> {
        let json = r#"{"enable": true, "profile": "always-on", "hugepages": {"enable": true, "size": "1G", "count": null},
            "vms": {"w": {"memory": "8G", "vcpus": 4, "osType": "windows", "cpuPinning": ["2", "3"], "uuid": null}}}"#;
        let l = load_str("c.json", json, Format::Json, &opts())?;
        let toml = load(
            "enable = true\nprofile = \"always-on\"\nhugepages = { enable = true, size = \"1G\" }\n[vms.w]\n\
             memory = \"8G\"\nvcpus = 4\nosType = \"windows\"\ncpuPinning = [\"2\", \"3\"]\n",
        )?;
        assert_eq!(l.config, toml.config);
        assert_eq!(l.config.hugepages.count, 8);
        let Err(e) = load_str(
            "c.json",
            "{\n \"enable\": true,\n \"vms\": {\"a\": {\"memory\": \"16 GB\"}}}",
            Format::Json,
            &opts(),
        ) else {
            panic!("accepted")
        };
        assert!(e.to_string().contains("c.json:3:26: error: vms.a.memory: invalid size \"16 GB\""), "{e}");
        Ok(())
    }

    #[test]
    fn control_characters_and_bad_user_names_are_refused_where_they_are() {
        let e =
            errors("enable = true\n[vms.a]\ndirectBoot = { kernel = \"/boot/vmlinuz\", cmdline = \"quiet\\u0001\" }\n");
        assert!(e.iter().any(|m| m.starts_with("t.toml:3:") && m.contains("control character")), "{e:?}");
        let e = errors(
            "enable = true\nlookingGlass = { enable = true, user = \"alice\\nf /etc/sudoers.d/x 0666 root root -\" }\n",
        );
        assert!(e.iter().any(|m| m.starts_with("t.toml:2:") && m.contains("lookingGlass.user")), "{e:?}");
        let e = errors("enable = true\nlookingGlass = { enable = true, user = \"Alice Smith\" }\n");
        assert!(e.iter().any(|m| m.contains("is not a user name")), "{e:?}");
        assert!(is_user_name("alice") && is_user_name("_svc-1") && !is_user_name("1abc") && !is_user_name(""));
    }

    #[test]
    fn shared_pinned_cpus_are_warned_about() {
        let l = load(
            "enable = true\n[vms.a]\nvcpus = 2\ncpuPinning = [\"2\", \"2\"]\n[vms.b]\nvcpus = 1\ncpuPinning = [\"2-3\"]\n\
             [vms.c]\nvcpus = 1\ncpuPinning = [\"5\"]\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let w: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
        assert!(w.iter().any(|m| m.contains("vCPUs 0 and 1 are both pinned to host CPU 2")), "{w:?}");
        assert!(w.iter().any(|m| m.contains("vms.b.cpuPinning: host CPU 2 also pinned by vms.a")), "{w:?}");
        assert!(!w.iter().any(|m| m.contains("vms.c")), "{w:?}");
    }

    #[test]
    fn a_remote_graphics_listener_in_extra_devices_is_warned_about() {
        let l = load(
            "enable = true\n[vms.a]\nextraDevices = '<graphics type=\"vnc\" port=\"5999\" listen=\"0.0.0.0\"/>'\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(l.warnings.iter().any(|w| w.to_string().contains("listener on 0.0.0.0")), "{:?}", l.warnings);
        let l = load(
            "enable = true\n[vms.a]\nextraDevices = '<graphics type=\"vnc\"><listen type=\"address\" address=\"127.0.0.1\"/></graphics>'\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!l.warnings.iter().any(|w| w.to_string().contains("listener")), "{:?}", l.warnings);
    }

    #[test]
    fn extra_devices_must_be_well_formed() {
        let e = errors("enable = true\n[vms.a]\nextraDevices = '''\n<watchdog model=\"i6300esb\">\n</watchdg>'''\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("t.toml:5:"), "{e:?}");
        assert!(e[0].contains("not well-formed XML"), "{e:?}");
    }
}
