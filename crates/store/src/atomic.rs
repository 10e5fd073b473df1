//! Writing a file so that a reader (or a crash) never sees half of it, and nothing a user owns is lost.
//!
//! Every writer works the same way: a temporary file beside the target (so the rename stays on one file
//! system), created with the requested mode set exactly (the umask does not apply), filled, synced to disk, and
//! renamed over the target. On any error the temporary file is removed and the target is untouched. For files
//! that must never be replaced — private keys — [`write_new`] links the finished file into place instead, which
//! the kernel refuses atomically when the target exists.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The directory a temporary file for `path` goes into: `path`'s parent, or `.` for a bare file name.
fn dir_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// A temporary file beside `path`, named after it (`.NAME.XXXXXX`), with exactly `mode`.
fn temp_beside(path: &Path, mode: u32) -> io::Result<tempfile::NamedTempFile> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir_of(path))?;
    // The mode given at creation is filtered by the umask; set it exactly.
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(tmp)
}

/// Writes `path` through `fill` (a temporary file with `mode` beside it, synced, renamed over `path`).
pub fn write_atomic_with(path: &Path, mode: u32, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let mut tmp = temp_beside(path, mode)?;
    fill(tmp.as_file_mut())?;
    tmp.as_file_mut().flush()?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Writes `data` to `path` with `mode`, replacing what was there in one step.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    write_atomic_with(path, mode, |f| f.write_all(data))
}

/// Like [`write_atomic`], but never replaces an existing `path`: fails with [`io::ErrorKind::AlreadyExists`]
/// and leaves it alone.
pub fn write_new(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let mut tmp = temp_beside(path, mode)?;
    tmp.as_file_mut().write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect()
    }

    #[test]
    fn replaces_with_the_exact_mode_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new", 0o640).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_failing_fill_leaves_the_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "old").unwrap();
        let err = write_atomic_with(&path, 0o644, |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("boom"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "boom");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn write_new_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_ed25519");
        write_new(&path, b"first", 0o600).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        let err = write_new(&path, b"second", 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first");
        assert!(leftovers(dir.path()).is_empty());
    }
}
