//! Every option of the desktop config as data: name, type, default and documentation.
//!
//! This table is the one description of `virtualisation.desktopVMs`. The loader takes the keys it accepts from
//! it (so an option cannot be read without being described), `vmkit desktop schema --json` prints it, and the
//! NixOS module in `nix/` builds its options from that JSON (committed as `nix/desktop-options.json`; a test
//! fails when the two drift). String formats carry a pattern (POSIX extended regular expression, matched
//! against the whole string, as Nix's `builtins.match` and `types.strMatching` use it) that checks the spelling
//! early — in Nix a wrong spelling is a type error at the option's path; vmkit's loader still checks ranges and
//! meaning (a cpuset that runs backwards, a multicast MAC) with file:line:col.

use serde_json::{Value as Json, json};

/// One option.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// The key, as written in the config.
    pub name: &'static str,
    /// Its type.
    pub ty: Ty,
    /// What applies when it is not given.
    pub default: Default,
    /// What it does.
    pub doc: &'static str,
    /// Whether vmkit added it (the original module did not have it).
    pub extension: bool,
}

/// The type of an option's value.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// true / false.
    Bool,
    /// An integer within bounds.
    Int {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// Any string.
    Text,
    /// A string in a format.
    Str(&'static Format),
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// A list of values.
    List(&'static Ty),
    /// One value or a list of them.
    OneOrList(&'static Ty),
    /// A table whose keys the user chooses, in a format.
    Attrs {
        /// The keys' format.
        key: &'static Format,
        /// The values' type.
        of: &'static Ty,
    },
    /// A table of named options.
    Submodule(&'static [Opt]),
}

/// A string format: its name, a pattern and an example.
#[derive(Debug, Clone, Copy)]
pub struct Format {
    /// Short name (`size`, `cpuset`, …).
    pub name: &'static str,
    /// POSIX extended regular expression the whole string must match.
    pub pattern: &'static str,
    /// What the format is, for people.
    pub doc: &'static str,
    /// A valid example.
    pub example: &'static str,
}

/// The default of an option.
#[derive(Debug, Clone, Copy)]
pub enum Default {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Str(&'static str),
    /// An empty list.
    EmptyList,
    /// An empty table.
    EmptyAttrs,
    /// A table whose sub-options have their own defaults.
    Nested,
    /// Not set unless given (`null` in JSON and Nix); the text says what vmkit does then.
    Unset(&'static str),
    /// Must be given.
    Required,
}

/// `"16G"`, `"512M"`.
pub const SIZE: Format = Format {
    name: "size",
    pattern: "[0-9]+([KMGTkmgt]|[KMGT]iB)",
    doc: "a whole number and a binary unit K, M, G or T with no space (1G = 1024M)",
    example: "16G",
};
/// A UUID.
pub const UUID: Format = Format {
    name: "uuid",
    pattern: "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}",
    doc: "a UUID: 32 hex digits, usually as 8-4-4-4-12",
    example: "4dea22b3-1d52-d8f3-2516-782e98ab3fa0",
};
/// A MAC address.
pub const MAC: Format = Format {
    name: "mac",
    pattern: "[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}",
    doc: "a unicast MAC address: six hex pairs separated by ':'",
    example: "52:54:00:12:34:56",
};
/// A host PCI address.
pub const PCI_ADDRESS: Format = Format {
    name: "pci-address",
    pattern: "([0-9a-fA-F]{4}:)?[0-9a-fA-F]{1,2}:[0-9a-fA-F]{1,2}\\.[0-7]",
    doc: "a host PCI address DOMAIN:BUS:SLOT.FUNCTION in hex (see lspci -D)",
    example: "0000:01:00.0",
};
/// A PCI vendor:device ID.
pub const PCI_ID: Format = Format {
    name: "pci-id",
    pattern: "[0-9a-fA-F]{4}:[0-9a-fA-F]{4}",
    doc: "a PCI VENDOR:DEVICE ID in hex (see lspci -nn)",
    example: "10de:1b80",
};
/// A host cpuset.
pub const CPUSET: Format = Format {
    name: "cpuset",
    pattern: "\\^?[0-9]+(-[0-9]+)?(,\\^?[0-9]+(-[0-9]+)?)*",
    doc: "host CPUs in libvirt's cpuset syntax: \"2\", \"0-3\", \"0-3,^2,8\"",
    example: "0-3,^2",
};
/// A VM name.
pub const VM_NAME: Format = Format {
    name: "vm-name",
    pattern: "[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}",
    doc: "a VM name: letters, digits, '.', '_', '+' and '-', starting with a letter or digit, at most 64 characters \
          (it names the libvirt domain, its disk volume and the vm-<name> command)",
    example: "win11",
};
/// A virtiofs tag.
pub const SHARE_TAG: Format = Format {
    name: "share-tag",
    pattern: "[A-Za-z0-9_.-]{1,36}",
    doc: "a virtiofs tag: 1 to 36 letters, digits, '.', '_' and '-'",
    example: "projects",
};
/// An absolute path.
pub const ABS_PATH: Format =
    Format { name: "absolute-path", pattern: "/.*", doc: "an absolute path", example: "/var/lib/libvirt/images" };
/// A libvirt object name (pool, network).
pub const LIBVIRT_NAME: Format = Format {
    name: "libvirt-name",
    pattern: "[^/[:cntrl:]]+",
    doc: "a libvirt object name: not empty, no '/' or control characters",
    example: "default",
};

const fn opt(name: &'static str, ty: Ty, default: Default, doc: &'static str) -> Opt {
    Opt { name, ty, default, doc, extension: false }
}

const fn ext(name: &'static str, ty: Ty, default: Default, doc: &'static str) -> Opt {
    Opt { name, ty, default, doc, extension: true }
}

const PATH: Ty = Ty::Str(&ABS_PATH);

const HUGEPAGES: &[Opt] = &[
    opt(
        "enable",
        Ty::Bool,
        Default::Unset("from the profile: false for \"occasional\", true for \"always-on\""),
        "Back every enabled VM's memory with huge pages.",
    ),
    opt(
        "size",
        Ty::Enum(&["2M", "1G"]),
        Default::Str("2M"),
        "The huge page size; each VM's memory must be a multiple of it.",
    ),
    opt(
        "count",
        Ty::Int { min: 0, max: 1 << 40 },
        Default::Unset("computed: the sum over the enabled VMs of memory / page size, rounded up"),
        "The number of huge pages the host reserves. A count below what the enabled VMs need is a warning.",
    ),
];

const FIREWALL_PORTS: &[Opt] = &[
    opt(
        "spice",
        Ty::Bool,
        Default::Bool(true),
        "Accepted for compatibility: no port is opened, SPICE listens on 127.0.0.1 only.",
    ),
    opt(
        "vnc",
        Ty::Bool,
        Default::Bool(false),
        "Accepted for compatibility: no port is opened, VNC listens on 127.0.0.1 only.",
    ),
];

const GPU_PASSTHROUGH: &[Opt] = &[
    opt(
        "enable",
        Ty::Bool,
        Default::Bool(false),
        "Set the host up for GPU passthrough: IOMMU kernel parameters and vfio-pci binding of `pciIDs`; Windows \
         VMs with PCI devices get KVM hidden and a Hyper-V vendor id.",
    ),
    opt(
        "pciIDs",
        Ty::List(&Ty::Str(&PCI_ID)),
        Default::EmptyList,
        "Vendor:device IDs bound to vfio-pci at boot (`vfio-pci.ids=`).",
    ),
    opt(
        "cpuVendor",
        Ty::Enum(&["intel", "amd"]),
        Default::Unset("read from /proc/cpuinfo by vmkit; the NixOS module needs it set to add the IOMMU parameter"),
        "The host CPU vendor: picks `intel_iommu=on` or `amd_iommu=on`.",
    ),
];

const LOOKING_GLASS: &[Opt] = &[
    opt(
        "enable",
        Ty::Bool,
        Default::Bool(false),
        "Make Looking Glass available to VMs with `display = \"looking-glass\"`.",
    ),
    opt(
        "user",
        Ty::Text,
        Default::Unset("root"),
        "The desktop user who runs the Looking Glass client: owner of /dev/shm/looking-glass.",
    ),
    opt(
        "sharedMemoryMB",
        Ty::Int { min: 1, max: 8192 },
        Default::Int(128),
        "Size of the shared memory (ivshmem) in MiB, a power of two: 32 for 1080p, 64 for 1440p, 128 for 4K.",
    ),
];

const OVMF: &[Opt] = &[
    opt("secureCode", PATH, Default::Unset("discovered on the host"), "OVMF code with Secure Boot support and SMM."),
    opt(
        "secureVars",
        PATH,
        Default::Unset("discovered on the host"),
        "OVMF variables template with Microsoft's keys enrolled.",
    ),
    opt("code", PATH, Default::Unset("discovered on the host"), "Plain OVMF code."),
    opt("vars", PATH, Default::Unset("discovered on the host"), "Plain OVMF variables template."),
];

const MEMBALLOON: &[Opt] = &[
    opt("enable", Ty::Bool, Default::Bool(true), "A virtio memory balloon; false gives `<memballoon model='none'/>`."),
    opt(
        "autodeflate",
        Ty::Bool,
        Default::Unset("from the profile: true for \"occasional\", false for \"always-on\""),
        "Deflate the balloon when the guest runs out of memory.",
    ),
    opt(
        "freePageReporting",
        Ty::Bool,
        Default::Unset("from the profile: true for \"occasional\", false for \"always-on\""),
        "The guest reports freed pages to the host.",
    ),
    opt(
        "statsInterval",
        Ty::Int { min: 0, max: 86_400 },
        Default::Int(5),
        "Seconds between guest memory statistics updates; 0 turns them off.",
    ),
];

const DIRECT_BOOT: &[Opt] = &[
    opt("kernel", PATH, Default::Required, "The kernel image."),
    opt("initrd", PATH, Default::Unset("none"), "The initramfs."),
    opt("cmdline", Ty::Text, Default::Unset("none"), "The kernel command line."),
];

const SSH: &[Opt] = &[
    opt("user", Ty::Text, Default::Unset("ssh's own default"), "Login user."),
    opt(
        "host",
        Ty::Text,
        Default::Unset("the guest's address, asked from libvirt"),
        "Host name or address of the guest.",
    ),
    opt("port", Ty::Int { min: 1, max: 65_535 }, Default::Int(22), "SSH port."),
    opt("identityFile", PATH, Default::Unset("ssh's own default"), "Private key for `ssh -i`."),
];

/// The options of one VM, `vms.<name>`.
pub const VM: &[Opt] = &[
    opt(
        "enable",
        Ty::Bool,
        Default::Bool(true),
        "Define this VM. A disabled VM is not defined (and is undefined by `--prune` if vmkit defined it).",
    ),
    opt(
        "uuid",
        Ty::Str(&UUID),
        Default::Unset("derived from the name (stable)"),
        "The domain UUID; stable, so redefinition keeps the domain's identity.",
    ),
    opt(
        "macAddress",
        Ty::Str(&MAC),
        Default::Unset("52:54:00:… derived from the name (stable)"),
        "The NIC's MAC address; unicast, unique across VMs.",
    ),
    opt("memory", Ty::Str(&SIZE), Default::Str("4G"), "Maximum and boot memory (at least 32M)."),
    opt("vcpus", Ty::Int { min: 1, max: 255 }, Default::Int(2), "Virtual CPUs: one socket with this many cores."),
    opt(
        "diskSize",
        Ty::Str(&SIZE),
        Default::Unset("no disk"),
        "Size of the VM's qcow2 volume `<name>.qcow2`, created when missing (never shrunk, grown or deleted).",
    ),
    opt(
        "storagePool",
        Ty::Str(&LIBVIRT_NAME),
        Default::Unset("defaultStoragePool"),
        "The storage pool of the disk volume; it must exist unless it is the default pool.",
    ),
    opt(
        "cpuPinning",
        Ty::List(&Ty::Str(&CPUSET)),
        Default::EmptyList,
        "One host cpuset per vCPU, in vCPU order; at most `vcpus` entries.",
    ),
    opt(
        "display",
        Ty::Enum(&["spice", "vnc", "looking-glass"]),
        Default::Str("spice"),
        "The display, on 127.0.0.1: SPICE (clipboard, USB redirection, sound), VNC, or a passed-through GPU shown \
         through Looking Glass (needs `lookingGlass.enable`).",
    ),
    opt(
        "videoModel",
        Ty::Enum(&["virtio", "qxl", "vga", "bochs", "cirrus", "ramfb", "vmvga", "none"]),
        Default::Unset("windows: qxl, linux: virtio, macos: vga; none with looking-glass"),
        "The emulated video card.",
    ),
    opt(
        "sharedFolders",
        Ty::Attrs { key: &SHARE_TAG, of: &PATH },
        Default::EmptyAttrs,
        "virtiofs shares: tag = host directory (the directory must exist). The guest mounts one with \
         `mount -t virtiofs TAG DIR`.",
    ),
    opt(
        "osType",
        Ty::Enum(&["windows", "linux", "macos"]),
        Default::Str("linux"),
        "The guest OS family. windows: Hyper-V enlightenments, local-time clock, TPM and Secure Boot by default; \
         macos: SATA disk, vmxnet3 NIC, USB input, `kvm.ignore_msrs` on the host.",
    ),
    opt(
        "tpm",
        Ty::Bool,
        Default::Unset("true for windows, else false"),
        "A TPM 2.0 emulated by swtpm (libvirt starts it).",
    ),
    opt(
        "secureBoot",
        Ty::Bool,
        Default::Unset("true for windows with UEFI firmware, else false"),
        "Secure Boot: the secure OVMF loader, a Microsoft-keys variables template and SMM. Needs UEFI; not for \
         macOS.",
    ),
    opt(
        "autoStart",
        Ty::Bool,
        Default::Unset("from the profile: false for \"occasional\", true for \"always-on\""),
        "Start the VM with the host (libvirt autostart).",
    ),
    opt("memballoon", Ty::Submodule(MEMBALLOON), Default::Nested, "The memory balloon."),
    opt(
        "pciDevices",
        Ty::List(&Ty::Str(&PCI_ADDRESS)),
        Default::EmptyList,
        "Host PCI devices passed through (managed: libvirt binds them to vfio-pci on start).",
    ),
    opt(
        "extraDevices",
        Ty::OneOrList(&Ty::Text),
        Default::Unset("none"),
        "Raw libvirt device XML appended to `<devices>`; it must be well-formed.",
    ),
    ext(
        "emulatorPinning",
        Ty::Str(&CPUSET),
        Default::Unset("the union of the cpuPinning cpusets"),
        "Where QEMU's emulator threads run when vCPUs are pinned.",
    ),
    ext(
        "installMedia",
        Ty::List(&PATH),
        Default::EmptyList,
        "Installation media attached as CD-ROMs on SATA, booted after the disk.",
    ),
    ext("firmware", Ty::Enum(&["efi", "bios"]), Default::Str("efi"), "UEFI (OVMF) or BIOS (SeaBIOS)."),
    ext("directBoot", Ty::Submodule(DIRECT_BOOT), Default::Unset("none"), "Direct kernel boot."),
    ext(
        "network",
        Ty::Str(&LIBVIRT_NAME),
        Default::Unset("defaultNetwork"),
        "The libvirt network of the VM's NIC; \"none\" for no NIC.",
    ),
    ext("ssh", Ty::Submodule(SSH), Default::Nested, "How `vmkit vm NAME ssh` (and `vm-NAME ssh`) reaches the guest."),
];

/// The whole config, `virtualisation.desktopVMs`.
pub const OPTIONS: &[Opt] = &[
    opt("enable", Ty::Bool, Default::Bool(false), "Manage the desktop VMs. When false, plan and apply define nothing."),
    opt(
        "profile",
        Ty::Enum(&["occasional", "always-on"]),
        Default::Str("occasional"),
        "The defaults for VMs: \"occasional\" (no huge pages, no autostart, the balloon gives memory back) or \
         \"always-on\" (huge pages, autostart, no balloon deflation or free page reporting). Explicit options win.",
    ),
    opt("hugepages", Ty::Submodule(HUGEPAGES), Default::Nested, "Huge pages backing the VMs' memory."),
    opt(
        "firewallPorts",
        Ty::Submodule(FIREWALL_PORTS),
        Default::Nested,
        "Accepted for compatibility with the original module; vmkit's listeners are on 127.0.0.1, so no port is \
         opened. Reach SPICE or VNC from another machine through SSH.",
    ),
    opt(
        "defaultStoragePool",
        Ty::Str(&LIBVIRT_NAME),
        Default::Str("default"),
        "The storage pool VM disks go to; created as a directory pool when missing.",
    ),
    opt(
        "defaultStoragePath",
        PATH,
        Default::Str("/var/lib/libvirt/images"),
        "Directory of the default pool when vmkit creates it.",
    ),
    opt("gpuPassthrough", Ty::Submodule(GPU_PASSTHROUGH), Default::Nested, "GPU passthrough."),
    opt("lookingGlass", Ty::Submodule(LOOKING_GLASS), Default::Nested, "Looking Glass."),
    opt(
        "vms",
        Ty::Attrs { key: &VM_NAME, of: &Ty::Submodule(VM) },
        Default::EmptyAttrs,
        "The VMs, by name (the libvirt domain name).",
    ),
    ext("ovmf", Ty::Submodule(OVMF), Default::Nested, "UEFI firmware files."),
    ext(
        "domainType",
        Ty::Enum(&["kvm", "qemu"]),
        Default::Str("kvm"),
        "The libvirt domain type: \"qemu\" emulates (TCG) for hosts where KVM does not run guests; the CPU is then \
         QEMU's `maximum` model instead of `host-passthrough`.",
    ),
    ext("virtiofsd", PATH, Default::Unset("discovered on the host"), "The virtiofsd binary wired into every share."),
    ext("defaultNetwork", Ty::Str(&LIBVIRT_NAME), Default::Str("default"), "The libvirt network the VMs' NICs join."),
];

/// The options of the table at `path` (keys from the top; `"*"` stands for a VM name), or `None` if `path` does
/// not name a table of options.
pub fn find(path: &[&str]) -> Option<&'static [Opt]> {
    let mut opts = OPTIONS;
    let mut rest = path;
    while let [key, tail @ ..] = rest {
        let o = opts.iter().find(|o| o.name == *key)?;
        match o.ty {
            Ty::Submodule(sub) => {
                opts = sub;
                rest = tail;
            }
            Ty::Attrs { of: Ty::Submodule(sub), .. } => {
                let [_, tail @ ..] = tail else { return None };
                opts = sub;
                rest = tail;
            }
            _ => return None,
        }
    }
    Some(opts)
}

/// The keys of the table at `path` (see [`find`]); empty if there is none.
pub fn keys(path: &[&str]) -> Vec<&'static str> {
    find(path).map(|opts| opts.iter().map(|o| o.name).collect()).unwrap_or_default()
}

/// Every format used by the options.
pub const FORMATS: [&Format; 10] =
    [&SIZE, &UUID, &MAC, &PCI_ADDRESS, &PCI_ID, &CPUSET, &VM_NAME, &SHARE_TAG, &ABS_PATH, &LIBVIRT_NAME];

fn format_json(f: &Format) -> Json {
    json!({ "name": f.name, "pattern": f.pattern, "description": f.doc, "example": f.example })
}

fn type_json(ty: &Ty) -> Json {
    match ty {
        Ty::Bool => json!({ "kind": "bool" }),
        Ty::Int { min, max } => json!({ "kind": "int", "min": min, "max": max }),
        Ty::Text => json!({ "kind": "text" }),
        Ty::Str(f) => json!({ "kind": "string", "format": format_json(f) }),
        Ty::Enum(values) => json!({ "kind": "enum", "values": values }),
        Ty::List(of) => json!({ "kind": "list", "of": type_json(of) }),
        Ty::OneOrList(of) => json!({ "kind": "oneOrList", "of": type_json(of) }),
        Ty::Attrs { key, of } => json!({ "kind": "attrs", "key": format_json(key), "of": type_json(of) }),
        Ty::Submodule(opts) => json!({ "kind": "submodule", "options": options_json(opts) }),
    }
}

fn options_json(opts: &[Opt]) -> Json {
    Json::Array(
        opts.iter()
            .map(|o| {
                let mut m = serde_json::Map::new();
                m.insert("name".into(), json!(o.name));
                m.insert("type".into(), type_json(&o.ty));
                let (default, text, required) = match o.default {
                    Default::Bool(b) => (json!(b), None, false),
                    Default::Int(n) => (json!(n), None, false),
                    Default::Str(s) => (json!(s), None, false),
                    Default::EmptyList => (json!([]), None, false),
                    Default::EmptyAttrs | Default::Nested => (json!({}), None, false),
                    Default::Unset(text) => (Json::Null, Some(text), false),
                    Default::Required => (Json::Null, None, true),
                };
                if required {
                    m.insert("required".into(), json!(true));
                } else {
                    m.insert("default".into(), default);
                }
                if let Some(text) = text {
                    m.insert("defaultText".into(), json!(text));
                }
                m.insert("description".into(), json!(o.doc));
                m.insert("extension".into(), json!(o.extension));
                Json::Object(m)
            })
            .collect(),
    )
}

/// The schema as JSON (what `vmkit desktop schema --json` prints).
///
/// `default: null` means "not set" (the option is nullable and `defaultText` says what applies); `required:
/// true` options have no default; a submodule's default `{}` means each sub-option takes its own.
pub fn schema_json() -> Json {
    json!({
        "schema": "vmkit desktop config",
        "version": 1,
        "options": options_json(OPTIONS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::{ByteSize, CpuSet, MacAddr, PciAddress, PciId, Uuid, check_share_tag, check_vm_name};

    fn matches(f: &Format, s: &str) -> bool {
        let re = regex::Regex::new(&format!("^(?:{})$", f.pattern)).unwrap_or_else(|e| panic!("{}: {e}", f.name));
        re.is_match(s)
    }

    /// Whatever vmkit's parser accepts, the pattern accepts (the pattern may let through what the parser then
    /// rejects with a precise message, never the other way round).
    #[test]
    fn patterns_accept_what_the_parsers_accept() {
        type Case<'a> = (&'a Format, &'a [&'a str], fn(&str) -> bool);
        let cases: &[Case<'_>] = &[
            (&SIZE, &["16G", "512m", "16GiB", "2048K", "1T", "16 GB", "16GB", "1.5G", "G", ""], |s| {
                s.parse::<ByteSize>().is_ok()
            }),
            (&UUID, &["4dea22b3-1d52-d8f3-2516-782e98ab3fa0", "4DEA22B31D52D8F32516782E98AB3FA0", "4dea-22"], |s| {
                s.parse::<Uuid>().is_ok()
            }),
            (&MAC, &["52:54:00:AB:cd:01", "52-54-00-ab-cd-01", "52:54:00:ab:cd"], |s| s.parse::<MacAddr>().is_ok()),
            (&PCI_ADDRESS, &["0000:0a:1f.7", "01:00.1", "01:00", "0000:01:00.8", "1:2:3:4.0"], |s| {
                s.parse::<PciAddress>().is_ok()
            }),
            (&PCI_ID, &["10DE:1b80", "10de-1b80", "10de:1b8"], |s| s.parse::<PciId>().is_ok()),
            (&CPUSET, &["2", "0-3", "0-3,^2,8", "", "a", "1,,2", "0-"], |s| s.parse::<CpuSet>().is_ok()),
            (&VM_NAME, &["win11-dev_2.0", "a+b", "", "a/b", "-x", ".hidden", "has space"], |s| {
                check_vm_name(s).is_ok()
            }),
            (&SHARE_TAG, &["home", "a.b-c_d", "a b", ""], |s| check_share_tag(s).is_ok()),
        ];
        for (format, samples, parser_ok) in cases {
            assert!(parser_ok(format.example), "{}: example {:?} is invalid", format.name, format.example);
            for s in samples.iter().copied() {
                if parser_ok(s) {
                    assert!(matches(format, s), "{}: the parser accepts {s:?} but the pattern does not", format.name);
                }
            }
            assert!(samples.iter().any(|s| !matches(format, s)), "{}: the pattern rejects nothing", format.name);
        }
        assert!(matches(&SIZE, "16G") && !matches(&SIZE, "16 GB") && !matches(&SIZE, "16GB"));
        assert!(matches(&ABS_PATH, "/srv/x") && !matches(&ABS_PATH, "srv/x"));
        assert!(matches(&LIBVIRT_NAME, "default") && !matches(&LIBVIRT_NAME, "a/b") && !matches(&LIBVIRT_NAME, ""));
        for f in FORMATS {
            assert!(matches(f, f.example), "{}: example does not match", f.name);
        }
    }

    /// The schema's defaults as explicit values (sub-tables filled in, unset options left out).
    fn explicit_defaults(opts: &[Opt]) -> Json {
        let mut m = serde_json::Map::new();
        for o in opts {
            let v = match (o.default, o.ty) {
                (Default::Bool(b), _) => json!(b),
                (Default::Int(n), _) => json!(n),
                (Default::Str(s), _) => json!(s),
                (Default::EmptyList, _) => json!([]),
                (Default::EmptyAttrs, _) => json!({}),
                (Default::Nested, Ty::Submodule(sub)) => explicit_defaults(sub),
                _ => continue,
            };
            m.insert(o.name.to_owned(), v);
        }
        Json::Object(m)
    }

    /// What the schema says the defaults are is what the loader applies: a config that spells out every default
    /// loads into the same model as one that leaves them all out.
    #[test]
    fn the_loader_applies_the_schema_defaults() -> Result<(), crate::Rejected> {
        let opts = crate::LoadOptions {
            check_paths: false,
            firmware: crate::model::FirmwarePaths::debian(),
            virtiofsd: "/usr/lib/qemu/virtiofsd".into(),
        };
        for profile in ["occasional", "always-on"] {
            let mut explicit = explicit_defaults(OPTIONS);
            explicit["profile"] = json!(profile);
            explicit["vms"] = json!({ "a": explicit_defaults(VM) });
            let implicit = json!({ "profile": profile, "vms": { "a": {} } });
            let load = |v: &Json| crate::load_str("c.json", &v.to_string(), crate::Format::Json, &opts);
            let (e, mut i) = (load(&explicit)?.config, load(&implicit)?.config);
            // Whether `firewallPorts` was written at all is recorded (vmkit notes it); the values are the point.
            i.firewall_ports.given = e.firewall_ports.given;
            assert_eq!(e, i, "{profile}: explicit defaults {explicit}");
        }
        Ok(())
    }

    /// docs/desktop.md's option tables name every option.
    #[test]
    fn every_option_is_in_the_reference() {
        fn walk(opts: &[Opt], prefix: &str, doc: &str) {
            for o in opts {
                assert!(doc.contains(o.name), "docs/desktop.md does not mention {prefix}{}", o.name);
                match o.ty {
                    Ty::Submodule(sub) => walk(sub, &format!("{prefix}{}.", o.name), doc),
                    Ty::Attrs { of: Ty::Submodule(sub), .. } => walk(sub, &format!("{prefix}{}.<name>.", o.name), doc),
                    _ => {}
                }
            }
        }
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/desktop.md")).unwrap_or_default();
        assert!(doc.contains("### Per-VM options"), "docs/desktop.md not found");
        walk(OPTIONS, "", &doc);
    }

    #[test]
    fn find_walks_submodules_and_vm_tables() {
        assert_eq!(keys(&["hugepages"]), ["enable", "size", "count"]);
        assert_eq!(keys(&["vms", "*", "ssh"]), ["user", "host", "port", "identityFile"]);
        assert!(keys(&["vms", "*"]).contains(&"memballoon"));
        assert!(find(&["memory"]).is_none());
        assert!(find(&["vms", "*", "memory"]).is_none());
    }

    #[test]
    fn json_has_every_option_with_a_description() {
        fn walk(opts: &Json, path: &str, n: &mut usize) {
            for o in opts.as_array().into_iter().flatten() {
                let name = o["name"].as_str().unwrap_or_default();
                let p = format!("{path}{name}");
                assert!(!o["description"].as_str().unwrap_or_default().is_empty(), "{p}: no description");
                assert!(o.get("default").is_some() || o["required"] == json!(true), "{p}: no default");
                *n += 1;
                let ty = &o["type"];
                if ty["kind"] == "submodule" {
                    walk(&ty["options"], &format!("{p}."), n);
                }
                if ty["kind"] == "attrs" && ty["of"]["kind"] == "submodule" {
                    walk(&ty["of"]["options"], &format!("{p}.<name>."), n);
                }
            }
        }
        let mut n = 0;
        walk(&schema_json()["options"], "", &mut n);
        assert!(n > 50, "{n} options");
    }
}
