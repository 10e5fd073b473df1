//! The macOS source of a recipe: `[source.macos]`.
//!
//! ```toml
//! name = "macos-sonoma"
//! username = "agent"
//! memory = 8192
//! cpus = 4
//! diskSize = "96G"
//!
//! [source.macos]
//! version = "sonoma"                  # ventura, sonoma, sequoia, tahoe (or 13, 14, 15, 26)
//! opencore = { url = "https://github.com/acidanthera/OpenCorePkg/releases/download/1.0.7/OpenCore-1.0.7-RELEASE.zip", sha256 = "…" }
//!                                     # or a path to the release zip (or to an unpacked release)
//! recovery = "BaseSystem.dmg"         # optional: a recovery image on disk; default: fetched from Apple, verified
//! model = "iMacPro1,1"                # optional: iMacPro1,1 (up to Sequoia) or MacPro7,1; default per version
//! verboseBoot = true                  # optional: kernel messages instead of the Apple logo (default: true)
//! bootArgs = ["debug=0x100"]          # optional: more boot arguments after vmkit's
//! kexts = [                           # optional: kext releases, unpacked into EFI/OC/Kexts, listed in Kernel.Add
//!   { url = "https://github.com/acidanthera/Lilu/releases/download/1.6.7/Lilu-1.6.7-RELEASE.zip", sha256 = "…" },
//!   { url = "…/VirtualSMC-1.3.2-RELEASE.zip", sha256 = "…", bundles = ["VirtualSMC.kext"] },
//!   "WhateverGreen-1.6.6-RELEASE.zip",          # or a release zip on disk
//! ]
//! passwordFile = "macos-password"     # the account's password, first line (`image build` needs it; never logged)
//! automate = "my-install.yaml"        # optional: the install script; default: vmkit's shipped one for the version
//! maxInstallTime = "6h"               # optional: from first boot until SSH answers (default 8h)
//! ```
//!
//! OpenCore is pinned like every other download: a URL and the SHA-256 the file must have, fetched through the
//! content-addressed cache; nothing is taken from a release whose digest differs. The recovery image has no
//! published digest: when it is fetched, Apple's signed chunklist verifies it (`fetch::macos`); a local one is
//! used as given.

use std::path::{Path, PathBuf};

use diag::doc::{Node, Value};
use diag::{Checker, Fields};
use fetch::macos::MacosVersion;
use serde::Serialize;

use crate::macos::smbios::MacModel;
use crate::windows::MediaSource;

/// Default disk size for macOS sources (the installer wants room to unpack; Xcode wants more).
pub const DEFAULT_MACOS_DISK: &str = "96G";

/// An unattended macOS install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MacosSource {
    /// The version.
    #[serde(serialize_with = "version_name")]
    pub version: MacosVersion,
    /// The OpenCore release (zip or unpacked directory, or a pinned download).
    pub opencore: MediaSource,
    /// A recovery image on disk; `None`: fetched from Apple's recovery server.
    pub recovery: Option<PathBuf>,
    /// The SMBIOS model presented.
    pub model: String,
    /// Verbose boot.
    pub verbose_boot: bool,
    /// Boot arguments after vmkit's.
    pub boot_args: Vec<String>,
    /// The account's password (first line of this file), typed in Setup Assistant by the build.
    pub password_file: Option<PathBuf>,
    /// The install script; `None`: the one vmkit ships for the version ([`crate::macos::scripts`]).
    pub automate: Option<PathBuf>,
    /// From first boot until SSH answers with the generated key, in seconds.
    pub max_install_secs: u64,
    /// Kext releases to put on the boot disk.
    pub kexts: Vec<KextSource>,
}

/// A kext release in a recipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KextSource {
    /// The release zip (a path, or a pinned download).
    pub release: MediaSource,
    /// The bundles to take (`VirtualSMC.kext`); empty: every bundle in the release.
    pub bundles: Vec<String>,
}

/// Default `maxInstallTime`: an install with KVM takes about an hour; Setup Assistant and TCG take longer.
pub const DEFAULT_MAX_INSTALL: &str = "8h";

impl MacosSource {
    /// `maxInstallTime` as a duration.
    pub fn max_install_time(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.max_install_secs)
    }
}

fn version_name<S: serde::Serializer>(v: &MacosVersion, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.name())
}

const MACOS_KEYS: &[&str] = &[
    "version",
    "opencore",
    "recovery",
    "model",
    "verboseBoot",
    "bootArgs",
    "passwordFile",
    "automate",
    "maxInstallTime",
    "kexts",
];

/// The version of a `[source.macos]` table, when it is valid (for defaults that depend on it; [`read`] reports
/// it otherwise).
pub(crate) fn version_hint(node: &Node) -> Option<MacosVersion> {
    match &Fields::of(node, "").node("version")?.value {
        Value::Str(s) => s.parse().ok(),
        Value::Int(i) => i.to_string().parse().ok(),
        _ => None,
    }
}

/// Reads `[source.macos]`, recording every mistake in `c`; `dir` is the recipe's directory.
pub(crate) fn read(c: &mut Checker<'_>, node: &Node, dir: &Path) -> Option<MacosSource> {
    const P: &str = "source.macos";
    let f = c.fields(node, P, MACOS_KEYS);
    let version = c.required(&f, "version", &node.span).and_then(|n| {
        let v = version_hint(node);
        if v.is_none() {
            c.error(
                &n.span,
                format!("{P}.version: expected one of ventura, sonoma, sequoia, tahoe (or 13, 14, 15, 26)"),
            );
        }
        v
    });
    let opencore = c
        .required(&f, "opencore", &node.span)
        .and_then(|n| crate::windows::source::media(c, n, &format!("{P}.opencore"), dir));
    let recovery = f.node("recovery").and_then(|n| match c.node_str(&format!("{P}.recovery"), n) {
        Some("") => {
            c.error(&n.span, "recovery: expected the path of a recovery image (.dmg)");
            None
        }
        other => other.map(|r| dir.join(r)),
    });
    let model = match f.node("model") {
        Some(n) => c.node_str(&format!("{P}.model"), n).and_then(|name| {
            let Some(model) = MacModel::named(name) else {
                c.error(&n.span, format!("model `{name}`: expected iMacPro1,1 or MacPro7,1"));
                return None;
            };
            if model.name == "iMacPro1,1" && version == Some(MacosVersion::Tahoe) {
                c.error(&n.span, "model iMacPro1,1: macOS 26 Tahoe does not support it");
                return None;
            }
            Some(model.name.to_owned())
        }),
        None => version.map(|v| MacModel::default_for(v).name.to_owned()),
    };
    let arg_nodes = c.list(&f, "bootArgs");
    if let Some(extra) = arg_nodes.get(16) {
        c.error(&extra.span, "bootArgs: at most 16 arguments");
    }
    let mut boot_args = Vec::new();
    for (i, n) in arg_nodes.iter().enumerate() {
        let Some(a) = c.node_str(&format!("{P}.bootArgs[{i}]"), n) else { continue };
        let ok =
            !a.is_empty() && a.len() <= 64 && a.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.=,:+/".contains(&b));
        if !ok {
            c.error(&n.span, format!("bootArgs `{a}`: one argument of letters, digits and -_.=,:+/ (at most 64)"));
        }
        boot_args.push(a.to_owned());
    }
    // Read by `image build` only (prepare needs no password), so not required to exist yet.
    let password_file = f.node("passwordFile").and_then(|n| match c.node_str(&format!("{P}.passwordFile"), n) {
        Some("") => {
            c.error(&n.span, "passwordFile: expected the path of a file");
            None
        }
        other => other.map(|p| dir.join(p)),
    });
    let automate = f.node("automate").and_then(|n| crate::windows::source::existing_file(c, n, "automate", dir));
    let max_install_secs = match f.node("maxInstallTime") {
        Some(n) => crate::windows::source::install_time(c, n, &format!("{P}.maxInstallTime"), "\"90m\" or \"6h\""),
        None => crate::windows::source::parse_duration(DEFAULT_MAX_INSTALL),
    };
    let kext_nodes = c.list(&f, "kexts");
    if let Some(extra) = kext_nodes.get(32) {
        c.error(&extra.span, "kexts: at most 32 releases");
    }
    let kexts: Vec<Option<KextSource>> =
        kext_nodes.iter().enumerate().map(|(i, n)| kext_source(c, n, &format!("{P}.kexts[{i}]"), dir)).collect();
    let verbose_boot = c.bool(&f, "verboseBoot");
    Some(MacosSource {
        version: version?,
        opencore: opencore?,
        recovery,
        model: model?,
        verbose_boot: verbose_boot.unwrap_or(true),
        boot_args,
        password_file,
        automate,
        max_install_secs: max_install_secs?,
        kexts: kexts.into_iter().collect::<Option<_>>()?,
    })
}

/// One `kexts` item: a path, `{ url, sha256 }`, or either with `bundles = ["X.kext", …]` (`{ path = … }` for a
/// path with bundles).
fn kext_source(c: &mut Checker<'_>, n: &Node, path: &str, dir: &Path) -> Option<KextSource> {
    if !matches!(n.value, Value::Table(_)) {
        let release = crate::windows::source::media(c, n, path, dir)?;
        return Some(KextSource { release, bundles: Vec::new() });
    }
    let f = c.fields(n, path, &["path", "url", "sha256", "bundles"]);
    let mut bundles = Vec::new();
    let mut bundles_ok = true;
    for (i, b) in c.list(&f, "bundles").iter().enumerate() {
        match c.node_str(&format!("{path}.bundles[{i}]"), b) {
            Some(name)
                if name.ends_with(".kext") && name.len() > 5 && name.len() <= 128 && !name.contains(['/', '\\']) =>
            {
                bundles.push(name.to_owned());
            }
            Some(name) => {
                c.error(&b.span, format!("kexts: bundle `{name}`: expected a bundle name such as \"Lilu.kext\""));
                bundles_ok = false;
            }
            None => bundles_ok = false,
        }
    }
    let release = match f.node("path") {
        Some(p) if f.get("url").is_some() || f.get("sha256").is_some() => {
            c.error(&p.span, "kexts: give either `path` or `url` and `sha256`, not both");
            None
        }
        Some(p) => crate::windows::source::media(c, p, &f.path("path"), dir),
        None => crate::windows::source::download(c, n, &f, path),
    };
    bundles_ok.then_some(KextSource { release: release?, bundles })
}
