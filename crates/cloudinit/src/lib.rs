//! cloud-init NoCloud seeds from a typed model.
//!
//! An unattended Linux image build hands its first-boot configuration to cloud-init: who can log in (a user with an
//! SSH key and sudo, no password), the hostname, extra packages, files and commands. This crate turns a
//! [`CloudConfig`] (and optionally a [`NetworkConfig`]) into `user-data`, `meta-data` and `network-config`, packs
//! them into a NoCloud seed image — ISO9660 `cidata` with Joliet and Rock Ridge, or vfat `CIDATA` — and makes the
//! ed25519 [`KeyPair`] the user logs in with. Values are validated before anything is rendered, and the YAML comes
//! from a serializer, so user text cannot change the document's structure.
//!
//! ```
//! let keys = cloudinit::KeyPair::generate("vmkit@demo")?;
//! let mut config = cloudinit::CloudConfig::new("demo");
//! config.users.push(cloudinit::User::admin("agent", vec![keys.public_openssh()]));
//! let seed = cloudinit::Seed::new(&config, None)?;
//! let iso = seed.image(cloudinit::SeedFormat::Iso)?;
//! assert!(seed.user_data.starts_with("#cloud-config\n"));
//! # assert!(iso.len() > 32 * 1024);
//! # Ok::<(), cloudinit::CloudInitError>(())
//! ```

mod config;
mod keys;
mod network;
mod seed;

use std::path::PathBuf;

pub use config::{
    CloudConfig, RunCommand, User, WriteFile, validate_authorized_key, validate_hostname, validate_package,
    validate_username,
};
pub use keys::{KeyFiles, KeyPair};
pub use network::{Ethernet, Match, NetworkConfig};
pub use seed::{Seed, SeedFormat};

/// What can go wrong building a seed.
#[derive(Debug, thiserror::Error)]
pub enum CloudInitError {
    /// A value the guest or cloud-init would not accept.
    #[error("invalid {field} `{value}`: expected {expected}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: String,
        /// What a valid value looks like.
        expected: String,
    },
    /// Rendering a document or image failed.
    #[error("writing {what}: {reason}")]
    Render {
        /// Which output.
        what: &'static str,
        /// The cause.
        reason: String,
    },
    /// Generating, reading or encoding a key failed.
    #[error("{what}: {reason}")]
    Key {
        /// What was being done.
        what: String,
        /// The cause.
        reason: String,
    },
    /// A key file is already there: vmkit never overwrites a key.
    #[error("{} already exists; vmkit never overwrites a key (remove it or choose another directory)", path.display())]
    KeyExists {
        /// The file.
        path: PathBuf,
    },
    /// Writing a file failed.
    #[error("writing {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Serializes a document as YAML that any YAML 1.1 or 1.2 reader loads back to the same values.
///
/// Multi-line text comes out as literal blocks (`|`); single-line values are never folded, so an SSH key stays one
/// readable line; values that YAML 1.1 would re-type (`yes`, `0644`) are quoted (the serializer's default).
pub(crate) fn to_yaml<T: serde::Serialize>(what: &'static str, doc: &T) -> Result<String, CloudInitError> {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.folded_wrap_chars = usize::MAX;
    serde_saphyr::to_string_with_options(doc, options)
        .map_err(|e| CloudInitError::Render { what, reason: e.to_string() })
}

impl CloudInitError {
    /// True when the error is about the caller's input rather than the machine.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::Invalid { .. } | Self::KeyExists { .. })
    }
}
