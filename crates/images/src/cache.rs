//! Where images keeps what it downloads and builds, and how builders avoid stepping on each other.
//!
//! The root is, in order: a path the caller gives (a `--cache-dir` flag, a test's own directory),
//! `$VMKIT_CACHE_DIR`, or the XDG cache directory (`$XDG_CACHE_HOME/vmkit`, usually `~/.cache/vmkit`) — the same
//! rule every vmkit cache follows. Below it each kind of artefact has its own directory (`debs/`, `guests/`).
//!
//! Builders publish a result by renaming a finished temp directory into place, so a reader never sees half a
//! result; an advisory lock file (`flock`) makes a second builder of the same thing wait and then find it built.

use std::fs::File;
use std::path::{Path, PathBuf};

/// The environment variable that moves vmkit's cache.
pub const CACHE_DIR_ENV: &str = "VMKIT_CACHE_DIR";

/// A cache failure.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// No home directory to put the cache in, and no override.
    #[error("no cache directory: set {CACHE_DIR_ENV} or HOME")]
    NoCacheDir,
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The cache root: `explicit`, else `$VMKIT_CACHE_DIR`, else the XDG cache directory.
pub fn cache_root(explicit: Option<&Path>) -> Result<PathBuf, CacheError> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    if let Some(path) = std::env::var_os(CACHE_DIR_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    directories::ProjectDirs::from("", "", "vmkit").map(|d| d.cache_dir().to_owned()).ok_or(CacheError::NoCacheDir)
}

/// An exclusive advisory lock on a file, held until dropped.
#[derive(Debug)]
pub struct LockFile {
    _file: File,
}

impl LockFile {
    /// Blocks until the lock on `path` (created if missing) is ours.
    pub fn acquire(path: &Path) -> Result<Self, CacheError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| CacheError::Io {
                op: "creating",
                path: dir.to_owned(),
                source,
            })?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| CacheError::Io { op: "opening lock file", path: path.to_owned(), source })?;
        file.lock().map_err(|source| CacheError::Io { op: "locking", path: path.to_owned(), source })?;
        Ok(Self { _file: file })
    }
}

/// Creates `dir` and its parents.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), CacheError> {
    std::fs::create_dir_all(dir).map_err(|source| CacheError::Io { op: "creating", path: dir.to_owned(), source })
}
