//! Writing a file so that a reader (or a crash) never sees half of it, and nothing a user owns is lost.
//!
//! Every writer works the same way: a temporary file beside the target (so the rename stays on one file
//! system), created with the requested mode set exactly (the umask does not apply), filled, synced to disk, and
//! renamed over the target. On any error the temporary file is removed and the target is untouched. For files
//! that must never be replaced — private keys, disks vmkit makes — [`write_new`] links the finished file into place
//! instead, which the kernel refuses atomically when the target exists. A file too large to hold in memory, or
//! written out of order (a disk image: sized, then filled at offsets), is streamed through a [`NewFile`], which
//! ends the same way.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The directory a temporary file for `path` goes into: `path`'s parent, or `.` for a bare file name.
pub fn dir_of(path: &Path) -> &Path {
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
    let mut file = NewFile::create(path, mode)?;
    file.file_mut().write_all(data)?;
    file.persist()
}

/// A file being written that appears at its path only when finished, and only if nothing is there by then.
///
/// The caller streams into (or seeks in) [`NewFile::file_mut`], a temporary file with the requested mode beside
/// the target; [`NewFile::persist`] syncs it and links it into place, failing with
/// [`io::ErrorKind::AlreadyExists`] if the target exists (checked by the kernel at that moment, not before). A
/// `NewFile` dropped without being persisted — the caller failed half-way — removes its temporary file, so no
/// half-written file is ever left under either name.
#[derive(Debug)]
pub struct NewFile {
    tmp: tempfile::NamedTempFile,
    target: PathBuf,
}

impl NewFile {
    /// Starts writing `path` (nothing appears there yet): an empty temporary file with exactly `mode` beside it.
    /// Fails when its directory cannot take one.
    pub fn create(path: &Path, mode: u32) -> io::Result<Self> {
        Ok(Self { tmp: temp_beside(path, mode)?, target: path.to_owned() })
    }

    /// The file to write into.
    pub fn file(&self) -> &File {
        self.tmp.as_file()
    }

    /// The file to write into, mutably (for `Write` and `Seek`).
    pub fn file_mut(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// Where the file is being written until it is persisted.
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Where the file will appear.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes and syncs the file to disk: for a caller that reports a failing sync apart from a failing
    /// [`NewFile::persist`] (which syncs again; with nothing new written that costs little).
    pub fn sync(&mut self) -> io::Result<()> {
        self.tmp.as_file_mut().flush()?;
        self.tmp.as_file().sync_all()
    }

    /// Syncs the file and links it into place; fails with [`io::ErrorKind::AlreadyExists`] if the target
    /// exists, which stays untouched. On any error the temporary file is removed.
    pub fn persist(mut self) -> io::Result<()> {
        self.sync()?;
        self.tmp.persist_noclobber(&self.target).map_err(|e| e.error)?;
        Ok(())
    }
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

    #[test]
    fn a_streamed_new_file_appears_whole_with_its_mode_and_only_when_persisted() {
        use std::io::{Seek, SeekFrom};
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let mut file = NewFile::create(&path, 0o600).unwrap();
        assert_eq!(file.target(), path);
        assert_eq!(file.temp_path().parent(), Some(dir.path()), "the temporary file is beside the target");
        file.file().set_len(8).unwrap();
        file.file().write_all_at(b"cd", 2).unwrap();
        file.file_mut().seek(SeekFrom::Start(6)).unwrap();
        file.file_mut().write_all(b"gh").unwrap();
        assert!(!path.exists(), "nothing appears before persist");
        file.sync().unwrap();
        file.persist().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"\0\0cd\0\0gh");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_streamed_new_file_never_replaces_an_existing_one_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        std::fs::write(&path, "the user's").unwrap();

        // The target exists (or appeared while the file was written): persisting fails, removes the temporary file.
        let mut file = NewFile::create(&path, 0o644).unwrap();
        file.file_mut().write_all(b"ours").unwrap();
        let temp = file.temp_path().to_owned();
        let err = file.persist().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "the user's");
        assert!(!temp.exists());
        assert!(leftovers(dir.path()).is_empty(), "{:?}", leftovers(dir.path()));

        // The writer failed half-way (dropped, not persisted): nothing appears, nothing is left.
        let fresh = dir.path().join("fresh.img");
        let mut file = NewFile::create(&fresh, 0o644).unwrap();
        file.file_mut().write_all(b"half").unwrap();
        let temp = file.temp_path().to_owned();
        assert!(temp.exists());
        drop(file);
        assert!(!temp.exists() && !fresh.exists());
        assert!(leftovers(dir.path()).is_empty(), "{:?}", leftovers(dir.path()));

        // A directory that cannot take the temporary file: an error, nothing created.
        assert!(NewFile::create(&dir.path().join("missing/x.img"), 0o644).is_err());
    }
}
