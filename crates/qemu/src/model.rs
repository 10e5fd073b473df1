//! QEMU's command line as a typed model.
//!
//! Every caller of QEMU in vmkit (the test guests, image builds, Windows and macOS installs, the KVM probe)
//! describes the machine with these types and lets [`QemuCommand::argv`] render it. Rendering is the only place
//! that knows QEMU's syntax: option lists are escaped by the `opts` module, ids and property names are checked, and
//! the same rendering feeds the run script ([`crate::script`]), so what a build ran and what its `run` script runs
//! cannot drift apart.
//!
//! The model covers what vmkit's jobs need (machine, accelerator, CPU, memory, firmware, direct kernel boot,
//! drives, user-mode networking with host forwards, chardevs, serial ports, QMP, VNC, TPM, devices). Anything else
//! goes into [`QemuCommand::extra`] as whole argv elements — still passed as separate arguments, never spliced
//! into a string.
//!
//! Security defaults: VNC and host forwards listen on 127.0.0.1 unless the caller names another address.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::opts::{OptList, check_id, check_key};

/// A model that cannot be rendered, with the part and value at fault.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A value QEMU would misread or reject.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        /// Which part of the model.
        what: String,
        /// The offending value.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// Two objects share one id.
    #[error("duplicate id {id:?} (used by more than one drive, netdev, chardev or TPM)")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// Parts of the model that do not fit together.
    #[error("inconsistent QEMU model: {0}")]
    Inconsistent(String),
    /// A run script was asked for but an argument is not UTF-8.
    #[error("{what} is not valid UTF-8, so it cannot go into a run script: {value:?}")]
    NotUtf8 {
        /// Which argument.
        what: String,
        /// The argument, lossily decoded.
        value: String,
    },
}

/// Which accelerator runs the guest, with the CPU model that goes with it.
///
/// KVM runs the host's CPU model; TCG (QEMU's translator) emulates `max`, every feature it implements, and runs
/// one host thread per vCPU (`thread=multi`). [`crate::accel`] decides which one works on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualisation through `/dev/kvm`, `-cpu host`.
    Kvm,
    /// Software emulation, `-accel tcg,thread=multi -cpu max`.
    Tcg,
}

impl Accel {
    /// The CPU model that goes with this accelerator.
    pub fn cpu(self) -> Cpu {
        match self {
            Self::Kvm => Cpu::model("host"),
            Self::Tcg => Cpu::model("max"),
        }
    }

    /// QEMU's name for it (`kvm`, `tcg`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Kvm => "kvm",
            Self::Tcg => "tcg",
        }
    }

    fn render(self) -> OsString {
        match self {
            Self::Kvm => OsString::from("kvm"),
            Self::Tcg => OsString::from("tcg,thread=multi"),
        }
    }
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Accel {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "kvm" => Ok(Self::Kvm),
            "tcg" => Ok(Self::Tcg),
            _ => Err(ModelError::Invalid {
                what: "accelerator".to_owned(),
                value: s.to_owned(),
                reason: "expected kvm or tcg".to_owned(),
            }),
        }
    }
}

/// `-machine TYPE,smm=…,key=value…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Machine type: `q35`, `pc`, `microvm`, a versioned type.
    pub kind: String,
    /// System Management Mode (needed by Secure Boot firmware); `None` leaves QEMU's default.
    pub smm: Option<bool>,
    /// Further machine properties in order.
    pub props: Vec<(String, String)>,
}

impl Machine {
    /// A machine of the given type with QEMU's defaults.
    pub fn new(kind: impl Into<String>) -> Self {
        Self { kind: kind.into(), smm: None, props: Vec::new() }
    }
}

impl Default for Machine {
    fn default() -> Self {
        Self::new("q35")
    }
}

/// A CPU feature in `-cpu MODEL,…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuFeature {
    /// `+name`.
    Enable(String),
    /// `-name`.
    Disable(String),
    /// `name=value` (e.g. `vendor=GenuineIntel`, `kvm=on`).
    Prop(String, String),
    /// A bare word such as `check` or `enforce`.
    Flag(String),
}

/// `-cpu MODEL,features…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpu {
    /// CPU model (`host`, `max`, `Skylake-Client`, …).
    pub model: String,
    /// Features in order.
    pub features: Vec<CpuFeature>,
}

impl Cpu {
    /// A CPU model without extra features.
    pub fn model(model: impl Into<String>) -> Self {
        Self { model: model.into(), features: Vec::new() }
    }

    fn render(&self) -> Result<OsString, ModelError> {
        let mut list = OptList::with_head("CPU model", &self.model)?;
        for f in &self.features {
            match f {
                CpuFeature::Enable(name) => {
                    check_key("CPU feature", name)?;
                    list.token(format!("+{name}"));
                }
                CpuFeature::Disable(name) => {
                    check_key("CPU feature", name)?;
                    list.token(format!("-{name}"));
                }
                CpuFeature::Prop(k, v) => {
                    check_key("CPU property", k)?;
                    list.kv(k, v);
                }
                CpuFeature::Flag(name) => {
                    check_key("CPU flag", name)?;
                    list.token(name);
                }
            }
        }
        Ok(list.finish())
    }
}

/// `-smp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Smp {
    /// Number of vCPUs.
    pub cpus: u32,
    /// Topology; all three or none.
    pub topology: Option<Topology>,
}

/// CPU topology for `-smp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topology {
    /// Sockets.
    pub sockets: u32,
    /// Cores per socket.
    pub cores: u32,
    /// Threads per core.
    pub threads: u32,
}

impl Smp {
    /// `n` vCPUs, QEMU's default topology.
    pub fn cpus(n: u32) -> Self {
        Self { cpus: n, topology: None }
    }
}

/// Where the guest's firmware comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Firmware {
    /// QEMU's built-in SeaBIOS.
    #[default]
    Default,
    /// `-bios FILE`.
    Bios(PathBuf),
    /// UEFI from two pflash chips: read-only code and per-VM variables.
    Uefi {
        /// The firmware code (e.g. `OVMF_CODE_4M.secboot.fd`), mapped read-only.
        code: PathBuf,
        /// A writable per-VM copy of the variable store.
        vars: PathBuf,
        /// Secure Boot: the flash is only writable from SMM (`cfi.pflash01.secure=on`; needs `smm=on`).
        secure: bool,
    },
}

/// A Linux kernel command line: `key=value` and bare words, separated by spaces.
///
/// Values with spaces are quoted the way the kernel parses them (`key="a b"`); a double quote inside a value
/// cannot be expressed and is rejected when rendering.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KernelCmdline {
    params: Vec<(String, Option<String>)>,
}

impl KernelCmdline {
    /// An empty command line.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key=value`.
    pub fn arg(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((key.into(), Some(value.into())));
        self
    }

    /// Adds a bare word (`quiet`).
    pub fn flag(mut self, word: impl Into<String>) -> Self {
        self.params.push((word.into(), None));
        self
    }

    /// Adds every parameter of `other` after this one's.
    pub fn extend(mut self, other: &KernelCmdline) -> Self {
        self.params.extend(other.params.iter().cloned());
        self
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// The command line as the kernel reads it.
    pub fn render(&self) -> Result<String, ModelError> {
        let mut out = Vec::with_capacity(self.params.len());
        for (key, value) in &self.params {
            if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c == '"' || c == '=') {
                return Err(ModelError::Invalid {
                    what: "kernel parameter name".to_owned(),
                    value: key.clone(),
                    reason: "must be non-empty, without spaces, quotes or '='".to_owned(),
                });
            }
            match value {
                None => out.push(key.clone()),
                Some(v) if v.contains('"') || v.contains('\n') => {
                    return Err(ModelError::Invalid {
                        what: format!("value of kernel parameter {key}"),
                        value: v.clone(),
                        reason: "the kernel command line cannot carry a double quote or newline".to_owned(),
                    });
                }
                Some(v) if v.is_empty() || v.chars().any(char::is_whitespace) => out.push(format!("{key}=\"{v}\"")),
                Some(v) => out.push(format!("{key}={v}")),
            }
        }
        Ok(out.join(" "))
    }
}

/// Direct kernel boot: `-kernel`, `-initrd`, `-append`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectBoot {
    /// A bzImage (or a multiboot image).
    pub kernel: PathBuf,
    /// An initramfs. (For multiboot kernels QEMU splits this at commas; vmkit passes it as one path.)
    pub initrd: Option<PathBuf>,
    /// The kernel command line.
    pub cmdline: KernelCmdline,
}

/// Disk image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// Raw bytes (also ISO images and firmware).
    Raw,
    /// QEMU copy-on-write v2.
    Qcow2,
}

impl ImageFormat {
    fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Qcow2 => "qcow2",
        }
    }
}

/// How a drive is attached to the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriveInterface {
    /// `if=virtio`.
    Virtio,
    /// `if=ide`.
    Ide,
    /// `if=floppy`.
    Floppy,
    /// `if=none` plus a `-device` that takes it (`drive=ID` is added to the device), e.g. `virtio-blk-pci` with a
    /// `bootindex`, `ide-cd`, `scsi-hd`, `usb-storage`.
    Device(Device),
}

/// Drive media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// A disk.
    Disk,
    /// A CD-ROM.
    Cdrom,
}

/// `-drive` (and its `-device` when attached with `if=none`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drive {
    /// `id=`; required for [`DriveInterface::Device`].
    pub id: Option<String>,
    /// The image file.
    pub file: PathBuf,
    /// Image format; always give it for images from elsewhere (QEMU's probing of raw images is unsafe).
    pub format: Option<ImageFormat>,
    /// How the drive is attached.
    pub interface: DriveInterface,
    /// `media=`.
    pub media: Option<Media>,
    /// `readonly=on`.
    pub readonly: bool,
    /// `snapshot=on`: writes go to a temporary overlay and are discarded.
    pub snapshot: bool,
    /// `cache=` (`none`, `writeback`, `unsafe`, …).
    pub cache: Option<String>,
    /// `discard=unmap` so trimmed blocks shrink the image.
    pub discard_unmap: bool,
}

impl Drive {
    /// A drive attached with `if=virtio`.
    pub fn virtio(file: impl Into<PathBuf>, format: ImageFormat) -> Self {
        Self {
            id: None,
            file: file.into(),
            format: Some(format),
            interface: DriveInterface::Virtio,
            media: None,
            readonly: false,
            snapshot: false,
            cache: None,
            discard_unmap: false,
        }
    }

    /// A drive with `if=none`, taken by `device` (`drive=ID` is added to it).
    pub fn with_device(id: impl Into<String>, file: impl Into<PathBuf>, format: ImageFormat, device: Device) -> Self {
        Self {
            id: Some(id.into()),
            file: file.into(),
            format: Some(format),
            interface: DriveInterface::Device(device),
            media: None,
            readonly: false,
            snapshot: false,
            cache: None,
            discard_unmap: false,
        }
    }

    fn render(&self, out: &mut Vec<Vec<OsString>>) -> Result<(), ModelError> {
        let mut list = OptList::new();
        if let Some(id) = &self.id {
            check_id("drive id", id)?;
            list.kv("id", id);
        }
        list.kv("file", &self.file);
        list.opt_kv("format", self.format.map(ImageFormat::name));
        let iface = match &self.interface {
            DriveInterface::Virtio => "virtio",
            DriveInterface::Ide => "ide",
            DriveInterface::Floppy => "floppy",
            DriveInterface::Device(_) => "none",
        };
        list.kv("if", iface);
        list.opt_kv(
            "media",
            self.media.map(|m| match m {
                Media::Disk => "disk",
                Media::Cdrom => "cdrom",
            }),
        );
        if self.readonly {
            list.switch("readonly", true);
        }
        if self.snapshot {
            list.switch("snapshot", true);
        }
        list.opt_kv("cache", self.cache.as_deref());
        if self.discard_unmap {
            list.kv("discard", "unmap");
        }
        out.push(vec!["-drive".into(), list.finish()]);
        if let DriveInterface::Device(device) = &self.interface {
            let Some(id) = &self.id else {
                return Err(ModelError::Inconsistent(format!(
                    "drive {} is attached to a {} device but has no id",
                    self.file.display(),
                    device.driver
                )));
            };
            let mut device = device.clone();
            device.props.push(("drive".to_owned(), id.clone()));
            out.push(vec!["-device".into(), device.render()?]);
        }
        Ok(())
    }
}

/// Transport of a host forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// A user-mode network forward from a host port to a guest port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostForward {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Host address to bind; 127.0.0.1 unless the caller deliberately exposes it.
    pub host_addr: IpAddr,
    /// Host port.
    pub host_port: u16,
    /// Guest port.
    pub guest_port: u16,
}

impl HostForward {
    /// A TCP forward from `127.0.0.1:host_port` to the guest's `guest_port`.
    pub fn tcp(host_port: u16, guest_port: u16) -> Self {
        Self { protocol: Protocol::Tcp, host_addr: IpAddr::V4(Ipv4Addr::LOCALHOST), host_port, guest_port }
    }

    fn render(&self) -> String {
        let proto = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        let host = match self.host_addr {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        format!("{proto}:{host}:{}-:{}", self.host_port, self.guest_port)
    }
}

/// A user-mode (slirp) network with its NIC: `-netdev user,id=…,hostfwd=… -device MODEL,netdev=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserNet {
    /// Netdev id.
    pub id: String,
    /// Host forwards.
    pub forwards: Vec<HostForward>,
    /// `restrict=on`: the guest cannot reach anything but the forwards.
    pub restrict: bool,
    /// The NIC (`virtio-net-pci`, `e1000e`, …); `netdev=ID` is added to it.
    pub nic: Device,
}

impl UserNet {
    /// A virtio NIC on a user-mode network with the given forwards.
    pub fn virtio(id: impl Into<String>, forwards: Vec<HostForward>) -> Self {
        Self { id: id.into(), forwards, restrict: false, nic: Device::new("virtio-net-pci") }
    }
}

/// A character device backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChardevBackend {
    /// A Unix socket; as a server QEMU listens and (with `wait: false`) does not wait for a client.
    Socket {
        /// Socket path.
        path: PathBuf,
        /// QEMU listens (`server=on`) rather than connects.
        server: bool,
        /// Wait for a client before starting the guest.
        wait: bool,
    },
    /// Output appended to a file.
    File {
        /// The file.
        path: PathBuf,
    },
    /// QEMU's stdin/stdout.
    Stdio,
    /// Discards everything.
    Null,
}

/// `-chardev BACKEND,id=…,…[,logfile=…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chardev {
    /// Chardev id.
    pub id: String,
    /// Backend.
    pub backend: ChardevBackend,
    /// Also write everything the guest sends to this file (even while no client is connected).
    pub logfile: Option<PathBuf>,
}

impl Chardev {
    /// A Unix-socket server that does not wait for a client.
    pub fn socket_server(id: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self {
            id: id.into(),
            backend: ChardevBackend::Socket { path: path.into(), server: true, wait: false },
            logfile: None,
        }
    }

    fn render(&self) -> Result<OsString, ModelError> {
        check_id("chardev id", &self.id)?;
        let mut list = match &self.backend {
            ChardevBackend::Socket { path, server, wait } => {
                let mut l = OptList::with_head("chardev backend", "socket")?;
                l.kv("id", &self.id).kv("path", path);
                if *server {
                    l.switch("server", true).switch("wait", *wait);
                }
                l
            }
            ChardevBackend::File { path } => {
                let mut l = OptList::with_head("chardev backend", "file")?;
                l.kv("id", &self.id).kv("path", path);
                l
            }
            ChardevBackend::Stdio => {
                let mut l = OptList::with_head("chardev backend", "stdio")?;
                l.kv("id", &self.id).switch("signal", false);
                l
            }
            ChardevBackend::Null => {
                let mut l = OptList::with_head("chardev backend", "null")?;
                l.kv("id", &self.id);
                l
            }
        };
        list.opt_kv("logfile", self.logfile.as_ref());
        Ok(list.finish())
    }
}

/// What a guest serial port (`-serial`) is connected to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serial {
    /// A chardev by id (declared in [`QemuCommand::chardevs`]).
    Chardev(String),
    /// QEMU's stdout.
    Stdio,
    /// Nothing.
    None,
}

/// Where the VNC server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VncListen {
    /// `ADDR:DISPLAY`, i.e. TCP port 5900 + display.
    Tcp {
        /// Address to bind (127.0.0.1 by default).
        addr: IpAddr,
        /// Display number; the port is 5900 + display.
        display: u16,
    },
    /// A Unix socket.
    Unix(PathBuf),
}

/// `-vnc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vnc {
    /// Where it listens.
    pub listen: VncListen,
    /// `password=on`: VNC Authentication; clients are refused until a password is set over QMP
    /// (`change-vnc-password`), so the secret never appears on the command line.
    pub password: bool,
    /// `key-delay-ms=`: delay between key events QEMU forwards to the guest.
    pub key_delay_ms: Option<u32>,
}

impl Vnc {
    /// VNC on `127.0.0.1:display` without a password.
    pub fn localhost(display: u16) -> Self {
        Self {
            listen: VncListen::Tcp { addr: IpAddr::V4(Ipv4Addr::LOCALHOST), display },
            password: false,
            key_delay_ms: None,
        }
    }

    /// The TCP port, for a TCP listener.
    pub fn port(&self) -> Option<u16> {
        match &self.listen {
            VncListen::Tcp { display, .. } => 5900u16.checked_add(*display),
            VncListen::Unix(_) => None,
        }
    }

    fn render(&self) -> Result<OsString, ModelError> {
        let head: OsString = match &self.listen {
            VncListen::Tcp { addr, display } => {
                if 5900u32 + u32::from(*display) > u32::from(u16::MAX) {
                    return Err(ModelError::Invalid {
                        what: "VNC display".to_owned(),
                        value: display.to_string(),
                        reason: "5900 + display must be a TCP port".to_owned(),
                    });
                }
                match addr {
                    IpAddr::V4(a) => format!("{a}:{display}").into(),
                    IpAddr::V6(a) => format!("[{a}]:{display}").into(),
                }
            }
            VncListen::Unix(path) => {
                let mut s = OsString::from("unix:");
                s.push(path);
                s
            }
        };
        let mut list = OptList::with_head("VNC listener", head)?;
        if self.password {
            list.switch("password", true);
        }
        list.opt_kv("key-delay-ms", self.key_delay_ms.map(|d| d.to_string()));
        Ok(list.finish())
    }
}

/// `-display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// No local window (VNC still works).
    None,
    /// A GTK window.
    Gtk,
    /// An SDL window.
    Sdl,
}

/// `-vga`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vga {
    /// Bochs-compatible standard VGA (text console readable over VNC).
    Std,
    /// virtio-gpu.
    Virtio,
    /// QXL.
    Qxl,
    /// No VGA card.
    None,
}

/// The TPM interface model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TpmModel {
    /// Command Response Buffer (TPM 2.0, what Windows 11 wants on q35).
    Crb,
    /// TPM Interface Specification.
    Tis,
}

/// A TPM backed by an external emulator (`swtpm socket --ctrl type=unixio,path=SOCK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tpm {
    /// tpmdev id; the chardev is `ID-chr`.
    pub id: String,
    /// The emulator's control socket.
    pub socket: PathBuf,
    /// Interface model.
    pub model: TpmModel,
}

/// `-device DRIVER,key=value…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Device driver (`virtio-net-pci`, `isa-debug-exit`, `usb-tablet`, …).
    pub driver: String,
    /// Properties in order.
    pub props: Vec<(String, String)>,
}

impl Device {
    /// A device without properties.
    pub fn new(driver: impl Into<String>) -> Self {
        Self { driver: driver.into(), props: Vec::new() }
    }

    /// Adds a property.
    pub fn prop(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.props.push((key.into(), value.into()));
        self
    }

    fn render(&self) -> Result<OsString, ModelError> {
        let mut list = OptList::with_head("device driver", &self.driver)?;
        for (k, v) in &self.props {
            check_key("device property", k)?;
            list.kv(k, v);
        }
        Ok(list.finish())
    }
}

/// `-global driver=…,property=…,value=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// Driver.
    pub driver: String,
    /// Property.
    pub property: String,
    /// Value.
    pub value: String,
}

/// `-smbios type=N,key=value…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smbios {
    /// SMBIOS structure type.
    pub kind: u8,
    /// Fields in order.
    pub fields: Vec<(String, String)>,
}

/// `-boot order=…,menu=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    /// Boot order letters (`c` disk, `d` CD-ROM, `n` network).
    pub order: Option<String>,
    /// `once=`: boot order for the first boot only.
    pub once: Option<String>,
    /// Boot menu.
    pub menu: Option<bool>,
}

/// `-rtc base=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcBase {
    /// The RTC holds UTC (Linux's habit).
    Utc,
    /// The RTC holds local time (Windows' habit).
    Localtime,
}

/// A whole QEMU invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuCommand {
    /// The QEMU program (`qemu-system-x86_64`, looked up in `PATH`, or a path).
    pub program: PathBuf,
    /// `-name guest=…`.
    pub name: Option<String>,
    /// `-machine`.
    pub machine: Machine,
    /// `-accel`, in order of preference (QEMU takes the first that initialises).
    pub accel: Vec<Accel>,
    /// `-cpu`.
    pub cpu: Option<Cpu>,
    /// `-m`, in MiB.
    pub memory_mib: u32,
    /// `-smp`.
    pub smp: Option<Smp>,
    /// Firmware.
    pub firmware: Firmware,
    /// `-kernel`/`-initrd`/`-append`.
    pub direct_boot: Option<DirectBoot>,
    /// `-boot`.
    pub boot: Option<Boot>,
    /// `-rtc base=`.
    pub rtc: Option<RtcBase>,
    /// Drives (and their devices).
    pub drives: Vec<Drive>,
    /// User-mode networks with their NICs.
    pub nets: Vec<UserNet>,
    /// Character devices.
    pub chardevs: Vec<Chardev>,
    /// Serial ports in order (COM1, COM2, …).
    pub serials: Vec<Serial>,
    /// A QMP monitor on this Unix socket (QEMU listens; vmkit connects).
    pub qmp: Option<PathBuf>,
    /// VNC server.
    pub vnc: Option<Vnc>,
    /// `-display`.
    pub display: Option<Display>,
    /// `-vga`.
    pub vga: Option<Vga>,
    /// TPM.
    pub tpm: Option<Tpm>,
    /// Further devices.
    pub devices: Vec<Device>,
    /// `-global`.
    pub globals: Vec<Global>,
    /// `-smbios`.
    pub smbios: Vec<Smbios>,
    /// `-no-reboot`: a guest reboot ends QEMU instead.
    pub no_reboot: bool,
    /// `-nodefaults`: no default NIC, VGA, serial, parallel, monitor, floppy or CD-ROM.
    pub no_defaults: bool,
    /// `-pidfile`.
    pub pidfile: Option<PathBuf>,
    /// Whole argv elements appended last, for options the model does not cover.
    pub extra: Vec<OsString>,
}

/// The id of the chardev that carries the QMP monitor.
pub const QMP_CHARDEV_ID: &str = "vmkit-qmp";

impl QemuCommand {
    /// A command for `qemu-system-x86_64` on a q35 machine with the given accelerator and its CPU model.
    pub fn new(accel: Accel) -> Self {
        Self {
            program: PathBuf::from("qemu-system-x86_64"),
            name: None,
            machine: Machine::default(),
            accel: vec![accel],
            cpu: Some(accel.cpu()),
            memory_mib: 512,
            smp: None,
            firmware: Firmware::Default,
            direct_boot: None,
            boot: None,
            rtc: None,
            drives: Vec::new(),
            nets: Vec::new(),
            chardevs: Vec::new(),
            serials: Vec::new(),
            qmp: None,
            vnc: None,
            display: None,
            vga: None,
            tpm: None,
            devices: Vec::new(),
            globals: Vec::new(),
            smbios: Vec::new(),
            no_reboot: false,
            no_defaults: false,
            pidfile: None,
            extra: Vec::new(),
        }
    }

    /// Adds a serial port on a Unix-socket chardev (QEMU listens, does not wait for a client) whose output is
    /// also logged to `logfile`. Returns the chardev id (`serialN`).
    pub fn serial_socket(&mut self, socket: impl Into<PathBuf>, logfile: impl Into<PathBuf>) -> String {
        let id = format!("serial{}", self.serials.len());
        let mut chardev = Chardev::socket_server(&id, socket);
        chardev.logfile = Some(logfile.into());
        self.chardevs.push(chardev);
        self.serials.push(Serial::Chardev(id.clone()));
        id
    }

    /// The argv after the program name, as groups: each option with its value (one or two elements). The run
    /// script puts one group per line; [`QemuCommand::args`] flattens them.
    pub fn arg_groups(&self) -> Result<Vec<Vec<OsString>>, ModelError> {
        self.check()?;
        let mut out: Vec<Vec<OsString>> = Vec::new();
        let mut push = |flag: &str, value: OsString| out.push(vec![OsString::from(flag), value]);

        if let Some(name) = &self.name {
            push("-name", OptList::new().kv("guest", name).finish());
        }
        let mut machine = OptList::with_head("machine type", &self.machine.kind)?;
        if let Some(smm) = self.machine.smm {
            machine.switch("smm", smm);
        }
        for (k, v) in &self.machine.props {
            check_key("machine property", k)?;
            machine.kv(k, v);
        }
        push("-machine", machine.finish());
        for accel in &self.accel {
            push("-accel", accel.render());
        }
        if let Some(cpu) = &self.cpu {
            push("-cpu", cpu.render()?);
        }
        push("-m", OsString::from(self.memory_mib.to_string()));
        if let Some(smp) = &self.smp {
            let mut list = OptList::new();
            list.kv("cpus", smp.cpus.to_string());
            if let Some(t) = smp.topology {
                list.kv("sockets", t.sockets.to_string())
                    .kv("cores", t.cores.to_string())
                    .kv("threads", t.threads.to_string());
            }
            push("-smp", list.finish());
        }
        match &self.firmware {
            Firmware::Default => {}
            Firmware::Bios(path) => push("-bios", path.clone().into_os_string()),
            Firmware::Uefi { code, vars, secure } => {
                let mut c = OptList::new();
                c.kv("if", "pflash").kv("format", "raw").kv("unit", "0").kv("file", code).switch("readonly", true);
                push("-drive", c.finish());
                let mut v = OptList::new();
                v.kv("if", "pflash").kv("format", "raw").kv("unit", "1").kv("file", vars);
                push("-drive", v.finish());
                if *secure {
                    let mut g = OptList::new();
                    g.kv("driver", "cfi.pflash01").kv("property", "secure").kv("value", "on");
                    push("-global", g.finish());
                }
            }
        }
        for g in &self.globals {
            check_key("global driver", &g.driver)?;
            check_key("global property", &g.property)?;
            let mut list = OptList::new();
            list.kv("driver", &g.driver).kv("property", &g.property).kv("value", &g.value);
            push("-global", list.finish());
        }
        for s in &self.smbios {
            let mut list = OptList::new();
            list.kv("type", s.kind.to_string());
            for (k, v) in &s.fields {
                check_key("smbios field", k)?;
                list.kv(k, v);
            }
            push("-smbios", list.finish());
        }
        if let Some(boot) = &self.direct_boot {
            push("-kernel", boot.kernel.clone().into_os_string());
            if let Some(initrd) = &boot.initrd {
                push("-initrd", initrd.clone().into_os_string());
            }
            if !boot.cmdline.is_empty() {
                push("-append", OsString::from(boot.cmdline.render()?));
            }
        }
        if let Some(boot) = &self.boot {
            let mut list = OptList::new();
            list.opt_kv("order", boot.order.as_deref()).opt_kv("once", boot.once.as_deref());
            if let Some(menu) = boot.menu {
                list.switch("menu", menu);
            }
            push("-boot", list.finish());
        }
        if let Some(rtc) = self.rtc {
            let base = match rtc {
                RtcBase::Utc => "utc",
                RtcBase::Localtime => "localtime",
            };
            push("-rtc", OptList::new().kv("base", base).finish());
        }
        for drive in &self.drives {
            drive.render(&mut out)?;
        }
        let mut push = |flag: &str, value: OsString| out.push(vec![OsString::from(flag), value]);
        for net in &self.nets {
            check_id("netdev id", &net.id)?;
            let mut list = OptList::with_head("netdev type", "user")?;
            list.kv("id", &net.id);
            if net.restrict {
                list.switch("restrict", true);
            }
            for fwd in &net.forwards {
                list.kv("hostfwd", fwd.render());
            }
            push("-netdev", list.finish());
            let mut nic = net.nic.clone();
            nic.props.push(("netdev".to_owned(), net.id.clone()));
            push("-device", nic.render()?);
        }
        for chardev in &self.chardevs {
            push("-chardev", chardev.render()?);
        }
        for serial in &self.serials {
            let value = match serial {
                Serial::Chardev(id) => {
                    check_id("serial chardev", id)?;
                    format!("chardev:{id}")
                }
                Serial::Stdio => "stdio".to_owned(),
                Serial::None => "none".to_owned(),
            };
            push("-serial", OsString::from(value));
        }
        if let Some(path) = &self.qmp {
            let chardev = Chardev::socket_server(QMP_CHARDEV_ID, path.clone());
            push("-chardev", chardev.render()?);
            push("-mon", OptList::new().kv("chardev", QMP_CHARDEV_ID).kv("mode", "control").finish());
        }
        if let Some(tpm) = &self.tpm {
            check_id("TPM id", &tpm.id)?;
            let chr = format!("{}-chr", tpm.id);
            let chardev = Chardev {
                id: chr.clone(),
                backend: ChardevBackend::Socket { path: tpm.socket.clone(), server: false, wait: false },
                logfile: None,
            };
            push("-chardev", chardev.render()?);
            push("-tpmdev", OptList::with_head("tpmdev", "emulator")?.kv("id", &tpm.id).kv("chardev", &chr).finish());
            let driver = match tpm.model {
                TpmModel::Crb => "tpm-crb",
                TpmModel::Tis => "tpm-tis",
            };
            push("-device", Device::new(driver).prop("tpmdev", tpm.id.clone()).render()?);
        }
        if let Some(vga) = self.vga {
            let name = match vga {
                Vga::Std => "std",
                Vga::Virtio => "virtio",
                Vga::Qxl => "qxl",
                Vga::None => "none",
            };
            push("-vga", OsString::from(name));
        }
        if let Some(display) = self.display {
            let name = match display {
                Display::None => "none",
                Display::Gtk => "gtk",
                Display::Sdl => "sdl",
            };
            push("-display", OsString::from(name));
        }
        if let Some(vnc) = &self.vnc {
            push("-vnc", vnc.render()?);
        }
        for device in &self.devices {
            push("-device", device.render()?);
        }
        if let Some(pidfile) = &self.pidfile {
            push("-pidfile", pidfile.clone().into_os_string());
        }
        if self.no_reboot {
            out.push(vec![OsString::from("-no-reboot")]);
        }
        if self.no_defaults {
            out.push(vec![OsString::from("-nodefaults")]);
        }
        if !self.extra.is_empty() {
            out.push(self.extra.clone());
        }
        Ok(out)
    }

    /// The argv after the program name.
    pub fn args(&self) -> Result<Vec<OsString>, ModelError> {
        Ok(self.arg_groups()?.into_iter().flatten().collect())
    }

    /// The whole argv, program first.
    pub fn argv(&self) -> Result<Vec<OsString>, ModelError> {
        let mut argv = vec![self.program.clone().into_os_string()];
        argv.extend(self.args()?);
        Ok(argv)
    }

    /// The path of the QMP socket, if the command has one.
    pub fn qmp_socket(&self) -> Option<&std::path::Path> {
        self.qmp.as_deref()
    }

    /// Consistency checks that single parts cannot make on their own.
    fn check(&self) -> Result<(), ModelError> {
        if self.program.as_os_str().is_empty() {
            return Err(ModelError::Inconsistent("no QEMU program".to_owned()));
        }
        if self.memory_mib == 0 {
            return Err(ModelError::Invalid {
                what: "memory".to_owned(),
                value: "0".to_owned(),
                reason: "a guest needs memory".to_owned(),
            });
        }
        if let Some(smp) = &self.smp
            && smp.cpus == 0
        {
            return Err(ModelError::Invalid {
                what: "vCPU count".to_owned(),
                value: "0".to_owned(),
                reason: "must be at least 1".to_owned(),
            });
        }
        if let Firmware::Uefi { secure: true, .. } = self.firmware
            && self.machine.smm != Some(true)
        {
            return Err(ModelError::Inconsistent(
                "Secure Boot firmware needs the machine's System Management Mode (smm=on)".to_owned(),
            ));
        }
        let mut ids: Vec<&str> = Vec::new();
        ids.extend(self.drives.iter().filter_map(|d| d.id.as_deref()));
        ids.extend(self.nets.iter().map(|n| n.id.as_str()));
        ids.extend(self.chardevs.iter().map(|c| c.id.as_str()));
        let tpm_chr = self.tpm.as_ref().map(|t| format!("{}-chr", t.id));
        if let Some(tpm) = &self.tpm {
            ids.push(&tpm.id);
        }
        if let Some(chr) = &tpm_chr {
            ids.push(chr);
        }
        if self.qmp.is_some() {
            ids.push(QMP_CHARDEV_ID);
        }
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(ModelError::DuplicateId { id: w[0].to_owned() });
        }
        for serial in &self.serials {
            if let Serial::Chardev(id) = serial
                && !self.chardevs.iter().any(|c| &c.id == id)
            {
                return Err(ModelError::Inconsistent(format!(
                    "serial port uses chardev {id:?}, which is not declared"
                )));
            }
        }
        Ok(())
    }
}

/// Lossy text of an argv, for messages and logs (never for running anything).
pub fn display_argv(argv: &[OsString]) -> String {
    argv.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
}
