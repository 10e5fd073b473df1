//! Apple disk images (UDIF `.dmg`) turned into raw disks QEMU boots.
//!
//! A macOS recovery image (`BaseSystem.dmg`) is a UDIF image: the data fork holds the disk in runs of sectors,
//! each stored raw, as zeros, or compressed; an XML property list (located by the 512-byte `koly` trailer at the
//! end of the file) lists, per partition, a `mish` table of those runs. QEMU cannot boot a `.dmg` with every
//! compression, so the build turns it into a raw disk first.
//!
//! Which compressions are handled where:
//!
//! | run type | here (Rust) | `qemu-img` (`-f dmg`) |
//! |---|---|---|
//! | zero fill, ignored (free) space, raw | yes | yes |
//! | zlib (UDZO) | yes | yes |
//! | bzip2 (UDBZ) | refused | only with QEMU's `dmg-bz2` block module |
//! | LZFSE (ULFO) | refused | only with QEMU's `dmg-lzfse` block module (not in Debian) |
//! | LZMA (ULMO), ADC (UDCO) | refused | refused |
//!
//! [`Udif::check_supported`] names the first run this reader cannot decode before any output is written, so a
//! build fails with the compression's name instead of producing a broken disk. Everything read from the file is
//! bounds-checked: offsets inside the file, runs inside their partition, partitions inside the disk, and no run
//! larger than [`MAX_RUN_BYTES`] once decompressed.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use base64::Engine;

/// Bytes per UDIF sector.
pub const SECTOR: u64 = 512;
/// The trailer's size.
pub const TRAILER_LEN: usize = 512;
/// The largest run accepted, decompressed (Apple's tools write runs of at most 1 MiB).
pub const MAX_RUN_BYTES: u64 = 64 << 20;
/// The largest property list accepted.
pub const MAX_PLIST_BYTES: u64 = 64 << 20;
/// The largest disk accepted (2 TiB).
pub const MAX_DISK_BYTES: u64 = 2 << 40;

const MISH_HEADER_LEN: usize = 204;
const MISH_RUN_LEN: usize = 40;

/// How one run of sectors is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Compression {
    /// Zeros; nothing stored.
    Zero,
    /// Stored as is.
    Raw,
    /// Free space; reads as zeros.
    Ignore,
    /// Apple Data Compression.
    Adc,
    /// zlib (UDZO).
    Zlib,
    /// bzip2 (UDBZ).
    Bzip2,
    /// LZFSE (ULFO).
    Lzfse,
    /// LZMA (ULMO).
    Lzma,
    /// A type this reader does not know.
    Unknown(u32),
}

impl Compression {
    fn from_type(kind: u32) -> Option<Self> {
        Some(match kind {
            0x0000_0000 => Self::Zero,
            0x0000_0001 => Self::Raw,
            0x0000_0002 => Self::Ignore,
            0x8000_0004 => Self::Adc,
            0x8000_0005 => Self::Zlib,
            0x8000_0006 => Self::Bzip2,
            0x8000_0007 => Self::Lzfse,
            0x8000_0008 => Self::Lzma,
            // Comments and the terminator carry no sectors.
            0x7fff_fffe | 0xffff_ffff => return None,
            other => Self::Unknown(other),
        })
    }

    /// The type number in the `mish` table.
    pub fn type_code(self) -> u32 {
        match self {
            Self::Zero => 0,
            Self::Raw => 1,
            Self::Ignore => 2,
            Self::Adc => 0x8000_0004,
            Self::Zlib => 0x8000_0005,
            Self::Bzip2 => 0x8000_0006,
            Self::Lzfse => 0x8000_0007,
            Self::Lzma => 0x8000_0008,
            Self::Unknown(code) => code,
        }
    }

    /// True when [`Udif::convert`] decodes this run type.
    pub fn supported(self) -> bool {
        matches!(self, Self::Zero | Self::Raw | Self::Ignore | Self::Zlib)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zero => f.write_str("zero fill"),
            Self::Raw => f.write_str("raw"),
            Self::Ignore => f.write_str("free space"),
            Self::Adc => f.write_str("ADC (UDCO)"),
            Self::Zlib => f.write_str("zlib (UDZO)"),
            Self::Bzip2 => f.write_str("bzip2 (UDBZ)"),
            Self::Lzfse => f.write_str("LZFSE (ULFO)"),
            Self::Lzma => f.write_str("LZMA (ULMO)"),
            Self::Unknown(code) => write!(f, "unknown type {code:#010x}"),
        }
    }
}

/// One run of sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// How it is stored.
    pub compression: Compression,
    /// Its first sector on the disk (absolute).
    pub sector: u64,
    /// Its length in sectors.
    pub sectors: u64,
    /// Where its stored bytes start in the file (absolute).
    pub offset: u64,
    /// How many bytes are stored.
    pub length: u64,
}

/// One partition's table of runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The name the property list gives it.
    pub name: String,
    /// Its first sector on the disk.
    pub sector: u64,
    /// Its length in sectors.
    pub sectors: u64,
    /// Its runs.
    pub runs: Vec<Run>,
}

/// A parsed UDIF image: the disk's size and every partition's runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Udif {
    /// The disk's size in sectors.
    pub sectors: u64,
    /// The partitions.
    pub partitions: Vec<Partition>,
}

/// What is wrong with a disk image, or with converting it.
#[derive(Debug, thiserror::Error)]
pub enum DmgError {
    /// Not a UDIF image, or a structure in it is inconsistent.
    #[error("{path}: not a usable UDIF disk image: {reason}")]
    Format {
        /// The image.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A run uses a compression this reader does not decode.
    #[error(
        "{path}: partition `{partition}` stores sectors {sector}.. with {compression}, which vmkit's reader does not \
         decode (it handles raw, zero-fill and zlib runs); convert the image with a tool that does, e.g. \
         `qemu-img convert -f dmg -O raw` with QEMU's dmg block modules"
    )]
    Unsupported {
        /// The image.
        path: PathBuf,
        /// The partition.
        partition: String,
        /// The run's first sector.
        sector: u64,
        /// Its compression.
        compression: Compression,
    },
    /// A compressed run did not decompress to its size.
    #[error("{path}: the run at sector {sector} does not decompress to {expected} bytes: {reason}")]
    Corrupt {
        /// The image.
        path: PathBuf,
        /// The run's first sector.
        sector: u64,
        /// Its size.
        expected: u64,
        /// What went wrong.
        reason: String,
    },
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

fn be32(data: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(data.get(at..at + 4).unwrap_or(&[0; 4]));
    u32::from_be_bytes(b)
}

fn be64(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(data.get(at..at + 8).unwrap_or(&[0; 8]));
    u64::from_be_bytes(b)
}

/// The fields of the `koly` trailer vmkit uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Where the data fork starts.
    pub data_offset: u64,
    /// Its length.
    pub data_length: u64,
    /// Where the property list starts.
    pub xml_offset: u64,
    /// Its length.
    pub xml_length: u64,
    /// The disk's size in sectors.
    pub sectors: u64,
}

impl Trailer {
    /// Parses the last 512 bytes of a file of `file_len` bytes.
    pub fn parse(data: &[u8], file_len: u64) -> Result<Self, String> {
        if data.len() != TRAILER_LEN || data.get(..4) != Some(b"koly") {
            return Err("no `koly` trailer in the last 512 bytes".into());
        }
        if be32(data, 4) != 4 || be32(data, 8) != TRAILER_LEN as u32 {
            return Err(format!("trailer version {} / size {} (expected 4 / 512)", be32(data, 4), be32(data, 8)));
        }
        let trailer = Self {
            data_offset: be64(data, 24),
            data_length: be64(data, 32),
            xml_offset: be64(data, 216),
            xml_length: be64(data, 224),
            sectors: be64(data, 492),
        };
        let body = file_len.saturating_sub(TRAILER_LEN as u64);
        let inside = |offset: u64, length: u64| offset.checked_add(length).is_some_and(|end| end <= body);
        if !inside(trailer.data_offset, trailer.data_length) {
            return Err("the data fork lies outside the file".into());
        }
        if trailer.xml_length == 0
            || trailer.xml_length > MAX_PLIST_BYTES
            || !inside(trailer.xml_offset, trailer.xml_length)
        {
            return Err("the property list is missing, too large or outside the file".into());
        }
        if trailer.sectors == 0 || trailer.sectors.checked_mul(SECTOR).is_none_or(|b| b > MAX_DISK_BYTES) {
            return Err(format!("a disk of {} sectors", trailer.sectors));
        }
        Ok(trailer)
    }
}

/// Parses one `mish` table (a `blkx` entry's data) of a disk of `disk_sectors`, whose data fork starts at
/// `data_offset` and is `data_length` bytes long.
pub fn parse_mish(
    name: &str,
    data: &[u8],
    disk_sectors: u64,
    data_offset: u64,
    data_length: u64,
) -> Result<Partition, String> {
    if data.len() < MISH_HEADER_LEN || data.get(..4) != Some(b"mish") {
        return Err(format!("partition `{name}`: not a `mish` table"));
    }
    let sector = be64(data, 8);
    let sectors = be64(data, 16);
    let base = be64(data, 24);
    let count = be32(data, 200) as usize;
    let need = MISH_HEADER_LEN + count.saturating_mul(MISH_RUN_LEN);
    if data.len() < need {
        return Err(format!("partition `{name}`: {count} runs do not fit in {} bytes", data.len()));
    }
    if sector.checked_add(sectors).is_none_or(|end| end > disk_sectors) {
        return Err(format!("partition `{name}` (sectors {sector}+{sectors}) lies outside the disk"));
    }
    let mut runs = Vec::new();
    for i in 0..count {
        let at = MISH_HEADER_LEN + i * MISH_RUN_LEN;
        let Some(compression) = Compression::from_type(be32(data, at)) else { continue };
        let first = be64(data, at + 8);
        let length_sectors = be64(data, at + 16);
        let offset = be64(data, at + 24);
        let length = be64(data, at + 32);
        if first.checked_add(length_sectors).is_none_or(|end| end > sectors) {
            return Err(format!("partition `{name}`: run {i} lies outside the partition"));
        }
        if length_sectors.saturating_mul(SECTOR) > MAX_RUN_BYTES {
            return Err(format!("partition `{name}`: run {i} is larger than {MAX_RUN_BYTES} bytes"));
        }
        let stored = if matches!(compression, Compression::Zero | Compression::Ignore) { 0 } else { length };
        let relative = base.checked_add(offset);
        if relative.and_then(|r| r.checked_add(stored)).is_none_or(|end| end > data_length) {
            return Err(format!("partition `{name}`: run {i}'s bytes lie outside the data fork"));
        }
        if compression == Compression::Raw && length != length_sectors * SECTOR {
            return Err(format!("partition `{name}`: raw run {i} stores {length} bytes for {length_sectors} sectors"));
        }
        runs.push(Run {
            compression,
            sector: sector + first,
            sectors: length_sectors,
            offset: data_offset + relative.unwrap_or_default(),
            length,
        });
    }
    Ok(Partition { name: name.to_owned(), sector, sectors, runs })
}

/// Parses the property list's `resource-fork` → `blkx` entries.
pub fn parse_plist(xml: &str, trailer: &Trailer) -> Result<Vec<Partition>, String> {
    let doc = roxmltree::Document::parse_with_options(
        xml,
        roxmltree::ParsingOptions { allow_dtd: true, ..roxmltree::ParsingOptions::default() },
    )
    .map_err(|e| format!("property list: {e}"))?;
    let blkx = doc
        .descendants()
        .find(|n| n.has_tag_name("key") && n.text() == Some("blkx"))
        .and_then(|key| key.next_siblings().skip(1).find(roxmltree::Node::is_element))
        .filter(|n| n.has_tag_name("array"))
        .ok_or("property list has no resource-fork/blkx array")?;
    let mut partitions = Vec::new();
    for entry in blkx.children().filter(|n| n.has_tag_name("dict")) {
        let value = |wanted: &str| {
            entry
                .children()
                .filter(roxmltree::Node::is_element)
                .skip_while(|n| !(n.has_tag_name("key") && n.text() == Some(wanted)))
                .nth(1)
        };
        let name = value("Name").or_else(|| value("CFName")).and_then(|n| n.text()).unwrap_or("").to_owned();
        let encoded: String = value("Data")
            .filter(|n| n.has_tag_name("data"))
            .and_then(|n| n.text())
            .ok_or_else(|| format!("blkx entry `{name}` has no Data"))?
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let data = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .map_err(|e| format!("blkx entry `{name}`: {e}"))?;
        partitions.push(parse_mish(&name, &data, trailer.sectors, trailer.data_offset, trailer.data_length)?);
    }
    if partitions.is_empty() {
        return Err("the blkx array is empty".into());
    }
    Ok(partitions)
}

impl Udif {
    /// Reads the trailer and the property list of the image at `path`.
    pub fn open(path: &Path) -> Result<Self, DmgError> {
        let io = |op, source| DmgError::Io { op, path: path.to_owned(), source };
        let format = |reason: String| DmgError::Format { path: path.to_owned(), reason };
        let mut file = File::open(path).map_err(|e| io("opening", e))?;
        let len = file.metadata().map_err(|e| io("inspecting", e))?.len();
        if len < TRAILER_LEN as u64 {
            return Err(format("shorter than its trailer".into()));
        }
        let mut trailer = vec![0u8; TRAILER_LEN];
        file.seek(SeekFrom::Start(len - TRAILER_LEN as u64)).map_err(|e| io("reading", e))?;
        file.read_exact(&mut trailer).map_err(|e| io("reading", e))?;
        let trailer = Trailer::parse(&trailer, len).map_err(format)?;
        let mut xml = vec![0u8; usize::try_from(trailer.xml_length).unwrap_or(usize::MAX)];
        file.read_exact_at(&mut xml, trailer.xml_offset).map_err(|e| io("reading", e))?;
        let xml = String::from_utf8(xml).map_err(|_| format("the property list is not UTF-8".into()))?;
        let partitions = parse_plist(&xml, &trailer).map_err(format)?;
        Ok(Self { sectors: trailer.sectors, partitions })
    }

    /// Every compression the image uses.
    pub fn compressions(&self) -> BTreeSet<Compression> {
        self.partitions.iter().flat_map(|p| p.runs.iter().map(|r| r.compression)).collect()
    }

    /// Fails with the first run this reader cannot decode.
    pub fn check_supported(&self, path: &Path) -> Result<(), DmgError> {
        for partition in &self.partitions {
            if let Some(run) = partition.runs.iter().find(|r| !r.compression.supported()) {
                return Err(DmgError::Unsupported {
                    path: path.to_owned(),
                    partition: partition.name.clone(),
                    sector: run.sector,
                    compression: run.compression,
                });
            }
        }
        Ok(())
    }

    /// Writes the disk as a raw image to `output`, which must not exist yet (through a temporary file renamed
    /// into place, so `output` never holds a half-written disk). Unsupported compressions are refused before
    /// anything is written.
    pub fn convert(&self, input: &Path, output: &Path) -> Result<(), DmgError> {
        self.check_supported(input)?;
        let io = |op, path: &Path, source| DmgError::Io { op, path: path.to_owned(), source };
        let source = File::open(input).map_err(|e| io("opening", input, e))?;
        let mut tmp = store::NewFile::create(output, 0o600)
            .map_err(|e| io("creating a temporary file in", store::atomic::dir_of(output), e))?;
        tmp.file().set_len(self.sectors * SECTOR).map_err(|e| io("sizing", tmp.temp_path(), e))?;
        let mut stored = Vec::new();
        let mut plain = Vec::new();
        for run in self.partitions.iter().flat_map(|p| &p.runs) {
            let size = run.sectors * SECTOR;
            match run.compression {
                // The file was sized with zeros (sparse): nothing to write.
                Compression::Zero | Compression::Ignore => continue,
                Compression::Raw => {
                    stored.resize(usize::try_from(run.length).unwrap_or(0), 0);
                    source.read_exact_at(&mut stored, run.offset).map_err(|e| io("reading", input, e))?;
                    tmp.file()
                        .write_all_at(&stored, run.sector * SECTOR)
                        .map_err(|e| io("writing", tmp.temp_path(), e))?;
                }
                Compression::Zlib => {
                    stored.resize(usize::try_from(run.length).unwrap_or(0), 0);
                    source.read_exact_at(&mut stored, run.offset).map_err(|e| io("reading", input, e))?;
                    plain.clear();
                    let corrupt = |reason: String| DmgError::Corrupt {
                        path: input.to_owned(),
                        sector: run.sector,
                        expected: size,
                        reason,
                    };
                    // One byte more than the run may hold, to notice a run that decompresses too long.
                    flate2::read::ZlibDecoder::new(stored.as_slice())
                        .take(size + 1)
                        .read_to_end(&mut plain)
                        .map_err(|e| corrupt(e.to_string()))?;
                    if plain.len() as u64 != size {
                        return Err(corrupt(format!("got {} bytes", plain.len())));
                    }
                    tmp.file()
                        .write_all_at(&plain, run.sector * SECTOR)
                        .map_err(|e| io("writing", tmp.temp_path(), e))?;
                }
                other => {
                    return Err(DmgError::Unsupported {
                        path: input.to_owned(),
                        partition: String::new(),
                        sector: run.sector,
                        compression: other,
                    });
                }
            }
        }
        tmp.file_mut().flush().map_err(|e| io("writing", output, e))?;
        tmp.sync().map_err(|e| io("syncing", output, e))?;
        tmp.persist().map_err(|e| io("renaming into", output, e))?;
        Ok(())
    }
}
