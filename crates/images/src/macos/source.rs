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

use std::ops::Range;
use std::path::{Path, PathBuf};

use fetch::macos::MacosVersion;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::macos::smbios::MacModel;
use crate::recipe::RecipeError;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawMacos {
    version: Spanned<toml::Value>,
    opencore: Spanned<toml::Value>,
    recovery: Option<Spanned<String>>,
    model: Option<Spanned<String>>,
    verbose_boot: Option<bool>,
    #[serde(default)]
    boot_args: Vec<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    automate: Option<Spanned<String>>,
    max_install_time: Option<Spanned<String>>,
    #[serde(default)]
    kexts: Vec<Spanned<toml::Value>>,
}

type At<'a> = &'a dyn Fn(Range<usize>, String) -> RecipeError;

impl RawMacos {
    /// The version, when it is valid (for defaults that depend on it; [`Self::validate`] reports it otherwise).
    pub(crate) fn version_hint(&self) -> Option<MacosVersion> {
        match self.version.get_ref() {
            toml::Value::String(s) => s.parse().ok(),
            toml::Value::Integer(i) => i.to_string().parse().ok(),
            _ => None,
        }
    }

    /// Validates the table; `dir` is the recipe's directory.
    pub(crate) fn validate(self, dir: &Path, at: At<'_>) -> Result<MacosSource, RecipeError> {
        let version = self.version_hint().ok_or_else(|| {
            at(
                self.version.span(),
                format!(
                    "version {}: expected one of ventura, sonoma, sequoia, tahoe (or 13, 14, 15, 26)",
                    self.version.get_ref()
                ),
            )
        })?;
        let opencore = crate::windows::source::media(self.opencore, "opencore", dir, at)?;
        let recovery = match &self.recovery {
            Some(r) if r.get_ref().is_empty() || r.get_ref().contains('\0') => {
                return Err(at(r.span(), "recovery: expected the path of a recovery image (.dmg)".to_owned()));
            }
            Some(r) => Some(dir.join(r.get_ref())),
            None => None,
        };
        let model = match &self.model {
            Some(m) => {
                let model = MacModel::named(m.get_ref()).ok_or_else(|| {
                    at(m.span(), format!("model `{}`: expected iMacPro1,1 or MacPro7,1", m.get_ref()))
                })?;
                if model.name == "iMacPro1,1" && version == MacosVersion::Tahoe {
                    return Err(at(m.span(), "model iMacPro1,1: macOS 26 Tahoe does not support it".to_owned()));
                }
                model.name.to_owned()
            }
            None => MacModel::default_for(version).name.to_owned(),
        };
        if self.boot_args.len() > 16 {
            return Err(at(self.boot_args[16].span(), "bootArgs: at most 16 arguments".to_owned()));
        }
        let mut boot_args = Vec::new();
        for arg in &self.boot_args {
            let a = arg.get_ref();
            let ok = !a.is_empty()
                && a.len() <= 64
                && a.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.=,:+/".contains(&b));
            if !ok {
                return Err(at(
                    arg.span(),
                    format!("bootArgs `{a}`: one argument of letters, digits and -_.=,:+/ (at most 64)"),
                ));
            }
            boot_args.push(a.clone());
        }
        let file = |key: &str, value: &Option<Spanned<String>>| -> Result<Option<PathBuf>, RecipeError> {
            let Some(v) = value else { return Ok(None) };
            let path = dir.join(v.get_ref());
            if v.get_ref().is_empty() || !path.is_file() {
                return Err(at(v.span(), format!("{key}: no such file {}", path.display())));
            }
            Ok(Some(path))
        };
        // Read by `image build` only (prepare needs no password), so not required to exist yet.
        let password_file = match &self.password_file {
            Some(p) if p.get_ref().is_empty() || p.get_ref().contains('\0') => {
                return Err(at(p.span(), "passwordFile: expected the path of a file".to_owned()));
            }
            Some(p) => Some(dir.join(p.get_ref())),
            None => None,
        };
        let automate = file("automate", &self.automate)?;
        let max_install_secs = match &self.max_install_time {
            Some(m) => crate::windows::source::parse_duration(m.get_ref())
                .filter(|s| (60..=48 * 3600).contains(s))
                .ok_or_else(|| {
                    at(
                        m.span(),
                        format!(
                            "maxInstallTime `{}`: expected a duration from 1m to 48h such as \"90m\" or \"6h\"",
                            m.get_ref()
                        ),
                    )
                })?,
            None => crate::windows::source::parse_duration(DEFAULT_MAX_INSTALL).unwrap_or(8 * 3600),
        };
        if self.kexts.len() > 32 {
            return Err(at(self.kexts[32].span(), "kexts: at most 32 releases".to_owned()));
        }
        let mut kexts = Vec::new();
        for k in self.kexts {
            kexts.push(kext_source(k, dir, at)?);
        }
        Ok(MacosSource {
            version,
            opencore,
            recovery,
            model,
            verbose_boot: self.verbose_boot.unwrap_or(true),
            boot_args,
            password_file,
            automate,
            max_install_secs,
            kexts,
        })
    }
}

/// One `kexts` item: a path, `{ url, sha256 }`, or either with `bundles = ["X.kext", …]` (`{ path = … }` for a
/// path with bundles).
fn kext_source(value: Spanned<toml::Value>, dir: &Path, at: At<'_>) -> Result<KextSource, RecipeError> {
    let span = value.span();
    let mut value = value.into_inner();
    let mut bundles = Vec::new();
    if let toml::Value::Table(t) = &mut value {
        if let Some(b) = t.remove("bundles") {
            let toml::Value::Array(items) = b else {
                return Err(at(span, "kexts: `bundles` is a list of bundle names such as \"Lilu.kext\"".to_owned()));
            };
            for item in items {
                match item {
                    toml::Value::String(name)
                        if name.ends_with(".kext")
                            && name.len() > 5
                            && name.len() <= 128
                            && !name.contains(['/', '\\', '\0']) =>
                    {
                        bundles.push(name);
                    }
                    other => {
                        return Err(at(
                            span,
                            format!("kexts: bundle {other}: expected a bundle name such as \"Lilu.kext\""),
                        ));
                    }
                }
            }
        }
        if let Some(p) = t.remove("path") {
            if !t.is_empty() {
                return Err(at(span, "kexts: give either `path` or `url` and `sha256`, not both".to_owned()));
            }
            value = p;
        }
    }
    let release = crate::windows::source::media(Spanned::new(span, value), "kexts", dir, at)?;
    Ok(KextSource { release, bundles })
}
