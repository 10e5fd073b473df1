//! The throwaway test guest: Debian's kernel plus a busybox initramfs, built from Debian packages.
//!
//! vmkit's demo and its tests of the screen layer (typing into QEMU's VNC, reading the VGA console, libvirt
//! domains) need a real guest that boots in seconds under TCG and needs no disk image. This builds one:
//!
//! * the kernel (`vmlinuz`) from the package the metapackage `linux-image-amd64` points at;
//! * an initramfs (uncompressed newc cpio, ~3 MiB) holding the static busybox of `busybox-static`, the kernel
//!   modules asked for with their dependencies (read from each module's `.modinfo`, loaded in order at boot;
//!   modules the package ships compressed — `.ko.xz`, `.ko.zst` — go in decompressed),
//!   and static files: `/init` (mounts, modules, `acpid`, banner), `/etc/inittab` (shells on `tty1` and `ttyS0`),
//!   `/etc/profile`, and the power-button action that powers off cleanly.
//!
//! The scripts are static files compiled in (`include_str!`); the only parameters (`vmkit.id`, `vmkit.hostname`)
//! come from the kernel command line. Results are cached under `<cache>/guests/busybox-<key>/`, the key being a
//! SHA-256 over the exact package versions and hashes, the module list, the static files and the builder's
//! revision — so a second build is a directory lookup (apt's local index is read, the network is not).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cpio::{Archive, CpioError};
use crate::debian::{Apt, DebArchive, DebPackage, DebianError, Flow, MemberKind, read_limited};
use crate::kmod;
use store::cache::{CacheError, LockFile, ensure_dir};

/// First line of the guest's banner, shown on the VGA console and the serial port.
pub const BANNER: &str = "vmkit test guest";
/// Printed on the serial port when `/init` hands over to busybox init.
pub const INIT_DONE: &str = "vmkit-guest: init done";
/// Printed on the serial port when the login shell on the VGA console (tty1) has started.
pub const TTY1_READY: &str = "vmkit-guest: shell on tty1 ready";
/// Printed on the serial port when the ACPI power button was pressed.
pub const POWER_BUTTON: &str = "vmkit-guest: power button pressed";
/// Printed on the serial port when the guest begins to power off.
pub const POWERING_OFF: &str = "vmkit-guest: powering off";
/// Modules loaded by default: ACPI power button and input events (for `acpid`), virtio PCI, balloon, net, block.
pub const DEFAULT_MODULES: &[&str] = &["button", "evdev", "virtio_pci", "virtio_balloon", "virtio_net", "virtio_blk"];

const BUILDER_REVISION: u32 = 1;
const INIT: &str = include_str!("guest/init");
const INITTAB: &str = include_str!("guest/inittab");
const PROFILE: &str = include_str!("guest/profile");
const POWER_BUTTON_ACTION: &str = include_str!("guest/power-button");
const PASSWD: &str = include_str!("guest/passwd");
const GROUP: &str = include_str!("guest/group");
/// Largest kernel image or module accepted from a package.
const MEMBER_LIMIT: u64 = 128 << 20;

/// A failure building the guest.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// Getting or reading a package failed.
    #[error(transparent)]
    Debian(#[from] DebianError),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// Writing the initramfs failed.
    #[error(transparent)]
    Cpio(#[from] CpioError),
    /// The kernel package lacks something.
    #[error("kernel package {package}: {detail}")]
    Kernel {
        /// The package.
        package: String,
        /// What is missing or wrong.
        detail: String,
    },
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What to build the guest from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestSpec {
    /// The kernel package, or a metapackage that depends on one (`linux-image-amd64`); `NAME=VERSION` pins it.
    pub kernel_package: String,
    /// The package with a static busybox at `bin/busybox`.
    pub busybox_package: String,
    /// Kernel modules to load at boot (their dependencies are added); built-in ones are skipped.
    pub modules: Vec<String>,
}

impl Default for GuestSpec {
    fn default() -> Self {
        Self {
            kernel_package: "linux-image-amd64".to_owned(),
            busybox_package: "busybox-static".to_owned(),
            modules: DEFAULT_MODULES.iter().map(|m| (*m).to_owned()).collect(),
        }
    }
}

/// What was built, recorded next to the files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestManifest {
    /// The builder's revision.
    pub builder_revision: u32,
    /// The cache key (hex SHA-256 of the inputs).
    pub key: String,
    /// The kernel package used.
    pub kernel_package: DebPackage,
    /// The busybox package used.
    pub busybox_package: DebPackage,
    /// The kernel's release (`6.1.0-56-amd64`).
    pub kernel_release: String,
    /// Modules in load order.
    pub modules: Vec<String>,
    /// SHA-256 of `vmlinuz`.
    pub kernel_sha256: String,
    /// SHA-256 of `initrd.cpio`.
    pub initrd_sha256: String,
}

/// A built guest: a kernel and an initramfs for `-kernel`/`-initrd`.
#[derive(Debug, Clone)]
pub struct BusyboxGuest {
    /// The directory holding the files.
    pub dir: PathBuf,
    /// The kernel image.
    pub kernel: PathBuf,
    /// The initramfs.
    pub initrd: PathBuf,
    /// What it was built from.
    pub manifest: GuestManifest,
    /// Whether it came from the cache.
    pub cache_hit: bool,
}

impl BusyboxGuest {
    /// Builds the guest (or finds it in the cache) under `cache_root`, using the host's apt.
    pub fn build(spec: &GuestSpec, cache_root: &Path) -> Result<Self, GuestError> {
        Self::build_with(spec, cache_root, &Apt::new(cache_root))
    }

    /// [`BusyboxGuest::build`] with a given [`Apt`] (its package cache may live elsewhere).
    pub fn build_with(spec: &GuestSpec, cache_root: &Path, apt: &Apt) -> Result<Self, GuestError> {
        let kernel_pkg = apt.resolve_through(&spec.kernel_package, "linux-image-")?;
        let busybox_pkg = apt.resolve(&spec.busybox_package)?;
        let modules: Vec<String> = spec.modules.iter().map(|m| kmod::normalize(m)).collect();
        let key = cache_key(&kernel_pkg, &busybox_pkg, &modules);
        let guests = cache_root.join("guests");
        let dir = guests.join(format!("busybox-{}", &key[..16]));
        if let Some(guest) = Self::load(&dir)? {
            return Ok(guest);
        }
        ensure_dir(&guests)?;
        let _lock = LockFile::acquire(&guests.join(format!("busybox-{}.lock", &key[..16])))?;
        if let Some(guest) = Self::load(&dir)? {
            return Ok(guest);
        }
        tracing::info!(kernel = %kernel_pkg.pinned(), busybox = %busybox_pkg.pinned(), "building the busybox guest");
        let kernel_deb = apt.fetch(&kernel_pkg)?;
        let busybox_deb = apt.fetch(&busybox_pkg)?;
        let busybox = busybox_deb.read_member("bin/busybox", MEMBER_LIMIT)?;
        let kernel = read_kernel(&kernel_deb, &kernel_pkg.name, &modules)?;

        let mut archive = Archive::new();
        for d in ["bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run", "root", "var/log"] {
            archive.dir(d, 0o755)?;
        }
        archive.dir("tmp", 0o1777)?;
        archive.dir("root", 0o700)?;
        archive.char_device("dev/console", 0o600, 5, 1)?;
        archive.char_device("dev/null", 0o666, 1, 3)?;
        archive.file("bin/busybox", 0o755, busybox)?;
        archive.file("init", 0o755, INIT)?;
        archive.file("etc/inittab", 0o644, INITTAB)?;
        archive.file("etc/profile", 0o644, PROFILE)?;
        archive.file("etc/passwd", 0o644, PASSWD)?;
        archive.file("etc/group", 0o644, GROUP)?;
        archive.file("etc/acpi/PWRF/00000080", 0o755, POWER_BUTTON_ACTION)?;
        let mut list = String::new();
        for (name, data) in &kernel.modules {
            archive.file(&format!("lib/modules/vmkit/{name}.ko"), 0o644, data.clone())?;
            list.push_str(name);
            list.push('\n');
        }
        archive.file("etc/vmkit/modules", 0o644, list)?;
        let initrd = archive.to_bytes()?;

        let tmp = tempfile::Builder::new().prefix(".build-").tempdir_in(&guests).map_err(|source| GuestError::Io {
            op: "creating a temp dir in",
            path: guests.clone(),
            source,
        })?;
        let write = |name: &str, data: &[u8]| {
            let path = tmp.path().join(name);
            std::fs::write(&path, data).map_err(|source| GuestError::Io { op: "writing", path, source })
        };
        write("vmlinuz", &kernel.image)?;
        write("initrd.cpio", &initrd)?;
        let manifest = GuestManifest {
            builder_revision: BUILDER_REVISION,
            key: key.clone(),
            kernel_package: kernel_pkg,
            busybox_package: busybox_pkg,
            kernel_release: kernel.release,
            modules: kernel.modules.iter().map(|(n, _)| n.clone()).collect(),
            kernel_sha256: hex::encode(Sha256::digest(&kernel.image)),
            initrd_sha256: hex::encode(Sha256::digest(&initrd)),
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| GuestError::Io {
            op: "serialising",
            path: tmp.path().join("manifest.json"),
            source: std::io::Error::other(e),
        })?;
        write("manifest.json", &json)?;
        let staged = tmp.keep();
        std::fs::rename(&staged, &dir).map_err(|source| GuestError::Io {
            op: "publishing",
            path: dir.clone(),
            source,
        })?;
        tracing::info!(dir = %dir.display(), "busybox guest built");
        let mut guest = Self::load(&dir)?.ok_or_else(|| GuestError::Io {
            op: "reading back",
            path: dir.clone(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
        guest.cache_hit = false;
        Ok(guest)
    }

    fn load(dir: &Path) -> Result<Option<Self>, GuestError> {
        let manifest_path = dir.join("manifest.json");
        let bytes = match std::fs::read(&manifest_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(GuestError::Io { op: "reading", path: manifest_path, source }),
        };
        let Ok(manifest) = serde_json::from_slice::<GuestManifest>(&bytes) else { return Ok(None) };
        let kernel = dir.join("vmlinuz");
        let initrd = dir.join("initrd.cpio");
        if !kernel.is_file() || !initrd.is_file() {
            return Ok(None);
        }
        Ok(Some(Self { dir: dir.to_owned(), kernel, initrd, manifest, cache_hit: true }))
    }

    /// The kernel command line the guest expects: serial console on ttyS0, power off (not reboot) on panic
    /// (with `-no-reboot`, QEMU then exits), and `vmkit.id` when given.
    pub fn cmdline(&self, id: Option<&str>) -> qemu::KernelCmdline {
        let mut c = qemu::KernelCmdline::new().arg("console", "ttyS0").arg("panic", "-1");
        if let Some(id) = id {
            c = c.arg("vmkit.id", id);
        }
        c
    }

    /// `-kernel`/`-initrd`/`-append` for QEMU.
    pub fn direct_boot(&self, cmdline: qemu::KernelCmdline) -> qemu::DirectBoot {
        qemu::DirectBoot { kernel: self.kernel.clone(), initrd: Some(self.initrd.clone()), cmdline }
    }
}

struct Kernel {
    image: Vec<u8>,
    release: String,
    /// Modules in load order with their bytes.
    modules: Vec<(String, Vec<u8>)>,
}

/// Reads the kernel image and the wanted modules (with dependencies) out of the kernel package: one pass for the
/// image, every module's `.modinfo` and the wanted modules' bytes, a second pass only for dependencies whose bytes
/// were not kept.
fn read_kernel(deb: &DebArchive, package: &str, wanted: &[String]) -> Result<Kernel, GuestError> {
    let err = |detail: String| GuestError::Kernel { package: package.to_owned(), detail };
    let mut image: Option<(String, Vec<u8>)> = None;
    let mut known: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut paths: HashMap<String, String> = HashMap::new();
    let mut builtin: BTreeSet<String> = BTreeSet::new();
    let mut bytes: HashMap<String, Vec<u8>> = HashMap::new();
    let wanted_set: BTreeSet<&str> = wanted.iter().map(String::as_str).collect();
    deb.for_each_member(|path, kind, _, reader| {
        if kind != MemberKind::File {
            return Ok(Flow::Continue);
        }
        if let Some(release) = path.strip_prefix("boot/vmlinuz-") {
            image = Some((release.to_owned(), read_limited(reader, MEMBER_LIMIT, path, deb.path())?));
        } else if path.starts_with("lib/modules/") && path.ends_with("/modules.builtin") {
            let data = read_limited(reader, MEMBER_LIMIT, path, deb.path())?;
            builtin.extend(String::from_utf8_lossy(&data).lines().filter_map(module_name_of_path));
        } else if path.starts_with("lib/modules/") && kmod::is_module_file(path) {
            let raw = read_limited(reader, MEMBER_LIMIT, path, deb.path())?;
            let data = match kmod::module_elf(path, raw, MEMBER_LIMIT) {
                Ok(data) => data,
                Err(e) => {
                    tracing::debug!(path, error = %e, "skipping unreadable module");
                    return Ok(Flow::Continue);
                }
            };
            match kmod::modinfo(&data) {
                Ok(info) => {
                    paths.insert(info.name.clone(), path.to_owned());
                    if wanted_set.contains(info.name.as_str()) {
                        bytes.insert(info.name.clone(), data);
                    }
                    known.insert(info.name, info.depends);
                }
                Err(e) => tracing::debug!(path, error = %e, "skipping unreadable module"),
            }
        }
        Ok(Flow::Continue)
    })?;
    let (release, image) = image.ok_or_else(|| err("no boot/vmlinuz-* in the package".to_owned()))?;
    let order = kmod::load_order(wanted, &known, &builtin).map_err(err)?;
    let missing: HashMap<String, String> = order
        .iter()
        .filter(|n| !bytes.contains_key(*n))
        .filter_map(|n| paths.get(n).map(|p| (p.clone(), n.clone())))
        .collect();
    if !missing.is_empty() {
        let mut raw: Vec<(String, String, Vec<u8>)> = Vec::new();
        deb.for_each_member(|path, kind, _, reader| {
            if kind == MemberKind::File
                && let Some(name) = missing.get(path)
            {
                raw.push((name.clone(), path.to_owned(), read_limited(reader, MEMBER_LIMIT, path, deb.path())?));
            }
            Ok(Flow::Continue)
        })?;
        for (name, path, data) in raw {
            bytes.insert(name, kmod::module_elf(&path, data, MEMBER_LIMIT).map_err(|e| err(e.to_string()))?);
        }
    }
    let mut modules = Vec::with_capacity(order.len());
    for name in order {
        let data = bytes.remove(&name).ok_or_else(|| err(format!("module {name} vanished between reads")))?;
        modules.push((name, data));
    }
    for w in wanted {
        if builtin.contains(w) {
            tracing::debug!(module = %w, "built into the kernel; not loaded");
        }
    }
    Ok(Kernel { image, release, modules })
}

/// `kernel/drivers/acpi/button.ko` → `button`.
fn module_name_of_path(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    let stem = file.strip_suffix(".ko").or_else(|| file.split(".ko.").next())?;
    (!stem.is_empty()).then(|| kmod::normalize(stem))
}

fn cache_key(kernel: &DebPackage, busybox: &DebPackage, modules: &[String]) -> String {
    let files: Vec<String> = [INIT, INITTAB, PROFILE, POWER_BUTTON_ACTION, PASSWD, GROUP]
        .iter()
        .map(|f| hex::encode(Sha256::digest(f.as_bytes())))
        .collect();
    let inputs = serde_json::json!({
        "builder_revision": BUILDER_REVISION,
        "kernel": [&kernel.name, &kernel.version, &kernel.sha256],
        "busybox": [&busybox.name, &busybox.version, &busybox.sha256],
        "modules": modules,
        "files": files,
    });
    hex::encode(Sha256::digest(inputs.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_markers_are_in_the_static_files() {
        assert!(INIT.contains(BANNER));
        assert!(INIT.contains(INIT_DONE));
        assert!(PROFILE.contains(TTY1_READY));
        assert!(POWER_BUTTON_ACTION.contains(POWER_BUTTON));
        assert!(INITTAB.contains(POWERING_OFF));
    }

    #[test]
    fn module_names_from_paths() {
        assert_eq!(module_name_of_path("kernel/drivers/acpi/button.ko").as_deref(), Some("button"));
        assert_eq!(module_name_of_path("kernel/drivers/char/hw_random/virtio-rng.ko").as_deref(), Some("virtio_rng"));
        assert_eq!(module_name_of_path("kernel/fs/ext4/ext4.ko.xz").as_deref(), Some("ext4"));
    }
}
