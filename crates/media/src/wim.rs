//! WIM and ESD install images: the 208-byte header and the UTF-16 XML that names the images (editions).
//!
//! A Windows `install.wim` (or the solid, LZMS-compressed `install.esd` of Microsoft's media tool) describes its
//! images in an XML resource whose place the header records. Listing the editions therefore needs exactly two
//! reads — the header at the start and the XML, usually at the end — whatever the file's size; nothing is
//! decompressed. [`parse_header`] and [`parse_xml`] are pure functions over bytes; [`read_info`] drives them over
//! any [`ReadAt`] (a `.wim` file, or a file inside an ISO through [`crate::iso::Iso::file`]).
//!
//! Architecture numbers in `<ARCH>` are Windows' `PROCESSOR_ARCHITECTURE_*` values: 0 x86, 5 ARM, 6 IA-64,
//! 9 x64, 12 ARM64.

use crate::error::{Error, Result};
use crate::sniff;
use crate::source::ReadAt;

/// The magic every WIM (and ESD) starts with.
pub const MAGIC: &[u8; 8] = b"MSWIM\0\0\0";
/// The size of the header.
pub const HEADER_LEN: usize = 208;
/// The largest XML resource read (real ones are tens of KiB per image).
pub const MAX_XML: u64 = 16 << 20;
/// The version of ordinary WIMs (1.13).
pub const VERSION_DEFAULT: u32 = 0x10d00;
/// The version of WIMs with solid resources (ESD).
pub const VERSION_SOLID: u32 = 0xe00;

/// Header flag: the file's resources are compressed.
pub const FLAG_COMPRESSION: u32 = 0x0000_0002;
/// Header flag: the WIM is one part of a split (`.swm`) set.
pub const FLAG_SPANNED: u32 = 0x0000_0008;
/// Compression: XPRESS.
pub const FLAG_COMPRESS_XPRESS: u32 = 0x0002_0000;
/// Compression: LZX.
pub const FLAG_COMPRESS_LZX: u32 = 0x0004_0000;
/// Compression: LZMS (solid ESDs).
pub const FLAG_COMPRESS_LZMS: u32 = 0x0008_0000;
/// Compression: XPRESS with Huffman (newer WIMs).
pub const FLAG_COMPRESS_XPRESS2: u32 = 0x0020_0000;

/// Resource flag: the resource is compressed.
pub const RESOURCE_COMPRESSED: u8 = 0x04;

/// Where a resource is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Resource {
    /// Its offset in the file.
    pub offset: u64,
    /// Its size in the file (compressed size, if compressed).
    pub size: u64,
    /// Its size uncompressed.
    pub original_size: u64,
    /// Resource flags (`RESOURCE_COMPRESSED`, …).
    pub flags: u8,
}

impl Resource {
    fn parse(b: &[u8]) -> Resource {
        let mut size = [0u8; 8];
        size[..7].copy_from_slice(&b[..7]);
        Resource {
            size: u64::from_le_bytes(size),
            flags: b[7],
            offset: u64::from_le_bytes(b[8..16].try_into().unwrap_or_default()),
            original_size: u64::from_le_bytes(b[16..24].try_into().unwrap_or_default()),
        }
    }
}

/// A plain WIM or a solid ESD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// An ordinary WIM (version 1.13, per-file compressed resources).
    Wim,
    /// A solid WIM (version 0xe00, LZMS solid blocks) as in `install.esd`.
    Esd,
}

/// How the resources are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Stored uncompressed.
    None,
    /// XPRESS.
    Xpress,
    /// LZX.
    Lzx,
    /// LZMS.
    Lzms,
}

/// The fields of a WIM header that say what the file is and where its XML is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Header {
    /// The header's own size (208).
    pub header_size: u32,
    /// The format version (`VERSION_DEFAULT` or `VERSION_SOLID`).
    pub version: u32,
    /// WIM or ESD.
    pub format: Format,
    /// Header flags.
    pub flags: u32,
    /// The compression of the (non-solid) resources.
    pub compression: Compression,
    /// The compression chunk size.
    pub chunk_size: u32,
    /// This part's number in a split set (1 when not split).
    pub part_number: u16,
    /// The number of parts (1 when not split).
    pub total_parts: u16,
    /// The number of images.
    pub image_count: u32,
    /// The bootable image's index (0: none).
    pub boot_index: u32,
    /// The XML resource.
    pub xml: Resource,
}

/// Parses the first [`HEADER_LEN`] bytes of a WIM. `path` names the file in errors.
pub fn parse_header(b: &[u8], path: &str) -> Result<Header> {
    if !b.starts_with(MAGIC) {
        return Err(Error::NotWim { path: path.to_string(), found: sniff::describe(b, b.len() as u64) });
    }
    let bad = |problem: String| Error::BadWim { path: path.to_string(), problem };
    if b.len() < HEADER_LEN {
        return Err(bad(format!("WIM header cut off after {} bytes", b.len())));
    }
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or_default());
    let u16_at = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let header_size = u32_at(8);
    if header_size as usize != HEADER_LEN {
        return Err(bad(format!("WIM header size {header_size} (expected {HEADER_LEN})")));
    }
    let version = u32_at(12);
    let format = match version {
        VERSION_DEFAULT => Format::Wim,
        VERSION_SOLID => Format::Esd,
        v => return Err(bad(format!("WIM version {v:#x} (known: {VERSION_DEFAULT:#x} WIM, {VERSION_SOLID:#x} ESD)"))),
    };
    let flags = u32_at(16);
    let compression = if flags & FLAG_COMPRESSION == 0 {
        Compression::None
    } else if flags & FLAG_COMPRESS_LZMS != 0 {
        Compression::Lzms
    } else if flags & FLAG_COMPRESS_LZX != 0 {
        Compression::Lzx
    } else if flags & (FLAG_COMPRESS_XPRESS | FLAG_COMPRESS_XPRESS2) != 0 {
        Compression::Xpress
    } else {
        return Err(bad(format!("WIM compression flags {flags:#x} name no known compression")));
    };
    let header = Header {
        header_size,
        version,
        format,
        flags,
        compression,
        chunk_size: u32_at(20),
        part_number: u16_at(40),
        total_parts: u16_at(42),
        image_count: u32_at(44),
        boot_index: u32_at(120),
        xml: Resource::parse(&b[72..96]),
    };
    if header.total_parts != 1 || flags & FLAG_SPANNED != 0 {
        return Err(bad(format!(
            "part {} of a split WIM ({} parts); join it first (wimlib-imagex optimize or export)",
            header.part_number, header.total_parts
        )));
    }
    if header.xml.flags & RESOURCE_COMPRESSED != 0 {
        return Err(bad("the XML resource is compressed (not written by any known tool; not read)".into()));
    }
    if header.xml.size > MAX_XML {
        return Err(bad(format!("XML resource of {} bytes (more than {MAX_XML})", header.xml.size)));
    }
    if header.xml.size < 2 || !header.xml.size.is_multiple_of(2) {
        return Err(bad(format!("XML resource of {} bytes is not UTF-16 text", header.xml.size)));
    }
    Ok(header)
}

/// A processor architecture, as `<ARCH>` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// 32-bit x86 (0).
    X86,
    /// 32-bit ARM (5).
    Arm,
    /// Itanium (6).
    Ia64,
    /// x86-64 (9).
    X64,
    /// ARM64 (12).
    Arm64,
    /// Any other number.
    Other(u32),
}

impl Arch {
    /// From Windows' `PROCESSOR_ARCHITECTURE_*` number.
    pub fn from_number(n: u32) -> Arch {
        match n {
            0 => Arch::X86,
            5 => Arch::Arm,
            6 => Arch::Ia64,
            9 => Arch::X64,
            12 => Arch::Arm64,
            n => Arch::Other(n),
        }
    }

    /// From a name: `x64`/`amd64`/`x86_64`, `arm64`/`aarch64`, `x86`/`i386`/`i686`.
    pub fn from_name(s: &str) -> Option<Arch> {
        match s.to_ascii_lowercase().as_str() {
            "x64" | "amd64" | "x86_64" | "x86-64" => Some(Arch::X64),
            "arm64" | "aarch64" => Some(Arch::Arm64),
            "x86" | "i386" | "i686" => Some(Arch::X86),
            "arm" => Some(Arch::Arm),
            "ia64" => Some(Arch::Ia64),
            _ => None,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arch::X86 => f.write_str("x86"),
            Arch::Arm => f.write_str("arm"),
            Arch::Ia64 => f.write_str("ia64"),
            Arch::X64 => f.write_str("x64"),
            Arch::Arm64 => f.write_str("arm64"),
            Arch::Other(n) => write!(f, "arch-{n}"),
        }
    }
}

impl serde::Serialize for Arch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A Windows version, from `<VERSION>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Version {
    /// `<MAJOR>` (10 for Windows 10 and 11).
    pub major: u32,
    /// `<MINOR>`.
    pub minor: u32,
    /// `<BUILD>` (22000 and later: Windows 11).
    pub build: u32,
    /// `<SPBUILD>` (the update revision).
    pub spbuild: u32,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}.{}", self.major, self.minor, self.build, self.spbuild)
    }
}

/// One image of an install WIM: an edition of Windows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Edition {
    /// The image index (1-based), what Setup's `/IMAGE/INDEX` takes.
    pub index: u32,
    /// `<NAME>` (e.g. `Windows 11 Pro`).
    pub name: String,
    /// `<DISPLAYNAME>`, if any.
    pub display_name: Option<String>,
    /// `<DESCRIPTION>`, if any.
    pub description: Option<String>,
    /// `<WINDOWS><EDITIONID>` (e.g. `Professional`, `Core`, `ServerDatacenter`).
    pub edition_id: Option<String>,
    /// `<FLAGS>` (usually the edition id again).
    pub flags: Option<String>,
    /// `<WINDOWS><ARCH>`.
    pub arch: Option<Arch>,
    /// `<WINDOWS><PRODUCTNAME>`.
    pub product_name: Option<String>,
    /// `<WINDOWS><INSTALLATIONTYPE>` (`Client`, `Server`, `Server Core`).
    pub installation_type: Option<String>,
    /// `<WINDOWS><VERSION>`.
    pub version: Option<Version>,
    /// `<WINDOWS><LANGUAGES><LANGUAGE>`.
    pub languages: Vec<String>,
    /// `<WINDOWS><LANGUAGES><DEFAULT>`.
    pub default_language: Option<String>,
    /// `<TOTALBYTES>`: the image's size when applied.
    pub total_bytes: Option<u64>,
}

impl Edition {
    /// The name to show: the display name if set, else the name.
    pub fn title(&self) -> &str {
        self.display_name.as_deref().filter(|s| !s.is_empty()).unwrap_or(&self.name)
    }
}

impl std::fmt::Display for Edition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", self.index, self.title())?;
        let mut extra = Vec::new();
        if let Some(id) = &self.edition_id {
            extra.push(id.clone());
        }
        if let Some(a) = self.arch {
            extra.push(a.to_string());
        }
        if !extra.is_empty() {
            write!(f, " ({})", extra.join(", "))?;
        }
        Ok(())
    }
}

/// Decodes the XML resource (UTF-16LE, with or without a byte-order mark) and lists its images by index.
pub fn parse_xml(bytes: &[u8], path: &str) -> Result<Vec<Edition>> {
    let bad = |problem: String| Error::BadWim { path: path.to_string(), problem };
    if !bytes.len().is_multiple_of(2) {
        return Err(bad("XML resource has an odd length; not UTF-16".into()));
    }
    let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    let units = units.strip_prefix(&[0xfeff]).unwrap_or(&units);
    let text = String::from_utf16(units).map_err(|_| bad("XML resource is not valid UTF-16".into()))?;
    let text = text.trim_end_matches('\0');
    let doc = roxmltree::Document::parse(text).map_err(|e| bad(format!("XML resource: {e}")))?;
    let root = doc.root_element();
    if !root.has_tag_name("WIM") {
        return Err(bad(format!("XML resource's root is <{}>, not <WIM>", root.tag_name().name())));
    }
    let mut editions = Vec::new();
    for image in root.children().filter(|n| n.has_tag_name("IMAGE")) {
        let index = image
            .attribute("INDEX")
            .and_then(|i| i.trim().parse::<u32>().ok())
            .ok_or_else(|| bad("an <IMAGE> without a numeric INDEX".into()))?;
        let windows = child(image, "WINDOWS");
        let w = |name: &str| windows.and_then(|w| text_of(w, name));
        let version = windows.and_then(|w| child(w, "VERSION")).map(|v| Version {
            major: number(v, "MAJOR").unwrap_or(0) as u32,
            minor: number(v, "MINOR").unwrap_or(0) as u32,
            build: number(v, "BUILD").unwrap_or(0) as u32,
            spbuild: number(v, "SPBUILD").unwrap_or(0) as u32,
        });
        let languages = windows.and_then(|w| child(w, "LANGUAGES"));
        editions.push(Edition {
            index,
            name: text_of(image, "NAME").unwrap_or_default(),
            display_name: text_of(image, "DISPLAYNAME"),
            description: text_of(image, "DESCRIPTION"),
            edition_id: w("EDITIONID"),
            flags: text_of(image, "FLAGS"),
            arch: windows.and_then(|w| number(w, "ARCH")).map(|n| Arch::from_number(n as u32)),
            product_name: w("PRODUCTNAME"),
            installation_type: w("INSTALLATIONTYPE"),
            version,
            languages: languages
                .map(|l| {
                    l.children()
                        .filter(|n| n.has_tag_name("LANGUAGE"))
                        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            default_language: languages.and_then(|l| text_of(l, "DEFAULT")),
            total_bytes: number(image, "TOTALBYTES"),
        });
    }
    editions.sort_by_key(|e| e.index);
    if let Some(pair) = editions.windows(2).find(|w| w[0].index == w[1].index) {
        return Err(bad(format!("XML resource describes image {} twice", pair[0].index)));
    }
    Ok(editions)
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name(name))
}

fn text_of(node: roxmltree::Node, name: &str) -> Option<String> {
    child(node, name).and_then(|n| n.text()).map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

/// A number element; WIM XML writes decimal, some tools write `0x` hex.
fn number(node: roxmltree::Node, name: &str) -> Option<u64> {
    let t = text_of(node, name)?;
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// What an install image's header and XML say.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Info {
    /// The header.
    pub header: Header,
    /// The images, by index.
    pub editions: Vec<Edition>,
}

/// Reads the header and the XML of a WIM from `source` (two reads) and lists its editions. `path` names the
/// file in errors.
pub fn read_info<R: ReadAt + ?Sized>(source: &R, path: &str) -> Result<Info> {
    let io = |e: std::io::Error| from_io(e, path);
    let size = source.size().map_err(io)?;
    let mut head = vec![0u8; (size as usize).min(HEADER_LEN)];
    source.read_exact_at(0, &mut head).map_err(io)?;
    let header = parse_header(&head, path)?;
    let end = header.xml.offset.saturating_add(header.xml.size);
    if end > size {
        return Err(Error::Truncated { what: format!("{path}: the WIM's XML resource"), needed: end, size });
    }
    let mut xml = vec![0u8; header.xml.size as usize];
    source.read_exact_at(header.xml.offset, &mut xml).map_err(io)?;
    let editions = parse_xml(&xml, path)?;
    if editions.len() != header.image_count as usize {
        return Err(Error::BadWim {
            path: path.to_string(),
            problem: format!("header counts {} images, the XML describes {}", header.image_count, editions.len()),
        });
    }
    Ok(Info { header, editions })
}

/// Turns an I/O error from a [`ReadAt`] back into the crate's error: readers over ISO files pass
/// [`Error::Truncated`] and friends through `io::Error`.
pub(crate) fn from_io(e: std::io::Error, path: &str) -> Error {
    if !e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        return Error::Io { path: path.into(), source: e };
    }
    let kind = e.kind();
    match e.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(err)) => *err,
        Some(Err(other)) => Error::Io { path: path.into(), source: std::io::Error::new(kind, other) },
        None => Error::Io { path: path.into(), source: kind.into() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn an_image_index_may_appear_only_once() {
        let xml = "<WIM><IMAGE INDEX=\"1\"><NAME>a</NAME></IMAGE><IMAGE INDEX=\"1\"><NAME>b</NAME></IMAGE></WIM>";
        let err = parse_xml(&utf16(xml), "x.wim").unwrap_err();
        assert_eq!(err.to_string(), "x.wim: XML resource describes image 1 twice");
        let ok =
            "\u{feff}<WIM><IMAGE INDEX=\"2\"><NAME>b</NAME></IMAGE><IMAGE INDEX=\"1\"><NAME>a</NAME></IMAGE></WIM>";
        let editions = parse_xml(&utf16(ok), "x.wim").unwrap();
        assert_eq!(editions.iter().map(|e| e.index).collect::<Vec<_>>(), [1, 2]);
    }
}
