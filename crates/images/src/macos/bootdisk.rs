//! The boot disk a macOS guest starts from: a GPT disk with one FAT32 EFI system partition, assembled in Rust.
//!
//! OVMF cannot boot macOS by itself; OpenCore, started from an EFI system partition, can. So every macOS image
//! carries a small disk with OpenCore's files on a FAT32 ESP. Building it needs neither root nor loop devices nor
//! `mkfs`/`sgdisk` on the host: the GPT (protective MBR, primary and backup headers and entry arrays with their
//! CRC32s) is written here, and the ESP is formatted and filled by the one FAT writer, [`crate::fat`], through a
//! window onto the partition's bytes. The file is written through [`store::NewFile`] (a temporary file linked into
//! place, never over an existing file), so a failed build leaves no half-made disk.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::fat::{FatError, FatImage, FatLayout};

/// Bytes per sector.
pub const SECTOR: u64 = 512;
/// Where the ESP starts (1 MiB, the usual alignment).
pub const ESP_FIRST_LBA: u64 = 2048;
/// GPT entries in each array.
const ENTRIES: u64 = 128;
/// Bytes per entry.
const ENTRY_LEN: u64 = 128;
/// Sectors one entry array takes.
const ENTRY_SECTORS: u64 = ENTRIES * ENTRY_LEN / SECTOR;
/// The EFI system partition's type GUID, C12A7328-F81F-11D2-BA4B-00A0C93EC93B.
pub const ESP_TYPE: [u8; 16] =
    guid_bytes(0xC12A_7328, 0xF81F, 0x11D2, [0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B]);
/// The smallest disk: a FAT32 volume needs at least 65 525 clusters (512-byte clusters here, so 32 MiB).
pub const MIN_SIZE: u64 = 40 << 20;

/// A GUID in GPT's on-disk byte order (the first three fields little-endian).
const fn guid_bytes(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]
}

/// What went wrong building a boot disk.
#[derive(Debug, thiserror::Error)]
pub enum BootDiskError {
    /// A size or file the disk cannot hold.
    #[error("boot disk: {0}")]
    Invalid(String),
    /// The ESP's files or label cannot be written to FAT.
    #[error("boot disk: {0}")]
    Fat(#[from] FatError),
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A boot disk to build: its size, the ESP's label, its GUIDs and the files on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootDisk {
    /// Disk size in bytes (a multiple of 512, at least [`MIN_SIZE`]).
    pub size: u64,
    /// The FAT volume label (up to 11 of A–Z, 0–9, space, `-`, `_`).
    pub label: String,
    /// The disk's GUID (on-disk byte order).
    pub disk_guid: [u8; 16],
    /// The ESP's unique GUID (on-disk byte order).
    pub partition_guid: [u8; 16],
    /// Files: a `/`-separated path on the ESP (`EFI/BOOT/BOOTx64.efi`) and its bytes.
    pub files: Vec<(String, Vec<u8>)>,
}

impl BootDisk {
    /// A disk of `size` bytes with random GUIDs and no files.
    pub fn new(size: u64, label: &str) -> Self {
        use rand::RngExt;
        let mut rng = rand::rng();
        let mut guid = || {
            let mut g: [u8; 16] = rng.random();
            // RFC 4122 version 4, variant 1 (in GPT's mixed-endian layout the version is in byte 7).
            g[7] = (g[7] & 0x0f) | 0x40;
            g[8] = (g[8] & 0x3f) | 0x80;
            g
        };
        Self { size, label: label.to_owned(), disk_guid: guid(), partition_guid: guid(), files: Vec::new() }
    }

    /// Adds a file.
    #[must_use]
    pub fn file(mut self, path: &str, data: Vec<u8>) -> Self {
        self.files.push((path.to_owned(), data));
        self
    }

    fn sectors(&self) -> u64 {
        self.size / SECTOR
    }

    /// The ESP's last sector (inclusive): everything up to the backup GPT.
    pub fn esp_last_lba(&self) -> u64 {
        self.sectors() - 1 - ENTRY_SECTORS - 1
    }

    /// Writes the disk to `output`, which must not exist yet.
    pub fn write(&self, output: &Path) -> Result<(), BootDiskError> {
        if self.size < MIN_SIZE || !self.size.is_multiple_of(SECTOR) {
            return Err(BootDiskError::Invalid(format!(
                "a size of {} bytes (needs a multiple of 512, at least {MIN_SIZE})",
                self.size
            )));
        }
        let mut volume = FatImage::new(&self.label)?;
        for (path, data) in &self.files {
            volume.add_file(path, data.clone())?;
        }
        let io = |op, path: &Path, source| BootDiskError::Io { op, path: path.to_owned(), source };
        let mut tmp = store::NewFile::create(output, 0o600)
            .map_err(|e| io("creating a temporary file in", store::atomic::dir_of(output), e))?;
        tmp.file().set_len(self.size).map_err(|e| io("sizing", tmp.temp_path(), e))?;
        self.write_gpt(tmp.file_mut()).map_err(|e| io("writing the partition table of", output, e))?;
        self.write_esp(tmp.file_mut(), &volume)?;
        tmp.sync().map_err(|e| io("syncing", output, e))?;
        tmp.persist().map_err(|e| io("renaming into", output, e))?;
        Ok(())
    }

    fn write_gpt(&self, file: &mut std::fs::File) -> std::io::Result<()> {
        let sectors = self.sectors();
        // Protective MBR: one partition of type 0xEE covering the disk.
        let mut mbr = [0u8; 512];
        let entry = &mut mbr[446..462];
        entry[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
        entry[4] = 0xEE;
        entry[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
        entry[8..12].copy_from_slice(&1u32.to_le_bytes());
        let covered = u32::try_from(sectors - 1).unwrap_or(u32::MAX);
        entry[12..16].copy_from_slice(&covered.to_le_bytes());
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&mbr)?;

        let mut entries = vec![0u8; (ENTRIES * ENTRY_LEN) as usize];
        entries[0..16].copy_from_slice(&ESP_TYPE);
        entries[16..32].copy_from_slice(&self.partition_guid);
        entries[32..40].copy_from_slice(&ESP_FIRST_LBA.to_le_bytes());
        entries[40..48].copy_from_slice(&self.esp_last_lba().to_le_bytes());
        for (i, unit) in "EFI system partition".encode_utf16().enumerate() {
            entries[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
        }
        let entries_crc = crc32fast::hash(&entries);
        let last = sectors - 1;
        let backup_entries = last - ENTRY_SECTORS;
        for (my_lba, alternate, entries_lba) in [(1, last, 2), (last, 1, backup_entries)] {
            let mut header = [0u8; 512];
            header[0..8].copy_from_slice(b"EFI PART");
            header[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
            header[12..16].copy_from_slice(&92u32.to_le_bytes());
            header[24..32].copy_from_slice(&u64::to_le_bytes(my_lba));
            header[32..40].copy_from_slice(&u64::to_le_bytes(alternate));
            header[40..48].copy_from_slice(&(2 + ENTRY_SECTORS).to_le_bytes());
            header[48..56].copy_from_slice(&(backup_entries - 1).to_le_bytes());
            header[56..72].copy_from_slice(&self.disk_guid);
            header[72..80].copy_from_slice(&u64::to_le_bytes(entries_lba));
            header[80..84].copy_from_slice(&(ENTRIES as u32).to_le_bytes());
            header[84..88].copy_from_slice(&(ENTRY_LEN as u32).to_le_bytes());
            header[88..92].copy_from_slice(&entries_crc.to_le_bytes());
            let crc = crc32fast::hash(&header[..92]);
            header[16..20].copy_from_slice(&crc.to_le_bytes());
            file.seek(SeekFrom::Start(entries_lba * SECTOR))?;
            file.write_all(&entries)?;
            file.seek(SeekFrom::Start(my_lba * SECTOR))?;
            file.write_all(&header)?;
        }
        Ok(())
    }

    fn write_esp(&self, file: &mut std::fs::File, volume: &FatImage) -> Result<(), FatError> {
        let start = ESP_FIRST_LBA * SECTOR;
        let len = (self.esp_last_lba() + 1 - ESP_FIRST_LBA) * SECTOR;
        let window = Window { file, start, len, pos: 0 };
        let volume_id = u32::from_le_bytes([
            self.partition_guid[0],
            self.partition_guid[1],
            self.partition_guid[2],
            self.partition_guid[3],
        ]);
        // FAT32 with 512-byte clusters: the smallest FAT32 ESP firmware accepts fits in MIN_SIZE.
        volume.format_into(window, FatLayout { fat32: true, bytes_per_cluster: Some(512), volume_id: Some(volume_id) })
    }
}

/// A window onto `len` bytes of a file starting at `start`: what the FAT writer formats and fills.
struct Window<'a> {
    file: &'a mut std::fs::File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let got = self.file.read(buf.get_mut(..n).unwrap_or_default())?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Write for Window<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 && !buf.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::WriteZero, "past the end of the partition"));
        }
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let put = self.file.write(buf.get(..n).unwrap_or_default())?;
        self.pos += put as u64;
        Ok(put)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(t) if t <= self.len => {
                self.pos = t;
                Ok(t)
            }
            _ => Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek outside the partition")),
        }
    }
}
