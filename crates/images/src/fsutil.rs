//! Work directories that vanish completely, whatever happens to the build.
//!
//! A build works in a hidden directory beside its output (`.NAME.partial-XXXX`) and renames it into place only
//! when everything is in it; the Debian base is built the same way in the cache. Such a directory may hold
//! things that outlive a killed vmkit: a QEMU (its pid in `qemu.pid`) and, inside a debootstrap target, mounts
//! (`/proc`, `/sys`, and in containers bind mounts of host device nodes). So removing one is more than
//! `remove_dir_all`:
//! 1. kill the QEMU whose pidfile is in it (only if that process's command line names the directory),
//! 2. lazily unmount every mount point below it, deepest first,
//! 3. delete the tree without ever crossing into another filesystem (a mount that could not be unmounted is
//!    left alone and reported, never emptied).
//!
//! Each work directory holds a lock file while its builder lives. [`WorkDir::sweep_stale`] removes the ones whose
//! lock is free — leftovers of a builder that was killed with SIGKILL — before a new build starts.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A failure removing or creating a work directory.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct FsError {
    /// What was being done.
    pub op: &'static str,
    /// Where.
    pub path: PathBuf,
    /// The cause.
    pub source: std::io::Error,
}

fn fs_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FsError + 'a {
    move |source| FsError { op, path: path.to_owned(), source }
}

/// The lock file inside every work directory.
const LOCK: &str = ".vmkit-lock";
/// The pidfile QEMU writes into a work directory.
pub const QEMU_PIDFILE: &str = "qemu.pid";

/// A work directory: removed (QEMU killed, mounts undone) when dropped unless [`WorkDir::keep`] was called.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
    lock: Option<File>,
    keep: bool,
}

impl WorkDir {
    /// Creates `<parent>/<prefix><random>` and locks it.
    pub fn create(parent: &Path, prefix: &str) -> Result<Self, FsError> {
        std::fs::create_dir_all(parent).map_err(fs_err("creating", parent))?;
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(parent)
            .map_err(fs_err("creating a directory in", parent))?;
        let path = dir.keep();
        let lock_path = path.join(LOCK);
        let lock = File::create(&lock_path).map_err(fs_err("creating", &lock_path))?;
        lock.lock().map_err(fs_err("locking", &lock_path))?;
        Ok(Self { path, lock: Some(lock), keep: false })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives up ownership: the directory stays (it was renamed into place). Removes the lock file.
    pub fn keep(mut self, final_path: &Path) {
        self.keep = true;
        let _ = std::fs::remove_file(final_path.join(LOCK));
        self.lock = None;
    }

    /// Removes leftovers named `<parent>/<prefix>*` whose builder is gone (their lock is free).
    pub fn sweep_stale(parent: &Path, prefix: &str) {
        let Ok(entries) = std::fs::read_dir(parent) else { return };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            if !name.to_string_lossy().starts_with(prefix) {
                continue;
            }
            let path = entry.path();
            if !path.is_dir() || path.is_symlink() {
                continue;
            }
            let lock = File::options().write(true).open(path.join(LOCK));
            let free = match &lock {
                Ok(file) => file.try_lock().is_ok(),
                // No lock file: not ours (another program's directory with a similar name), or ours killed between
                // creating it and its lock — then it is empty.
                Err(_) => std::fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none()),
            };
            if free {
                tracing::info!(path = %path.display(), "removing a work directory left by an interrupted build");
                if let Err(e) = remove_work_dir(&path) {
                    tracing::warn!("{e}");
                }
            }
        }
    }
}

/// Removes previous outputs moved aside (`<parent>/<prefix><pid>`) by a build that died before deleting them:
/// only directories holding a `manifest.json` whose pid no longer runs.
pub fn sweep_old_outputs(parent: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(prefix).and_then(|p| p.parse::<u32>().ok()) else { continue };
        let path = entry.path();
        if path.is_symlink()
            || !path.join(crate::manifest::MANIFEST).is_file()
            || Path::new(&format!("/proc/{pid}")).exists()
        {
            continue;
        }
        if let Err(e) = remove_work_dir(&path) {
            tracing::warn!("{e}");
        }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep
            && let Err(e) = remove_work_dir(&self.path)
        {
            tracing::warn!("{e}");
        }
    }
}

/// Kills the QEMU recorded in `dir`, unmounts everything below `dir`, and deletes `dir` on its own filesystem.
pub fn remove_work_dir(dir: &Path) -> Result<(), FsError> {
    kill_recorded_qemu(dir);
    unmount_below(dir);
    remove_tree_same_fs(dir)
}

/// Sends SIGKILL to the process in `dir/qemu.pid` if its command line mentions `dir`, and waits briefly for it.
fn kill_recorded_qemu(dir: &Path) {
    let Ok(text) = std::fs::read_to_string(dir.join(QEMU_PIDFILE)) else { return };
    let Ok(pid) = text.trim().parse::<u32>() else { return };
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(cmdline) = std::fs::read(proc_dir.join("cmdline")) else { return };
    let needle = dir.as_os_str().as_encoded_bytes();
    if !cmdline.windows(needle.len().max(1)).any(|w| w == needle) {
        return;
    }
    tracing::info!(pid, "killing the QEMU of an abandoned build");
    let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    for _ in 0..100 {
        if !proc_dir.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Mount points at or below `dir` (from `/proc/self/mountinfo`), deepest first.
fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let Ok(base) = dir.canonicalize() else { return Vec::new() };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return Vec::new() };
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(&base))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let mut out = Vec::with_capacity(field.len());
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i) == Some(&b'\\')
            && let Some(oct) = field.get(i + 1..i + 4)
            && let Ok(v) = u8::from_str_radix(oct, 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.extend(bytes.get(i));
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unmount_below(dir: &Path) {
    for mount in mounts_below(dir) {
        tracing::info!(mount = %mount.display(), "unmounting a leftover mount");
        let _ = std::process::Command::new("umount").arg("-l").arg(&mount).status();
    }
}

/// Deletes `dir` and everything in it that is on the same filesystem; other filesystems are left untouched and
/// make the removal fail.
pub fn remove_tree_same_fs(dir: &Path) -> Result<(), FsError> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(fs_err("inspecting", dir)(e)),
    };
    remove_entry(dir, meta.dev())
}

fn remove_entry(path: &Path, dev: u64) -> Result<(), FsError> {
    let meta = std::fs::symlink_metadata(path).map_err(fs_err("inspecting", path))?;
    if !meta.is_dir() {
        return std::fs::remove_file(path).map_err(fs_err("removing", path));
    }
    if meta.dev() != dev {
        return Err(FsError {
            op: "refusing to remove (another filesystem is mounted there)",
            path: path.to_owned(),
            source: std::io::Error::other("still mounted"),
        });
    }
    for entry in std::fs::read_dir(path).map_err(fs_err("reading", path))? {
        let entry = entry.map_err(fs_err("reading", path))?;
        remove_entry(&entry.path(), dev)?;
    }
    std::fs::remove_dir(path).map_err(fs_err("removing", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_work_dir_disappears_and_kept_one_stays() {
        let parent = tempfile::tempdir().unwrap();
        let path = {
            let w = WorkDir::create(parent.path(), ".x.partial-").unwrap();
            std::fs::create_dir_all(w.path().join("a/b")).unwrap();
            std::fs::write(w.path().join("a/b/f"), "x").unwrap();
            w.path().to_owned()
        };
        assert!(!path.exists());
        let w = WorkDir::create(parent.path(), ".y.partial-").unwrap();
        let kept = parent.path().join("y");
        std::fs::rename(w.path(), &kept).unwrap();
        w.keep(&kept);
        assert!(kept.is_dir() && !kept.join(LOCK).exists());
    }

    #[test]
    fn sweep_removes_only_unlocked_leftovers() {
        let parent = tempfile::tempdir().unwrap();
        let live = WorkDir::create(parent.path(), ".img.partial-").unwrap();
        let dead = parent.path().join(".img.partial-dead");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(LOCK), "").unwrap();
        let unrelated = parent.path().join("img");
        std::fs::create_dir(&unrelated).unwrap();
        let foreign = parent.path().join(".img.partial-not-ours");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::write(foreign.join("data"), "x").unwrap();
        let empty = parent.path().join(".img.partial-empty");
        std::fs::create_dir(&empty).unwrap();
        WorkDir::sweep_stale(parent.path(), ".img.partial-");
        assert!(live.path().exists(), "a live build's directory is kept");
        assert!(!dead.exists(), "a dead build's directory is removed");
        assert!(unrelated.exists());
        assert!(foreign.exists(), "a directory without vmkit's lock file is not vmkit's to remove");
        assert!(!empty.exists(), "an empty one (killed before its lock existed) is removed");

        let old_dead = parent.path().join(".img.old-4000000");
        std::fs::create_dir(&old_dead).unwrap();
        std::fs::write(old_dead.join("manifest.json"), "{}").unwrap();
        let old_live = parent.path().join(format!(".img.old-{}", std::process::id()));
        std::fs::create_dir(&old_live).unwrap();
        std::fs::write(old_live.join("manifest.json"), "{}").unwrap();
        sweep_old_outputs(parent.path(), ".img.old-");
        assert!(!old_dead.exists() && old_live.exists());
    }

    #[test]
    fn pidfile_of_an_unrelated_process_is_not_killed() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(dir.path().join(QEMU_PIDFILE), child.id().to_string()).unwrap();
        kill_recorded_qemu(dir.path());
        assert!(child.try_wait().unwrap().is_none(), "sleep does not name the directory, so it lives");
        child.kill().unwrap();
        let _ = child.wait();
    }

    #[test]
    fn pidfile_of_a_process_naming_the_directory_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("sleep 30; true")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // As QEMU does, write the pidfile once the program runs (its command line is readable); right after the
        // spawn the exec may still be in progress and /proc shows an empty command line.
        let cmdline = format!("/proc/{}/cmdline", child.id());
        while std::fs::read(&cmdline).map(|c| c.is_empty()).unwrap_or(true) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::fs::write(dir.path().join(QEMU_PIDFILE), child.id().to_string()).unwrap();
        remove_work_dir(dir.path()).unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "killed");
        assert!(!dir.path().exists());
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(r"/a\040b\134c"), r"/a b\c");
    }
}
