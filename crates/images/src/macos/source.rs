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
        Ok(MacosSource {
            version,
            opencore,
            recovery,
            model,
            verbose_boot: self.verbose_boot.unwrap_or(true),
            boot_args,
        })
    }
}
