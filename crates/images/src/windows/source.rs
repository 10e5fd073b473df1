//! The Windows source of a recipe: `source = { windows = { … } }`.
//!
//! ```toml
//! name = "windows-11"
//! username = "agent"                  # the local administrator the answer file creates
//! memory = 8192
//! diskSize = "64G"
//!
//! [source.windows]
//! version = 11                        # 10 or 11: picks the VirtIO driver directories and the defaults below
//! iso = "Win11_24H2_English_x64.iso"  # or { url = "https://…", sha256 = "…" }; `--iso PATH` overrides
//! edition = "Pro"                     # an edition name from the ISO, or its index (`edition = 6`)
//! virtio = { url = "https://…/virtio-win-0.1.271.iso", sha256 = "…" }   # or a path; `--virtio PATH` overrides
//! passwordFile = "windows-password"   # one line; never in the recipe, never logged
//! computerName = "WIN11-VMKIT"        # default: the hostname, if it is a valid NetBIOS name
//! timeZone = "W. Europe Standard Time"
//! locale = "de-DE"                    # UI, system and user locale
//! keyboard = "de-DE"                  # or an input locale pair such as "0407:00000407"; default: locale
//! tpm = true                          # default: true for 11, false for 10
//! secureBoot = true                   # default: true for 11, false for 10
//! maxInstallTime = "3h"               # from first boot until SSH answers
//! automate = "setup-helper.yaml"      # an optional automation script run against the screen during install
//! ```
//!
//! Values are checked where they land: the computer name against NetBIOS rules, the user name against Windows'
//! rules for local accounts, the locale and keyboard against the forms Windows Setup takes, the time zone against
//! the characters Windows' zone ids use. Paths are resolved against the recipe's directory. The password file is
//! only checked for existence here; its contents are read when the answer file is written, and never recorded.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::recipe::RecipeError;

/// Windows 10 or 11.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WindowsVersion {
    /// Windows 10.
    #[serde(rename = "10")]
    Win10,
    /// Windows 11.
    #[serde(rename = "11")]
    Win11,
}

impl WindowsVersion {
    /// The directory name the VirtIO driver media uses for this version (`w10`, `w11`).
    pub fn virtio_dir(self) -> &'static str {
        match self {
            Self::Win10 => "w10",
            Self::Win11 => "w11",
        }
    }

    /// `10` or `11`.
    pub fn number(self) -> u32 {
        match self {
            Self::Win10 => 10,
            Self::Win11 => 11,
        }
    }
}

/// Where a piece of media comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MediaSource {
    /// A local file (resolved against the recipe's directory).
    Path(PathBuf),
    /// A download with its required SHA-256.
    Download {
        /// Where from.
        url: String,
        /// Its SHA-256 (lowercase hex).
        sha256: String,
    },
}

/// Which image of the install WIM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EditionChoice {
    /// By name (`Pro`, `Windows 11 Pro`, an edition id such as `Professional`), matched by the media reader.
    Name(String),
    /// By 1-based index into the WIM.
    Index(u32),
}

/// An unattended Windows install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowsSource {
    /// 10 or 11.
    pub version: WindowsVersion,
    /// The install ISO; `None` means it must come from `--iso`.
    pub iso: Option<MediaSource>,
    /// The edition to install.
    pub edition: EditionChoice,
    /// The VirtIO driver media; `None` means it must come from `--virtio`.
    pub virtio: Option<MediaSource>,
    /// The file holding the administrator's password (its contents are never recorded).
    pub password_file: PathBuf,
    /// NetBIOS computer name (≤ 15 characters).
    pub computer_name: String,
    /// A Windows time zone id (`UTC`, `W. Europe Standard Time`).
    pub time_zone: String,
    /// UI, system and user locale (`en-US`).
    pub locale: String,
    /// Input locale (`en-US` or `0409:00000409`).
    pub keyboard: String,
    /// A TPM 2.0 (swtpm) on the machine.
    pub tpm: bool,
    /// Secure Boot firmware with Microsoft's keys.
    pub secure_boot: bool,
    /// How long the install may take from first boot until SSH answers, in seconds.
    pub max_install_secs: u64,
    /// An automation script run against the screen while Setup runs.
    pub automate: Option<PathBuf>,
    /// Install the VirtIO guest tools (balloon, QEMU guest agent, …) at first logon.
    pub guest_tools: bool,
}

impl WindowsSource {
    /// `maxInstallTime` as a duration.
    pub fn max_install_time(&self) -> Duration {
        Duration::from_secs(self.max_install_secs)
    }
}

/// Default `maxInstallTime`: hours under TCG are expected, so the default is generous.
pub const DEFAULT_MAX_INSTALL: &str = "4h";
/// Default memory for Windows sources, in MiB (Windows 11's minimum).
pub const DEFAULT_WINDOWS_MEMORY: u32 = 4096;
/// Default disk size for Windows sources (Windows 11's minimum).
pub const DEFAULT_WINDOWS_DISK: &str = "64G";

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawWindows {
    version: Spanned<toml::Value>,
    iso: Option<Spanned<toml::Value>>,
    edition: Spanned<toml::Value>,
    virtio: Option<Spanned<toml::Value>>,
    password_file: Spanned<String>,
    computer_name: Option<Spanned<String>>,
    time_zone: Option<Spanned<String>>,
    locale: Option<Spanned<String>>,
    keyboard: Option<Spanned<String>>,
    tpm: Option<bool>,
    secure_boot: Option<bool>,
    max_install_time: Option<Spanned<String>>,
    automate: Option<Spanned<String>>,
    guest_tools: Option<bool>,
}

type At<'a> = &'a dyn Fn(Range<usize>, String) -> RecipeError;

impl RawWindows {
    /// Validates the table; `hostname` is the recipe's (the default computer name), `dir` the recipe's directory.
    pub(crate) fn validate(
        self,
        hostname: &str,
        hostname_span: Range<usize>,
        dir: &Path,
        at: At<'_>,
    ) -> Result<WindowsSource, RecipeError> {
        let version = match self.version.get_ref() {
            toml::Value::Integer(10) => WindowsVersion::Win10,
            toml::Value::Integer(11) => WindowsVersion::Win11,
            toml::Value::String(s) if s == "10" => WindowsVersion::Win10,
            toml::Value::String(s) if s == "11" => WindowsVersion::Win11,
            other => return Err(at(self.version.span(), format!("version {other}: expected 10 or 11"))),
        };
        let iso = self.iso.map(|v| media(v, "iso", dir, at)).transpose()?;
        let virtio = self.virtio.map(|v| media(v, "virtio", dir, at)).transpose()?;
        let edition = match self.edition.get_ref() {
            toml::Value::Integer(i) if (1..=1000).contains(i) => EditionChoice::Index(*i as u32),
            toml::Value::String(s) if !s.trim().is_empty() && s.len() <= 128 && !s.contains(char::is_control) => {
                EditionChoice::Name(s.trim().to_owned())
            }
            other => {
                return Err(at(
                    self.edition.span(),
                    format!("edition {other}: expected an edition name such as \"Pro\" or its index (1, 2, …)"),
                ));
            }
        };
        let password_file = dir.join(self.password_file.get_ref());
        if !password_file.is_file() {
            return Err(at(
                self.password_file.span(),
                format!(
                    "passwordFile: no such file {} (write the password on one line into it; it is never put in the \
                     recipe)",
                    password_file.display()
                ),
            ));
        }
        let computer_name = match &self.computer_name {
            Some(c) => {
                validate_computer_name(c.get_ref()).map_err(|m| at(c.span(), m))?;
                c.get_ref().clone()
            }
            None => {
                validate_computer_name(hostname)
                    .map_err(|m| at(hostname_span, format!("{m}; give `computerName` in the windows source")))?;
                hostname.to_owned()
            }
        };
        let time_zone = match &self.time_zone {
            Some(t) => {
                let v = t.get_ref();
                let ok = !v.trim().is_empty()
                    && v.len() <= 64
                    && v.chars().all(|c| c.is_ascii_alphanumeric() || " .-+()_".contains(c));
                if !ok {
                    return Err(at(
                        t.span(),
                        format!(
                            "timeZone `{v}`: expected a Windows time zone id such as \"UTC\" or \"W. Europe Standard Time\""
                        ),
                    ));
                }
                v.clone()
            }
            None => "UTC".to_owned(),
        };
        let locale = match &self.locale {
            Some(l) => {
                if !is_language_tag(l.get_ref()) {
                    return Err(at(
                        l.span(),
                        format!("locale `{}`: expected a language tag such as en-US", l.get_ref()),
                    ));
                }
                l.get_ref().clone()
            }
            None => "en-US".to_owned(),
        };
        let keyboard = match &self.keyboard {
            Some(k) => {
                if !is_language_tag(k.get_ref()) && !is_input_locale_pair(k.get_ref()) {
                    return Err(at(
                        k.span(),
                        format!(
                            "keyboard `{}`: expected a language tag (en-US) or a pair such as 0409:00000409",
                            k.get_ref()
                        ),
                    ));
                }
                k.get_ref().clone()
            }
            None => locale.clone(),
        };
        let max_install_secs = match &self.max_install_time {
            Some(m) => parse_duration(m.get_ref()).filter(|s| (60..=48 * 3600).contains(s)).ok_or_else(|| {
                at(
                    m.span(),
                    format!(
                        "maxInstallTime `{}`: expected a duration from 1m to 48h such as \"90m\" or \"3h\"",
                        m.get_ref()
                    ),
                )
            })?,
            None => parse_duration(DEFAULT_MAX_INSTALL).unwrap_or(4 * 3600),
        };
        let automate = match &self.automate {
            Some(a) => {
                let path = dir.join(a.get_ref());
                if !path.is_file() {
                    return Err(at(a.span(), format!("automate: no such file {}", path.display())));
                }
                Some(path)
            }
            None => None,
        };
        let eleven = version == WindowsVersion::Win11;
        Ok(WindowsSource {
            version,
            iso,
            edition,
            virtio,
            password_file,
            computer_name,
            time_zone,
            locale,
            keyboard,
            tpm: self.tpm.unwrap_or(eleven),
            secure_boot: self.secure_boot.unwrap_or(eleven),
            max_install_secs,
            automate,
            guest_tools: self.guest_tools.unwrap_or(true),
        })
    }
}

/// A piece of media in a recipe: a path (resolved against `dir`) or `{ url, sha256 }`.
pub(crate) fn media(
    value: Spanned<toml::Value>,
    key: &str,
    dir: &Path,
    at: At<'_>,
) -> Result<MediaSource, RecipeError> {
    let span = value.span();
    match value.into_inner() {
        toml::Value::String(p) if !p.is_empty() && !p.contains('\0') => Ok(MediaSource::Path(dir.join(p))),
        toml::Value::Table(t) => {
            let keys: Vec<&str> = t.keys().map(String::as_str).collect();
            if let Some(unknown) = keys.iter().find(|k| !["url", "sha256"].contains(k)) {
                return Err(at(span, format!("{key}: unknown field `{unknown}`, expected `url` and `sha256`")));
            }
            let (Some(toml::Value::String(url)), Some(toml::Value::String(sha))) = (t.get("url"), t.get("sha256"))
            else {
                return Err(at(span, format!("{key}: a download needs both `url` and `sha256` (strings)")));
            };
            let digest: fetch::Sha256 =
                sha.parse().map_err(|e: fetch::FetchError| at(span.clone(), format!("{key}: {e}")))?;
            let src = fetch::Source::new(url, digest).map_err(|e| at(span.clone(), format!("{key}: {e}")))?;
            Ok(MediaSource::Download { url: src.url().to_string(), sha256: digest.to_hex() })
        }
        other => Err(at(span, format!("{key} {other}: expected a file path or {{ url = \"…\", sha256 = \"…\" }}"))),
    }
}

/// NetBIOS computer name rules Windows Setup enforces: 1–15 characters, letters, digits and `-`, not only digits,
/// not starting or ending with `-`.
pub fn validate_computer_name(name: &str) -> Result<(), String> {
    let ok = (1..=15).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.bytes().all(|b| b.is_ascii_digit())
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!("computer name `{name}`: use 1–15 letters, digits and `-` (not only digits, no `-` at either end)"))
    }
}

/// Windows' rules for a local account name: 1–20 characters, none of `"/\[]:;|=,+*?<>@`, no control characters,
/// not only dots and spaces, and not one of the built-in accounts (which the answer file cannot create).
pub fn validate_windows_user(name: &str) -> Result<(), String> {
    const RESERVED: [&str; 4] = ["administrator", "guest", "defaultaccount", "wdagutilityaccount"];
    let ok = (1..=20).contains(&name.chars().count())
        && !name.chars().any(|c| c.is_control() || "\"/\\[]:;|=,+*?<>@".contains(c))
        && !name.chars().all(|c| c == '.' || c == ' ')
        && name.trim() == name;
    if !ok {
        return Err(format!(
            "username `{name}`: a Windows account name has 1–20 characters, none of \"/\\[]:;|=,+*?<>@, and no \
             leading or trailing space"
        ));
    }
    if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!("username `{name}`: a built-in Windows account; choose another name"));
    }
    Ok(())
}

/// `en-US`, `de-DE`, `zh-Hans-CN`, `sr-Latn-RS`: letters, then letter/digit subtags, joined by `-`.
fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    let first = parts.next().unwrap_or("");
    (2..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_alphabetic())
        && s.len() <= 20
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `0409:00000409`: a language id and a keyboard layout id, in hex.
fn is_input_locale_pair(s: &str) -> bool {
    s.split(';').all(|pair| {
        let mut it = pair.split(':');
        matches!((it.next(), it.next(), it.next()), (Some(l), Some(k), None)
            if l.len() == 4 && k.len() == 8 && l.bytes().chain(k.bytes()).all(|b| b.is_ascii_hexdigit()))
    }) && !s.is_empty()
        && s.len() <= 64
}

/// `90m`, `3h`, `45s`, `1h30m` → seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut any = false;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        digits.clear();
        any = true;
    }
    (any && digits.is_empty()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computer_names() {
        assert!(validate_computer_name("WIN11-VMKIT").is_ok());
        assert!(validate_computer_name("a").is_ok());
        for bad in ["", "1234", "-abc", "abc-", "way-too-long-name-x", "a_b", "a.b", "a b"] {
            assert!(validate_computer_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_users() {
        for good in ["agent", "Agent Smith", "j.doe", "Zoë"] {
            assert!(validate_windows_user(good).is_ok(), "{good}");
        }
        for bad in ["", "a/b", "x@y", "...", "Administrator", "GUEST", " lead", "twenty-one-characters"] {
            assert!(validate_windows_user(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn locales_and_durations() {
        assert!(is_language_tag("en-US") && is_language_tag("zh-Hans-CN") && !is_language_tag("english"));
        assert!(is_input_locale_pair("0409:00000409") && !is_input_locale_pair("0409:409"));
        assert_eq!(parse_duration("90m"), Some(5400));
        assert_eq!(parse_duration("1h30m"), Some(5400));
        assert_eq!(parse_duration("3h"), Some(10800));
        assert_eq!(parse_duration("90"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("2d"), None);
    }
}
