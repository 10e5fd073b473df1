//! FAT disk images built in memory: the one place vmkit writes FAT volumes for guests to read.
//!
//! Installers look for their answers on small removable FAT volumes: Windows Setup reads `Autounattend.xml` from
//! the root of any removable drive, and macOS installs take their helper files the same way. A FAT image needs no
//! mounting, no loop devices and no root, every firmware and OS reads it, and mtools (`mdir`, `mtype`) and
//! `fsck.fat` check it independently.
//!
//! [`FatImage`] collects files for the root directory, sizes the volume to fit (the format — FAT12, FAT16 or FAT32 — follows from the size, as `mkfs.fat` would pick it), and
//! writes it with the `fatfs` crate. Long names are stored as VFAT long file names with an 8.3 alias. The volume
//! serial number comes from the contents, so the same files give the same bytes.
//!
//! (cloud-init's vfat seeds live in the `cloudinit` crate, which imports no other vmkit crate; they are one
//! fixed-size file set and keep their own few lines.)

use std::io::{Cursor, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Why a FAT image could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FatError {
    /// A path or label FAT cannot hold.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        /// Label or path.
        what: &'static str,
        /// The value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// Two files with one name (FAT names compare without case).
    #[error("{0:?} is added twice (FAT names ignore case)")]
    Duplicate(String),
    /// Formatting or writing the volume failed.
    #[error("writing the FAT volume: {0}")]
    Write(#[source] std::io::Error),
    /// Writing the image file failed.
    #[error("writing {}: {source}", path.display())]
    File {
        /// The image file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A FAT volume to be built.
#[derive(Debug, Clone, Default)]
pub struct FatImage {
    label: [u8; 11],
    files: Vec<(String, Vec<u8>)>,
}

/// The largest image vmkit builds this way (drivers copied onto answer media stay far below).
const MAX_BYTES: usize = 2 << 30;

impl FatImage {
    /// An empty volume labelled `label` (up to 11 characters: A–Z, 0–9, space, `-`, `_`; lower case is raised).
    pub fn new(label: &str) -> Result<Self, FatError> {
        let upper = label.to_ascii_uppercase();
        if upper.is_empty()
            || upper.len() > 11
            || !upper.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b" -_".contains(&b))
        {
            return Err(FatError::Invalid {
                what: "volume label",
                value: label.to_owned(),
                reason: "1–11 characters from A–Z, 0–9, space, '-', '_'",
            });
        }
        let mut bytes = [b' '; 11];
        bytes[..upper.len()].copy_from_slice(upper.as_bytes());
        Ok(Self { label: bytes, files: Vec::new() })
    }

    /// Adds a file named `name` to the root directory.
    ///
    /// Only the root: `fatfs` 0.3 writes a long-name entry in front of the `.` and `..` entries of every
    /// directory it creates, which `fsck.fat` reports as damage; the volumes vmkit writes need no directories.
    pub fn add_file(&mut self, name: &str, data: impl Into<Vec<u8>>) -> Result<&mut Self, FatError> {
        let path = name;
        let bad = |reason| FatError::Invalid { what: "file name", value: path.to_owned(), reason };
        if path.is_empty() || path == "." || path == ".." || path.contains('/') {
            return Err(bad("a file name in the root directory (no directories)"));
        }
        if path.len() > 255 || path.chars().any(|c| c.is_control() || "\"*:<>?\\|".contains(c)) {
            return Err(bad("at most 255 characters without \"*:<>?\\| or control characters"));
        }
        if self.files.iter().any(|(p, _)| p.eq_ignore_ascii_case(path)) {
            return Err(FatError::Duplicate(path.to_owned()));
        }
        self.files.push((path.to_owned(), data.into()));
        Ok(self)
    }

    /// The files added so far, in order.
    pub fn files(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(p, d)| (p.as_str(), d.as_slice()))
    }

    /// The volume as bytes.
    pub fn build(&self) -> Result<Vec<u8>, FatError> {
        // Room for every file rounded up to 4 KiB clusters, a cluster per directory entry set, FATs and slack;
        // grown and retried in the rare case the estimate is short (small clusters on FAT12, long names).
        let payload: usize = self.files.iter().map(|(p, d)| d.len().next_multiple_of(4096) + 4096 + p.len() * 64).sum();
        let mut size = (payload + payload / 8 + (512 << 10)).max(2 << 20).next_multiple_of(1 << 20);
        loop {
            match self.build_sized(size) {
                Ok(image) => return Ok(image),
                Err(e) if size < MAX_BYTES && is_full(&e) => size *= 2,
                Err(e) => return Err(FatError::Write(e)),
            }
        }
    }

    /// Writes the volume to `path` atomically (a temporary file beside it, renamed) with `mode`.
    pub fn write(&self, path: &Path, mode: u32) -> Result<(), FatError> {
        use std::os::unix::fs::PermissionsExt;
        let image = self.build()?;
        let err = |source| FatError::File { path: path.to_owned(), source };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode)).map_err(err)?;
        tmp.write_all(&image).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(path).map_err(|e| err(e.error))?;
        Ok(())
    }

    fn build_sized(&self, size: usize) -> std::io::Result<Vec<u8>> {
        let mut disk = Cursor::new(vec![0u8; size]);
        let mut digest = Sha256::new();
        for (path, data) in &self.files {
            digest.update(path.as_bytes());
            digest.update((data.len() as u64).to_le_bytes());
            digest.update(data);
        }
        let hash = digest.finalize();
        let volume_id = u32::from_le_bytes([hash[0], hash[1], hash[2], hash[3]]);
        fatfs::format_volume(
            &mut disk,
            fatfs::FormatVolumeOptions::new().volume_label(self.label).volume_id(volume_id),
        )?;
        disk.seek(SeekFrom::Start(0))?;
        {
            let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new().time_provider(&FIXED_TIME))?;
            let root = fs.root_dir();
            for (path, data) in &self.files {
                let mut file = root.create_file(path)?;
                file.truncate()?;
                file.write_all(data)?;
                file.flush()?;
            }
            drop(root);
            fs.unmount()?;
        }
        Ok(disk.into_inner())
    }
}

fn is_full(e: &std::io::Error) -> bool {
    // fatfs reports a full volume as "No space left" (an io::Error of kind Other with that message).
    e.to_string().to_ascii_lowercase().contains("space")
}

/// Every timestamp is 2000-01-01 00:00: the same files give the same image.
#[derive(Debug)]
struct FixedTime;

static FIXED_TIME: FixedTime = FixedTime;

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        fatfs::Date { year: 2000, month: 1, day: 1 }
    }

    fn get_current_date_time(&self) -> fatfs::DateTime {
        fatfs::DateTime { date: self.get_current_date(), time: fatfs::Time { hour: 0, min: 0, sec: 0, millis: 0 } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_paths_are_checked() {
        assert!(FatImage::new("vmkit-answer").is_err(), "12 characters");
        assert!(FatImage::new("ANSWER").is_ok());
        let mut img = FatImage::new("X").unwrap();
        for bad in ["", "..", "dir/file", "a:b", "x|y"] {
            assert!(img.add_file(bad, b"x".to_vec()).is_err(), "{bad}");
        }
        img.add_file("Autounattend.xml", b"x".to_vec()).unwrap();
        assert!(matches!(img.add_file("AUTOUNATTEND.XML", b"y".to_vec()), Err(FatError::Duplicate(_))));
    }

    #[test]
    fn same_files_same_bytes_and_big_payloads_fit() {
        let mut a = FatImage::new("A").unwrap();
        a.add_file("one.bin", vec![7u8; 5 << 20]).unwrap();
        for i in 0..100 {
            a.add_file(&format!("file-with-a-long-name-{i}.txt"), vec![b'x'; 10]).unwrap();
        }
        let one = a.build().unwrap();
        assert_eq!(one, a.build().unwrap());
        assert!(one.len() >= 5 << 20);
    }
}
