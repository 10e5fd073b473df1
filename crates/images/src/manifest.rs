//! `manifest.json`: what an output directory holds and how it was made.
//!
//! It records the inputs (the recipe, as validated) and their digest — the key that tells a rebuild with the same
//! inputs to do nothing — the base (a cloud image's URL and SHA-256, or a Debian base's mirror and every package
//! version), the machine the image was built and is run on, the SSH login, the SHA-256 and size of every other
//! file in the directory, the versions of the tools involved, and how long each step took. `vmkit image test`
//! reads it to boot the image and to check that no file changed since the build.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The manifest format; bump on incompatible changes.
pub const MANIFEST_FORMAT: u32 = 1;

/// A whole manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The vmkit version that built it.
    pub vmkit: String,
    /// The image's name.
    pub name: String,
    /// SHA-256 over the inputs: same value, same image.
    pub inputs_sha256: String,
    /// The recipe as validated (file contents inlined, the SSH key as its public half).
    pub inputs: serde_json::Value,
    /// The base system.
    pub base: BaseRecord,
    /// The machine.
    pub machine: MachineRecord,
    /// How to log in.
    pub ssh: SshRecord,
    /// The guest's hostname.
    pub hostname: String,
    /// Versions of the programs involved (host and guest).
    pub tools: BTreeMap<String, String>,
    /// Every file in the directory except the manifest: SHA-256 and size.
    pub outputs: BTreeMap<String, OutputRecord>,
    /// Which step of the shutdown ladder ended the build's QEMU (`guest`, `powerdown`, `quit`, `kill`).
    pub shutdown: String,
    /// Seconds per step.
    pub timings: BTreeMap<String, f64>,
    /// When the build finished (seconds since the Unix epoch).
    pub built_at_unix: u64,
    /// The identity the build boot had, removed before the image was published (each VM makes its own); absent in
    /// images built before vmkit generalised them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_identity: Option<crate::guest::GuestIdentity>,
}

/// The base system an image was built on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum BaseRecord {
    /// Built from Debian packages.
    #[serde(rename_all = "camelCase")]
    Debian {
        /// Suite.
        suite: String,
        /// Mirror.
        mirror: String,
        /// The base's cache key.
        key: String,
        /// Kernel release.
        kernel_release: String,
        /// `debootstrap --version`.
        debootstrap: String,
        /// Every package in the base with its version.
        packages: BTreeMap<String, String>,
    },
    /// Windows installed from Microsoft's media.
    #[serde(rename_all = "camelCase")]
    Windows {
        /// The install ISO (its path on the build host; URL and SHA-256 for downloads).
        iso: crate::windows::prepare::MediaRecord,
        /// The VirtIO driver media.
        virtio: crate::windows::prepare::MediaRecord,
        /// The image index installed.
        image_index: u32,
        /// The edition's name on the media.
        edition: String,
        /// The driver folders the answer file names.
        drivers: Vec<String>,
        /// Setup checks bypassed.
        bypasses: Vec<String>,
    },
    /// macOS installed from Apple's recovery image, booted through OpenCore.
    #[serde(rename_all = "camelCase")]
    Macos(Box<crate::macos::build::MacosRecord>),
    /// A downloaded cloud image.
    #[serde(rename_all = "camelCase")]
    CloudImage {
        /// URL.
        url: String,
        /// SHA-256.
        sha256: String,
        /// Its format (`qcow2`, `raw`).
        format: String,
    },
}

/// The machine (see [`crate::machine::ImageMachine`]); paths are relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineRecord {
    /// `kvm` or `tcg`, as used by the build and written into `run`.
    pub accel: String,
    /// Why that accelerator.
    pub accel_reason: String,
    /// MiB.
    pub memory: u32,
    /// vCPUs.
    pub cpus: u32,
    /// The disk image.
    pub disk: String,
    /// The NoCloud seed (Linux images).
    #[serde(default)]
    pub seed: Option<String>,
    /// The firmware and TPM of a Windows image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<WindowsMachineRecord>,
    /// The kernel, when the image boots one directly.
    pub kernel: Option<String>,
    /// The initrd, when the image boots a kernel directly.
    pub initrd: Option<String>,
    /// The disk's virtual size in bytes.
    pub disk_size: u64,
}

/// What a Windows image boots with besides its disk; paths relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowsMachineRecord {
    /// The firmware code (a host file of Debian's `ovmf`).
    pub firmware_code: String,
    /// The image's own UEFI variable store.
    pub vars: String,
    /// Secure Boot (SMM-protected flash, Microsoft's keys).
    pub secure_boot: bool,
    /// The TPM's state directory, when the image has a TPM.
    pub tpm_state: Option<String>,
}

/// The login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SshRecord {
    /// User.
    pub user: String,
    /// The host port `run` forwards to the guest's SSH.
    pub port: u16,
    /// The private key file, relative to the output directory (absent when the recipe brought its own key).
    pub private_key: Option<String>,
    /// The authorised public key.
    pub public_key: String,
    /// Its SHA-256 fingerprint.
    pub fingerprint: String,
}

impl SshRecord {
    /// The login of an image whose authorised key is `keypair`'s public half (`private_key`: the key file in the
    /// output directory, when the build generated it).
    pub fn new(user: &str, port: u16, private_key: Option<String>, keypair: &cloudinit::KeyPair) -> Self {
        Self {
            user: user.to_owned(),
            port,
            private_key,
            public_key: keypair.public_openssh(),
            fingerprint: keypair.fingerprint(),
        }
    }
}

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    /// SHA-256, hex.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

/// A manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not there or unreadable.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a manifest vmkit understands.
    #[error("{}: not a vmkit image manifest: {reason}", path.display())]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
}

impl Manifest {
    /// Reads `DIR/manifest.json`.
    pub fn load(dir: &Path) -> Result<Self, ManifestError> {
        let path = dir.join(MANIFEST);
        let bytes = userfile::read(&path, userfile::Limit::Config)
            .map_err(|e| ManifestError::Read { path: path.clone(), source: e.into_io() })?;
        let manifest: Self = serde_json::from_slice(&bytes)
            .map_err(|e| ManifestError::Invalid { path: path.clone(), reason: e.to_string() })?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(ManifestError::Invalid {
                path,
                reason: format!("format {} (this vmkit reads {MANIFEST_FORMAT})", manifest.format),
            });
        }
        Ok(manifest)
    }

    /// Whether every output is present with its recorded size (cheap: no hashing).
    pub fn outputs_present(&self, dir: &Path) -> bool {
        self.outputs
            .iter()
            .all(|(name, rec)| std::fs::metadata(dir.join(name)).is_ok_and(|m| m.is_file() && m.len() == rec.size))
    }

    /// The outputs whose contents no longer match the recorded SHA-256 (or are missing).
    pub fn changed_outputs(&self, dir: &Path) -> Vec<String> {
        self.outputs
            .iter()
            .filter(|(name, rec)| {
                fetch::Sha256::of_file(&dir.join(name)).map(|d| d.to_hex() != rec.sha256).unwrap_or(true)
            })
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// SHA-256 and size of `path`.
pub fn record(path: &Path) -> Result<OutputRecord, fetch::FetchError> {
    let sha256 = fetch::Sha256::of_file(path)?.to_hex();
    let size = std::fs::metadata(path)
        .map_err(|source| fetch::FetchError::Io { op: "inspecting", path: path.to_owned(), source })?
        .len();
    Ok(OutputRecord { sha256, size })
}
