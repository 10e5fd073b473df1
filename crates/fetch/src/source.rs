//! What to fetch: a URL and the SHA-256 it must have, plus the named sources vmkit knows the URL pattern of.
//!
//! A digest is required everywhere: there is no "latest", no "trust on first use". Named sources only build the
//! URL from validated parts; they never guess a hash.
//! - Ubuntu cloud images live at
//!   `https://cloud-images.ubuntu.com/releases/<codename>/release[-<YYYYMMDD>]/ubuntu-<version>-server-cloudimg-<arch>.img`.
//!   The undated `release/` directory moves to each new point build (and its hash with it), so recipes should pin a
//!   dated `release-YYYYMMDD` directory, whose files never change.
//! - VirtIO drivers for Windows live in Fedora's archive,
//!   `https://fedorapeople.org/groups/virt/virtio-win/direct-downloads/archive-virtio/virtio-win-<version>/virtio-win.iso`,
//!   one directory per build (`0.1.266-1`), never rewritten.

use reqwest::Url;

use crate::download::parse_url;
use crate::{FetchError, Sha256};

/// A file to fetch: where from and what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    url: Url,
    sha256: Sha256,
    name: String,
}

impl Source {
    /// A source from a URL (`http`, `https` or `file`) and the digest the file must have.
    pub fn new(url: &str, sha256: Sha256) -> Result<Self, FetchError> {
        let url = parse_url(url)?;
        let local_name = (url.scheme() == "file")
            .then(|| url.to_file_path().ok())
            .flatten()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        let name = local_name.or_else(|| {
            url.path_segments().and_then(|mut s| s.next_back()).filter(|s| !s.is_empty()).map(str::to_owned)
        });
        let name = name.unwrap_or_else(|| url.host_str().unwrap_or("download").to_owned());
        Ok(Self { url, sha256, name })
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The digest the file must have.
    pub fn sha256(&self) -> &Sha256 {
        &self.sha256
    }

    /// A short name for messages (the URL's last path segment).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// An Ubuntu server cloud image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UbuntuCloudImage {
    /// The release version, e.g. `24.04`.
    pub version: String,
    /// The release codename, e.g. `noble`.
    pub codename: String,
    /// A dated build directory (`20260615`, giving `release-20260615/`); `None` is the moving `release/`.
    pub build: Option<String>,
    /// The architecture (`amd64`, `arm64`).
    pub arch: String,
    /// The image's SHA-256, from Canonical's `SHA256SUMS` for that directory.
    pub sha256: Sha256,
}

impl UbuntuCloudImage {
    /// The image's URL and digest.
    pub fn source(&self) -> Result<Source, FetchError> {
        let bad = |what: &str, value: &str, expect: &str| FetchError::BadSourceField {
            source_kind: "ubuntu cloud image",
            field: what.to_owned(),
            value: value.to_owned(),
            expected: expect.to_owned(),
        };
        if !is_version(&self.version) {
            return Err(bad("version", &self.version, "digits and dots, like 24.04"));
        }
        if self.codename.is_empty() || !self.codename.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(bad("codename", &self.codename, "lowercase letters, like noble"));
        }
        if self.arch.is_empty() || !self.arch.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            return Err(bad("arch", &self.arch, "like amd64 or arm64"));
        }
        let dir = match &self.build {
            None => "release".to_owned(),
            Some(build) => {
                let build = build.strip_prefix("release-").unwrap_or(build);
                if !is_build_date(build) {
                    return Err(bad("build", build, "a date like 20260615, optionally with .N"));
                }
                format!("release-{build}")
            }
        };
        let url = format!(
            "https://cloud-images.ubuntu.com/releases/{}/{dir}/ubuntu-{}-server-cloudimg-{}.img",
            self.codename, self.version, self.arch
        );
        Source::new(&url, self.sha256)
    }
}

/// The VirtIO drivers ISO for Windows guests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtioWin {
    /// The build, e.g. `0.1.266-1` (version and package release, as Fedora's archive names its directories).
    pub version: String,
    /// The ISO's SHA-256.
    pub sha256: Sha256,
}

/// The VirtIO build vmkit pins by default.
pub const VIRTIO_WIN_VERSION: &str = "0.1.266-1";
/// The SHA-256 of `virtio-win.iso` in [`VIRTIO_WIN_VERSION`]'s archive directory, as published for that build.
pub const VIRTIO_WIN_SHA256: &str = "57b0f6dc8dc92dc2ae8621f8b1bfbd8a873de9bedc788c4c4b305ea28acc77cd";

impl VirtioWin {
    /// The pinned default build.
    pub fn pinned() -> Self {
        let sha256 = VIRTIO_WIN_SHA256.parse().unwrap_or_else(|_| Sha256::of_bytes(b""));
        Self { version: VIRTIO_WIN_VERSION.to_owned(), sha256 }
    }

    /// The ISO's URL and digest.
    pub fn source(&self) -> Result<Source, FetchError> {
        let (version, release) = self.version.rsplit_once('-').unwrap_or((&self.version, ""));
        if !is_version(version) || release.is_empty() || !release.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FetchError::BadSourceField {
                source_kind: "virtio-win",
                field: "version".into(),
                value: self.version.clone(),
                expected: "a build like 0.1.266-1".into(),
            });
        }
        let url = format!(
            "https://fedorapeople.org/groups/virt/virtio-win/direct-downloads/archive-virtio/virtio-win-{}/virtio-win.iso",
            self.version
        );
        Source::new(&url, self.sha256)
    }
}

fn is_version(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

fn is_build_date(s: &str) -> bool {
    let (date, point) = s.split_once('.').unwrap_or((s, "0"));
    date.len() == 8
        && date.bytes().all(|b| b.is_ascii_digit())
        && !point.is_empty()
        && point.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> Sha256 {
        "5fa5b05e5ec239858c4531485d6023b0896448c2df7c63b34f8dae6ea6051a44".parse().unwrap()
    }

    #[test]
    fn ubuntu_urls_follow_the_published_layout() {
        let mut image = UbuntuCloudImage {
            version: "24.04".into(),
            codename: "noble".into(),
            build: None,
            arch: "amd64".into(),
            sha256: digest(),
        };
        assert_eq!(
            image.source().unwrap().url().as_str(),
            "https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-amd64.img"
        );
        image.build = Some("20260615".into());
        let source = image.source().unwrap();
        assert_eq!(
            source.url().as_str(),
            "https://cloud-images.ubuntu.com/releases/noble/release-20260615/ubuntu-24.04-server-cloudimg-amd64.img"
        );
        assert_eq!(source.name(), "ubuntu-24.04-server-cloudimg-amd64.img");
    }

    #[test]
    fn ubuntu_fields_are_validated() {
        let image = UbuntuCloudImage {
            version: "24.04/../x".into(),
            codename: "noble".into(),
            build: None,
            arch: "amd64".into(),
            sha256: digest(),
        };
        let err = image.source().unwrap_err().to_string();
        assert!(err.contains("version") && err.contains("24.04/../x"), "{err}");
        let image = UbuntuCloudImage { version: "24.04".into(), build: Some("2026-06-15".into()), ..image };
        assert!(image.source().unwrap_err().to_string().contains("build"));
    }

    #[test]
    fn virtio_url_is_the_archive_directory() {
        let source = VirtioWin::pinned().source().unwrap();
        assert_eq!(
            source.url().as_str(),
            "https://fedorapeople.org/groups/virt/virtio-win/direct-downloads/archive-virtio/virtio-win-0.1.266-1/virtio-win.iso"
        );
        assert_eq!(source.sha256().to_hex(), VIRTIO_WIN_SHA256);
        let bad = VirtioWin { version: "latest".into(), sha256: digest() };
        assert!(bad.source().is_err());
    }
}
