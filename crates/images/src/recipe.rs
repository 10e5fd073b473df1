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
//! The recipe is read by hand from a spanned tree ([`diag::doc`]) rather than through serde, so that unknown keys
//! (with the key probably meant), wrong types and invalid values are all reported at once as
//! `FILE:LINE:COL: error: message` at the offending key or value, like scripts and desktop configs, and a typo
//! never silently falls back to a default. Relative paths (`sshKey`, a file's `source`) are resolved against the
//! recipe's directory.

use std::path::{Path, PathBuf};

use diag::doc::{Entry, Format, Node, Value};
use diag::{Checker, Diagnostic, Fields, Rejected, Severity, SourceText};
use serde::Serialize;

pub use crate::macos::source::MacosSource;
pub use crate::windows::{EditionChoice, MediaSource, WindowsSource, WindowsVersion};

/// Why a recipe could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// The file could not be read (missing, unreadable, too large, not text).
    #[error("cannot read recipe {}: {source}", path.display())]
    Read {
        /// The recipe file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The recipe has mistakes: every one found, each at its key or value.
    #[error(transparent)]
    Invalid(#[from] Rejected),
}

impl RecipeError {
    /// The first error in file order (`None` for a read error).
    pub fn first(&self) -> Option<&Diagnostic> {
        match self {
            Self::Read { .. } => None,
            Self::Invalid(r) => r.errors().next(),
        }
    }
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

const TOP_KEYS: &[&str] = &[
    "name",
    "hostname",
    "username",
    "sshPort",
    "memory",
    "cpus",
    "diskSize",
    "installNix",
    "sshKey",
    "source",
    "provision",
];
const SOURCE_KINDS: &[&str] = &["debian", "cloudImage", "ubuntu", "windows", "macos"];

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
        let text = userfile::read_to_string(path, userfile::Limit::Config)
            .map_err(|e| RecipeError::Read { path: path.to_owned(), source: e.into_io() })?;
        Self::parse(&text, path)
    }

    /// Parses and validates recipe text; `path` names it in errors and anchors relative paths. Every mistake is
    /// reported, not just the first.
    pub fn parse(text: &str, path: &Path) -> Result<Self, RecipeError> {
        let src = SourceText::new(path.display().to_string(), text);
        let root = diag::doc::parse(&src, Format::Toml).map_err(|d| Rejected(vec![d]))?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut c = Checker::new(&src);
        let recipe = read(&mut c, &root, dir);
        c.finish()?;
        // Every reader that gives up records an error, so a missing recipe here is a reader's bug; say so rather
        // than panic.
        recipe.ok_or_else(|| {
            Rejected(vec![src.diagnostic(Severity::Error, &root.span, "the recipe is incomplete (a vmkit bug)")]).into()
        })
    }
}

/// The recipe in `root`: `None` when anything is wrong (each mistake is recorded in `c`).
fn read(c: &mut Checker<'_>, root: &Node, dir: &Path) -> Option<Recipe> {
    let f = c.fields(root, "", TOP_KEYS);
    let name_node = c.required(&f, "name", &root.span);
    let name = name_node.and_then(|n| {
        let name = c.node_str("name", n)?;
        let ok = !name.is_empty()
            && !name.starts_with('.')
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok {
            c.error(&n.span, format!("name `{name}`: use letters, digits, `.`, `_`, `-` (≤ 64)"));
            return None;
        }
        Some(name.to_owned())
    });
    let hostname_node = f.node("hostname");
    let hostname = match (hostname_node, &name, name_node) {
        (Some(n), _, _) => c.node_str("hostname", n).and_then(|h| match cloudinit::validate_hostname(h) {
            Ok(()) => Some(h.to_owned()),
            Err(e) => {
                c.error(&n.span, e.to_string());
                None
            }
        }),
        (None, Some(name), Some(n)) => {
            let derived = name.replace(['.', '_'], "-").trim_matches('-').to_owned();
            match cloudinit::validate_hostname(&derived) {
                Ok(()) => Some(derived),
                Err(_) => {
                    c.error(&n.span, format!("name `{name}` is no valid hostname: give `hostname`"));
                    None
                }
            }
        }
        (None, _, _) => None,
    };
    let hostname_span = hostname_node.or(name_node).map(|n| n.span.clone()).unwrap_or_default();

    let source_node = c.required(&f, "source", &root.span);
    let kind = source_node.and_then(|n| source_kind(c, n));
    let windows = matches!(kind, Some(("windows", _)));
    let macos = match kind {
        Some(("macos", n)) => Some(crate::macos::source::version_hint(n)),
        _ => None,
    };

    let username = c.required(&f, "username", &root.span).and_then(|n| {
        let user = c.node_str("username", n)?;
        let checked = if windows {
            crate::windows::validate_windows_user(user)
        } else {
            cloudinit::validate_username(user).map_err(|e| e.to_string())
        };
        match checked {
            Ok(()) => Some(user.to_owned()),
            Err(m) => {
                c.error(&n.span, m);
                None
            }
        }
    });
    let ssh_port = c.uint(&f, "sshPort", 1, 65535).map_or(DEFAULT_SSH_PORT, |v| v as u16);
    let default_memory = match macos {
        Some(version) => crate::macos::machine::min_memory_mib(version.unwrap_or(fetch::macos::MacosVersion::Tahoe)),
        None if windows => crate::windows::DEFAULT_WINDOWS_MEMORY,
        None => DEFAULT_MEMORY,
    };
    let memory = c.uint(&f, "memory", 128, 4 << 20).map_or(default_memory, |v| v as u32);
    let cpus = c.uint(&f, "cpus", 1, 255).map_or(DEFAULT_CPUS, |v| v as u32);
    let default_disk = match macos {
        Some(_) => crate::macos::source::DEFAULT_MACOS_DISK,
        None if windows => crate::windows::DEFAULT_WINDOWS_DISK,
        None => DEFAULT_DISK_SIZE,
    };
    let disk = match f.node("diskSize") {
        Some(n) => c.node_str("diskSize", n).and_then(|d| match parse_size(d) {
            Some(bytes) => Some((d.to_owned(), bytes)),
            None => {
                c.error(&n.span, format!("diskSize `{d}`: expected a size like 20G, 512M or 1T (at least 1G)"));
                None
            }
        }),
        None => parse_size(default_disk).map(|bytes| (default_disk.to_owned(), bytes)),
    };
    let install_nix = c.bool(&f, "installNix");
    if let (Some(true), true) = (install_nix, windows || macos.is_some()) {
        let span = f.node("installNix").map(|n| n.span.clone()).unwrap_or_default();
        let os = if windows { "Windows" } else { "macOS" };
        c.error(&span, format!("installNix: not available for a {os} source"));
    }
    let ssh_key = f.node("sshKey").and_then(|n| {
        let key = dir.join(c.node_str("sshKey", n)?);
        if !key.is_file() {
            c.error(&n.span, format!("sshKey: no such file {}", key.display()));
            return None;
        }
        Some(key)
    });

    let hostname_for_windows = hostname.as_deref().map(|h| (h, &hostname_span));
    let source = match kind {
        Some(("windows", n)) => {
            crate::windows::source::read(c, n, hostname_for_windows, dir).map(|w| Source::Windows(Box::new(w)))
        }
        Some(("macos", n)) => crate::macos::source::read(c, n, dir).map(|m| Source::Macos(Box::new(m))),
        Some(("debian", n)) => debian(c, n),
        Some(("cloudImage", n)) => {
            let f = c.fields(n, "source.cloudImage", &["url", "sha256"]);
            match crate::windows::source::download(c, n, &f, "source.cloudImage") {
                Some(MediaSource::Download { url, sha256 }) => Some(Source::CloudImage { url, sha256 }),
                _ => None,
            }
        }
        Some(("ubuntu", n)) => ubuntu(c, n),
        _ => None,
    };
    let provision = match f.node("provision") {
        Some(n) => provision(c, n, dir, (windows || macos.is_some()).then_some(windows)),
        None => Some(Provision::default()),
    };
    let (disk_size, disk_bytes) = disk?;
    Some(Recipe {
        name: name?,
        hostname: hostname?,
        username: username?,
        ssh_port,
        memory,
        cpus,
        disk_size,
        disk_bytes,
        install_nix: install_nix.unwrap_or(false),
        ssh_key,
        source: source?,
        provision: provision?,
    })
}

/// The one source kind a `source` table names, with its table.
fn source_kind<'n>(c: &mut Checker<'_>, n: &'n Node) -> Option<(&'static str, &'n Node)> {
    let f = c.fields(n, "source", SOURCE_KINDS);
    let given: Vec<(&'static str, &'n Entry)> = SOURCE_KINDS.iter().filter_map(|k| f.get(k).map(|e| (*k, e))).collect();
    match given.as_slice() {
        [(kind, e)] => Some((kind, &e.node)),
        [] => {
            // An unknown kind or a non-table was already reported; an empty table was not.
            if f.entries().is_empty() && matches!(n.value, Value::Table(_)) {
                c.error(&n.span, format!("source: give one of {}", SOURCE_KINDS.join(", ")));
            }
            None
        }
        [_, (_, second), ..] => {
            c.error(&second.key_span, format!("source: give only one of {}", SOURCE_KINDS.join(", ")));
            None
        }
    }
}

fn debian(c: &mut Checker<'_>, n: &Node) -> Option<Source> {
    const P: &str = "source.debian";
    let f = c.fields(n, P, &["suite", "packages", "mirror"]);
    let suite = c.required(&f, "suite", &n.span).and_then(|s| {
        let suite = c.node_str(&f.path("suite"), s)?;
        if suite.is_empty() || !suite.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            c.error(&s.span, format!("suite `{suite}`: expected a codename like bookworm"));
            return None;
        }
        Some(suite.to_owned())
    });
    let packages = packages(c, &f);
    let mirror = match f.node("mirror") {
        Some(m) => c.node_str(&f.path("mirror"), m).and_then(|url| {
            let ok = (url.starts_with("http://") || url.starts_with("https://") || url.starts_with("file:///"))
                && !url.contains(char::is_whitespace);
            if !ok {
                c.error(&m.span, format!("mirror `{url}`: expected an http(s) or file:/// URL"));
                return None;
            }
            Some(Some(url.trim_end_matches('/').to_owned()))
        }),
        None => Some(None),
    };
    Some(Source::Debian(DebianSource { suite: suite?, packages: packages?, mirror: mirror? }))
}

fn ubuntu(c: &mut Checker<'_>, n: &Node) -> Option<Source> {
    const P: &str = "source.ubuntu";
    let f = c.fields(n, P, &["version", "codename", "build", "arch", "sha256"]);
    let version = c.required(&f, "version", &n.span).and_then(|v| c.node_str(&f.path("version"), v));
    let codename = c.required(&f, "codename", &n.span).and_then(|v| c.node_str(&f.path("codename"), v));
    let sha = c.required(&f, "sha256", &n.span).and_then(|v| {
        let text = c.node_str(&f.path("sha256"), v)?;
        match text.parse::<fetch::Sha256>() {
            Ok(d) => Some(d),
            Err(e) => {
                c.error(&v.span, e.to_string());
                None
            }
        }
    });
    let build = c.string(&f, "build");
    let arch = c.string(&f, "arch").unwrap_or_else(|| "amd64".to_owned());
    let image = fetch::UbuntuCloudImage {
        version: version?.to_owned(),
        codename: codename?.to_owned(),
        build,
        arch,
        sha256: sha?,
    };
    match image.source() {
        Ok(src) => Some(Source::CloudImage { url: src.url().to_string(), sha256: image.sha256.to_hex() }),
        Err(e) => {
            c.error(&n.span, e.to_string());
            None
        }
    }
}

/// Validated package names from `packages`.
fn packages(c: &mut Checker<'_>, f: &Fields<'_>) -> Option<Vec<String>> {
    let mut out = Some(Vec::new());
    for (i, p) in c.list(f, "packages").iter().enumerate() {
        let name = c.node_str(&format!("{}[{i}]", f.path("packages")), p);
        match name.map(|name| (name, cloudinit::validate_package(name))) {
            Some((name, Ok(()))) => {
                if let Some(list) = &mut out {
                    list.push(name.to_owned());
                }
            }
            Some((_, Err(e))) => {
                c.error(&p.span, e.to_string());
                out = None;
            }
            None => out = None,
        }
    }
    out
}

/// `[provision]`; `no_cloud_init` is `Some(windows?)` for guests without cloud-init (only `commands` apply).
fn provision(c: &mut Checker<'_>, n: &Node, dir: &Path, no_cloud_init: Option<bool>) -> Option<Provision> {
    const P: &str = "provision";
    let f = c.fields(n, P, &["packages", "files", "commands"]);
    if let Some(windows) = no_cloud_init {
        for key in ["packages", "files"] {
            let first = match f.node(key).map(|n| &n.value) {
                Some(Value::Array(items)) => items.first(),
                _ => None,
            };
            if let Some(item) = first {
                let (os, shell) = if windows { ("Windows", "PowerShell") } else { ("macOS", "shell") };
                c.error(
                    &item.span,
                    format!("provision {key}: not available for a {os} source (use {shell} `commands`)"),
                );
            }
        }
    }
    let packages = packages(c, &f);
    let mut commands = Some(Vec::new());
    for (i, cmd) in c.list(&f, "commands").iter().enumerate() {
        match c.node_text(&format!("{P}.commands[{i}]"), cmd, true) {
            Some(line) if !line.trim().is_empty() => commands.iter_mut().for_each(|l| l.push(line.to_owned())),
            Some(_) => {
                c.error(&cmd.span, "provision command: must be a non-empty command line");
                commands = None;
            }
            None => commands = None,
        }
    }
    let mut files = Some(Vec::new());
    for (i, item) in c.list(&f, "files").iter().enumerate() {
        let file = provision_file(c, item, &format!("{P}.files[{i}]"), dir);
        match (file, &mut files) {
            (Some(file), Some(list)) => list.push(file),
            _ => files = None,
        }
    }
    Some(Provision { packages: packages?, files: files?, commands: commands? })
}

fn provision_file(c: &mut Checker<'_>, n: &Node, path: &str, dir: &Path) -> Option<ProvisionFile> {
    let f = c.fields(n, path, &["path", "content", "source", "mode"]);
    let guest = c.required(&f, "path", &n.span).and_then(|p| {
        let guest = c.node_str(&f.path("path"), p)?;
        if !guest.starts_with('/') {
            c.error(&p.span, format!("file path `{guest}`: must be absolute"));
            return None;
        }
        Some(guest.to_owned())
    });
    let content = match (f.node("content"), f.node("source")) {
        (Some(text), None) => c.node_text(&f.path("content"), text, true).map(str::to_owned),
        (None, Some(src)) => c.node_str(&f.path("source"), src).and_then(|name| {
            let host = dir.join(name);
            match userfile::read_to_string(&host, userfile::Limit::Content) {
                Ok(text) => Some(text),
                Err(e) => {
                    c.error(&src.span, format!("file source {}: {}", host.display(), e.into_io()));
                    None
                }
            }
        }),
        _ => {
            c.error(&n.span, "a file needs exactly one of `content` or `source`");
            None
        }
    };
    let mode = match f.node("mode") {
        None => Some(0o644),
        Some(m) => c.node_str(&f.path("mode"), m).and_then(|text| {
            let mode = u32::from_str_radix(text, 8).ok().filter(|v| *v <= 0o7777);
            if mode.is_none() {
                c.error(&m.span, format!("mode `{text}`: expected octal like \"0644\""));
            }
            mode
        }),
    };
    Some(ProvisionFile { path: guest?, content: content?, mode: mode? })
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
            (format!("{base}sshPorts = 22\n"), 4, 1, "unknown key `sshPorts`; did you mean `sshPort`?"),
            (format!("{base}memory = \"2G\"\n"), 4, 10, "memory: expected an integer, found a string"),
            (format!("{base}cpus = 0\n"), 4, 8, "cpus: 0 is out of range (1 to 255)"),
            (format!("{base}diskSize = \"20X\"\n"), 4, 12, "diskSize"),
            (base.replace("\"agent\"", "\"Agent Smith\""), 2, 12, "Agent Smith"),
            (base.replace("bookworm", "Book Worm"), 3, 31, "suite"),
            (base.replace("debian", "fedora"), 3, 12, "unknown key `source.fedora`; known keys here: `debian`"),
            (base.replace("{ debian = { suite = \"bookworm\" } }", "\"debian\""), 3, 10, "source: expected a table"),
            (base.replace("{ debian = { suite = \"bookworm\" } }", "{}"), 3, 10, "source: give one of debian"),
            (format!("{base}[provision]\npackages = [\"ok\", \"bad pkg\"]\n"), 5, 19, "bad pkg"),
        ];
        for (text, line, column, needle) in cases {
            let err = parse(&text).unwrap_err();
            let first = err.first().unwrap_or_else(|| panic!("{err}")).to_string();
            assert!(first.starts_with(&format!("dir/r.toml:{line}:{column}: error: ")), "{err}");
            assert!(first.contains(needle), "{err}");
        }
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        let text = "name = \"deb\"\nusername = \"Agent Smith\"\ncpus = 0\nmemroy = 4096\n\
                    source = { debian = { suite = \"Book Worm\", packages = [\"ok\", \"bad pkg\"] } }\n\
                    [provision]\ncommands = [\"\"]\nfiles = [{ path = \"etc/motd\" }]\n";
        let Err(RecipeError::Invalid(rejected)) = parse(text) else { panic!("accepted or unreadable") };
        let at: Vec<(usize, usize)> = rejected.errors().map(|d| (d.line, d.col)).collect();
        assert_eq!(at, [(2, 12), (3, 8), (4, 1), (5, 31), (5, 62), (7, 13), (8, 10), (8, 19)], "{rejected}");
        let text = rejected.to_string();
        assert!(text.starts_with("dir/r.toml has 8 errors:"), "{text}");
        assert!(text.contains("dir/r.toml:4:1: error: unknown key `memroy`; did you mean `memory`?"), "{text}");
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
