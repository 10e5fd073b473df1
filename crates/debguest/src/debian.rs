//! Debian binary packages, downloaded the way the host's apt is configured, cached, and read without unpacking.
//!
//! Choices:
//! * Resolution and download use apt itself (`apt-cache show`, `apt-get download`): the host's mirrors,
//!   proxies, pinning and signature checks apply, and nothing of apt's configuration is re-implemented. The
//!   exact version, size and SHA-256 come from apt's index and are recorded ([`DebPackage`]).
//! * The cache holds `debs/NAME_VERSION_ARCH.deb`; a file is used only if its SHA-256 matches the index, so a
//!   second build needs no network (resolution reads apt's local lists).
//! * Resolutions are remembered in `debs/resolved/NAME.json` together with a fingerprint of apt's state (size
//!   and modification time of the package lists, of `/etc/apt` and of dpkg's status file, at the locations
//!   `apt-config` reports). While the fingerprint holds, no `apt-cache` runs: that takes ~0.5–1 s per call on a
//!   host without apt's binary cache, which would dominate a cache-hit build. After `apt-get update` (or any
//!   configuration change) the fingerprint differs and apt is asked again.
//! * Reading uses `dpkg-deb --fsys-tarfile` (present wherever apt is; it knows every compression a .deb may use)
//!   and streams the tar through Rust, so a caller picks a few members out of a 400 MB kernel package without
//!   writing the rest to disk.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use store::cache::{CacheError, ensure_dir};

/// A failure getting or reading a Debian package.
#[derive(Debug, thiserror::Error)]
pub enum DebianError {
    /// apt does not know the package.
    #[error("apt has no package {name:?} ({detail}); run `apt-get update` if the package lists are missing")]
    UnknownPackage {
        /// The package name as asked.
        name: String,
        /// What apt said.
        detail: String,
    },
    /// apt's record lacks a field vmkit needs.
    #[error("apt's record of {name} has no {field} field")]
    MissingField {
        /// The package.
        name: String,
        /// The field.
        field: &'static str,
    },
    /// A metapackage does not lead to the package expected.
    #[error("{name} does not depend on a package starting with {prefix:?} (Depends: {depends})")]
    NoDependency {
        /// The metapackage.
        name: String,
        /// What was looked for.
        prefix: String,
        /// Its dependencies.
        depends: String,
    },
    /// A tool failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Tool {
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// Its stderr.
        stderr: String,
    },
    /// A downloaded file does not match apt's index.
    #[error("{path}: SHA-256 {actual} does not match apt's index ({expected})")]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// From the index.
        expected: String,
        /// Of the file.
        actual: String,
    },
    /// Reading the package's data archive failed.
    #[error("reading the data of {path}: {detail}")]
    Archive {
        /// The .deb.
        path: PathBuf,
        /// What went wrong.
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
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// One exact package version, as apt's index describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebPackage {
    /// Package name.
    pub name: String,
    /// Exact version (with epoch, e.g. `1:1.35.0-4+deb12u1+b1`).
    pub version: String,
    /// Architecture (`amd64`, `all`).
    pub architecture: String,
    /// SHA-256 of the .deb, from the index.
    pub sha256: String,
    /// Size of the .deb in bytes.
    pub size: u64,
    /// Path in the archive (`pool/main/…`).
    pub filename: String,
    /// The `Depends` field, verbatim.
    #[serde(default)]
    pub depends: String,
}

impl DebPackage {
    /// `NAME=VERSION`, as apt takes a pinned version.
    pub fn pinned(&self) -> String {
        format!("{}={}", self.name, self.version)
    }

    /// The cache file name: `NAME_VERSION_ARCH.deb` with the epoch's colon written `%3a`, as apt does.
    pub fn file_name(&self) -> String {
        format!("{}_{}_{}.deb", self.name, self.version.replace(':', "%3a"), self.architecture)
    }
}

/// Access to Debian packages through the host's apt, with a download cache.
#[derive(Debug, Clone)]
pub struct Apt {
    debs: PathBuf,
    apt_cache: PathBuf,
    apt_get: PathBuf,
}

impl Apt {
    /// Packages cached under `cache_root/debs`.
    pub fn new(cache_root: &Path) -> Self {
        Self { debs: cache_root.join("debs"), apt_cache: PathBuf::from("apt-cache"), apt_get: PathBuf::from("apt-get") }
    }

    /// Uses another `apt-get` (the only program that touches the network; a test passes one that always fails to
    /// prove a build needs no download).
    pub fn with_apt_get(mut self, program: impl Into<PathBuf>) -> Self {
        self.apt_get = program.into();
        self
    }

    /// The directory that holds cached .deb files.
    pub fn debs_dir(&self) -> &Path {
        &self.debs
    }

    /// The version apt would install of `name` (or exactly `name=version`), from the local package lists.
    pub fn resolve(&self, name: &str) -> Result<DebPackage, DebianError> {
        check_package_name(name)?;
        let fingerprint = apt_fingerprint();
        let memo = self.debs.join("resolved").join(format!("{}.json", name.replace(':', "%3a")));
        if let Some(fp) = &fingerprint
            && let Some(pkg) = std::fs::read(&memo)
                .ok()
                .and_then(|b| serde_json::from_slice::<Resolved>(&b).ok())
                .and_then(|r| (r.fingerprint == *fp).then_some(r.package))
        {
            return Ok(pkg);
        }
        let pkg = self.ask_apt(name)?;
        if let Some(fp) = fingerprint {
            let record = Resolved { fingerprint: fp, package: pkg.clone() };
            let written = serde_json::to_vec_pretty(&record)
                .map_err(std::io::Error::other)
                .and_then(|json| write_atomically(&memo, &json));
            if let Err(e) = written {
                tracing::debug!(error = %e, "could not remember a package resolution");
            }
        }
        Ok(pkg)
    }

    fn ask_apt(&self, name: &str) -> Result<DebPackage, DebianError> {
        let out = Command::new(&self.apt_cache)
            .args(["show", "--no-all-versions", name])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| DebianError::Io { op: "running", path: self.apt_cache.clone(), source })?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || stdout.trim().is_empty() {
            return Err(DebianError::UnknownPackage {
                name: name.to_owned(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        let stanza = stdout.split("\n\n").next().unwrap_or("");
        let fields = parse_stanza(stanza);
        let get = |field: &'static str| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(field))
                .map(|(_, v)| v.clone())
                .ok_or(DebianError::MissingField { name: name.to_owned(), field })
        };
        Ok(DebPackage {
            name: get("Package")?,
            version: get("Version")?,
            architecture: get("Architecture")?,
            sha256: get("SHA256")?.to_ascii_lowercase(),
            size: get("Size")?
                .trim()
                .parse()
                .map_err(|_| DebianError::MissingField { name: name.to_owned(), field: "Size" })?,
            filename: get("Filename")?,
            depends: get("Depends").unwrap_or_default(),
        })
    }

    /// Follows a metapackage (`linux-image-amd64`) to the package it stands for: its first dependency whose name
    /// starts with `prefix` (`linux-image-`).
    pub fn resolve_through(&self, metapackage: &str, prefix: &str) -> Result<DebPackage, DebianError> {
        let meta = self.resolve(metapackage)?;
        if meta.name.starts_with(prefix) && !meta.depends.split(',').any(|d| dep_name(d).starts_with(prefix)) {
            return Ok(meta);
        }
        let target = meta
            .depends
            .split(',')
            .flat_map(|alt| alt.split('|'))
            .map(dep_name)
            .find(|n| n.starts_with(prefix) && *n != meta.name)
            .ok_or_else(|| DebianError::NoDependency {
                name: meta.name.clone(),
                prefix: prefix.to_owned(),
                depends: meta.depends.clone(),
            })?;
        self.resolve(target)
    }

    /// The package's .deb from the cache, downloading it with `apt-get download` first if needed. The file's
    /// SHA-256 is checked against the index either way.
    pub fn fetch(&self, pkg: &DebPackage) -> Result<DebArchive, DebianError> {
        ensure_dir(&self.debs)?;
        let path = self.debs.join(pkg.file_name());
        if path.is_file() {
            if sha256_file(&path)? == pkg.sha256 {
                return Ok(DebArchive { path });
            }
            tracing::warn!(path = %path.display(), "cached package does not match apt's index; downloading again");
            std::fs::remove_file(&path).map_err(|source| DebianError::Io {
                op: "removing",
                path: path.clone(),
                source,
            })?;
        }
        let tmp = tempfile::Builder::new()
            .prefix(".download-")
            .tempdir_in(&self.debs)
            .map_err(|source| DebianError::Io { op: "creating a temp dir in", path: self.debs.clone(), source })?;
        tracing::info!(package = %pkg.pinned(), "downloading");
        let out = Command::new(&self.apt_get)
            .args(["download", "-q", &pkg.pinned()])
            .current_dir(tmp.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|source| DebianError::Io { op: "running", path: self.apt_get.clone(), source })?;
        if !out.status.success() {
            return Err(DebianError::Tool {
                command: format!("{} download {}", self.apt_get.display(), pkg.pinned()),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        let downloaded = tmp.path().join(pkg.file_name());
        let actual = sha256_file(&downloaded)?;
        if actual != pkg.sha256 {
            return Err(DebianError::HashMismatch { path: downloaded, expected: pkg.sha256.clone(), actual });
        }
        std::fs::rename(&downloaded, &path).map_err(|source| DebianError::Io {
            op: "moving into the cache",
            path: path.clone(),
            source,
        })?;
        Ok(DebArchive { path })
    }
}

/// A remembered resolution.
#[derive(Serialize, Deserialize)]
struct Resolved {
    fingerprint: String,
    package: DebPackage,
}

/// A fingerprint of apt's state: what `apt-cache` answers depends on the package lists, the configuration and
/// dpkg's status, so their sizes and modification times stand for it. `None` if apt-config cannot say where they
/// are (then nothing is remembered).
fn apt_fingerprint() -> Option<String> {
    let out = Command::new("apt-config")
        .args(["shell", "LISTS", "Dir::State::lists/d", "ETC", "Dir::Etc/d", "STATUS", "Dir::State::status/f"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let var = |name: &str| -> Option<PathBuf> {
        let line = text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix('='))?;
        let value = line.strip_prefix('\'')?.strip_suffix('\'')?;
        (!value.contains('\'')).then(|| PathBuf::from(value))
    };
    let (lists, etc, status) = (var("LISTS")?, var("ETC")?, var("STATUS")?);
    let mut hasher = Sha256::new();
    let mut stamp = |path: &Path| {
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::MetadataExt;
            hasher.update(path.as_os_str().as_encoded_bytes());
            hasher.update(format!(":{}:{}.{}\n", meta.len(), meta.mtime(), meta.mtime_nsec()).as_bytes());
        }
    };
    let mut files = Vec::new();
    let walk = |dir: &Path, depth: u32, files: &mut Vec<PathBuf>| -> Option<()> {
        fn inner(dir: &Path, depth: u32, files: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else { return };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.file_name().is_some_and(|n| n == "lock" || n == "partial") {
                    continue;
                }
                match entry.file_type() {
                    Ok(t) if t.is_dir() && depth > 0 => inner(&path, depth - 1, files),
                    Ok(t) if t.is_file() || t.is_symlink() => files.push(path),
                    _ => {}
                }
            }
        }
        inner(dir, depth, files);
        Some(())
    };
    walk(&lists, 0, &mut files)?;
    walk(&etc, 1, &mut files)?;
    files.push(status);
    files.sort();
    for f in &files {
        stamp(f);
    }
    Some(hex::encode(hasher.finalize()))
}

/// A cache file written atomically (mode 0600, as the temporary files it used to be renamed from).
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    store::write_atomic(path, data, 0o600)
}

/// A .deb file on disk.
#[derive(Debug, Clone)]
pub struct DebArchive {
    path: PathBuf,
}

/// What a member of a package's data archive is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (hard link, device).
    Other,
}

/// Whether to keep reading a package's members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Stop here (the rest is not read).
    Stop,
}

impl DebArchive {
    /// A .deb at `path`.
    pub fn open(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `visit` for each member of the package's data archive, in archive order, with its path (without the
    /// leading `./`), kind, mode bits and a reader of its contents.
    pub fn for_each_member(
        &self,
        mut visit: impl FnMut(&str, MemberKind, u32, &mut dyn Read) -> Result<Flow, DebianError>,
    ) -> Result<(), DebianError> {
        let mut child = Command::new("dpkg-deb")
            .arg("--fsys-tarfile")
            .arg(&self.path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| DebianError::Io { op: "running dpkg-deb on", path: self.path.clone(), source })?;
        let stdout = child.stdout.take().ok_or_else(|| self.archive_error("no output pipe"))?;
        let mut archive = tar::Archive::new(stdout);
        let result = (|| {
            let entries = archive.entries().map_err(|e| self.archive_error(&e.to_string()))?;
            for entry in entries {
                let mut entry = entry.map_err(|e| self.archive_error(&e.to_string()))?;
                let raw = entry.path().map_err(|e| self.archive_error(&e.to_string()))?.into_owned();
                let text = raw.to_string_lossy();
                let path = text.trim_start_matches("./").trim_end_matches('/').to_owned();
                let kind = match entry.header().entry_type() {
                    tar::EntryType::Regular | tar::EntryType::Continuous => MemberKind::File,
                    tar::EntryType::Directory => MemberKind::Dir,
                    tar::EntryType::Symlink => MemberKind::Symlink,
                    _ => MemberKind::Other,
                };
                let mode = entry.header().mode().unwrap_or(0o644);
                if visit(&path, kind, mode, &mut entry)? == Flow::Stop {
                    return Ok(true);
                }
            }
            Ok(false)
        })();
        let stopped_early = match result {
            Ok(stopped) => stopped,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        drop(archive);
        if stopped_early {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(());
        }
        let out = child.wait_with_output().map_err(|source| DebianError::Io {
            op: "waiting for dpkg-deb on",
            path: self.path.clone(),
            source,
        })?;
        if !out.status.success() {
            return Err(DebianError::Tool {
                command: format!("dpkg-deb --fsys-tarfile {}", self.path.display()),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(())
    }

    /// Reads one member (by path, without `./`) into memory, refusing members over `limit` bytes.
    pub fn read_member(&self, wanted: &str, limit: u64) -> Result<Vec<u8>, DebianError> {
        let mut found = None;
        self.for_each_member(|path, kind, _, reader| {
            if path == wanted && kind == MemberKind::File {
                found = Some(read_limited(reader, limit, path, &self.path)?);
                return Ok(Flow::Stop);
            }
            Ok(Flow::Continue)
        })?;
        found.ok_or_else(|| self.archive_error(&format!("no file {wanted} in the package")))
    }

    fn archive_error(&self, detail: &str) -> DebianError {
        DebianError::Archive { path: self.path.clone(), detail: detail.to_owned() }
    }
}

/// Reads `reader` to the end, failing past `limit` bytes.
pub(crate) fn read_limited(
    reader: &mut dyn Read,
    limit: u64,
    member: &str,
    deb: &Path,
) -> Result<Vec<u8>, DebianError> {
    let mut data = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| DebianError::Archive { path: deb.to_owned(), detail: format!("reading {member}: {e}") })?;
    if data.len() as u64 > limit {
        return Err(DebianError::Archive {
            path: deb.to_owned(),
            detail: format!("{member} is larger than {limit} bytes"),
        });
    }
    Ok(data)
}

/// Lower-case hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, DebianError> {
    store::sha256_file_hex(path).map_err(|source| DebianError::Io { op: "reading", path: path.to_owned(), source })
}

/// Splits a deb822 stanza into fields; continuation lines are joined with newlines.
fn parse_stanza(stanza: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in stanza.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = fields.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            fields.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    fields
}

/// The package name of one dependency (`linux-image-6.1.0-56-amd64 (= 6.1.192-2)` → `linux-image-6.1.0-56-amd64`).
fn dep_name(dep: &str) -> &str {
    let dep = dep.trim();
    let end = dep.find([' ', '(', ':']).unwrap_or(dep.len());
    &dep[..end]
}

/// Package names (optionally `=version`) as Debian allows them; anything else never reaches apt's command line.
fn check_package_name(name: &str) -> Result<(), DebianError> {
    let (pkg, version) = match name.split_once('=') {
        Some((p, v)) => (p, Some(v)),
        None => (name, None),
    };
    let pkg_ok = pkg.len() >= 2
        && pkg.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && pkg.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'));
    let version_ok = version.is_none_or(|v| {
        !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '~' | ':'))
    });
    if pkg_ok && version_ok {
        Ok(())
    } else {
        Err(DebianError::UnknownPackage { name: name.to_owned(), detail: "not a valid Debian package name".to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanza_fields_and_dependencies() {
        let stanza = "Package: linux-image-amd64\nVersion: 6.1.192-2\nDepends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)\nDescription: a\n b\n";
        let f = parse_stanza(stanza);
        assert_eq!(f[0], ("Package".to_owned(), "linux-image-amd64".to_owned()));
        assert_eq!(f[3].1, "a\nb");
        assert_eq!(dep_name(" linux-image-6.1.0-56-amd64 (= 6.1.192-2)"), "linux-image-6.1.0-56-amd64");
        assert_eq!(dep_name("python3:any"), "python3");
    }

    #[test]
    fn package_names_are_checked() {
        assert!(check_package_name("busybox-static").is_ok());
        assert!(check_package_name("busybox-static=1:1.35.0-4+deb12u1+b1").is_ok());
        assert!(check_package_name("-o=evil").is_err());
        assert!(check_package_name("a b").is_err());
        assert!(check_package_name("x").is_err());
    }

    #[test]
    fn file_names_escape_the_epoch() {
        let p = DebPackage {
            name: "busybox-static".into(),
            version: "1:1.35.0-4".into(),
            architecture: "amd64".into(),
            sha256: String::new(),
            size: 0,
            filename: String::new(),
            depends: String::new(),
        };
        assert_eq!(p.file_name(), "busybox-static_1%3a1.35.0-4_amd64.deb");
    }
}
