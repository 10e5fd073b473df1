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

use diag::doc::{Node, Value};
use diag::{Checker, Fields};
use serde::Serialize;

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

const WINDOWS_KEYS: &[&str] = &[
    "version",
    "iso",
    "edition",
    "virtio",
    "passwordFile",
    "computerName",
    "timeZone",
    "locale",
    "keyboard",
    "tpm",
    "secureBoot",
    "maxInstallTime",
    "automate",
    "guestTools",
];

/// Reads `[source.windows]`, recording every mistake in `c`; `hostname` is the recipe's (the default computer name;
/// `None` when it was itself invalid), `dir` the recipe's directory.
pub(crate) fn read(
    c: &mut Checker<'_>,
    node: &Node,
    hostname: Option<(&str, &Range<usize>)>,
    dir: &Path,
) -> Option<WindowsSource> {
    const P: &str = "source.windows";
    let f = c.fields(node, P, WINDOWS_KEYS);
    let version = c.required(&f, "version", &node.span).and_then(|n| match &n.value {
        Value::Int(10) => Some(WindowsVersion::Win10),
        Value::Int(11) => Some(WindowsVersion::Win11),
        Value::Str(s) if s == "10" => Some(WindowsVersion::Win10),
        Value::Str(s) if s == "11" => Some(WindowsVersion::Win11),
        _ => {
            c.error(&n.span, format!("{P}.version: expected 10 or 11"));
            None
        }
    });
    let iso = f.node("iso").and_then(|n| media(c, n, &format!("{P}.iso"), dir));
    let virtio = f.node("virtio").and_then(|n| media(c, n, &format!("{P}.virtio"), dir));
    let edition = c.required(&f, "edition", &node.span).and_then(|n| match &n.value {
        Value::Int(i) if (1..=1000).contains(i) => u32::try_from(*i).ok().map(EditionChoice::Index),
        Value::Str(s) if !s.trim().is_empty() && s.len() <= 128 && !s.contains(char::is_control) => {
            Some(EditionChoice::Name(s.trim().to_owned()))
        }
        _ => {
            c.error(&n.span, format!("{P}.edition: expected an edition name such as \"Pro\" or its index (1, 2, …)"));
            None
        }
    });
    let password_file = c.required(&f, "passwordFile", &node.span).and_then(|n| {
        let path = dir.join(c.node_str(&format!("{P}.passwordFile"), n)?);
        if !path.is_file() {
            c.error(
                &n.span,
                format!(
                    "passwordFile: no such file {} (write the password on one line into it; it is never put in the \
                     recipe)",
                    path.display()
                ),
            );
            return None;
        }
        Some(path)
    });
    let computer_name = match f.node("computerName") {
        Some(n) => c.node_str(&format!("{P}.computerName"), n).and_then(|name| match validate_computer_name(name) {
            Ok(()) => Some(name.to_owned()),
            Err(m) => {
                c.error(&n.span, m);
                None
            }
        }),
        None => hostname.and_then(|(name, span)| match validate_computer_name(name) {
            Ok(()) => Some(name.to_owned()),
            Err(m) => {
                c.error(span, format!("{m}; give `computerName` in the windows source"));
                None
            }
        }),
    };
    let time_zone = checked(c, &f, "timeZone", "UTC", |v| {
        let ok = !v.trim().is_empty()
            && v.len() <= 64
            && v.chars().all(|ch| ch.is_ascii_alphanumeric() || " .-+()_".contains(ch));
        ok.then_some(()).ok_or_else(|| {
            format!("timeZone `{v}`: expected a Windows time zone id such as \"UTC\" or \"W. Europe Standard Time\"")
        })
    });
    let locale = checked(c, &f, "locale", "en-US", |v| {
        is_language_tag(v).then_some(()).ok_or_else(|| format!("locale `{v}`: expected a language tag such as en-US"))
    });
    let keyboard = checked(c, &f, "keyboard", locale.as_deref().unwrap_or("en-US"), |v| {
        (is_language_tag(v) || is_input_locale_pair(v))
            .then_some(())
            .ok_or_else(|| format!("keyboard `{v}`: expected a language tag (en-US) or a pair such as 0409:00000409"))
    });
    let max_install_secs = match f.node("maxInstallTime") {
        Some(n) => install_time(c, n, &format!("{P}.maxInstallTime"), "\"90m\" or \"3h\""),
        None => parse_duration(DEFAULT_MAX_INSTALL),
    };
    let automate = f.node("automate").and_then(|n| existing_file(c, n, "automate", dir));
    let tpm = c.bool(&f, "tpm");
    let secure_boot = c.bool(&f, "secureBoot");
    let guest_tools = c.bool(&f, "guestTools");
    let version = version?;
    let eleven = version == WindowsVersion::Win11;
    Some(WindowsSource {
        version,
        iso,
        edition: edition?,
        virtio,
        password_file: password_file?,
        computer_name: computer_name?,
        time_zone: time_zone?,
        locale: locale?,
        keyboard: keyboard?,
        tpm: tpm.unwrap_or(eleven),
        secure_boot: secure_boot.unwrap_or(eleven),
        max_install_secs: max_install_secs?,
        automate,
        guest_tools: guest_tools.unwrap_or(true),
    })
}

/// An optional one-line string checked by `check` (whose error is the message), or `default`.
fn checked(
    c: &mut Checker<'_>,
    f: &Fields<'_>,
    key: &str,
    default: &str,
    check: impl Fn(&str) -> Result<(), String>,
) -> Option<String> {
    let Some(n) = f.node(key) else { return Some(default.to_owned()) };
    let v = c.node_str(&f.path(key), n)?;
    match check(v) {
        Ok(()) => Some(v.to_owned()),
        Err(m) => {
            c.error(&n.span, m);
            None
        }
    }
}

/// `maxInstallTime`: a duration from 1m to 48h, in seconds.
pub(crate) fn install_time(c: &mut Checker<'_>, n: &Node, path: &str, example: &str) -> Option<u64> {
    let v = c.node_str(path, n)?;
    let secs = parse_duration(v).filter(|s| (60..=48 * 3600).contains(s));
    if secs.is_none() {
        c.error(&n.span, format!("maxInstallTime `{v}`: expected a duration from 1m to 48h such as {example}"));
    }
    secs
}

/// A file named relative to the recipe that must exist (`automate`).
pub(crate) fn existing_file(c: &mut Checker<'_>, n: &Node, key: &str, dir: &Path) -> Option<PathBuf> {
    let v = c.node_str(key, n)?;
    let path = dir.join(v);
    if v.is_empty() || !path.is_file() {
        c.error(&n.span, format!("{key}: no such file {}", path.display()));
        return None;
    }
    Some(path)
}

/// A piece of media in a recipe: a path (resolved against `dir`) or `{ url, sha256 }`; `path` names it in messages.
pub(crate) fn media(c: &mut Checker<'_>, n: &Node, path: &str, dir: &Path) -> Option<MediaSource> {
    match &n.value {
        Value::Str(p) if !p.is_empty() => Some(MediaSource::Path(dir.join(c.node_str(path, n)?))),
        Value::Table(_) => {
            let f = c.fields(n, path, &["url", "sha256"]);
            download(c, n, &f, path)
        }
        _ => {
            c.error(&n.span, format!("{path}: expected a file path or {{ url = \"…\", sha256 = \"…\" }}"));
            None
        }
    }
}

/// The `url` and `sha256` of a download table `n` (fields `f`): both required, the digest well-formed and the URL
/// one vmkit fetches.
pub(crate) fn download(c: &mut Checker<'_>, n: &Node, f: &Fields<'_>, path: &str) -> Option<MediaSource> {
    let (Some(url), Some(sha)) = (f.node("url"), f.node("sha256")) else {
        c.error(&n.span, format!("{path}: a download needs both `url` and `sha256` (strings)"));
        return None;
    };
    let (url, sha) = (c.node_str(&f.path("url"), url)?, c.node_str(&f.path("sha256"), sha)?);
    let digest = match sha.parse::<fetch::Sha256>() {
        Ok(d) => d,
        Err(e) => {
            c.error(&n.span, format!("{path}: {e}"));
            return None;
        }
    };
    match fetch::Source::new(url, digest) {
        Ok(src) => Some(MediaSource::Download { url: src.url().to_string(), sha256: digest.to_hex() }),
        Err(e) => {
            c.error(&n.span, format!("{path}: {e}"));
            None
        }
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
