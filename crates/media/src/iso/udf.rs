//! UDF (ECMA-167 / OSTA UDF 1.02–2.01): anchor, volume descriptors, partitions, file entries, directories.
//!
//! What is read, in order: the anchor at sector 256 (or the last sector, or 256 before it), the main volume
//! descriptor sequence (partition and logical volume descriptors), the file set descriptor, then file entries and
//! directories on demand. Type 1 and sparable partition maps are read (what mastering tools for Windows media
//! write); virtual (CD-R) and metadata (UDF 2.50+, Blu-ray) partitions are refused with a clear message.
//!
//! Every descriptor is checked for its tag checksum and, where ECMA-167 records one, its own location, so a
//! sector of garbage is never taken for a descriptor. Allocation descriptor chains, sequences and directory sizes
//! are bounded.

use super::{Data, Entry, EntryKind, Extent, Iso, MAX_EXTENTS, SECTOR, entry, names_match};
use crate::error::{Error, Result};
use crate::source::ReadAt;

/// How many sectors of volume descriptor sequence are read at most (real sequences have fewer than 16).
const MAX_VDS_SECTORS: u64 = 256;
/// How many volume descriptor pointers (sequence continuations) are followed.
const MAX_VDS_HOPS: usize = 8;
/// How many allocation extent descriptors (continued allocation lists) one file may chain.
const MAX_AD_CHAIN: usize = 4096;

const TAG_PVD: u16 = 1;
const TAG_AVDP: u16 = 2;
const TAG_VDP: u16 = 3;
const TAG_PD: u16 = 5;
const TAG_LVD: u16 = 6;
const TAG_TD: u16 = 8;
const TAG_FSD: u16 = 256;
const TAG_FID: u16 = 257;
const TAG_AED: u16 = 258;
const TAG_FE: u16 = 261;
const TAG_EFE: u16 = 266;

/// A mounted UDF logical volume.
#[derive(Debug, Clone)]
pub(crate) struct Udf {
    /// The logical volume identifier.
    pub volume_id: String,
    /// The UDF revision from the logical volume's domain identifier (BCD, `0x0102`).
    pub revision: u16,
    block_size: u64,
    /// Partition maps, by partition reference number: (start sector, length in blocks).
    partitions: Vec<(u64, u64)>,
    root_icb: LbAddr,
}

/// A logical block address: block within a partition, and which partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LbAddr {
    block: u32,
    partition: u16,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2).map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap_or_default()))
}

/// Checks a descriptor tag: its checksum, and (if given) the location it says it was recorded at. Returns the
/// tag identifier.
fn tag_id(b: &[u8], location: Option<u32>) -> Option<u16> {
    if b.len() < 16 {
        return None;
    }
    let sum = b[..16].iter().enumerate().filter(|(i, _)| *i != 4).fold(0u8, |a, (_, &v)| a.wrapping_add(v));
    if sum != b[4] {
        return None;
    }
    if let Some(loc) = location
        && u32_at(b, 12) != loc
    {
        return None;
    }
    Some(u16_at(b, 0))
}

/// Decodes an OSTA CS0 string: compression id 8 (one byte per character) or 16 (UTF-16BE).
fn cs0(b: &[u8]) -> String {
    match b.split_first() {
        Some((8, rest)) => rest.iter().map(|&c| char::from(c)).collect(),
        Some((16, rest)) => {
            let units: Vec<u16> = rest.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16_lossy(&units)
        }
        _ => String::new(),
    }
}

/// Decodes a fixed-size dstring (its last byte is the used length).
fn dstring(b: &[u8]) -> String {
    let Some((&len, body)) = b.split_last() else { return String::new() };
    cs0(&body[..(len as usize).min(body.len())])
}

impl Udf {
    /// Finds the anchor, reads the volume descriptor sequence and the file set descriptor.
    pub(crate) fn mount<R: ReadAt>(iso: &Iso<R>) -> Result<Udf> {
        let sectors = iso.size / SECTOR;
        let mut anchor = None;
        for sector in [256, sectors.saturating_sub(1), sectors.saturating_sub(257)] {
            if sector < 256 || (sector + 1) * SECTOR > iso.size {
                continue;
            }
            let mut b = [0u8; SECTOR as usize];
            iso.read_at(sector * SECTOR, &mut b, "the UDF anchor")?;
            if tag_id(&b, Some(sector as u32)) == Some(TAG_AVDP) {
                anchor = Some(b);
                break;
            }
        }
        let Some(anchor) = anchor else {
            if iso.size < 257 * SECTOR {
                return Err(Error::Truncated {
                    what: "the UDF anchor at sector 256".into(),
                    needed: 257 * SECTOR,
                    size: iso.size,
                });
            }
            return Err(Error::Malformed("UDF recognition sequence present but no anchor volume descriptor".into()));
        };
        let mut vds_len = u64::from(u32_at(&anchor, 16));
        let mut vds_loc = u64::from(u32_at(&anchor, 20));

        let mut volume_id = None;
        let mut partition_descs: Vec<(u16, u64, u64)> = Vec::new(); // number, start, length
        let mut lvd: Option<Vec<u8>> = None;
        let mut hops = 0;
        let mut read = 0;
        'sequence: loop {
            let count = vds_len.div_ceil(SECTOR);
            for i in 0..count {
                read += 1;
                if read > MAX_VDS_SECTORS {
                    return Err(Error::Malformed("UDF volume descriptor sequence too long".into()));
                }
                let sector = vds_loc + i;
                let mut b = vec![0u8; SECTOR as usize];
                iso.read_at(sector * SECTOR, &mut b, "the UDF volume descriptor sequence")?;
                match tag_id(&b, Some(sector as u32)) {
                    Some(TAG_PVD) => {
                        volume_id.get_or_insert_with(|| dstring(&b[24..56]));
                    }
                    Some(TAG_PD) => {
                        partition_descs.push((u16_at(&b, 22), u64::from(u32_at(&b, 188)), u64::from(u32_at(&b, 192))))
                    }
                    Some(TAG_LVD) => {
                        lvd.get_or_insert(b);
                    }
                    Some(TAG_VDP) => {
                        hops += 1;
                        if hops > MAX_VDS_HOPS {
                            return Err(Error::Malformed("UDF volume descriptor pointers loop".into()));
                        }
                        vds_len = u64::from(u32_at(&b, 20));
                        vds_loc = u64::from(u32_at(&b, 24));
                        continue 'sequence;
                    }
                    Some(TAG_TD) | None => break 'sequence,
                    Some(_) => {}
                }
            }
            break;
        }
        let lvd = lvd.ok_or_else(|| Error::Malformed("UDF volume has no logical volume descriptor".into()))?;
        let block_size = u64::from(u32_at(&lvd, 212));
        if block_size != SECTOR {
            return Err(Error::Malformed(format!("UDF logical block size {block_size} (only 2048 is read)")));
        }
        let revision = if lvd[217..236] == *b"*OSTA UDF Compliant" { u16_at(&lvd, 240) } else { 0 };
        let logical_volume_id = dstring(&lvd[84..212]);
        let fsd_at = LbAddr { block: u32_at(&lvd, 252), partition: u16_at(&lvd, 256) };
        let map_table_len = u32_at(&lvd, 264) as usize;
        let map_count = u32_at(&lvd, 268) as usize;
        let maps = lvd
            .get(440..440usize.saturating_add(map_table_len))
            .ok_or_else(|| Error::Malformed("UDF partition map table runs past its descriptor".into()))?;
        let mut partitions = Vec::new();
        let mut pos = 0;
        for _ in 0..map_count {
            let (Some(&kind), Some(&len)) = (maps.get(pos), maps.get(pos + 1)) else {
                return Err(Error::Malformed("UDF partition map table shorter than its map count".into()));
            };
            let map = maps
                .get(pos..pos + len as usize)
                .filter(|m| m.len() >= 6)
                .ok_or_else(|| Error::Malformed("UDF partition map runs past its table".into()))?;
            let number = match kind {
                1 => u16_at(map, 4),
                2 => {
                    let ident = map.get(5..28).unwrap_or_default();
                    if ident.starts_with(b"*UDF Sparable Partition") {
                        u16_at(map, 38)
                    } else {
                        let name = String::from_utf8_lossy(ident).trim_end_matches('\0').to_string();
                        return Err(Error::Malformed(format!("UDF partition map {name:?} is not supported")));
                    }
                }
                _ => return Err(Error::Malformed(format!("UDF partition map type {kind}"))),
            };
            let &(_, start, length) = partition_descs
                .iter()
                .find(|(n, ..)| *n == number)
                .ok_or_else(|| Error::Malformed(format!("UDF partition {number} has no partition descriptor")))?;
            partitions.push((start, length));
            pos += len as usize;
        }
        let mut udf = Udf {
            volume_id: if logical_volume_id.is_empty() { volume_id.unwrap_or_default() } else { logical_volume_id },
            revision,
            block_size,
            partitions,
            root_icb: LbAddr { block: 0, partition: 0 },
        };
        let fsd = udf.read_block(iso, fsd_at, "the UDF file set descriptor")?;
        if tag_id(&fsd, Some(fsd_at.block)) != Some(TAG_FSD) {
            return Err(Error::Malformed("UDF file set descriptor missing".into()));
        }
        udf.root_icb = LbAddr { block: u32_at(&fsd, 404), partition: u16_at(&fsd, 408) };
        Ok(udf)
    }

    /// The absolute byte offset of a logical block.
    fn block_offset(&self, at: LbAddr, what: &str) -> Result<u64> {
        let &(start, length) = self
            .partitions
            .get(at.partition as usize)
            .ok_or_else(|| Error::Malformed(format!("{what}: UDF partition reference {}", at.partition)))?;
        if u64::from(at.block) >= length {
            return Err(Error::Malformed(format!("{what}: block {} beyond its partition's {length}", at.block)));
        }
        Ok((start + u64::from(at.block)) * self.block_size)
    }

    fn read_block<R: ReadAt>(&self, iso: &Iso<R>, at: LbAddr, what: &str) -> Result<Vec<u8>> {
        let offset = self.block_offset(at, what)?;
        iso.read_vec_at(offset, self.block_size as usize, what)
    }

    pub(crate) fn root<R: ReadAt>(&self, iso: &Iso<R>) -> Result<Entry> {
        let root = self.file_entry(iso, self.root_icb, String::new())?;
        if !root.is_dir() {
            return Err(Error::Malformed("UDF root is not a folder".into()));
        }
        Ok(root)
    }

    /// Reads a file entry (or extended file entry) and turns its allocation descriptors into extents.
    fn file_entry<R: ReadAt>(&self, iso: &Iso<R>, icb: LbAddr, name: String) -> Result<Entry> {
        let what = if name.is_empty() { "the UDF root folder".to_string() } else { format!("file entry of {name:?}") };
        let b = self.read_block(iso, icb, &what)?;
        let (l_ea_at, ad_base): (usize, usize) = match tag_id(&b, Some(icb.block)) {
            Some(TAG_FE) => (168, 176),
            Some(TAG_EFE) => (208, 216),
            Some(other) => {
                return Err(Error::Malformed(format!("{what}: descriptor {other} where a file entry belongs")));
            }
            None => return Err(Error::Malformed(format!("{what}: no valid file entry at block {}", icb.block))),
        };
        let file_type = b[27];
        let flags = u16_at(&b, 34);
        let size = u64_at(&b, 56);
        let l_ea = u32_at(&b, l_ea_at) as usize;
        let l_ad = u32_at(&b, l_ea_at + 4) as usize;
        let ads = ad_base
            .checked_add(l_ea)
            .and_then(|s| Some(s..s.checked_add(l_ad)?))
            .and_then(|r| b.get(r))
            .ok_or_else(|| Error::Malformed(format!("{what}: allocation descriptors run past the entry")))?;
        let kind = match file_type {
            4 => EntryKind::Dir,
            5 => EntryKind::File,
            _ => EntryKind::Other,
        };
        let data = match flags & 7 {
            3 => {
                let n = usize::try_from(size)
                    .ok()
                    .filter(|&n| n <= ads.len())
                    .ok_or_else(|| Error::Malformed(format!("{what}: embedded data shorter than its length {size}")))?;
                Data::Embedded(ads[..n].to_vec())
            }
            ad_type @ 0..=2 => Data::Extents(self.extents(iso, ads, ad_type, icb.partition, size, &what)?),
            other => return Err(Error::Malformed(format!("{what}: allocation descriptor type {other}"))),
        };
        Ok(entry(name, kind, size, data))
    }

    /// Collects the extents of a file from its allocation descriptors, following continuation extents (bounded),
    /// and trims them to the file's length.
    fn extents<R: ReadAt>(
        &self,
        iso: &Iso<R>,
        first: &[u8],
        ad_type: u16,
        partition: u16,
        size: u64,
        what: &str,
    ) -> Result<Vec<Extent>> {
        let ad_len = match ad_type {
            0 => 8,
            1 => 16,
            _ => 20,
        };
        let mut extents = Vec::new();
        let mut covered = 0u64;
        let mut area = first.to_vec();
        let mut hops = 0;
        'areas: loop {
            for ad in area.chunks_exact(ad_len) {
                let raw_len = u32_at(ad, 0);
                let len = u64::from(raw_len & 0x3fff_ffff);
                let kind = raw_len >> 30;
                let (block, part) = match ad_type {
                    0 => (u32_at(ad, 4), partition),
                    1 => (u32_at(ad, 4), u16_at(ad, 8)),
                    _ => (u32_at(ad, 12), u16_at(ad, 16)),
                };
                if len == 0 {
                    break 'areas;
                }
                let at = LbAddr { block, partition: part };
                if kind == 3 {
                    hops += 1;
                    if hops > MAX_AD_CHAIN {
                        return Err(Error::Malformed(format!("{what}: allocation extents chain too long")));
                    }
                    let b = self.read_block(iso, at, what)?;
                    if tag_id(&b, Some(block)) != Some(TAG_AED) {
                        return Err(Error::Malformed(format!("{what}: broken allocation extent descriptor")));
                    }
                    let n = u32_at(&b, 20) as usize;
                    area = b
                        .get(24..24usize.saturating_add(n))
                        .map(<[u8]>::to_vec)
                        .ok_or_else(|| Error::Malformed(format!("{what}: allocation extent runs past its block")))?;
                    continue 'areas;
                }
                if covered >= size {
                    break 'areas;
                }
                let take = len.min(size - covered);
                let offset = if kind == 0 {
                    let start = self.block_offset(at, what)?;
                    let blocks_needed = take.div_ceil(self.block_size);
                    let (_, plen) = self.partitions[at.partition as usize];
                    if u64::from(block) + blocks_needed > plen {
                        return Err(Error::Malformed(format!("{what}: extent runs past its partition")));
                    }
                    Some(start)
                } else {
                    None
                };
                if extents.len() >= MAX_EXTENTS {
                    return Err(Error::Malformed(format!("{what}: more than {MAX_EXTENTS} extents")));
                }
                extents.push(Extent { offset, len: take });
                covered += take;
            }
            break;
        }
        if covered < size {
            return Err(Error::Malformed(format!("{what}: extents cover {covered} of its {size} bytes")));
        }
        Ok(extents)
    }

    /// The children of a folder as (name, is-parent, icb), without reading their file entries.
    fn children<R: ReadAt>(&self, iso: &Iso<R>, dir: &Entry) -> Result<Vec<(String, LbAddr)>> {
        let data = iso.read_dir_data(dir)?;
        let mut out = Vec::new();
        let mut pos = 0usize;
        while pos + 38 <= data.len() {
            let fid = &data[pos..];
            if tag_id(fid, None) != Some(TAG_FID) {
                return Err(Error::Malformed(format!("folder {:?}: bad file identifier at {pos}", dir.name())));
            }
            let characteristics = fid[18];
            let l_fi = fid[19] as usize;
            let icb = LbAddr { block: u32_at(fid, 24), partition: u16_at(fid, 28) };
            let l_iu = u16_at(fid, 36) as usize;
            let total = (38 + l_iu + l_fi).next_multiple_of(4);
            let name_bytes = fid
                .get(38 + l_iu..38 + l_iu + l_fi)
                .ok_or_else(|| Error::Malformed(format!("folder {:?}: file identifier runs past it", dir.name())))?;
            pos += total;
            if characteristics & (0x04 | 0x08) != 0 {
                continue; // deleted, or the parent entry
            }
            out.push((cs0(name_bytes), icb));
        }
        Ok(out)
    }

    pub(crate) fn read_dir<R: ReadAt>(&self, iso: &Iso<R>, dir: &Entry) -> Result<Vec<Entry>> {
        self.children(iso, dir)?.into_iter().map(|(name, icb)| self.file_entry(iso, icb, name)).collect()
    }

    pub(crate) fn find_child<R: ReadAt>(&self, iso: &Iso<R>, dir: &Entry, name: &str) -> Result<Option<Entry>> {
        match self.children(iso, dir)?.into_iter().find(|(n, _)| names_match(n, name)) {
            Some((n, icb)) => Ok(Some(self.file_entry(iso, icb, n)?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{cs0, dstring, tag_id};

    #[test]
    fn cs0_names_decode_both_widths() {
        assert_eq!(cs0(b"\x08install.wim"), "install.wim");
        assert_eq!(cs0(b"\x10\x00a\x00\xe9"), "a\u{e9}");
        assert_eq!(cs0(b""), "");
        let mut d = [0u8; 32];
        d[..5].copy_from_slice(b"\x08CCCO");
        d[31] = 5;
        assert_eq!(dstring(&d), "CCCO");
    }

    #[test]
    fn a_tag_must_carry_its_checksum_and_location() {
        let mut t = [0u8; 16];
        t[0] = 2;
        t[12] = 0;
        t[13] = 1; // location 256
        t[4] = t.iter().enumerate().filter(|(i, _)| *i != 4).fold(0u8, |a, (_, &v)| a.wrapping_add(v));
        assert_eq!(tag_id(&t, Some(256)), Some(2));
        assert_eq!(tag_id(&t, Some(257)), None);
        t[0] = 3;
        assert_eq!(tag_id(&t, None), None);
    }
}
