//! SSH key pairs for the accounts an image is built with.
//!
//! A fresh ed25519 pair per build (never a key committed to a repository): the public half goes into user-data,
//! the private half into the build's output with mode 0600 from the moment the file exists — it is created with
//! that mode in a temporary file and renamed into place, so there is no window in which it is readable by others
//! and no half-written key file. A user may bring their own unencrypted OpenSSH private key instead.

use std::path::{Path, PathBuf};

use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, HashAlg, PrivateKey};

use crate::CloudInitError;

/// An SSH key pair.
#[derive(Clone)]
pub struct KeyPair {
    key: PrivateKey,
    /// The `authorized_keys` line, made once when the pair is made or read, so that a key that cannot be encoded
    /// is an error there instead of an empty line in user-data later.
    public: String,
}

/// Where [`KeyPair::write`] put the two files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFiles {
    /// The private key (OpenSSH format, mode 0600).
    pub private: PathBuf,
    /// The public key (`authorized_keys` line, mode 0644).
    pub public: PathBuf,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("KeyPair").field("public", &self.public_openssh()).finish()
    }
}

impl KeyPair {
    /// A new random ed25519 key pair with `comment` (e.g. `vmkit@image-name`).
    pub fn generate(comment: &str) -> Result<Self, CloudInitError> {
        let mut key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
            .map_err(|e| CloudInitError::Key { what: "generating an ed25519 key".into(), reason: e.to_string() })?;
        key.set_comment(comment);
        Self::from_key(key, || "encoding the generated key".to_owned())
    }

    /// Reads an unencrypted OpenSSH private key file.
    pub fn load(path: &Path) -> Result<Self, CloudInitError> {
        let what = || format!("reading the private key {}", path.display());
        let text = userfile::read(path, userfile::Limit::Key)
            .map_err(|e| CloudInitError::Key { what: what(), reason: e.into_io().to_string() })?;
        let key =
            PrivateKey::from_openssh(&text).map_err(|e| CloudInitError::Key { what: what(), reason: e.to_string() })?;
        if key.is_encrypted() {
            return Err(CloudInitError::Key {
                what: what(),
                reason: "it is passphrase-protected; an unattended build needs a key without one".into(),
            });
        }
        Self::from_key(key, what)
    }

    fn from_key(key: PrivateKey, what: impl Fn() -> String) -> Result<Self, CloudInitError> {
        let public = key
            .public_key()
            .to_openssh()
            .map_err(|e| CloudInitError::Key { what: what(), reason: format!("encoding the public key: {e}") })?;
        Ok(Self { key, public })
    }

    /// The `authorized_keys` line: `ssh-ed25519 AAAA… comment`.
    pub fn public_openssh(&self) -> String {
        self.public.clone()
    }

    /// The SHA-256 fingerprint as `ssh-keygen -l` shows it (`SHA256:…`).
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The key for an SSH client.
    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }

    /// The two files [`KeyPair::write`] writes into `dir` for `name`.
    pub fn files(dir: &Path, name: &str) -> KeyFiles {
        KeyFiles { private: dir.join(name), public: dir.join(format!("{name}.pub")) }
    }

    /// [`CloudInitError::KeyExists`] if either file of `name` is already in `dir` (a check before other work;
    /// [`KeyPair::write`] checks again as it writes).
    pub fn check_free(dir: &Path, name: &str) -> Result<(), CloudInitError> {
        let files = Self::files(dir, name);
        for path in [files.private, files.public] {
            if path.symlink_metadata().is_ok() {
                return Err(CloudInitError::KeyExists { path });
            }
        }
        Ok(())
    }

    /// Writes `<dir>/<name>` (private, 0600) and `<dir>/<name>.pub` (public, 0644), each atomically and never over
    /// an existing file: when either is there, nothing is written and the error is [`CloudInitError::KeyExists`].
    pub fn write(&self, dir: &Path, name: &str) -> Result<KeyFiles, CloudInitError> {
        Self::check_free(dir, name)?;
        let files = Self::files(dir, name);
        let pem = self
            .key
            .to_openssh(LineEnding::LF)
            .map_err(|e| CloudInitError::Key { what: "encoding the private key".into(), reason: e.to_string() })?;
        write_new(&files.private, pem.as_bytes(), 0o600)?;
        if let Err(e) = write_new(&files.public, format!("{}\n", self.public_openssh()).as_bytes(), 0o644) {
            let _ = std::fs::remove_file(&files.private);
            return Err(e);
        }
        Ok(files)
    }
}

/// Like [`write_atomic`], but fails with [`CloudInitError::KeyExists`] instead of replacing an existing `path`
/// (see [`store::write_new`]).
fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), CloudInitError> {
    store::write_new(path, data, mode).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => CloudInitError::KeyExists { path: path.to_owned() },
        _ => CloudInitError::Io { path: path.to_owned(), source },
    })
}

/// Writes `data` with `mode` over `path` atomically (see [`store::write_atomic`]).
pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), CloudInitError> {
    store::write_atomic(path, data, mode).map_err(|source| CloudInitError::Io { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let first = KeyPair::generate("first").unwrap();
        let files = first.write(dir.path(), "id_ed25519").unwrap();
        let before = std::fs::read(&files.private).unwrap();
        let second = KeyPair::generate("second").unwrap();
        let err = second.write(dir.path(), "id_ed25519").unwrap_err();
        assert!(matches!(&err, CloudInitError::KeyExists { path } if *path == files.private), "{err}");
        assert!(err.is_bad_input());
        assert_eq!(std::fs::read(&files.private).unwrap(), before, "the first key is intact");
        // Only the public half there: still nothing written.
        std::fs::remove_file(&files.private).unwrap();
        assert!(matches!(second.write(dir.path(), "id_ed25519"), Err(CloudInitError::KeyExists { .. })));
        assert!(!files.private.exists());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["id_ed25519.pub"], "no temporary file left");
    }

    #[test]
    fn generated_keys_are_written_with_safe_modes_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let pair = KeyPair::generate("vmkit@test").unwrap();
        let line = pair.public_openssh();
        assert!(line.starts_with("ssh-ed25519 AAAA") && line.ends_with(" vmkit@test"), "{line}");
        crate::config::validate_authorized_key(&line).unwrap();
        let files = pair.write(dir.path(), "id_ed25519").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files.private), 0o600);
        assert_eq!(mode(&files.public), 0o644);
        let text = std::fs::read_to_string(&files.private).unwrap();
        assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        let again = KeyPair::load(&files.private).unwrap();
        assert_eq!(again.public_openssh(), line);
        assert!(pair.fingerprint().starts_with("SHA256:"));
        assert!(!format!("{pair:?}").contains("PRIVATE"));
        // Two generations differ.
        assert_ne!(KeyPair::generate("x").unwrap().public_openssh(), KeyPair::generate("x").unwrap().public_openssh());
    }

    #[test]
    fn unreadable_key_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-key");
        std::fs::write(&path, "hello").unwrap();
        let err = KeyPair::load(&path).unwrap_err().to_string();
        assert!(err.contains("not-a-key"), "{err}");
    }
}
