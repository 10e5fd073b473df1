//! Reading files out of ISO images: UDF (what Windows media use), Joliet and plain ISO9660.
//!
//! [`Iso::open`] looks at the volume descriptors and picks the richest file system present: UDF first (Windows
//! ISOs are UDF 1.02/2.01 bridge or UDF-only discs, and their ISO9660 side often holds nothing but a README), then
//! Joliet (long, mixed-case names), then the ISO9660 primary volume. Lookups are case-insensitive
//! (`sources/install.wim` finds `SOURCES/INSTALL.WIM;1`), and every read is positioned: finding a file reads only
//! the directories along its path, and [`Iso::read_range`] reads only the sectors of the range asked for.
//!
//! Images come from outside, so nothing in them is trusted: every offset is checked against the file's size
//! (a structure past the end is [`Error::Truncated`]), directories and allocation chains have size and count
//! limits, and a descriptor that does not carry its own location and checksum is refused. The file systems'
//! parsing lives in [`iso9660`] and [`udf`]; this module is the common, file-system-neutral face.

pub mod iso9660;
pub mod udf;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sniff;
use crate::source::ReadAt;

/// ISO9660 and UDF sectors (and the volume descriptor area) are 2048 bytes on optical media.
pub const SECTOR: u64 = 2048;
/// The largest directory read into memory (a Windows ISO's biggest folder is a few hundred KiB).
pub const MAX_DIR_BYTES: u64 = 16 << 20;
/// The most extents one file may be made of.
pub const MAX_EXTENTS: usize = 1 << 16;
/// The most path components a lookup follows.
pub const MAX_PATH_DEPTH: usize = 64;

/// Which file system an [`Iso`] reads through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Filesystem {
    /// UDF, with its revision (`0x0102`, `0x0201`, …) from the logical volume's domain.
    Udf {
        /// The UDF revision, BCD (`0x0102` is UDF 1.02).
        revision: u16,
    },
    /// ISO9660 with Joliet (UCS-2) names.
    Joliet,
    /// Plain ISO9660 (upper-case 8.3-style names; version suffixes `;1` are dropped).
    Iso9660,
}

impl std::fmt::Display for Filesystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Filesystem::Udf { revision } => write!(f, "UDF {:x}.{:02x}", revision >> 8, revision & 0xff),
            Filesystem::Joliet => f.write_str("ISO9660 + Joliet"),
            Filesystem::Iso9660 => f.write_str("ISO9660"),
        }
    }
}

/// Whether an entry is a file or a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
    /// Anything else UDF can record (symbolic links, devices); listed, not read.
    Other,
}

/// A run of a file's bytes on the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    /// Absolute byte offset in the image; `None` for a hole (reads as zeros).
    pub offset: Option<u64>,
    /// Length in bytes.
    pub len: u64,
}

/// Where an entry's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Data {
    /// Runs on the image, in file order.
    Extents(Vec<Extent>),
    /// Bytes stored inside the UDF file entry itself.
    Embedded(Vec<u8>),
}

/// A file or folder in an image: its name, kind, size and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    name: String,
    kind: EntryKind,
    size: u64,
    data: Data,
}

impl Entry {
    /// The name as recorded (ISO9660 version suffixes removed).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// File, folder or other.
    pub fn kind(&self) -> EntryKind {
        self.kind
    }

    /// Whether this is a folder.
    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }

    /// The length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// An ISO image opened for reading; see the [module docs](self).
pub struct Iso<R> {
    source: R,
    name: PathBuf,
    size: u64,
    volume_id: String,
    fs: Fs,
}

enum Fs {
    Udf(udf::Udf),
    Iso9660(iso9660::Iso9660),
}

impl<R> std::fmt::Debug for Iso<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iso")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("volume_id", &self.volume_id)
            .field("filesystem", &self.filesystem())
            .finish()
    }
}

impl<R> Iso<R> {
    /// The file system the image is read through.
    pub fn filesystem(&self) -> Filesystem {
        match &self.fs {
            Fs::Udf(u) => Filesystem::Udf { revision: u.revision },
            Fs::Iso9660(v) if v.joliet => Filesystem::Joliet,
            Fs::Iso9660(_) => Filesystem::Iso9660,
        }
    }

    /// The volume label.
    pub fn volume_id(&self) -> &str {
        &self.volume_id
    }

    /// The image's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The name errors use for the image (its path, for [`Iso::open_path`]).
    pub fn name(&self) -> &Path {
        &self.name
    }
}

impl Iso<std::fs::File> {
    /// Opens the ISO image at `path`. A file that is not an ISO is [`Error::NotAnIso`] with what it is instead.
    pub fn open_path(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(Error::Io { path: path.to_path_buf(), source: std::io::ErrorKind::IsADirectory.into() });
        }
        Self::open_named(file, path.to_path_buf())
    }
}

impl<R: ReadAt> Iso<R> {
    /// Opens an image from any positioned source (a file, a byte slice).
    pub fn open(source: R) -> Result<Self> {
        Self::open_named(source, PathBuf::from("image"))
    }

    fn open_named(source: R, name: PathBuf) -> Result<Self> {
        let size = source.size().map_err(|source| Error::Io { path: name.clone(), source })?;
        let mut iso = Iso { source, name, size, volume_id: String::new(), fs: Fs::Iso9660(iso9660::Iso9660::EMPTY) };
        let descriptors = iso9660::scan_descriptors(&iso)?;
        if descriptors.nsr {
            let udf = udf::Udf::mount(&iso)?;
            iso.volume_id = udf.volume_id.clone();
            iso.fs = Fs::Udf(udf);
        } else if let Some(vol) = descriptors.best() {
            iso.volume_id = vol.volume_id.clone();
            iso.fs = Fs::Iso9660(vol);
        } else {
            return Err(iso.not_an_iso());
        }
        Ok(iso)
    }

    /// The error for a file that carries no ISO9660 or UDF volume: what it looks like instead.
    pub(crate) fn not_an_iso(&self) -> Error {
        if self.size < 17 * SECTOR {
            let mut head = vec![0u8; (self.size as usize).min(sniff::SNIFF_LEN)];
            let what = match self.source.read_exact_at(0, &mut head) {
                Ok(()) => sniff::describe(&head, self.size),
                Err(_) => format!("{} bytes", self.size),
            };
            return Error::NotAnIso { found: format!("{what}, {} bytes: too small for an ISO image", self.size) };
        }
        let mut head = vec![0u8; sniff::SNIFF_LEN];
        let found = match self.source.read_exact_at(0, &mut head) {
            Ok(()) => sniff::describe(&head, self.size),
            Err(e) => e.to_string(),
        };
        let found = if found.starts_with("unknown data") {
            format!("{found}, and no ISO9660 or UDF volume descriptor at sector 16")
        } else {
            found
        };
        Error::NotAnIso { found }
    }

    /// The root folder.
    pub fn root(&self) -> Result<Entry> {
        match &self.fs {
            Fs::Udf(u) => u.root(self),
            Fs::Iso9660(v) => Ok(v.root()),
        }
    }

    /// The entries of a folder (without `.` and `..`), in the order recorded.
    pub fn read_dir(&self, dir: &Entry) -> Result<Vec<Entry>> {
        if !dir.is_dir() {
            return Err(Error::WrongKind { path: dir.name.clone(), problem: "is not a folder" });
        }
        match &self.fs {
            Fs::Udf(u) => u.read_dir(self, dir),
            Fs::Iso9660(v) => v.read_dir(self, dir),
        }
    }

    /// Finds `path` (`/`-separated, case-insensitive, leading `/` optional; `""` or `/` is the root). `Ok(None)`
    /// if some component does not exist. Reads only the folders along the path.
    pub fn lookup(&self, path: &str) -> Result<Option<Entry>> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
        if parts.len() > MAX_PATH_DEPTH {
            return Err(Error::InvalidArgument(format!("path {path:?} has more than {MAX_PATH_DEPTH} components")));
        }
        let mut current = self.root()?;
        for part in parts {
            if !current.is_dir() {
                return Ok(None);
            }
            let found = match &self.fs {
                Fs::Udf(u) => u.find_child(self, &current, part)?,
                Fs::Iso9660(v) => v.read_dir(self, &current)?.into_iter().find(|e| names_match(&e.name, part)),
            };
            match found {
                Some(e) => current = e,
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    /// Like [`Iso::lookup`], but a missing path is [`Error::NotFound`].
    pub fn entry(&self, path: &str) -> Result<Entry> {
        self.lookup(path)?.ok_or_else(|| Error::NotFound { path: path.to_string() })
    }

    /// The entries of the folder at `path`.
    pub fn list(&self, path: &str) -> Result<Vec<Entry>> {
        let dir = self.entry(path)?;
        if !dir.is_dir() {
            return Err(Error::WrongKind { path: path.to_string(), problem: "is a file, not a folder" });
        }
        self.read_dir(&dir)
    }

    /// Fills `buf` with the file's bytes at `offset..offset + buf.len()`; reading past the file's end is an error.
    pub fn read_range(&self, file: &Entry, offset: u64, buf: &mut [u8]) -> Result<()> {
        offset.checked_add(buf.len() as u64).filter(|&e| e <= file.size).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{}: range {offset}+{} lies beyond the file's {} bytes",
                file.name,
                buf.len(),
                file.size
            ))
        })?;
        self.read_data(&file.name, &file.data, offset, buf)
    }

    /// Reads the file's bytes at `offset..offset + len` into a new vector (`len` is checked against the file's
    /// size before anything is allocated).
    pub fn read_vec(&self, file: &Entry, offset: u64, len: u64) -> Result<Vec<u8>> {
        if offset.checked_add(len).is_none_or(|e| e > file.size) {
            return Err(Error::InvalidArgument(format!(
                "{}: range {offset}+{len} lies beyond the file's {} bytes",
                file.name, file.size
            )));
        }
        let mut buf = vec![0u8; len as usize];
        self.read_data(&file.name, &file.data, offset, &mut buf)?;
        Ok(buf)
    }

    /// A file of the image as a [`ReadAt`] source of its own (offsets relative to the file), so readers of file
    /// formats (WIM) work the same on a file inside an ISO and on a file on disk. Errors of the image (such as
    /// [`Error::Truncated`]) travel inside the `io::Error` and come back out of [`crate::wim::read_info`] as they
    /// were.
    pub fn file(&self, entry: &Entry) -> IsoFile<'_, R> {
        IsoFile { iso: self, entry: entry.clone() }
    }

    /// Reads bytes of `data` (a file or folder) into `buf`, extent by extent.
    pub(crate) fn read_data(&self, what: &str, data: &Data, offset: u64, buf: &mut [u8]) -> Result<()> {
        match data {
            Data::Embedded(bytes) => {
                let start =
                    usize::try_from(offset).ok().filter(|&s| s + buf.len() <= bytes.len()).ok_or_else(|| {
                        Error::Malformed(format!("{what}: embedded data shorter than the range asked for"))
                    })?;
                buf.copy_from_slice(&bytes[start..start + buf.len()]);
                Ok(())
            }
            Data::Extents(extents) => {
                let mut pos = 0u64; // file offset of the current extent
                let mut done = 0usize;
                for ext in extents {
                    if done == buf.len() {
                        break;
                    }
                    let want = offset + done as u64;
                    if want < pos + ext.len {
                        let within = want - pos;
                        let n = ((ext.len - within) as usize).min(buf.len() - done);
                        let dst = &mut buf[done..done + n];
                        match ext.offset {
                            Some(base) => self.read_at(base + within, dst, what)?,
                            None => dst.fill(0),
                        }
                        done += n;
                    }
                    pos += ext.len;
                }
                if done < buf.len() {
                    return Err(Error::Malformed(format!("{what}: its extents end before its recorded length")));
                }
                Ok(())
            }
        }
    }

    /// Reads image bytes at an absolute offset; a range past the end of the image is [`Error::Truncated`].
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8], what: &str) -> Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| Error::Malformed(format!("{what}: offset overflows")))?;
        if end > self.size {
            return Err(Error::Truncated { what: what.to_string(), needed: end, size: self.size });
        }
        self.source.read_exact_at(offset, buf).map_err(|source| Error::Io { path: self.name.clone(), source })
    }

    /// Reads `len` image bytes at an absolute offset into a new vector.
    pub(crate) fn read_vec_at(&self, offset: u64, len: usize, what: &str) -> Result<Vec<u8>> {
        if offset.saturating_add(len as u64) > self.size {
            return Err(Error::Truncated {
                what: what.to_string(),
                needed: offset.saturating_add(len as u64),
                size: self.size,
            });
        }
        let mut buf = vec![0u8; len];
        self.read_at(offset, &mut buf, what)?;
        Ok(buf)
    }

    /// Reads a whole folder's data, refusing folders larger than [`MAX_DIR_BYTES`].
    pub(crate) fn read_dir_data(&self, dir: &Entry) -> Result<Vec<u8>> {
        if dir.size > MAX_DIR_BYTES {
            return Err(Error::Malformed(format!(
                "folder {:?} claims {} bytes (more than the {MAX_DIR_BYTES} a folder may have)",
                dir.name, dir.size
            )));
        }
        let mut buf = vec![0u8; dir.size as usize];
        self.read_data(&dir.name, &dir.data, 0, &mut buf)?;
        Ok(buf)
    }
}

/// A file inside an [`Iso`], readable by offset; see [`Iso::file`].
#[derive(Debug)]
pub struct IsoFile<'a, R> {
    iso: &'a Iso<R>,
    entry: Entry,
}

impl<R: ReadAt> ReadAt for IsoFile<'_, R> {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.entry.size)
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        if offset.checked_add(buf.len() as u64).is_none_or(|e| e > self.entry.size) {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.iso.read_data(&self.entry.name, &self.entry.data, offset, buf).map_err(std::io::Error::other)
    }
}

/// Case-insensitive name comparison, as Windows (and the media's users) see names.
pub fn names_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.eq_ignore_ascii_case(b) || a.to_lowercase() == b.to_lowercase()
}

/// Builds an [`Entry`] (crate-internal constructor for the file-system modules).
pub(crate) fn entry(name: String, kind: EntryKind, size: u64, data: Data) -> Entry {
    Entry { name, kind, size, data }
}
