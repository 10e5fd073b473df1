//! Image recipes: the TOML file that says what `vmkit image build` makes.
//!
//! Keys are spelled as the original Linux builder's arguments (`name`, `hostname`, `username`, `sshPort`,
//! `memory` in MB, `cpus`, `diskSize`, `installNix`) so settings carry over unchanged; `source` says where the
//! base system comes from and `provision` what happens after first boot:
//!
//! ```toml
//! name = "debian-12"
//! username = "agent"
//! source = { debian = { suite = "bookworm", packages = ["htop"] } }
//! # or: source = { cloudImage = { url = "https://…/ubuntu-24.04-server-cloudimg-amd64.img", sha256 = "…" } }
//! # or: source = { ubuntu = { version = "24.04", codename = "noble", build = "20260615", sha256 = "…" } }
//! # or: [source.windows] … — an unattended Windows 10/11 install, see [`crate::windows::source`]
//! # or: [source.macos] … — macOS from Apple's recovery image with OpenCore, see [`crate::macos::source`]
//!
//! [provision]
//! packages = ["curl"]                       # installed by cloud-init on first boot
//! files = [{ path = "/etc/motd", content = "hello\n", mode = "0644" }]
//! commands = ["systemctl enable --now ssh"] # run as root over SSH after cloud-init, in order
//! ```
//!
//! Unknown keys, wrong types and invalid values are errors reported as `FILE:LINE:COL: message` at the offending
//! key or value, so a typo never silently falls back to a default. Relative paths (`sshKey`, a file's `source`)
//! are resolved against the recipe's directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

pub use crate::macos::source::MacosSource;
use crate::macos::source::RawMacos;
use crate::windows::source::RawWindows;
pub use crate::windows::{EditionChoice, MediaSource, WindowsSource, WindowsVersion};

/// A recipe problem, located in its file.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct RecipeError {
    /// The recipe file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// A validated recipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipe {
    /// The image's name (also the default output directory and the QEMU guest name).
    pub name: String,
    /// The guest's hostname (default: `name`).
    pub hostname: String,
    /// The login user (SSH key only, passwordless sudo).
    pub username: String,
    /// The host port the `run` script forwards to the guest's SSH (127.0.0.1 only).
    pub ssh_port: u16,
    /// Guest memory in MiB.
    pub memory: u32,
    /// vCPUs.
    pub cpus: u32,
    /// Disk size as written (`20G`).
    pub disk_size: String,
    /// Disk size in bytes.
    #[serde(skip)]
    pub disk_bytes: u64,
    /// Install Nix (Debian's `nix-bin`) and put the user in `nix-users`.
    pub install_nix: bool,
    /// A private key to authorise instead of generating a pair (resolved against the recipe's directory).
    pub ssh_key: Option<PathBuf>,
    /// Where the base system comes from.
    pub source: Source,
    /// What happens after first boot.
    pub provision: Provision,
}

/// The base system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// Built from Debian packages with debootstrap.
    Debian(DebianSource),
    /// A cloud image (qcow2 or raw) downloaded and verified.
    CloudImage {
        /// Where from.
        url: String,
        /// Its SHA-256.
        sha256: String,
    },
    /// Windows installed unattended from Microsoft's install ISO (see [`WindowsSource`]).
    Windows(Box<WindowsSource>),
    /// macOS from Apple's recovery image, booted through OpenCore (see [`MacosSource`]).
    Macos(Box<MacosSource>),
}

/// A Debian system built from the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DebianSource {
    /// The suite or codename (`bookworm`).
    pub suite: String,
    /// Packages beyond what a bootable cloud-init guest needs.
    pub packages: Vec<String>,
    /// The mirror; `None` takes the one the host's apt uses for the suite.
    pub mirror: Option<String>,
}

/// What happens after the guest is up.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Provision {
    /// Packages cloud-init installs on first boot (the guest needs network access to its mirror).
    pub packages: Vec<String>,
    /// Files cloud-init writes on first boot.
    pub files: Vec<ProvisionFile>,
    /// Commands run over SSH once the guest is up, in order; the first failure fails the build. Linux: shell lines
    /// run as root after cloud-init. Windows: PowerShell lines run as the administrator.
    pub commands: Vec<String>,
}

/// A file written into the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvisionFile {
    /// Absolute path in the guest.
    pub path: String,
    /// The contents (from `content`, or read from `source`).
    pub content: String,
    /// Mode bits (recorded as an octal string, `"0644"`).
    #[serde(serialize_with = "octal")]
    pub mode: u32,
}

fn octal<S: serde::Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{mode:04o}"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Spanned<String>,
    hostname: Option<Spanned<String>>,
    username: Spanned<String>,
    #[serde(rename = "sshPort")]
    ssh_port: Option<Spanned<i64>>,
    memory: Option<Spanned<i64>>,
    cpus: Option<Spanned<i64>>,
    #[serde(rename = "diskSize")]
    disk_size: Option<Spanned<String>>,
    #[serde(rename = "installNix")]
    install_nix: Option<bool>,
    #[serde(rename = "sshKey")]
    ssh_key: Option<Spanned<String>>,
    source: Spanned<RawSource>,
    provision: Option<RawProvision>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
enum RawSource {
    #[serde(rename = "debian")]
    Debian {
        suite: Spanned<String>,
        #[serde(default)]
        packages: Vec<Spanned<String>>,
        mirror: Option<Spanned<String>>,
    },
    #[serde(rename = "cloudImage")]
    CloudImage { url: Spanned<String>, sha256: Spanned<String> },
    #[serde(rename = "windows")]
    Windows(Box<RawWindows>),
    #[serde(rename = "macos")]
    Macos(Box<RawMacos>),
    #[serde(rename = "ubuntu")]
    Ubuntu {
        version: Spanned<String>,
        codename: Spanned<String>,
        build: Option<Spanned<String>>,
        arch: Option<Spanned<String>>,
        sha256: Spanned<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvision {
    #[serde(default)]
    packages: Vec<Spanned<String>>,
    #[serde(default)]
    files: Vec<Spanned<RawFile>>,
    #[serde(default)]
    commands: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    path: Spanned<String>,
    content: Option<String>,
    source: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
}

/// Defaults of the original builder.
pub const DEFAULT_SSH_PORT: u16 = 2222;
/// Default memory in MiB.
pub const DEFAULT_MEMORY: u32 = 2048;
/// Default vCPUs.
pub const DEFAULT_CPUS: u32 = 2;
/// Default disk size.
pub const DEFAULT_DISK_SIZE: &str = "20G";

impl Recipe {
    /// Reads and validates a recipe file.
    pub fn load(path: &Path) -> Result<Self, RecipeError> {
        let text = userfile::read_to_string(path, userfile::Limit::Config).map_err(|e| RecipeError {
            file: path.to_owned(),
            line: 1,
            column: 1,
            message: format!("cannot read the recipe: {}", e.into_io()),
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates recipe text; `path` names it in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, RecipeError> {
        let at = |span: std::ops::Range<usize>, message: String| {
            let (line, column) = line_col(text, span.start);
            RecipeError { file: path.to_owned(), line, column, message }
        };
        let raw: Raw = toml::from_str(text)
            .map_err(|e| at(e.span().unwrap_or(0..0), e.message().trim_end().replace('\n', "; ")))?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));

        let name = raw.name.get_ref().clone();
        if name.is_empty()
            || name.starts_with('.')
            || name.len() > 64
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(at(raw.name.span(), format!("name `{name}`: use letters, digits, `.`, `_`, `-` (≤ 64)")));
        }
        let hostname = match &raw.hostname {
            Some(h) => {
                cloudinit::validate_hostname(h.get_ref()).map_err(|e| at(h.span(), e.to_string()))?;
                h.get_ref().clone()
            }
            None => {
                let derived = name.replace(['.', '_'], "-").trim_matches('-').to_owned();
                cloudinit::validate_hostname(&derived)
                    .map_err(|_| at(raw.name.span(), format!("name `{name}` is no valid hostname: give `hostname`")))?;
                derived
            }
        };
        let windows = matches!(raw.source.get_ref(), RawSource::Windows(_));
        let macos = match raw.source.get_ref() {
            RawSource::Macos(m) => Some(m.version_hint()),
            _ => None,
        };
        let username = raw.username.get_ref().clone();
        if windows {
            crate::windows::validate_windows_user(&username).map_err(|m| at(raw.username.span(), m))?;
        } else {
            cloudinit::validate_username(&username).map_err(|e| at(raw.username.span(), e.to_string()))?;
        }
        let ssh_port = int_in(&raw.ssh_port, 1, 65535, "sshPort", &at)?.map_or(DEFAULT_SSH_PORT, |v| v as u16);
        let default_memory = match macos {
            Some(version) => {
                crate::macos::machine::min_memory_mib(version.unwrap_or(fetch::macos::MacosVersion::Tahoe))
            }
            None if windows => crate::windows::DEFAULT_WINDOWS_MEMORY,
            None => DEFAULT_MEMORY,
        };
        let memory = int_in(&raw.memory, 128, 4 << 20, "memory (MB)", &at)?.map_or(default_memory, |v| v as u32);
        let cpus = int_in(&raw.cpus, 1, 255, "cpus", &at)?.map_or(DEFAULT_CPUS, |v| v as u32);
        let default_disk = match macos {
            Some(_) => crate::macos::source::DEFAULT_MACOS_DISK,
            None if windows => crate::windows::DEFAULT_WINDOWS_DISK,
            None => DEFAULT_DISK_SIZE,
        };
        let disk_size = raw.disk_size.as_ref().map_or(default_disk.to_owned(), |d| d.get_ref().clone());
        let disk_bytes = parse_size(&disk_size).ok_or_else(|| {
            at(
                raw.disk_size.as_ref().map_or(0..0, Spanned::span),
                format!("diskSize `{disk_size}`: expected a size like 20G, 512M or 1T (at least 1G)"),
            )
        })?;
        let ssh_key = raw.ssh_key.as_ref().map(|k| dir.join(k.get_ref()));
        if let (Some(key), Some(spanned)) = (&ssh_key, &raw.ssh_key)
            && !key.is_file()
        {
            return Err(at(spanned.span(), format!("sshKey: no such file {}", key.display())));
        }

        let source_span = raw.source.span();
        let hostname_span = raw.hostname.as_ref().map_or_else(|| raw.name.span(), Spanned::span);
        let source = match raw.source.into_inner() {
            RawSource::Windows(w) => {
                if raw.install_nix == Some(true) {
                    return Err(at(source_span, "installNix: not available for a Windows source".to_owned()));
                }
                Source::Windows(Box::new(w.validate(&hostname, hostname_span, dir, &at)?))
            }
            RawSource::Macos(m) => {
                if raw.install_nix == Some(true) {
                    return Err(at(source_span, "installNix: not available for a macOS source".to_owned()));
                }
                Source::Macos(Box::new(m.validate(dir, &at)?))
            }
            RawSource::Debian { suite, packages, mirror } => {
                let s = suite.get_ref();
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
                    return Err(at(suite.span(), format!("suite `{s}`: expected a codename like bookworm")));
                }
                let packages = packages_of(&packages, &at)?;
                let mirror = match mirror {
                    Some(m) => {
                        let url = m.get_ref();
                        if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("file:///"))
                            || url.contains(char::is_whitespace)
                        {
                            return Err(at(m.span(), format!("mirror `{url}`: expected an http(s) or file:/// URL")));
                        }
                        Some(url.trim_end_matches('/').to_owned())
                    }
                    None => None,
                };
                Source::Debian(DebianSource { suite: s.clone(), packages, mirror })
            }
            RawSource::CloudImage { url, sha256 } => {
                let digest: fetch::Sha256 =
                    sha256.get_ref().parse().map_err(|e: fetch::FetchError| at(sha256.span(), e.to_string()))?;
                let src = fetch::Source::new(url.get_ref(), digest).map_err(|e| at(url.span(), e.to_string()))?;
                Source::CloudImage { url: src.url().to_string(), sha256: digest.to_hex() }
            }
            RawSource::Ubuntu { version, codename, build, arch, sha256 } => {
                let digest: fetch::Sha256 =
                    sha256.get_ref().parse().map_err(|e: fetch::FetchError| at(sha256.span(), e.to_string()))?;
                let image = fetch::UbuntuCloudImage {
                    version: version.get_ref().clone(),
                    codename: codename.get_ref().clone(),
                    build: build.map(Spanned::into_inner),
                    arch: arch.map_or_else(|| "amd64".to_owned(), Spanned::into_inner),
                    sha256: digest,
                };
                let src = image.source().map_err(|e| at(source_span.clone(), e.to_string()))?;
                Source::CloudImage { url: src.url().to_string(), sha256: digest.to_hex() }
            }
        };

        let mut provision = Provision::default();
        if let Some(p) = raw.provision {
            if windows || macos.is_some() {
                // The guest has no cloud-init: only commands (over SSH) apply.
                let stray = p
                    .packages
                    .first()
                    .map(|v| (v.span(), "packages"))
                    .or_else(|| p.files.first().map(|f| (f.span(), "files")));
                if let Some((span, key)) = stray {
                    return Err(at(
                        span,
                        format!(
                            "provision {key}: not available for a {} source (use {} `commands`)",
                            if windows { "Windows" } else { "macOS" },
                            if windows { "PowerShell" } else { "shell" }
                        ),
                    ));
                }
            }
            provision.packages = packages_of(&p.packages, &at)?;
            for cmd in &p.commands {
                if cmd.get_ref().trim().is_empty() || cmd.get_ref().contains('\0') {
                    return Err(at(cmd.span(), "provision command: must be a non-empty command line".to_owned()));
                }
                provision.commands.push(cmd.get_ref().clone());
            }
            for file in p.files {
                let span = file.span();
                let f = file.into_inner();
                let guest = f.path.get_ref();
                if !guest.starts_with('/') || guest.contains('\0') {
                    return Err(at(f.path.span(), format!("file path `{guest}`: must be absolute")));
                }
                let content = match (f.content, &f.source) {
                    (Some(c), None) => c,
                    (None, Some(src)) => {
                        let host = dir.join(src.get_ref());
                        userfile::read_to_string(&host, userfile::Limit::Content)
                            .map_err(|e| at(src.span(), format!("file source {}: {}", host.display(), e.into_io())))?
                    }
                    _ => return Err(at(span, "a file needs exactly one of `content` or `source`".to_owned())),
                };
                let mode = match &f.mode {
                    None => 0o644,
                    Some(m) => u32::from_str_radix(m.get_ref(), 8)
                        .ok()
                        .filter(|v| *v <= 0o7777)
                        .ok_or_else(|| at(m.span(), format!("mode `{}`: expected octal like \"0644\"", m.get_ref())))?,
                };
                provision.files.push(ProvisionFile { path: guest.clone(), content, mode });
            }
        }
        Ok(Self {
            name,
            hostname,
            username,
            ssh_port,
            memory,
            cpus,
            disk_size,
            disk_bytes,
            install_nix: raw.install_nix.unwrap_or(false),
            ssh_key,
            source,
            provision,
        })
    }
}

fn int_in(
    value: &Option<Spanned<i64>>,
    min: i64,
    max: i64,
    what: &str,
    at: &impl Fn(std::ops::Range<usize>, String) -> RecipeError,
) -> Result<Option<i64>, RecipeError> {
    match value {
        None => Ok(None),
        Some(v) if (min..=max).contains(v.get_ref()) => Ok(Some(*v.get_ref())),
        Some(v) => Err(at(v.span(), format!("{what} {}: must be between {min} and {max}", v.get_ref()))),
    }
}

fn packages_of(
    list: &[Spanned<String>],
    at: &impl Fn(std::ops::Range<usize>, String) -> RecipeError,
) -> Result<Vec<String>, RecipeError> {
    list.iter()
        .map(|p| {
            cloudinit::validate_package(p.get_ref()).map_err(|e| at(p.span(), e.to_string()))?;
            Ok(p.get_ref().clone())
        })
        .collect()
}

/// `20G`, `512M`, `1T`, `2048K` (binary units, as qemu-img reads them) → bytes; at least 1 GiB.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits.parse().ok()?;
    let shift = match unit {
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift).filter(|b| *b >= 1 << 30)
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "5fa5b05e5ec239858c4531485d6023b0896448c2df7c63b34f8dae6ea6051a44";

    fn parse(text: &str) -> Result<Recipe, RecipeError> {
        Recipe::parse(text, Path::new("dir/r.toml"))
    }

    #[test]
    fn minimal_debian_recipe_gets_the_original_defaults() {
        let r =
            parse("name = \"deb\"\nusername = \"agent\"\nsource = { debian = { suite = \"bookworm\" } }\n").unwrap();
        assert_eq!(r.hostname, "deb");
        assert_eq!((r.ssh_port, r.memory, r.cpus), (2222, 2048, 2));
        assert_eq!(r.disk_bytes, 20 << 30);
        assert!(!r.install_nix);
        assert_eq!(r.source, Source::Debian(DebianSource { suite: "bookworm".into(), packages: vec![], mirror: None }));
    }

    #[test]
    fn full_recipe() {
        let text = format!(
            r#"name = "ci-ubuntu"
hostname = "ci"
username = "agent"
sshPort = 2022
memory = 4096
cpus = 4
diskSize = "40G"
installNix = true

[source.ubuntu]
version = "24.04"
codename = "noble"
build = "20260615"
sha256 = "{SHA}"

[provision]
packages = ["htop"]
commands = ["echo hi > /tmp/x"]
files = [{{ path = "/etc/motd", content = "hello\n", mode = "0600" }}]
"#
        );
        let r = parse(&text).unwrap();
        assert_eq!(r.hostname, "ci");
        assert_eq!((r.ssh_port, r.memory, r.cpus, r.disk_bytes), (2022, 4096, 4, 40 << 30));
        assert!(r.install_nix);
        assert_eq!(
            r.source,
            Source::CloudImage {
                url: "https://cloud-images.ubuntu.com/releases/noble/release-20260615/ubuntu-24.04-server-cloudimg-amd64.img"
                    .into(),
                sha256: SHA.into()
            }
        );
        assert_eq!(r.provision.files[0].mode, 0o600);
        assert_eq!(r.provision.commands, vec!["echo hi > /tmp/x".to_owned()]);
    }

    #[test]
    fn errors_point_at_the_culprit() {
        let base = "name = \"deb\"\nusername = \"agent\"\nsource = { debian = { suite = \"bookworm\" } }\n";
        let cases = [
            (format!("{base}sshPorts = 22\n"), 4, 1, "unknown field `sshPorts`"),
            (format!("{base}memory = \"2G\"\n"), 4, 10, "invalid type"),
            (format!("{base}cpus = 0\n"), 4, 8, "cpus 0"),
            (format!("{base}diskSize = \"20X\"\n"), 4, 12, "diskSize"),
            (base.replace("\"agent\"", "\"Agent Smith\""), 2, 12, "Agent Smith"),
            (base.replace("bookworm", "Book Worm"), 3, 31, "suite"),
            (base.replace("debian", "fedora"), 3, 12, "unknown variant `fedora`"),
            (format!("{base}[provision]\npackages = [\"ok\", \"bad pkg\"]\n"), 5, 19, "bad pkg"),
        ];
        for (text, line, column, needle) in cases {
            let err = parse(&text).unwrap_err();
            assert_eq!((err.line, err.column), (line, column), "{err}");
            assert!(err.to_string().contains(needle), "{err}");
            assert!(err.to_string().starts_with(&format!("dir/r.toml:{line}:{column}: ")), "{err}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("20G"), Some(20 << 30));
        assert_eq!(parse_size("1T"), Some(1 << 40));
        assert_eq!(parse_size("2048M"), Some(2 << 30));
        assert_eq!(parse_size("10GiB"), Some(10 << 30));
        assert_eq!(parse_size("512M"), None, "below 1 GiB");
        assert_eq!(parse_size("G"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }
}
