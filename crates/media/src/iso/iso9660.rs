//! ISO9660 volume descriptors and directory records (ECMA-119), with Joliet names.
//!
//! The volume descriptor set starting at sector 16 is also where UDF's volume recognition sequence lives
//! (`BEA01`, `NSR02`/`NSR03`, `TEA01`), so the descriptor scan reports both: a UDF bridge disc carries an ISO9660
//! primary volume *and* an NSR descriptor, and the reader prefers UDF.

use super::{Data, Entry, EntryKind, Extent, Iso, MAX_EXTENTS, SECTOR, entry};
use crate::error::{Error, Result};
use crate::source::ReadAt;

/// How many descriptors after sector 16 are examined before giving up (real images have fewer than ten).
const MAX_DESCRIPTORS: u64 = 64;

/// An ISO9660 volume (the primary one, or a Joliet supplementary one).
#[derive(Debug, Clone)]
pub(crate) struct Iso9660 {
    /// Whether names are Joliet UCS-2.
    pub joliet: bool,
    /// The volume label.
    pub volume_id: String,
    block_size: u64,
    root_extent: u64,
    root_size: u64,
}

/// What the descriptor area holds.
#[derive(Debug, Default)]
pub(crate) struct Descriptors {
    /// The primary volume, if any.
    pub primary: Option<Iso9660>,
    /// The Joliet volume, if any.
    pub joliet: Option<Iso9660>,
    /// Whether a UDF NSR02/NSR03 descriptor is present.
    pub nsr: bool,
}

impl Descriptors {
    /// Joliet if present, else the primary volume. Joliet labels hold only 16 characters, so the primary
    /// volume's (32) is kept when there is one.
    pub fn best(self) -> Option<Iso9660> {
        match (self.joliet, self.primary) {
            (Some(mut j), Some(p)) => {
                j.volume_id = p.volume_id;
                Some(j)
            }
            (j, p) => j.or(p),
        }
    }
}

impl Iso9660 {
    /// A placeholder before the volume is known (never read through).
    pub(crate) const EMPTY: Iso9660 =
        Iso9660 { joliet: false, volume_id: String::new(), block_size: SECTOR, root_extent: 0, root_size: 0 };

    pub(crate) fn root(&self) -> Entry {
        entry(
            String::new(),
            EntryKind::Dir,
            self.root_size,
            Data::Extents(vec![Extent { offset: Some(self.root_extent * self.block_size), len: self.root_size }]),
        )
    }

    pub(crate) fn read_dir<R: ReadAt>(&self, iso: &Iso<R>, dir: &Entry) -> Result<Vec<Entry>> {
        let data = iso.read_dir_data(dir)?;
        parse_dir(&data, self.block_size, self.joliet)
    }
}

/// Reads the volume descriptors from sector 16 on.
pub(crate) fn scan_descriptors<R: ReadAt>(iso: &Iso<R>) -> Result<Descriptors> {
    let mut found = Descriptors::default();
    let mut any = false;
    for i in 0..MAX_DESCRIPTORS {
        let offset = (16 + i) * SECTOR;
        if offset + SECTOR > iso.size {
            if any {
                return Err(Error::Truncated {
                    what: "the volume descriptor set".into(),
                    needed: offset + SECTOR,
                    size: iso.size,
                });
            }
            break;
        }
        let mut d = [0u8; SECTOR as usize];
        iso.read_at(offset, &mut d, "a volume descriptor")?;
        match &d[1..6] {
            b"CD001" => {
                any = true;
                match d[0] {
                    1 if found.primary.is_none() => found.primary = Some(parse_volume(&d, false)?),
                    2 if is_joliet(&d) && found.joliet.is_none() => found.joliet = Some(parse_volume(&d, true)?),
                    255 => {
                        // The ISO9660 set ends here; UDF's recognition sequence may follow it.
                    }
                    _ => {}
                }
            }
            b"BEA01" | b"BOOT2" | b"CDW02" => any = true,
            b"NSR02" | b"NSR03" => {
                any = true;
                found.nsr = true;
            }
            b"TEA01" => break,
            _ => break,
        }
    }
    Ok(found)
}

fn is_joliet(d: &[u8]) -> bool {
    let esc = &d[88..91];
    esc == b"%/@" || esc == b"%/C" || esc == b"%/E"
}

fn parse_volume(d: &[u8], joliet: bool) -> Result<Iso9660> {
    let block_size = u64::from(u16::from_le_bytes([d[128], d[129]]));
    if !matches!(block_size, 512 | 1024 | 2048) {
        return Err(Error::Malformed(format!("ISO9660 logical block size {block_size}")));
    }
    let root = &d[156..190];
    if root[0] < 34 {
        return Err(Error::Malformed("ISO9660 root directory record too short".into()));
    }
    let root_extent = u64::from(u32::from_le_bytes(root[2..6].try_into().unwrap_or_default()));
    let root_size = u64::from(u32::from_le_bytes(root[10..14].try_into().unwrap_or_default()));
    let raw = &d[40..72];
    let volume_id = if joliet { ucs2be(raw) } else { String::from_utf8_lossy(raw).into_owned() };
    Ok(Iso9660 { joliet, volume_id: volume_id.trim_end().to_string(), block_size, root_extent, root_size })
}

/// Parses a directory's records. Records never cross a 2048-byte sector; a zero length byte pads to the next.
pub(crate) fn parse_dir(data: &[u8], block_size: u64, joliet: bool) -> Result<Vec<Entry>> {
    let mut out: Vec<Entry> = Vec::new();
    let mut pending: Option<(String, Vec<Extent>, u64)> = None; // a multi-extent file being assembled
    let mut pos = 0usize;
    while pos < data.len() {
        let len = data[pos] as usize;
        if len == 0 {
            pos = (pos / SECTOR as usize + 1) * SECTOR as usize;
            continue;
        }
        let rec = data
            .get(pos..pos + len)
            .filter(|r| r.len() >= 34)
            .ok_or_else(|| Error::Malformed(format!("ISO9660 directory record at {pos} runs past its folder")))?;
        pos += len;
        let name_len = rec[32] as usize;
        let raw_name = rec
            .get(33..33 + name_len)
            .ok_or_else(|| Error::Malformed("ISO9660 file name runs past its record".into()))?;
        if name_len == 1 && (raw_name[0] == 0 || raw_name[0] == 1) {
            continue; // "." and ".."
        }
        let ext_attr = u64::from(rec[1]);
        let extent = u64::from(u32::from_le_bytes(rec[2..6].try_into().unwrap_or_default()));
        let size = u64::from(u32::from_le_bytes(rec[10..14].try_into().unwrap_or_default()));
        let flags = rec[25];
        let name = clean_name(&if joliet { ucs2be(raw_name) } else { String::from_utf8_lossy(raw_name).into_owned() });
        let ext = Extent { offset: Some((extent + ext_attr) * block_size), len: size };
        let is_dir = flags & 0x02 != 0;
        let more = flags & 0x80 != 0;
        if rec[26] != 0 || rec[27] != 0 {
            return Err(Error::Malformed(format!("{name}: interleaved ISO9660 files are not supported")));
        }
        let (extents, total) = match pending.take() {
            Some((pname, mut exts, total)) if pname == name => {
                if exts.len() >= MAX_EXTENTS {
                    return Err(Error::Malformed(format!("{name}: more than {MAX_EXTENTS} extents")));
                }
                exts.push(ext);
                (exts, total + size)
            }
            Some((pname, ..)) => {
                return Err(Error::Malformed(format!("{pname}: multi-extent file not continued")));
            }
            None => (vec![ext], size),
        };
        if more && !is_dir {
            pending = Some((name, extents, total));
            continue;
        }
        let kind = if is_dir { EntryKind::Dir } else { EntryKind::File };
        out.push(entry(name, kind, total, Data::Extents(extents)));
    }
    if let Some((name, ..)) = pending {
        return Err(Error::Malformed(format!("{name}: multi-extent file not continued")));
    }
    Ok(out)
}

/// Drops the `;1` version suffix and the trailing dot of names without an extension.
fn clean_name(name: &str) -> String {
    let base = name.rsplit_once(';').map_or(name, |(b, _)| b);
    base.strip_suffix('.').unwrap_or(base).to_string()
}

fn ucs2be(b: &[u8]) -> String {
    let units: Vec<u16> = b.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    String::from_utf16_lossy(&units).trim_end_matches('\0').to_string()
}

#[cfg(test)]
mod tests {
    use super::clean_name;

    #[test]
    fn version_suffixes_and_bare_dots_are_dropped() {
        assert_eq!(clean_name("INSTALL.WIM;1"), "INSTALL.WIM");
        assert_eq!(clean_name("README.;1"), "README");
        assert_eq!(clean_name("boot"), "boot");
    }
}
