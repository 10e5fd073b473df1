//! The pointer's shape as the server sends it with the Cursor (-239) and XCursor (-240) pseudo-encodings.
//!
//! A client that announces these encodings draws the pointer itself, so the server leaves it out of the
//! framebuffer. That matters to vmkit more than to a viewer: a pointer painted into the screen image hides
//! letters from OCR ("Done" read as "Kone" with the arrow over the D). vmkit never draws the pointer into what
//! it reads; [`Cursor`] keeps the shape for consumers that want to show where the pointer is (debug screenshots)
//! via [`Cursor::paint`].
//!
//! Both encodings end in a bitmask (one bit per pixel, rows padded to a byte, most significant bit first) that
//! says which pixels belong to the shape; the others are transparent. Cursor sends the pixels in the session's
//! pixel format (4 bytes, R, G, B, X here), XCursor a two-colour bitmap with its two colours. Sizes are capped by
//! [`crate::Limits::max_cursor_size`] before anything is allocated; the hot spot, which the server (and, through
//! QEMU, the guest) chooses freely, is clamped into the shape rather than trusted.

use crate::framebuffer::BYTES_PER_PIXEL;

/// A pointer shape: RGBA pixels with alpha 255 (part of the shape) or 0 (transparent).
#[derive(Clone, PartialEq, Eq)]
pub struct Cursor {
    width: u32,
    height: u32,
    hotspot_x: u32,
    hotspot_y: u32,
    rgba: Vec<u8>,
}

impl std::fmt::Debug for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("hotspot", &(self.hotspot_x, self.hotspot_y))
            .finish()
    }
}

/// Bytes of a `width`×`height` bitmask: rows padded to whole bytes.
pub(crate) fn mask_len(width: u32, height: u32) -> usize {
    (width as usize).div_ceil(8) * height as usize
}

/// Whether bit (x, y) of a bitmask of `width`-pixel rows is set (missing bytes read as clear).
fn bit(mask: &[u8], width: u32, x: u32, y: u32) -> bool {
    let row = (width as usize).div_ceil(8);
    mask.get(y as usize * row + x as usize / 8).is_some_and(|b| b & (0x80 >> (x % 8)) != 0)
}

impl Cursor {
    /// A cursor from the Cursor pseudo-encoding: `pixels` in the wire format (R, G, B, X per pixel, row by row)
    /// and `mask`. Missing bytes are treated as transparent pixels (the decoder always passes whole buffers).
    pub(crate) fn from_rich(width: u32, height: u32, hotspot: (u32, u32), pixels: &[u8], mask: &[u8]) -> Self {
        let mut rgba = vec![0u8; width as usize * height as usize * BYTES_PER_PIXEL];
        for y in 0..height {
            for x in 0..width {
                let i = (y as usize * width as usize + x as usize) * BYTES_PER_PIXEL;
                if let (Some(src), Some(dst)) = (pixels.get(i..i + 3), rgba.get_mut(i..i + BYTES_PER_PIXEL))
                    && bit(mask, width, x, y)
                {
                    dst[..3].copy_from_slice(src);
                    dst[3] = 255;
                }
            }
        }
        Self::new(width, height, hotspot, rgba)
    }

    /// A cursor from the XCursor pseudo-encoding: `bitmap` picks `primary` (set) or `secondary` (clear) for each
    /// pixel that `mask` includes.
    pub(crate) fn from_x(
        width: u32,
        height: u32,
        hotspot: (u32, u32),
        primary: [u8; 3],
        secondary: [u8; 3],
        bitmap: &[u8],
        mask: &[u8],
    ) -> Self {
        let mut rgba = vec![0u8; width as usize * height as usize * BYTES_PER_PIXEL];
        for y in 0..height {
            for x in 0..width {
                let i = (y as usize * width as usize + x as usize) * BYTES_PER_PIXEL;
                if let Some(dst) = rgba.get_mut(i..i + BYTES_PER_PIXEL)
                    && bit(mask, width, x, y)
                {
                    let colour = if bit(bitmap, width, x, y) { primary } else { secondary };
                    dst[..3].copy_from_slice(&colour);
                    dst[3] = 255;
                }
            }
        }
        Self::new(width, height, hotspot, rgba)
    }

    fn new(width: u32, height: u32, (hx, hy): (u32, u32), rgba: Vec<u8>) -> Self {
        Self {
            width,
            height,
            hotspot_x: hx.min(width.saturating_sub(1)),
            hotspot_y: hy.min(height.saturating_sub(1)),
            rgba,
        }
    }

    /// Width in pixels (0 for a hidden pointer).
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels (0 for a hidden pointer).
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixel of the shape that sits at the pointer's position, `(x, y)` from the shape's top-left corner;
    /// always inside the shape.
    pub fn hotspot(&self) -> (u32, u32) {
        (self.hotspot_x, self.hotspot_y)
    }

    /// True when the server hides the pointer (an empty shape).
    pub fn is_hidden(&self) -> bool {
        self.width == 0 || self.height == 0 || !self.rgba.chunks_exact(BYTES_PER_PIXEL).any(|p| p[3] != 0)
    }

    /// The shape's pixels: RGBA, `width * 4` bytes per row, alpha 255 for the shape and 0 around it.
    pub fn rgba(&self) -> &[u8] {
        &self.rgba
    }

    /// Paints the shape with its hot spot at (`x`, `y`) onto an RGBA image of `width`×`height` (e.g. a copy of
    /// a [`crate::Frame`]'s pixels); parts outside the image are left out. Does nothing if `rgba` is not
    /// `width * height * 4` bytes long.
    pub fn paint(&self, rgba: &mut [u8], width: u32, height: u32, x: u32, y: u32) {
        if rgba.len() != width as usize * height as usize * BYTES_PER_PIXEL {
            return;
        }
        let left = i64::from(x) - i64::from(self.hotspot_x);
        let top = i64::from(y) - i64::from(self.hotspot_y);
        for cy in 0..self.height {
            for cx in 0..self.width {
                let (ix, iy) = (left + i64::from(cx), top + i64::from(cy));
                if ix < 0 || iy < 0 || ix >= i64::from(width) || iy >= i64::from(height) {
                    continue;
                }
                let src = (cy as usize * self.width as usize + cx as usize) * BYTES_PER_PIXEL;
                let dst = (iy as usize * width as usize + ix as usize) * BYTES_PER_PIXEL;
                if let (Some(s), Some(d)) =
                    (self.rgba.get(src..src + BYTES_PER_PIXEL), rgba.get_mut(dst..dst + BYTES_PER_PIXEL))
                    && s[3] != 0
                {
                    d[..3].copy_from_slice(&s[..3]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rich_cursor_uses_the_mask_for_alpha() {
        // 3x2: a red, green, blue row over a white row; the mask keeps the left two columns.
        let pixels =
            [[255, 0, 0, 0], [0, 255, 0, 0], [0, 0, 255, 0], [255, 255, 255, 0], [9, 9, 9, 0], [7, 7, 7, 0]].concat();
        let mask = [0b1100_0000, 0b1100_0000];
        let c = Cursor::from_rich(3, 2, (1, 1), &pixels, &mask);
        assert_eq!(c.hotspot(), (1, 1));
        let px: Vec<&[u8]> = c.rgba().chunks(4).collect();
        assert_eq!(
            px,
            [
                &[255, 0, 0, 255][..],
                &[0, 255, 0, 255],
                &[0, 0, 0, 0],
                &[255, 255, 255, 255],
                &[9, 9, 9, 255],
                &[0, 0, 0, 0]
            ]
        );
        assert!(!c.is_hidden());
    }

    #[test]
    fn x_cursor_picks_its_two_colours() {
        // 9 pixels wide: rows take two bytes. Bitmap sets pixel 0 and 8; mask keeps pixels 0, 1 and 8.
        let bitmap = [0b1000_0000, 0b1000_0000];
        let mask = [0b1100_0000, 0b1000_0000];
        let c = Cursor::from_x(9, 1, (0, 0), [1, 2, 3], [4, 5, 6], &bitmap, &mask);
        let px: Vec<&[u8]> = c.rgba().chunks(4).collect();
        assert_eq!(px[0], [1, 2, 3, 255]);
        assert_eq!(px[1], [4, 5, 6, 255]);
        assert_eq!(px[2], [0, 0, 0, 0]);
        assert_eq!(px[8], [1, 2, 3, 255]);
    }

    #[test]
    fn hotspot_is_clamped_and_empty_shapes_are_hidden() {
        let c = Cursor::from_rich(2, 2, (500, 7), &[0; 16], &[0xff, 0xff]);
        assert_eq!(c.hotspot(), (1, 1));
        assert!(Cursor::from_rich(0, 0, (3, 3), &[], &[]).is_hidden());
        assert_eq!(Cursor::from_rich(0, 0, (3, 3), &[], &[]).hotspot(), (0, 0));
        // A shape whose mask is clear everywhere shows nothing either.
        assert!(Cursor::from_rich(2, 1, (0, 0), &[255; 8], &[0]).is_hidden());
    }

    #[test]
    fn paint_puts_the_hotspot_on_the_point_and_clips() {
        let c = Cursor::from_rich(2, 2, (1, 1), &[200; 16], &[0b1000_0000, 0b0100_0000]);
        let mut img = vec![0u8; 3 * 3 * 4];
        c.paint(&mut img, 3, 3, 1, 1);
        let lit: Vec<usize> = img.chunks(4).enumerate().filter(|(_, p)| p[0] == 200).map(|(i, _)| i).collect();
        assert_eq!(lit, [0, 4], "top-left of the shape at (0,0), its hot spot at (1,1)");
        let mut img = vec![0u8; 3 * 3 * 4];
        c.paint(&mut img, 3, 3, 0, 0);
        let lit: Vec<usize> = img.chunks(4).enumerate().filter(|(_, p)| p[0] == 200).map(|(i, _)| i).collect();
        assert_eq!(lit, [0], "the part left of and above the image is clipped");
        c.paint(&mut img[..5], 3, 3, 0, 0);
    }
}
