//! The content-addressed cache on disk.
//!
//! Layout under the root:
//! - `sha256/<hex>` — a complete, verified file, read-only, named by its digest. Only ever created by a rename,
//!   so a reader never sees a half-written file, whatever happened to the writer.
//! - `partial/<hex>.part` — bytes received so far for a download that is not finished; kept when a download is
//!   interrupted so the next attempt resumes with an HTTP Range request, deleted when the digest is wrong.
//! - `partial/<hex>.lock` — held (advisory lock) while a process downloads `<hex>`, so two builds that need the same
//!   file do not write the same partial file; the second waits and then finds the file cached.
//!
//! - `refs/<kind>/<hex>` — a small text file naming the digest of a cached file that `<hex>` leads to (for a
//!   macOS recovery image: the digest of the chunklist that verified it), so a file whose own digest nobody could
//!   know in advance is still found again without downloading it.
//!
//! The root is, in order: an explicit path from the caller (a `--cache-dir` flag), `$VMKIT_CACHE_DIR`, or the
//! XDG cache directory (`$XDG_CACHE_HOME/vmkit`, usually `~/.cache/vmkit`).

use std::path::{Path, PathBuf};

use crate::{FetchError, Sha256};

/// The environment variable that moves vmkit's cache.
pub use store::CACHE_DIR_ENV;

/// A content-addressed download cache rooted at a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// A cache rooted at `root` (created on first write).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache the user asked for: `explicit` if given, else `$VMKIT_CACHE_DIR`, else the XDG cache directory.
    pub fn locate(explicit: Option<&Path>) -> Result<Self, FetchError> {
        store::cache_root(explicit).map(Self::at).map_err(|_| FetchError::NoCacheDir)
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the file with this digest lives once cached (it may not exist yet).
    pub fn blob_path(&self, digest: &Sha256) -> PathBuf {
        self.root.join("sha256").join(digest.to_hex())
    }

    /// The cached file with this digest, if it is there. No network, no hashing.
    pub fn lookup(&self, digest: &Sha256) -> Option<PathBuf> {
        let path = self.blob_path(digest);
        path.is_file().then_some(path)
    }

    /// Re-hashes a cached file; a file whose contents no longer match its name (disk corruption, someone editing
    /// the cache) is removed so the next fetch downloads it again. Returns whether the file was good.
    pub fn verify(&self, digest: &Sha256) -> Result<bool, FetchError> {
        let path = self.blob_path(digest);
        if !path.is_file() {
            return Ok(false);
        }
        if Sha256::of_file(&path)? == *digest {
            return Ok(true);
        }
        std::fs::remove_file(&path).map_err(|source| FetchError::Io { op: "removing", path, source })?;
        Ok(false)
    }

    /// True when an interrupted download of this digest left bytes to resume from.
    pub fn has_partial(&self, digest: &Sha256) -> bool {
        self.partial_path(digest).is_file()
    }

    /// Puts bytes that are already verified into the cache (atomically) and returns the cached file.
    pub fn insert_bytes(&self, data: &[u8]) -> Result<crate::Fetched, FetchError> {
        let sha256 = Sha256::of_bytes(data);
        let path = self.blob_path(&sha256);
        if !path.is_file() {
            self.ensure_dirs()?;
            write_atomically(&path, data, 0o444)?;
        }
        Ok(crate::Fetched { path, sha256, from_cache: false, size: data.len() as u64 })
    }

    /// Records that `key` leads to the cached file `target` (see the module doc).
    pub fn write_ref(&self, kind: &str, key: &Sha256, target: &Sha256) -> Result<(), FetchError> {
        let dir = self.root.join("refs").join(kind);
        std::fs::create_dir_all(&dir).map_err(|source| FetchError::Io { op: "creating", path: dir.clone(), source })?;
        let path = dir.join(key.to_hex());
        write_atomically(&path, format!("{}\n", target.to_hex()).as_bytes(), 0o644)
    }

    /// The cached file `key` leads to, if the reference and the file are both there.
    pub fn resolve_ref(&self, kind: &str, key: &Sha256) -> Result<Option<crate::Fetched>, FetchError> {
        let path = self.root.join("refs").join(kind).join(key.to_hex());
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(FetchError::Io { op: "reading", path, source }),
        };
        let Ok(target) = text.trim().parse::<Sha256>() else { return Ok(None) };
        let Some(blob) = self.lookup(&target) else { return Ok(None) };
        let size = std::fs::metadata(&blob)
            .map_err(|source| FetchError::Io { op: "inspecting", path: blob.clone(), source })?
            .len();
        Ok(Some(crate::Fetched { path: blob, sha256: target, from_cache: true, size }))
    }

    pub(crate) fn partial_path(&self, digest: &Sha256) -> PathBuf {
        self.root.join("partial").join(format!("{}.part", digest.to_hex()))
    }

    /// The lock file a download of `digest` holds while it runs (another process downloading the same file waits
    /// on it).
    pub fn lock_path(&self, digest: &Sha256) -> PathBuf {
        self.root.join("partial").join(format!("{}.lock", digest.to_hex()))
    }

    pub(crate) fn ensure_dirs(&self) -> Result<(), FetchError> {
        for dir in [self.root.join("sha256"), self.root.join("partial")] {
            std::fs::create_dir_all(&dir).map_err(|source| FetchError::Io { op: "creating", path: dir, source })?;
        }
        Ok(())
    }
}

/// Writes `data` to `to` with `mode`, atomically (see [`store::write_atomic`]).
fn write_atomically(to: &Path, data: &[u8], mode: u32) -> Result<(), FetchError> {
    store::write_atomic(to, data, mode).map_err(|source| FetchError::Io { op: "writing", path: to.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_by_hex_digest() {
        let cache = Cache::at("/c");
        let d = Sha256::of_bytes(b"x");
        assert_eq!(cache.blob_path(&d), PathBuf::from(format!("/c/sha256/{}", d.to_hex())));
        assert_eq!(cache.partial_path(&d), PathBuf::from(format!("/c/partial/{}.part", d.to_hex())));
    }

    #[test]
    fn explicit_location_wins() {
        let cache = Cache::locate(Some(Path::new("/explicit"))).unwrap();
        assert_eq!(cache.root(), Path::new("/explicit"));
    }
}
