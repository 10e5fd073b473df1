//! The decoder's working framebuffer: RGBA pixels, rows top to bottom.
//!
//! Every write takes a rectangle that the caller has already checked against the framebuffer (the decoder
//! rejects rectangles outside it), and every method still slices with checked ranges, so a logic error shows up
//! as a protocol error or a no-op, never as an out-of-bounds panic.

use crate::Rect;

/// Bytes per pixel in the framebuffer (R, G, B, A).
pub const BYTES_PER_PIXEL: usize = 4;

/// An RGBA framebuffer: `width * height` pixels, each the bytes R, G, B, A (alpha always 255), rows top to
/// bottom with no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framebuffer {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Framebuffer {
    /// A black framebuffer. The caller bounds the size (see [`crate::Limits`]).
    pub fn new(width: u32, height: u32) -> Self {
        let len = pixel_bytes(width, height);
        let mut pixels = vec![0u8; len];
        for px in pixels.chunks_exact_mut(BYTES_PER_PIXEL) {
            px[3] = 255;
        }
        Self { width, height, pixels }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The RGBA bytes.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// Replaces the framebuffer by a black one of the new size.
    pub(crate) fn reset(&mut self, width: u32, height: u32) {
        *self = Framebuffer::new(width, height);
    }

    fn offset(&self, x: u32, y: u32) -> usize {
        (y as usize * self.width as usize + x as usize) * BYTES_PER_PIXEL
    }

    /// Byte range of `len` pixels starting at (x, y), if it lies inside the buffer.
    fn span(&self, x: u32, y: u32, len: u32) -> Option<std::ops::Range<usize>> {
        if u64::from(x) + u64::from(len) > u64::from(self.width) || y >= self.height {
            return None;
        }
        let start = self.offset(x, y);
        Some(start..start + len as usize * BYTES_PER_PIXEL)
    }

    /// Writes rows of wire pixels (R, G, B, X per pixel) into `rect`, starting at its row `first_row`.
    pub(crate) fn put_wire_rows(&mut self, rect: Rect, first_row: u32, data: &[u8]) {
        let row_bytes = rect.width as usize * BYTES_PER_PIXEL;
        if row_bytes == 0 {
            return;
        }
        for (i, src) in data.chunks_exact(row_bytes).enumerate() {
            let y = rect.y + first_row + i as u32;
            let Some(range) = self.span(rect.x, y, rect.width) else { return };
            let Some(dst) = self.pixels.get_mut(range) else { return };
            for (d, s) in dst.chunks_exact_mut(BYTES_PER_PIXEL).zip(src.chunks_exact(BYTES_PER_PIXEL)) {
                d[0] = s[0];
                d[1] = s[1];
                d[2] = s[2];
                d[3] = 255;
            }
        }
    }

    /// Writes an RGBA block of `rect.width` × `rect.height` pixels (rows packed) into `rect`.
    pub(crate) fn put_rgba_block(&mut self, rect: Rect, data: &[u8]) {
        let row_bytes = rect.width as usize * BYTES_PER_PIXEL;
        if row_bytes == 0 {
            return;
        }
        for (i, src) in data.chunks_exact(row_bytes).take(rect.height as usize).enumerate() {
            let Some(range) = self.span(rect.x, rect.y + i as u32, rect.width) else { return };
            if let Some(dst) = self.pixels.get_mut(range) {
                dst.copy_from_slice(src);
            }
        }
    }

    /// Copies the `dst.width` × `dst.height` block at (src_x, src_y) to `dst` (regions may overlap).
    pub(crate) fn copy_rect(&mut self, src_x: u32, src_y: u32, dst: Rect) {
        // Moving down: copy the bottom row first so no source row is overwritten before it is read.
        let bottom_up = src_y < dst.y;
        for i in 0..dst.height {
            let row = if bottom_up { dst.height - 1 - i } else { i };
            let (Some(from), Some(to)) =
                (self.span(src_x, src_y + row, dst.width), self.span(dst.x, dst.y + row, dst.width))
            else {
                return;
            };
            self.pixels.copy_within(from, to.start);
        }
    }

    /// Copies `rect` from `self` into `other`, which must have the same size.
    pub(crate) fn copy_rect_to(&self, rect: Rect, other: &mut [u8]) {
        if other.len() != self.pixels.len() {
            return;
        }
        if rect.x == 0 && rect.width == self.width {
            if let Some(range) = self.span(0, rect.y, self.width) {
                let end = range.start + rect.height as usize * self.width as usize * BYTES_PER_PIXEL;
                if let (Some(src), Some(dst)) = (self.pixels.get(range.start..end), other.get_mut(range.start..end)) {
                    dst.copy_from_slice(src);
                }
            }
            return;
        }
        for row in 0..rect.height {
            let Some(range) = self.span(rect.x, rect.y + row, rect.width) else { return };
            if let (Some(src), Some(dst)) = (self.pixels.get(range.clone()), other.get_mut(range)) {
                dst.copy_from_slice(src);
            }
        }
    }
}

/// Size in bytes of a `width` × `height` RGBA buffer.
pub(crate) fn pixel_bytes(width: u32, height: u32) -> usize {
    width as usize * height as usize * BYTES_PER_PIXEL
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fb_with_pattern(w: u32, h: u32) -> Framebuffer {
        let mut fb = Framebuffer::new(w, h);
        let mut wire = Vec::new();
        for y in 0..h {
            for x in 0..w {
                wire.extend_from_slice(&[x as u8, y as u8, 7, 0]);
            }
        }
        fb.put_wire_rows(Rect::new(0, 0, w, h), 0, &wire);
        fb
    }

    fn px(fb: &Framebuffer, x: u32, y: u32) -> [u8; 4] {
        let o = fb.offset(x, y);
        fb.pixels[o..o + 4].try_into().unwrap()
    }

    #[test]
    fn new_framebuffer_is_opaque_black() {
        let fb = Framebuffer::new(3, 2);
        assert_eq!(fb.pixels().len(), 24);
        assert!(fb.pixels().chunks(4).all(|p| p == [0, 0, 0, 255]));
    }

    #[test]
    fn wire_rows_get_alpha() {
        let fb = fb_with_pattern(4, 3);
        assert_eq!(px(&fb, 2, 1), [2, 1, 7, 255]);
    }

    #[test]
    fn overlapping_copy_down_and_up() {
        let mut fb = fb_with_pattern(4, 4);
        fb.copy_rect(0, 0, Rect::new(0, 1, 4, 3));
        assert_eq!(px(&fb, 1, 3), [1, 2, 7, 255]);
        assert_eq!(px(&fb, 1, 1), [1, 0, 7, 255]);
        let mut fb = fb_with_pattern(4, 4);
        fb.copy_rect(0, 1, Rect::new(0, 0, 4, 3));
        assert_eq!(px(&fb, 3, 0), [3, 1, 7, 255]);
        assert_eq!(px(&fb, 3, 2), [3, 3, 7, 255]);
        let mut fb = fb_with_pattern(4, 1);
        fb.copy_rect(0, 0, Rect::new(1, 0, 3, 1));
        assert_eq!(fb.pixels()[4..16], [0, 0, 7, 255, 1, 0, 7, 255, 2, 0, 7, 255]);
    }

    #[test]
    fn out_of_range_writes_are_ignored() {
        let mut fb = Framebuffer::new(2, 2);
        fb.put_wire_rows(Rect::new(1, 1, 2, 2), 0, &[1; 16]);
        fb.copy_rect(5, 5, Rect::new(0, 0, 1, 1));
        assert!(fb.pixels().chunks(4).all(|p| p == [0, 0, 0, 255]));
    }
}
