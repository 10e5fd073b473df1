//! ZRLE: zlib-compressed, 64×64 tiles, each raw, solid, packed-palette, plain RLE or palette RLE.
//!
//! The server keeps one zlib stream for the whole connection, flushed at the end of every rectangle, so the
//! decompressor lives in the [`crate::decode::Decoder`] and is fed one rectangle's compressed bytes at a time.
//! Decompressed output is capped by the largest tile data a rectangle of that size can legitimately need
//! ([`max_tile_data`]), and tile parsing checks every length, palette index and run against the tile, so
//! inconsistent data is an error naming the tile, never a panic or an unbounded allocation. Pixels are 3-byte
//! CPIXELs (R, G, B with the client's pixel format).

use flate2::{Decompress, FlushDecompress, Status};

use crate::Rect;
use crate::framebuffer::{BYTES_PER_PIXEL, Framebuffer};

const TILE: u32 = 64;
const CPIXEL: usize = 3;

/// The most decompressed bytes valid tile data for `rect` can take: per tile a subencoding byte, a palette of
/// up to 127 colours and at most 4 bytes per pixel (plain RLE with runs of one pixel).
pub(crate) fn max_tile_data(rect: Rect) -> u64 {
    let tiles = u64::from(rect.width.div_ceil(TILE)) * u64::from(rect.height.div_ceil(TILE));
    tiles * (1 + 127 * CPIXEL as u64) + rect.area() * 4
}

/// The most compressed bytes accepted for `rect`: deflate's worst-case expansion of [`max_tile_data`] plus
/// room for the flush markers.
pub(crate) fn max_compressed(rect: Rect) -> u64 {
    let raw = max_tile_data(rect);
    raw + raw / 8 + 1024
}

/// Inflates one rectangle's compressed bytes into `out` (cleared first), producing at most `max_out` bytes.
pub(crate) fn inflate(z: &mut Decompress, input: &[u8], out: &mut Vec<u8>, max_out: usize) -> Result<(), String> {
    out.clear();
    let mut consumed = 0usize;
    loop {
        if out.len() == out.capacity() {
            if out.len() > max_out {
                return Err(format!("decompresses to more than the {max_out} bytes its tiles can hold"));
            }
            let grow = out.len().max(64 * 1024).min(max_out + 1 - out.len());
            out.reserve_exact(grow);
        }
        let (in_before, out_before) = (z.total_in(), z.total_out());
        let status = z
            .decompress_vec(input.get(consumed..).unwrap_or_default(), out, FlushDecompress::Sync)
            .map_err(|e| format!("zlib data is corrupt: {e}"))?;
        let used = usize::try_from(z.total_in() - in_before).unwrap_or(usize::MAX);
        let produced = z.total_out() - out_before;
        consumed = consumed.saturating_add(used).min(input.len());
        if out.len() > max_out {
            return Err(format!("decompresses to more than the {max_out} bytes its tiles can hold"));
        }
        let room_left = out.len() < out.capacity();
        if consumed == input.len() && room_left {
            return Ok(());
        }
        if status == Status::StreamEnd {
            return Err("the zlib stream ended (the server must keep one stream for the connection)".to_owned());
        }
        if used == 0 && produced == 0 && room_left {
            return Err(format!("zlib made no progress with {} compressed bytes left", input.len() - consumed));
        }
    }
}

/// A bounds-checked reader over decompressed tile data.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| {
            format!(
                "tile data ends early: needed {n} bytes at offset {}, {} left",
                self.pos,
                self.data.len() - self.pos
            )
        })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn colour(&mut self) -> Result<[u8; 4], String> {
        let c = self.take(CPIXEL)?;
        Ok([c[0], c[1], c[2], 255])
    }

    fn palette(&mut self, size: usize) -> Result<Vec<[u8; 4]>, String> {
        (0..size).map(|_| self.colour()).collect()
    }

    /// A run length: bytes summed while they are 255, plus one; never more than `left` pixels.
    fn run_length(&mut self, left: usize) -> Result<usize, String> {
        let mut len = 1usize;
        loop {
            let b = self.byte()?;
            len += usize::from(b);
            if len > left {
                return Err(format!("a run of at least {len} pixels overflows the tile ({left} pixels left)"));
            }
            if b != 255 {
                return Ok(len);
            }
        }
    }
}

/// Decodes the tiles of `rect` from decompressed `data` into `fb`. `rect` lies inside `fb` (checked by the
/// caller). All of `data` must be used.
pub(crate) fn decode_tiles(data: &[u8], rect: Rect, fb: &mut Framebuffer) -> Result<(), String> {
    let mut c = Cursor { data, pos: 0 };
    let mut tile = vec![[0u8; 4]; (TILE * TILE) as usize];
    let mut bytes = Vec::with_capacity((TILE * TILE) as usize * BYTES_PER_PIXEL);
    for ty in (0..rect.height).step_by(TILE as usize) {
        for tx in (0..rect.width).step_by(TILE as usize) {
            let tw = TILE.min(rect.width - tx);
            let th = TILE.min(rect.height - ty);
            let n = (tw * th) as usize;
            let px = &mut tile[..n];
            decode_tile(&mut c, tw as usize, px).map_err(|e| format!("tile at ({tx},{ty}) of the rectangle: {e}"))?;
            bytes.clear();
            for p in px.iter() {
                bytes.extend_from_slice(p);
            }
            fb.put_rgba_block(Rect::new(rect.x + tx, rect.y + ty, tw, th), &bytes);
        }
    }
    if c.pos != data.len() {
        return Err(format!("{} bytes of tile data are left after the last tile", data.len() - c.pos));
    }
    Ok(())
}

fn decode_tile(c: &mut Cursor<'_>, width: usize, px: &mut [[u8; 4]]) -> Result<(), String> {
    let n = px.len();
    let sub = c.byte()?;
    match sub {
        0 => {
            let raw = c.take(n * CPIXEL)?;
            for (p, s) in px.iter_mut().zip(raw.chunks_exact(CPIXEL)) {
                *p = [s[0], s[1], s[2], 255];
            }
        }
        1 => {
            let colour = c.colour()?;
            px.fill(colour);
        }
        2..=16 => {
            let palette = c.palette(usize::from(sub))?;
            let bits = match sub {
                2 => 1,
                3 | 4 => 2,
                _ => 4,
            };
            let row_bytes = (width * bits).div_ceil(8);
            let mask = (1u8 << bits) - 1;
            for row in px.chunks_mut(width) {
                let packed = c.take(row_bytes)?;
                for (x, p) in row.iter_mut().enumerate() {
                    let bit = x * bits;
                    let shift = 8 - bits - bit % 8;
                    let index = usize::from((packed[bit / 8] >> shift) & mask);
                    *p = *palette.get(index).ok_or_else(|| {
                        format!("packed palette index {index} is outside the {}-colour palette", palette.len())
                    })?;
                }
            }
        }
        128 => {
            let mut i = 0;
            while i < n {
                let colour = c.colour()?;
                let len = c.run_length(n - i)?;
                px[i..i + len].fill(colour);
                i += len;
            }
        }
        130..=255 => {
            let palette = c.palette(usize::from(sub - 128))?;
            let mut i = 0;
            while i < n {
                let b = c.byte()?;
                let index = usize::from(b & 0x7f);
                let colour = *palette.get(index).ok_or_else(|| {
                    format!("palette RLE index {index} is outside the {}-colour palette", palette.len())
                })?;
                let len = if b & 0x80 != 0 { c.run_length(n - i)? } else { 1 };
                px[i..i + len].fill(colour);
                i += len;
            }
        }
        other => return Err(format!("unknown subencoding {other}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(fb: &Framebuffer, x: u32, y: u32) -> [u8; 4] {
        let o = ((y * fb.width() + x) * 4) as usize;
        fb.pixels()[o..o + 4].try_into().unwrap()
    }

    #[test]
    fn every_subencoding_decodes() {
        // A 66x2 rectangle: two tiles, 64x2 and 2x2.
        let rect = Rect::new(1, 1, 66, 2);
        let mut data = vec![];
        // Tile 1: palette RLE, 2 colours: a run of 100 red, then single pixels of blue.
        data.extend_from_slice(&[130, 255, 0, 0, 0, 0, 255, 0x80, 99]);
        data.extend(std::iter::repeat_n(1u8, 28));
        // Tile 2: packed palette, 2 colours, 1 bit per pixel, rows padded to a byte.
        data.extend_from_slice(&[2, 10, 10, 10, 20, 20, 20, 0b0100_0000, 0b1000_0000]);
        let mut fb = Framebuffer::new(70, 4);
        decode_tiles(&data, rect, &mut fb).unwrap();
        assert_eq!(pixel(&fb, 1, 1), [255, 0, 0, 255]);
        assert_eq!(pixel(&fb, 36, 2), [255, 0, 0, 255]); // pixel 99 of the tile
        assert_eq!(pixel(&fb, 37, 2), [0, 0, 255, 255]);
        assert_eq!(pixel(&fb, 65, 1), [10, 10, 10, 255]);
        assert_eq!(pixel(&fb, 66, 1), [20, 20, 20, 255]);
        assert_eq!(pixel(&fb, 65, 2), [20, 20, 20, 255]);
        assert_eq!(pixel(&fb, 66, 2), [10, 10, 10, 255]);
        assert_eq!(pixel(&fb, 0, 0), [0, 0, 0, 255]);

        let mut fb = Framebuffer::new(2, 2);
        let raw = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        decode_tiles(&raw, Rect::new(0, 0, 2, 2), &mut fb).unwrap();
        assert_eq!(pixel(&fb, 1, 1), [10, 11, 12, 255]);
        decode_tiles(&[1, 9, 8, 7], Rect::new(0, 0, 2, 2), &mut fb).unwrap();
        assert_eq!(pixel(&fb, 1, 0), [9, 8, 7, 255]);
        decode_tiles(&[128, 1, 1, 1, 2, 3, 3, 3, 0], Rect::new(0, 0, 2, 2), &mut fb).unwrap();
        assert_eq!(pixel(&fb, 0, 1), [1, 1, 1, 255]);
        assert_eq!(pixel(&fb, 1, 1), [3, 3, 3, 255]);
    }

    #[test]
    fn inconsistent_tiles_are_errors() {
        let mut fb = Framebuffer::new(4, 4);
        let r = Rect::new(0, 0, 2, 2);
        let cases: &[(&[u8], &str)] = &[
            (&[0, 1, 2], "ends early"),
            (&[1, 1, 2, 3, 99], "left after the last tile"),
            (&[17], "unknown subencoding 17"),
            (&[129], "unknown subencoding 129"),
            (&[128, 1, 2, 3, 4], "overflows the tile"),
            (&[128, 1, 2, 3, 255], "overflows the tile"),
            (&[131, 1, 1, 1, 2, 2, 2, 3, 3, 3, 5], "outside the 3-colour palette"),
            (&[3, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0b1100_0000, 0], "outside the 3-colour palette"),
        ];
        for (data, want) in cases {
            let err = decode_tiles(data, r, &mut fb).unwrap_err();
            assert!(err.contains(want), "{data:?}: {err}");
        }
    }

    #[test]
    fn inflate_keeps_one_stream_and_caps_output() {
        use flate2::{Compress, Compression, FlushCompress};
        let mut comp = Compress::new(Compression::default(), true);
        let mut chunk = |data: &[u8]| {
            let mut out = Vec::with_capacity(data.len() + 64);
            comp.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
            out
        };
        let a = chunk(&[1, 2, 3, 4]);
        let b = chunk(&[5; 1000]);
        let mut z = Decompress::new(true);
        let mut out = Vec::new();
        inflate(&mut z, &a, &mut out, 100).unwrap();
        assert_eq!(out, [1, 2, 3, 4]);
        let err = inflate(&mut z, &b, &mut out, 100).unwrap_err();
        assert!(err.contains("more than the 100 bytes"), "{err}");
        let mut z = Decompress::new(true);
        assert!(inflate(&mut z, &[0x78, 0x9c, 0xff, 0xff, 0xff], &mut out, 100).unwrap_err().contains("corrupt"));
    }
}
