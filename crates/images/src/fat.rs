//! FAT disk images built in memory: the one place vmkit writes FAT volumes for guests to read.
//!
//! Installers and boot loaders look for their files on small FAT volumes: Windows Setup reads `Autounattend.xml`
//! from the root of any removable drive, and a macOS guest starts OpenCore from the `EFI/…` tree of a FAT32 EFI
//! system partition. A FAT image needs no mounting, no loop devices and no root, every firmware and OS reads it,
//! and mtools (`mdir`, `mcopy`) and `fsck.fat` check it independently.
//!
//! [`FatImage`] collects files (with `/`-separated paths; their directories are made as needed), and either sizes
//! a volume to fit ([`FatImage::build`]; FAT12, FAT16 or FAT32 follows from the size, as `mkfs.fat` would pick it)
//! or fills a given span such as a GPT partition ([`FatImage::format_into`]). The `fatfs` crate formats and
//! writes the volume. Long names are stored as VFAT long file names with an 8.3 alias. The volume serial number
//! comes from the contents unless given, so the same files give the same bytes.
//!
//! `fatfs` 0.3 writes every directory's `.` and `..` entries through its general entry writer, which puts a
//! long-name entry in front of each; FAT requires `.` and `..` to be a directory's first two entries, and
//! `fsck.fat` reports such directories as damaged. On FAT32 it also points `..` of the root's subdirectories at the
//! root's cluster, where FAT wants 0. So after `fatfs` is done, [`tidy_dot_entries`] walks the volume's directory
//! tree, removes exactly those long-name entries (shifting the rest up) and sets those `..` entries to 0.
//!
//! (cloud-init's vfat seeds live in the `cloudinit` crate, which imports no other vmkit crate; they are one
//! fixed-size flat file set and keep their own few lines.)

use std::io::{Cursor, Read, Seek, SeekFrom, Write};
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

/// How [`FatImage::format_into`] lays out a volume on a span of fixed size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FatLayout {
    /// FAT32 (`true`), or the type that follows from the size (`false`).
    pub fat32: bool,
    /// Bytes per cluster (a power of two from 512 to 32 KiB), or `None` for `fatfs`'s choice by size.
    pub bytes_per_cluster: Option<u32>,
    /// The volume serial number, or `None` for one derived from the files.
    pub volume_id: Option<u32>,
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

    /// Adds a file at `path`: a name in the root directory, or a `/`-separated path (`EFI/BOOT/BOOTx64.efi`) whose
    /// directories are made as needed.
    pub fn add_file(&mut self, path: &str, data: impl Into<Vec<u8>>) -> Result<&mut Self, FatError> {
        let bad = |reason| FatError::Invalid { what: "file path", value: path.to_owned(), reason };
        if path.len() > 1024 {
            return Err(bad("at most 1024 characters"));
        }
        for part in path.split('/') {
            if part.is_empty() || part == "." || part == ".." {
                return Err(bad("names separated by single '/', none empty, '.' or '..'"));
            }
            if part.len() > 255
                || part.chars().any(|c| c.is_control() || "\"*:<>?\\|".contains(c))
                || part.ends_with(['.', ' '])
            {
                return Err(bad(
                    "names of at most 255 characters without \"*:<>?\\| or control characters, not ending in '.' or ' '",
                ));
            }
        }
        let folded = path.to_lowercase();
        for (other, _) in &self.files {
            let other = other.to_lowercase();
            if other == folded {
                return Err(FatError::Duplicate(path.to_owned()));
            }
            // A file cannot also be a directory (FAT names compare without case).
            if other.strip_prefix(&folded).is_some_and(|rest| rest.starts_with('/'))
                || folded.strip_prefix(&other).is_some_and(|rest| rest.starts_with('/'))
            {
                return Err(FatError::Invalid {
                    what: "file path",
                    value: path.to_owned(),
                    reason: "a file and a directory would have the same name",
                });
            }
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
        let layout = FatLayout { fat32: false, bytes_per_cluster: None, volume_id: None };
        loop {
            let mut disk = Cursor::new(vec![0u8; size]);
            match self.format_into(&mut disk, layout) {
                Ok(()) => return Ok(disk.into_inner()),
                Err(FatError::Write(e)) if size < MAX_BYTES && is_full(&e) => size *= 2,
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes the volume to `path` atomically (a temporary file beside it, renamed) with `mode`.
    pub fn write(&self, path: &Path, mode: u32) -> Result<(), FatError> {
        let image = self.build()?;
        store::write_atomic(path, &image, mode).map_err(|source| FatError::File { path: path.to_owned(), source })
    }

    /// Formats all of `storage` (from its start to its end) as a FAT volume laid out as `layout` says, and
    /// writes the files onto it.
    pub fn format_into<S: Read + Write + Seek>(&self, mut storage: S, layout: FatLayout) -> Result<(), FatError> {
        let volume_id = layout.volume_id.unwrap_or_else(|| {
            let mut digest = Sha256::new();
            for (path, data) in &self.files {
                digest.update(path.as_bytes());
                digest.update((data.len() as u64).to_le_bytes());
                digest.update(data);
            }
            let hash = digest.finalize();
            u32::from_le_bytes([hash[0], hash[1], hash[2], hash[3]])
        });
        let mut options = fatfs::FormatVolumeOptions::new().volume_label(self.label).volume_id(volume_id);
        if layout.fat32 {
            options = options.fat_type(fatfs::FatType::Fat32);
        }
        if let Some(bytes) = layout.bytes_per_cluster {
            options = options.bytes_per_cluster(bytes);
        }
        storage.seek(SeekFrom::Start(0)).map_err(FatError::Write)?;
        fatfs::format_volume(&mut storage, options).map_err(FatError::Write)?;
        storage.seek(SeekFrom::Start(0)).map_err(FatError::Write)?;
        self.fill(&mut storage).map_err(FatError::Write)?;
        tidy_dot_entries(&mut storage).map_err(FatError::Write)?;
        Ok(())
    }

    fn fill<S: Read + Write + Seek>(&self, storage: &mut S) -> std::io::Result<()> {
        let fs = fatfs::FileSystem::new(storage, fatfs::FsOptions::new().time_provider(&FIXED_TIME))?;
        {
            let root = fs.root_dir();
            for (path, data) in &self.files {
                let mut parts: Vec<&str> = path.split('/').collect();
                let name = parts.pop().unwrap_or_default();
                let mut dir = root.clone();
                for part in parts {
                    // `create_dir` opens the directory when it exists already.
                    dir = dir.create_dir(part)?;
                }
                let mut file = dir.create_file(name)?;
                file.truncate()?;
                file.write_all(data)?;
                file.flush()?;
            }
        }
        // Counting the free clusters records them in FAT32's FSInfo sector, which fsck.fat expects filled in.
        fs.stats()?;
        fs.unmount()
    }
}

fn is_full(e: &std::io::Error) -> bool {
    // fatfs reports a full volume as "No space left" (an io::Error of kind Other with that message).
    e.to_string().to_ascii_lowercase().contains("space")
}

/// Removes the long-name entries `fatfs` writes in front of each subdirectory's `.` and `..` entries, so that
/// these are the directory's first two entries as FAT requires, and points `..` of the root's subdirectories at
/// cluster 0 as FAT32 requires (`fatfs` writes the root's cluster); every other entry keeps its order.
///
/// Reads the boot sector of the volume at the start of `storage`, walks the directory tree from the root through
/// the FAT's cluster chains, and rewrites only directories that change.
pub fn tidy_dot_entries<S: Read + Write + Seek>(storage: &mut S) -> std::io::Result<()> {
    let geometry = Geometry::read(storage)?;
    let mut visited = std::collections::HashSet::new();
    let mut pending = vec![geometry.root_dir(storage)?];
    while let Some(spans) = pending.pop() {
        let mut bytes = Vec::new();
        for &(offset, len) in &spans {
            let mut buf = vec![0u8; usize::try_from(len).map_err(invalid)?];
            storage.seek(SeekFrom::Start(offset))?;
            storage.read_exact(&mut buf)?;
            bytes.extend_from_slice(&buf);
        }
        let mut kept: Vec<[u8; 32]> = Vec::new();
        let mut long_names: Vec<[u8; 32]> = Vec::new();
        for chunk in bytes.chunks_exact(32) {
            let mut entry = [0u8; 32];
            entry.copy_from_slice(chunk);
            match entry[0] {
                0x00 => break,
                0xE5 => {
                    kept.append(&mut long_names);
                    kept.push(entry);
                    continue;
                }
                _ => {}
            }
            let attributes = entry[11];
            if attributes & 0x3F == 0x0F {
                long_names.push(entry);
                continue;
            }
            let dot = &entry[..11] == b".          ";
            let dot_dot = &entry[..11] == b"..         ";
            if dot || dot_dot {
                long_names.clear();
            } else {
                kept.append(&mut long_names);
            }
            let high = if geometry.fat32 { u32::from(u16::from_le_bytes([entry[20], entry[21]])) << 16 } else { 0 };
            let first = high | u32::from(u16::from_le_bytes([entry[26], entry[27]]));
            // `..` of a directory in the root names cluster 0, also on FAT32 where the root has a cluster.
            if dot_dot && geometry.fat32 && first == geometry.root_cluster {
                entry[20..22].fill(0);
                entry[26..28].fill(0);
            }
            kept.push(entry);
            if attributes & 0x10 != 0
                && attributes & 0x08 == 0
                && !dot
                && !dot_dot
                && first >= 2
                && visited.insert(first)
            {
                pending.push(geometry.chain(storage, first)?);
            }
        }
        kept.append(&mut long_names);
        let mut tidy: Vec<u8> = kept.concat();
        if bytes.starts_with(&tidy) && bytes[tidy.len()..].iter().all(|&b| b == 0) {
            continue;
        }
        tidy.resize(bytes.len(), 0);
        let mut at = 0;
        for &(offset, len) in &spans {
            let len = usize::try_from(len).map_err(invalid)?;
            storage.seek(SeekFrom::Start(offset))?;
            storage.write_all(&tidy[at..at + len])?;
            at += len;
        }
    }
    storage.flush()
}

fn invalid(what: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("FAT volume: {what}"))
}

/// Where a FAT volume keeps its FAT, its root directory and its clusters, read from the boot sector.
struct Geometry {
    cluster_bytes: u64,
    fat_offset: u64,
    data_offset: u64,
    /// FAT12/16's fixed root directory (offset, bytes); FAT32 keeps its root in a cluster chain.
    fixed_root: Option<(u64, u64)>,
    root_cluster: u32,
    clusters: u32,
    fat12: bool,
    fat32: bool,
}

impl Geometry {
    fn read<S: Read + Seek>(storage: &mut S) -> std::io::Result<Self> {
        let mut boot = [0u8; 512];
        storage.seek(SeekFrom::Start(0))?;
        storage.read_exact(&mut boot)?;
        let u16_at = |i: usize| u64::from(u16::from_le_bytes([boot[i], boot[i + 1]]));
        let u32_at = |i: usize| u64::from(u32::from_le_bytes([boot[i], boot[i + 1], boot[i + 2], boot[i + 3]]));
        let sector = u16_at(11);
        let per_cluster = u64::from(boot[13]);
        let reserved = u16_at(14);
        let fats = u64::from(boot[16]);
        let root_entries = u16_at(17);
        let total = if u16_at(19) != 0 { u16_at(19) } else { u32_at(32) };
        let fat_sectors = if u16_at(22) != 0 { u16_at(22) } else { u32_at(36) };
        if !matches!(sector, 512 | 1024 | 2048 | 4096) || !per_cluster.is_power_of_two() || fats == 0 || reserved == 0 {
            return Err(invalid("a boot sector vmkit did not write"));
        }
        let root_sectors = (root_entries * 32).div_ceil(sector);
        let data_sector = reserved + fats * fat_sectors + root_sectors;
        let clusters =
            total.checked_sub(data_sector).ok_or_else(|| invalid("more metadata than sectors"))? / per_cluster;
        let clusters = u32::try_from(clusters).map_err(invalid)?;
        let fat32 = clusters >= 65_525;
        Ok(Self {
            cluster_bytes: sector * per_cluster,
            fat_offset: reserved * sector,
            data_offset: data_sector * sector,
            fixed_root: (!fat32).then_some(((reserved + fats * fat_sectors) * sector, root_entries * 32)),
            root_cluster: u32::try_from(u32_at(44)).map_err(invalid)?,
            clusters,
            fat12: clusters < 4085,
            fat32,
        })
    }

    fn root_dir<S: Read + Seek>(&self, storage: &mut S) -> std::io::Result<Vec<(u64, u64)>> {
        match self.fixed_root {
            Some(span) => Ok(vec![span]),
            None => self.chain(storage, self.root_cluster),
        }
    }

    /// The byte spans of the cluster chain starting at `first`.
    fn chain<S: Read + Seek>(&self, storage: &mut S, first: u32) -> std::io::Result<Vec<(u64, u64)>> {
        let mut spans = Vec::new();
        let mut cluster = first;
        loop {
            if cluster < 2 || cluster - 2 >= self.clusters || spans.len() > self.clusters as usize {
                return Err(invalid(format_args!("a directory's cluster chain is broken at cluster {cluster}")));
            }
            spans.push((self.data_offset + u64::from(cluster - 2) * self.cluster_bytes, self.cluster_bytes));
            let mut entry = [0u8; 4];
            let next = if self.fat32 {
                storage.seek(SeekFrom::Start(self.fat_offset + u64::from(cluster) * 4))?;
                storage.read_exact(&mut entry)?;
                u32::from_le_bytes(entry) & 0x0FFF_FFFF
            } else if self.fat12 {
                storage.seek(SeekFrom::Start(self.fat_offset + u64::from(cluster) + u64::from(cluster / 2)))?;
                storage.read_exact(&mut entry[..2])?;
                let pair = u32::from(u16::from_le_bytes([entry[0], entry[1]]));
                let value = if cluster % 2 == 1 { pair >> 4 } else { pair & 0xFFF };
                if value >= 0xFF8 { 0x0FFF_FFFF } else { value }
            } else {
                storage.seek(SeekFrom::Start(self.fat_offset + u64::from(cluster) * 2))?;
                storage.read_exact(&mut entry[..2])?;
                let value = u32::from(u16::from_le_bytes([entry[0], entry[1]]));
                if value >= 0xFFF8 { 0x0FFF_FFFF } else { value }
            };
            if next >= 0x0FFF_FFF8 {
                return Ok(spans);
            }
            cluster = next;
        }
    }
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
        for bad in ["", "..", "dir//file", "/abs", "dir/", "a/../b", "a:b", "x|y", "dot."] {
            assert!(img.add_file(bad, b"x".to_vec()).is_err(), "{bad}");
        }
        img.add_file("Autounattend.xml", b"x".to_vec()).unwrap();
        assert!(matches!(img.add_file("AUTOUNATTEND.XML", b"y".to_vec()), Err(FatError::Duplicate(_))));
        img.add_file("EFI/OC/config.plist", b"x".to_vec()).unwrap();
        assert!(img.add_file("efi/oc", b"x".to_vec()).is_err(), "a file where a directory is");
        assert!(img.add_file("Autounattend.xml/inner", b"x".to_vec()).is_err(), "a directory where a file is");
        img.add_file("EFI/OC/Drivers/OpenRuntime.efi", b"x".to_vec()).unwrap();
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
