//! Console fonts: the bitmaps text consoles draw with, from the files that ship them.
//!
//! A text console draws every character as a fixed bitmap in a fixed cell, so the glyphs it uses can be read back
//! exactly if vmkit has the same bitmaps. They come from two real sources on a Debian machine, never from a copy
//! kept in vmkit:
//!
//! - **VGA BIOS ROMs** (`vgabios-*.bin` from Debian's `seabios`, the ROMs QEMU's display devices run): the 8×16,
//!   8×14 and 8×8 code page 437 fonts that VGA text mode, the BIOS and boot loaders use. The tables are found by
//!   their shape, not by an offset: 256 glyphs in a row where glyph 0, the space and glyph 255 are empty and
//!   glyph 219 (the full block) is solid.
//! - **PSF fonts** (PSF1 and PSF2, as `.psf`, `.psfu` or gzip-compressed; Debian's `kbd` and
//!   `console-setup-linux` install them under `/usr/share/consolefonts`): what the Linux console loads, with
//!   their Unicode tables.
//!
//! Parsing a PSF file is parsing outside input: every size is checked against the data before it is used, sizes
//! are bounded (glyphs at most 32×64 pixels, at most 65 536 of them), and the parser has a fuzz target.

use std::io::Read;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Widest glyph supported, in pixels (a row is a `u32`).
pub const MAX_WIDTH: u32 = 32;
/// Tallest glyph supported, in pixels.
pub const MAX_HEIGHT: u32 = 64;
/// Most glyphs a font may have.
const MAX_GLYPHS: u32 = 65_536;
/// Largest compressed or uncompressed font file read (the biggest PSF fonts are about 200 KiB).
const MAX_FILE: u64 = 4 << 20;

/// A row with all `width` pixels set.
pub(crate) fn full_row(width: u32) -> u32 {
    if width >= 32 { u32::MAX } else { (1u32 << width) - 1 }
}

/// Why a font could not be loaded.
#[derive(Debug, Error)]
pub enum FontError {
    /// Neither the PSF1 nor the PSF2 magic number.
    #[error("not a PSF font (no PSF1 or PSF2 magic number)")]
    NotPsf,
    /// The data ends before what the header promises.
    #[error("truncated PSF font: the {what} need {needed} bytes, the data has {got}")]
    Truncated {
        /// Which part.
        what: &'static str,
        /// Bytes needed up to the end of that part.
        needed: u64,
        /// Bytes present.
        got: usize,
    },
    /// A header field out of range.
    #[error("bad PSF2 header: {0}")]
    Header(&'static str),
    /// No glyph table in a VGA ROM.
    #[error("no VGA font table found in the ROM")]
    NoRomFont,
    /// A file could not be read or decompressed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// One glyph: its rows (column `x` is bit `width - 1 - x`) and the characters it draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glyph {
    /// One bitmask per pixel row, top to bottom.
    pub rows: Vec<u32>,
    /// The characters the font draws with this glyph (from its Unicode table, or code page 437).
    pub chars: Vec<char>,
}

/// A fixed-size bitmap font.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Font {
    /// Where it came from, for logs and reports (`vgabios-stdvga.bin 8x16`, `Lat15-Fixed16.psf.gz`).
    pub name: String,
    /// Glyph width in pixels.
    pub width: u32,
    /// Glyph height in pixels.
    pub height: u32,
    /// The glyphs, in font order.
    pub glyphs: Vec<Glyph>,
}

/// The upper half of code page 437, the VGA's character set (0x80–0xFF).
const CP437_HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";

/// The character code page 437 puts at `index`; `None` for the control-picture glyphs below the space.
pub fn cp437(index: usize) -> Option<char> {
    match index {
        0x20..=0x7e => char::from_u32(index as u32),
        0x80..=0xff => CP437_HIGH.chars().nth(index - 0x80),
        _ => None,
    }
}

impl Font {
    /// Parses a PSF1 or PSF2 font (uncompressed bytes).
    pub fn from_psf(data: &[u8], name: impl Into<String>) -> Result<Self, FontError> {
        let name = name.into();
        if data.starts_with(&[0x36, 0x04]) {
            parse_psf1(data, name)
        } else if data.starts_with(&[0x72, 0xb5, 0x4a, 0x86]) {
            parse_psf2(data, name)
        } else {
            Err(FontError::NotPsf)
        }
    }

    /// Reads a PSF file, gzip-compressed or not.
    pub fn load_psf(path: &Path) -> Result<Self, FontError> {
        let io = |source| FontError::Io { path: path.to_owned(), source };
        let mut raw = Vec::new();
        std::fs::File::open(path).map_err(io)?.take(MAX_FILE).read_to_end(&mut raw).map_err(io)?;
        let data = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(raw.as_slice()).take(MAX_FILE).read_to_end(&mut out).map_err(io)?;
            out
        } else {
            raw
        };
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        Self::from_psf(&data, name)
    }

    /// The code page 437 fonts of a VGA BIOS ROM image: 8×16, 8×14 and 8×8, those that are found.
    pub fn from_vga_rom(rom: &[u8], name: &str) -> Result<Vec<Self>, FontError> {
        let mut fonts = Vec::new();
        for height in [16usize, 14, 8] {
            let Some(start) = find_rom_table(rom, height) else { continue };
            let glyphs = (0..256)
                .map(|i| Glyph {
                    rows: rom[start + i * height..start + (i + 1) * height].iter().map(|&b| u32::from(b)).collect(),
                    chars: cp437(i).into_iter().collect(),
                })
                .collect();
            fonts.push(Font { name: format!("{name} 8x{height}"), width: 8, height: height as u32, glyphs });
        }
        if fonts.is_empty() { Err(FontError::NoRomFont) } else { Ok(fonts) }
    }
}

/// Where a 256-glyph table of `height`-row glyphs starts in `rom`: the first offset where glyph 0, the space and
/// glyph 255 are empty, the full block (219) is solid and most glyphs in between have ink.
fn find_rom_table(rom: &[u8], height: usize) -> Option<usize> {
    let size = 256 * height;
    if rom.len() < size {
        return None;
    }
    let glyph = |p: usize, i: usize| &rom[p + i * height..p + (i + 1) * height];
    (0..=rom.len() - size).find(|&p| {
        glyph(p, 0).iter().all(|&b| b == 0)
            && glyph(p, 0x20).iter().all(|&b| b == 0)
            && glyph(p, 0xff).iter().all(|&b| b == 0)
            && glyph(p, 0xdb).iter().all(|&b| b == 0xff)
            && (0x21..0x7f).filter(|&i| glyph(p, i).iter().any(|&b| b != 0)).count() == 0x7f - 0x21
    })
}

fn need(data: &[u8], what: &'static str, needed: u64) -> Result<(), FontError> {
    if (data.len() as u64) < needed { Err(FontError::Truncated { what, needed, got: data.len() }) } else { Ok(()) }
}

fn parse_psf1(data: &[u8], name: String) -> Result<Font, FontError> {
    need(data, "header", 4)?;
    let (mode, height) = (data[2], u32::from(data[3]));
    if height == 0 || height > MAX_HEIGHT {
        return Err(FontError::Header("PSF1 glyph height out of range (1 to 64)"));
    }
    let count: usize = if mode & 0x01 != 0 { 512 } else { 256 };
    let h = height as usize;
    let end = 4 + count * h;
    need(data, "glyphs", end as u64)?;
    let mut glyphs: Vec<Glyph> = (0..count)
        .map(|i| Glyph {
            rows: data[4 + i * h..4 + (i + 1) * h].iter().map(|&b| u32::from(b)).collect(),
            chars: vec![],
        })
        .collect();
    if mode & 0x06 != 0 {
        // Unicode table: per glyph, UCS-2 values up to 0xFFFF; 0xFFFE starts sequences (skipped).
        let mut words = data[end..].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
        for g in &mut glyphs {
            let mut in_seq = false;
            for w in words.by_ref() {
                match w {
                    0xffff => break,
                    0xfffe => in_seq = true,
                    _ if in_seq => {}
                    _ => g.chars.extend(char::from_u32(u32::from(w))),
                }
            }
        }
    } else {
        glyphs.iter_mut().enumerate().for_each(|(i, g)| g.chars.extend(cp437(i)));
    }
    Ok(Font { name, width: 8, height, glyphs })
}

fn parse_psf2(data: &[u8], name: String) -> Result<Font, FontError> {
    need(data, "header", 32)?;
    let field = |i: usize| u32::from_le_bytes([data[4 * i], data[4 * i + 1], data[4 * i + 2], data[4 * i + 3]]);
    let (header, flags, length, charsize, height, width) = (field(2), field(3), field(4), field(5), field(6), field(7));
    if header < 32 {
        return Err(FontError::Header("header size below 32"));
    }
    if width == 0 || width > MAX_WIDTH || height == 0 || height > MAX_HEIGHT {
        return Err(FontError::Header("glyph size out of range (1x1 to 32x64)"));
    }
    if length == 0 || length > MAX_GLYPHS {
        return Err(FontError::Header("glyph count out of range (1 to 65536)"));
    }
    let row_bytes = width.div_ceil(8);
    if charsize != row_bytes * height {
        return Err(FontError::Header("bytes per glyph do not match the glyph size"));
    }
    let start = u64::from(header);
    let end = start + u64::from(length) * u64::from(charsize);
    need(data, "glyphs", end)?;
    let (start, end, cs, rb) = (start as usize, end as usize, charsize as usize, row_bytes as usize);
    let shift = row_bytes * 8 - width;
    let mut glyphs: Vec<Glyph> = data[start..end]
        .chunks_exact(cs)
        .map(|g| Glyph {
            rows: g
                .chunks_exact(rb)
                .map(|r| r.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) >> shift)
                .collect(),
            chars: vec![],
        })
        .collect();
    if flags & 1 != 0 {
        // Unicode table: per glyph, UTF-8 up to 0xFF; 0xFE starts sequences (skipped).
        let mut rest = &data[end..];
        for g in &mut glyphs {
            let stop = rest.iter().position(|&b| b == 0xff).unwrap_or(rest.len());
            let entry = &rest[..stop];
            let singles = &entry[..entry.iter().position(|&b| b == 0xfe).unwrap_or(entry.len())];
            g.chars.extend(String::from_utf8_lossy(singles).chars().filter(|&c| c != char::REPLACEMENT_CHARACTER));
            rest = rest.get(stop + 1..).unwrap_or(&[]);
        }
    } else {
        glyphs.iter_mut().enumerate().for_each(|(i, g)| g.chars.extend(cp437(i)));
    }
    Ok(Font { name, width, height, glyphs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn psf2(width: u32, height: u32, glyphs: &[Vec<u8>], table: Option<&[u8]>) -> Vec<u8> {
        let charsize = width.div_ceil(8) * height;
        let mut d = vec![0x72, 0xb5, 0x4a, 0x86];
        for v in [0, 32, u32::from(table.is_some()), glyphs.len() as u32, charsize, height, width] {
            d.extend(v.to_le_bytes());
        }
        glyphs.iter().for_each(|g| d.extend(g));
        d.extend(table.unwrap_or_default());
        d
    }

    #[test]
    fn psf2_rows_and_unicode_table() {
        // Two 10x2 glyphs: rows are two bytes each, column 0 in the top bit.
        let glyphs = vec![vec![0x80, 0x00, 0x00, 0x40], vec![0xff, 0xc0, 0, 0]];
        let f = Font::from_psf(&psf2(10, 2, &glyphs, Some(b"Aa\xfexy\xff\xc3\xa9\xff")), "t").unwrap();
        assert_eq!((f.width, f.height), (10, 2));
        assert_eq!(f.glyphs[0].rows, [1 << 9, 1]);
        assert_eq!(f.glyphs[1].rows, [0x3ff, 0]);
        // The sequence after 0xFE is skipped.
        assert_eq!(f.glyphs[0].chars, ['A', 'a']);
        assert_eq!(f.glyphs[1].chars, ['é']);
        // Without a table: code page 437.
        let f = Font::from_psf(&psf2(8, 1, &vec![vec![0]; 0x42], None), "t").unwrap();
        assert_eq!(f.glyphs[0x41].chars, ['A']);
        assert!(f.glyphs[1].chars.is_empty());
    }

    #[test]
    fn psf1_with_table() {
        let mut d = vec![0x36, 0x04, 0x02, 2];
        d.extend(vec![0u8; 256 * 2]);
        d[4 + 0x41 * 2] = 0x18;
        let mut table = Vec::new();
        for i in 0..256u16 {
            table.extend(i.to_le_bytes());
            if i == 0x41 {
                table.extend(0x391u16.to_le_bytes()); // Greek capital alpha shares the glyph
                table.extend([0xfe, 0xff, 0x41, 0, 0x42, 0]); // a sequence, skipped
            }
            table.extend([0xff, 0xff]);
        }
        d.extend(table);
        let f = Font::from_psf(&d, "t").unwrap();
        assert_eq!(f.glyphs[0x41].rows, [0x18, 0]);
        assert_eq!(f.glyphs[0x41].chars, ['A', 'Α']);
        assert_eq!(f.glyphs[0x42].chars, ['B']);
    }

    #[test]
    fn bad_fonts_are_refused() {
        assert!(matches!(Font::from_psf(b"hello", "t"), Err(FontError::NotPsf)));
        assert!(matches!(Font::from_psf(&[0x36, 0x04, 0, 16, 0], "t"), Err(FontError::Truncated { .. })));
        let mut d = psf2(8, 1, &[vec![0]], None);
        d[28] = 99; // width 99
        assert!(matches!(Font::from_psf(&d, "t"), Err(FontError::Header(_))));
        let mut d = psf2(8, 1, &[vec![0]], None);
        d[16] = 9; // nine glyphs, one present
        assert!(matches!(Font::from_psf(&d, "t"), Err(FontError::Truncated { .. })));
    }

    #[test]
    fn cp437_maps_ascii_and_the_upper_half() {
        assert_eq!(CP437_HIGH.chars().count(), 128);
        assert_eq!(cp437(0x41), Some('A'));
        assert_eq!(cp437(0xc4), Some('─'));
        assert_eq!(cp437(0xdb), Some('█'));
        assert_eq!(cp437(0x07), None);
    }
}
