//! A bootable cloud-init Debian system built from the archive, cached between builds.
//!
//! The image's base when a recipe says `source = { debian = { suite = "bookworm", packages = [...] } }`: no cloud
//! image to download, only packages from the Debian mirror the host's apt already uses (found with
//! `apt-get indextargets`, so `sources.list` and deb822 `.sources` files, proxies aside, need no parsing here).
//!
//! How:
//! 1. `debootstrap --variant=minbase --include=…` into a work directory, with `--cache-dir` pointing into vmkit's
//!    cache so a second base (other packages, a rebuilt cache entry) downloads only what changed. The include
//!    list is what a cloud-init guest on QEMU needs and nothing else (the `cloud` kernel flavour, cloud-init,
//!    OpenSSH, ifupdown with a DHCP client, dbus and logind so ACPI power-off works, sudo, udev).
//! 2. Configure the tree: `/etc/fstab` for root on the whole `/dev/vda`, cloud-init limited to the NoCloud
//!    datasource, an empty machine-id (generated on first boot), no SSH host keys (cloud-init makes them per
//!    instance), no package lists or downloaded .debs (cloud-init refreshes the lists when it installs packages).
//! 3. Copy the kernel and initrd out: images built from this base boot them directly (`-kernel`/`-initrd`, root on
//!    `/dev/vda` without a partition table, which cloud-init's resizefs grows to the disk size at first boot). The
//!    output directory therefore carries `vmlinuz` and `initrd.img` next to the disk and boots with nothing else.
//!    The cost of that choice: a kernel upgraded inside the guest is used only once copied out again.
//! 4. `mkfs.ext4 -d` makes the filesystem straight from the tree (no loop device, no mount), `qemu-img convert`
//!    turns it into `base.qcow2`.
//!
//! A base is keyed by suite, mirror, package list, architecture and debootstrap's version, built in a locked work
//! directory in the cache and renamed into place; a killed build leaves only a work directory that the next one
//! sweeps away (unmounting what debootstrap mounted). Building needs root (debootstrap, file ownership in the tree).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cache::LockFile;
use crate::fsutil::{FsError, WorkDir, remove_work_dir};
use crate::recipe::DebianSource;
use crate::tools::{ToolError, output, run_logged, version};

/// Bump when the base's contents or layout change: old cache entries are then not reused.
const BASE_REVISION: u32 = 1;

/// What every base gets, before the recipe's own packages.
pub const BASE_PACKAGES: &[&str] = &[
    "linux-image-cloud-amd64",
    "initramfs-tools",
    "cloud-init",
    "python3-cffi-backend",
    "openssh-server",
    "systemd-sysv",
    "ifupdown",
    "isc-dhcp-client",
    "iproute2",
    "netbase",
    "sudo",
    "udev",
    "ca-certificates",
    "dbus",
    "libpam-systemd",
];

/// Why a Debian base could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DebootstrapError {
    /// The host's apt has no source for the suite.
    #[error(
        "the host's apt has no `main` source for suite `{suite}` (apt-get indextargets lists: {known}); set `mirror` in the recipe"
    )]
    NoMirror {
        /// The suite.
        suite: String,
        /// What apt knows.
        known: String,
    },
    /// Not running as root.
    #[error("building a Debian base needs root (debootstrap chroots and the tree's files must belong to root)")]
    NotRoot,
    /// A tool failed.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// The tree lacks a kernel or initrd.
    #[error("no {what} in {}", dir.display())]
    Missing {
        /// What.
        what: &'static str,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
}

/// What a cached base is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseInfo {
    /// The cache key.
    pub key: String,
    /// Suite.
    pub suite: String,
    /// The mirror it came from.
    pub mirror: String,
    /// The packages asked for (base list and the recipe's).
    pub include: Vec<String>,
    /// Every installed package with its version.
    pub installed: Vec<(String, String)>,
    /// The kernel release (`6.1.0-…-cloud-amd64`).
    pub kernel_release: String,
    /// `debootstrap --version`.
    pub debootstrap: String,
}

/// A built base in the cache.
#[derive(Debug, Clone)]
pub struct DebianBase {
    /// Its directory.
    pub dir: PathBuf,
    /// `base.qcow2`.
    pub disk: PathBuf,
    /// `vmlinuz`.
    pub kernel: PathBuf,
    /// `initrd.img`.
    pub initrd: PathBuf,
    /// What it is.
    pub info: BaseInfo,
    /// True when it was in the cache already.
    pub cached: bool,
}

/// The mirror the host's apt uses for `suite` (component `main`).
pub async fn host_mirror(suite: &str) -> Result<String, DebootstrapError> {
    let text = output(
        tokio::process::Command::new("apt-get").args([
            "indextargets",
            "--format",
            "$(SITE)|$(RELEASE)|$(COMPONENT)",
            "Created-By: Packages",
        ]),
        "apt",
    )
    .await?;
    let mut known = Vec::new();
    for line in text.lines() {
        let mut parts = line.split('|');
        let (Some(site), Some(release), Some(component)) = (parts.next(), parts.next(), parts.next()) else { continue };
        if release == suite && component == "main" {
            return Ok(site.trim_end_matches('/').to_owned());
        }
        known.push(format!("{release} at {site}"));
    }
    Err(DebootstrapError::NoMirror {
        suite: suite.to_owned(),
        known: if known.is_empty() { "nothing".into() } else { known.join(", ") },
    })
}

/// The include list for a recipe: the base packages, then the recipe's, without duplicates.
pub fn include_list(source: &DebianSource, extra: &[&str]) -> Vec<String> {
    let mut list: Vec<String> = BASE_PACKAGES.iter().map(|s| (*s).to_owned()).collect();
    for p in source.packages.iter().map(String::as_str).chain(extra.iter().copied()) {
        if !list.iter().any(|q| q == p) {
            list.push(p.to_owned());
        }
    }
    list
}

/// The base for `source` (plus `extra` packages), from the cache or built now. `say` reports progress.
pub async fn ensure_base(
    cache_root: &Path,
    source: &DebianSource,
    extra: &[&str],
    say: &(dyn Fn(&str) + Sync),
) -> Result<DebianBase, DebootstrapError> {
    let mirror = match &source.mirror {
        Some(m) => m.clone(),
        None => host_mirror(&source.suite).await?,
    };
    let include = include_list(source, extra);
    let debootstrap = version("debootstrap", &["--version"], "debootstrap").await?;
    let key = {
        let mut h = Sha256::new();
        h.update(format!("r{BASE_REVISION}\n{}\n{mirror}\namd64\n{debootstrap}\n{}", source.suite, include.join(",")));
        hex::encode(h.finalize().get(..12).unwrap_or_default())
    };
    let root = cache_root.join("images").join("debian");
    let dir = root.join(format!("{}-{key}", source.suite));
    if let Some(base) = load(&dir)? {
        return Ok(base);
    }
    let _lock = lock(root.join(format!("{}-{key}.lock", source.suite)), say).await?;
    if let Some(base) = load(&dir)? {
        return Ok(base);
    }
    if std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX) != 0 {
        return Err(DebootstrapError::NotRoot);
    }
    WorkDir::sweep_stale(&root, ".tmp-");
    let work = WorkDir::create(&root, ".tmp-")?;
    let tree = work.path().join("root");
    let debs = root.join("debs");
    std::fs::create_dir_all(&debs).map_err(|source| FsError { op: "creating", path: debs.clone(), source })?;
    // One debootstrap at a time writes into the shared package cache.
    let debs_lock = lock(root.join("debs.lock"), say).await?;
    say(&format!("debootstrap {} from {mirror} ({} packages asked for; about 2 minutes)", source.suite, include.len()));
    let log = work.path().join("debootstrap.log");
    run_logged(
        tokio::process::Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={}", include.join(",")))
            .arg(format!("--cache-dir={}", debs.display()))
            .arg(&source.suite)
            .arg(&tree)
            .arg(&mirror),
        &log,
        "debootstrap",
    )
    .await?;
    drop(debs_lock);
    say("configuring the tree and making the filesystem");
    configure_tree(&tree)?;
    let kernel_release = copy_boot_files(&tree, work.path())?;
    let installed = installed_packages(&tree).await?;
    let size = filesystem_size(&tree);
    let raw = work.path().join("base.raw");
    run_logged(
        tokio::process::Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "rootfs", "-d"])
            .arg(&tree)
            .arg(&raw)
            .arg(format!("{}M", size >> 20)),
        &work.path().join("mkfs.log"),
        "e2fsprogs",
    )
    .await?;
    remove_work_dir(&tree)?;
    run_logged(
        tokio::process::Command::new("qemu-img")
            .args(["convert", "-O", "qcow2"])
            .arg(&raw)
            .arg(work.path().join("base.qcow2")),
        &work.path().join("convert.log"),
        "qemu-utils",
    )
    .await?;
    let _ = std::fs::remove_file(&raw);
    let info = BaseInfo { key, suite: source.suite.clone(), mirror, include, installed, kernel_release, debootstrap };
    let info_path = work.path().join("base.json");
    let json = serde_json::to_vec_pretty(&info).map_err(|e| FsError {
        op: "serialising",
        path: info_path.clone(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&info_path, json).map_err(|source| FsError { op: "writing", path: info_path, source })?;
    for f in ["debootstrap.log", "mkfs.log", "convert.log"] {
        let _ = std::fs::remove_file(work.path().join(f));
    }
    std::fs::rename(work.path(), &dir).map_err(|source| FsError { op: "renaming into", path: dir.clone(), source })?;
    work.keep(&dir);
    load(&dir)?
        .map(|mut b| {
            b.cached = false;
            b
        })
        .ok_or(DebootstrapError::Missing { what: "base.json", dir })
}

/// Waits for an advisory lock without blocking the async runtime (so Ctrl-C is still seen while waiting), up to
/// [`crate::cache::LOCK_WAIT`]; `say` is told once when there is a wait.
async fn lock(path: PathBuf, say: &(dyn Fn(&str) + Sync)) -> Result<LockFile, DebootstrapError> {
    let started = std::time::Instant::now();
    let mut told = false;
    loop {
        if let Some(lock) = LockFile::try_acquire(&path)? {
            return Ok(lock);
        }
        if started.elapsed() >= crate::cache::LOCK_WAIT {
            return Err(crate::cache::CacheError::LockTimeout { path, waited: started.elapsed() }.into());
        }
        if !told {
            say(&LockFile::waiting_message(&path, crate::cache::LOCK_WAIT));
            told = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

fn load(dir: &Path) -> Result<Option<DebianBase>, DebootstrapError> {
    let Ok(bytes) = std::fs::read(dir.join("base.json")) else { return Ok(None) };
    let Ok(info) = serde_json::from_slice::<BaseInfo>(&bytes) else { return Ok(None) };
    let base = DebianBase {
        dir: dir.to_owned(),
        disk: dir.join("base.qcow2"),
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.img"),
        info,
        cached: true,
    };
    if [&base.disk, &base.kernel, &base.initrd].iter().all(|p| p.is_file()) { Ok(Some(base)) } else { Ok(None) }
}

fn write(path: &Path, text: &str) -> Result<(), FsError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| FsError { op: "creating", path: dir.to_owned(), source })?;
    }
    std::fs::write(path, text).map_err(|source| FsError { op: "writing", path: path.to_owned(), source })
}

fn configure_tree(tree: &Path) -> Result<(), FsError> {
    write(
        &tree.join("etc/fstab"),
        "# Written by vmkit: the root filesystem is the whole first virtio disk.\n/dev/vda / ext4 defaults,discard 0 1\n",
    )?;
    write(
        &tree.join("etc/cloud/cloud.cfg.d/90-vmkit.cfg"),
        "# Written by vmkit: configuration comes from a NoCloud seed (a disk labelled cidata).\ndatasource_list: [ NoCloud, None ]\n",
    )?;
    write(&tree.join("etc/machine-id"), "")?;
    let _ = std::fs::remove_file(tree.join("var/lib/dbus/machine-id"));
    for dir in ["etc/ssh", "var/cache/apt/archives", "var/lib/apt/lists"] {
        let Ok(entries) = std::fs::read_dir(tree.join(dir)) else { continue };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let remove = match dir {
                "etc/ssh" => name.starts_with("ssh_host_"),
                "var/cache/apt/archives" => name.ends_with(".deb"),
                _ => entry.path().is_file(),
            };
            if remove {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// Copies `boot/vmlinuz-*` and `boot/initrd.img-*` to `out/vmlinuz` and `out/initrd.img`; returns the release.
fn copy_boot_files(tree: &Path, out: &Path) -> Result<String, DebootstrapError> {
    let boot = tree.join("boot");
    let mut releases: Vec<String> = std::fs::read_dir(&boot)
        .map_err(|source| FsError { op: "reading", path: boot.clone(), source })?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_string_lossy().strip_prefix("vmlinuz-").map(str::to_owned))
        .collect();
    releases.sort();
    let release = releases
        .pop()
        .ok_or_else(|| DebootstrapError::Missing { what: "kernel (boot/vmlinuz-*)", dir: boot.clone() })?;
    let initrd = boot.join(format!("initrd.img-{release}"));
    if !initrd.is_file() {
        return Err(DebootstrapError::Missing { what: "initrd (boot/initrd.img-*)", dir: boot });
    }
    for (from, to) in [(boot.join(format!("vmlinuz-{release}")), out.join("vmlinuz")), (initrd, out.join("initrd.img"))]
    {
        std::fs::copy(&from, &to).map_err(|source| FsError { op: "copying", path: from.clone(), source })?;
    }
    Ok(release)
}

async fn installed_packages(tree: &Path) -> Result<Vec<(String, String)>, DebootstrapError> {
    let text = output(
        tokio::process::Command::new("dpkg-query")
            .arg(format!("--admindir={}", tree.join("var/lib/dpkg").display()))
            .args(["-W", "-f", "${Package}\t${Version}\n"]),
        "dpkg",
    )
    .await?;
    Ok(text.lines().filter_map(|l| l.split_once('\t')).map(|(n, v)| (n.to_owned(), v.to_owned())).collect())
}

/// Room for the tree plus half again and 512 MiB (first boot writes logs, keys, cloud-init state), at least
/// 1.5 GiB, in whole 64 MiB. cloud-init grows it to the image's disk size at first boot.
fn filesystem_size(tree: &Path) -> u64 {
    fn used(path: &Path) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
        let own = meta.blocks() * 512;
        if meta.is_dir() {
            own + std::fs::read_dir(path)
                .map(|rd| rd.filter_map(Result::ok).map(|e| used(&e.path())).sum())
                .unwrap_or(0)
        } else {
            own
        }
    }
    let bytes = used(tree);
    (bytes + bytes / 2 + (512 << 20)).max(1536 << 20).next_multiple_of(64 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_list_adds_recipe_packages_once() {
        let source =
            DebianSource { suite: "bookworm".into(), packages: vec!["htop".into(), "sudo".into()], mirror: None };
        let list = include_list(&source, &["nix-setup-systemd"]);
        assert_eq!(list.first().map(String::as_str), Some("linux-image-cloud-amd64"));
        assert_eq!(list.iter().filter(|p| *p == "sudo").count(), 1);
        assert!(list.ends_with(&["htop".to_owned(), "nix-setup-systemd".to_owned()]));
    }

    #[tokio::test]
    async fn the_hosts_mirror_for_its_own_suite_is_found() {
        let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let codename = os.lines().find_map(|l| l.strip_prefix("VERSION_CODENAME=")).unwrap_or("bookworm");
        let mirror = host_mirror(codename).await.unwrap();
        assert!(mirror.starts_with("http"), "{mirror}");
        let err = host_mirror("no-such-suite").await.unwrap_err().to_string();
        assert!(err.contains("no-such-suite") && err.contains(codename), "{err}");
    }
}
