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
    /// Another process held the lock for longer than this one waits.
    #[error(
        "another vmkit process has held {} for {} s (it is building the same thing); giving up — try again when it \
         is done, or remove the lock file if no vmkit process is running",
        path.display(), waited.as_secs()
    )]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long this process waited.
        waited: std::time::Duration,
    },
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

/// How long a builder waits for another one building the same thing (a Debian base takes minutes; a stuck
/// builder should not make every later one hang for ever).
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60 * 60);

impl LockFile {
    /// The lock on `path` (created if missing), waiting up to [`LOCK_WAIT`] for another holder. A wait is logged.
    pub fn acquire(path: &Path) -> Result<Self, CacheError> {
        Self::acquire_within(path, LOCK_WAIT, |msg| tracing::warn!("{msg}"))
    }

    /// The lock on `path`, waiting up to `timeout`; `on_wait` is told once, when the lock is taken, what is
    /// waited for. After `timeout` the error is [`CacheError::LockTimeout`].
    pub fn acquire_within(
        path: &Path,
        timeout: std::time::Duration,
        on_wait: impl FnOnce(&str),
    ) -> Result<Self, CacheError> {
        let started = std::time::Instant::now();
        let mut on_wait = Some(on_wait);
        loop {
            if let Some(lock) = Self::try_acquire(path)? {
                return Ok(lock);
            }
            if started.elapsed() >= timeout {
                return Err(CacheError::LockTimeout { path: path.to_owned(), waited: started.elapsed() });
            }
            if let Some(tell) = on_wait.take() {
                tell(&Self::waiting_message(path, timeout));
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// The lock on `path` if no one else holds it.
    pub fn try_acquire(path: &Path) -> Result<Option<Self>, CacheError> {
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
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(source)) => {
                Err(CacheError::Io { op: "locking", path: path.to_owned(), source })
            }
        }
    }

    /// What a waiter is told.
    pub fn waiting_message(path: &Path, timeout: std::time::Duration) -> String {
        format!(
            "waiting for another vmkit process building the same thing (it holds {}; up to {} min)",
            path.display(),
            timeout.as_secs().div_ceil(60)
        )
    }
}

/// Creates `dir` and its parents.
pub fn ensure_dir(dir: &Path) -> Result<(), CacheError> {
    std::fs::create_dir_all(dir).map_err(|source| CacheError::Io { op: "creating", path: dir.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_waited_for_with_a_message_and_a_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = LockFile::acquire(&path).unwrap();
        let mut told = Vec::new();
        let started = std::time::Instant::now();
        let err = LockFile::acquire_within(&path, std::time::Duration::from_millis(300), |m| told.push(m.to_owned()))
            .unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(matches!(err, CacheError::LockTimeout { .. }), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        assert_eq!(told.len(), 1, "told once: {told:?}");
        assert!(told[0].contains("waiting for another vmkit process"), "{told:?}");
        drop(held);
        LockFile::acquire_within(&path, std::time::Duration::ZERO, |_| panic!("no wait")).unwrap();
    }
}
