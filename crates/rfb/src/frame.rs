//! Framebuffer snapshots handed to consumers.
//!
//! A [`Frame`] is immutable and cheap to take (an `Arc` clone): the background reader publishes a new version
//! at the end of every FramebufferUpdate and copies the changed rectangles into its shared copy, cloning the
//! pixels first only if a consumer still holds the previous snapshot (copy on write). Snapshots are therefore
//! never torn mid-update.
//!
//! Layout: RGBA, 4 bytes per pixel, alpha always 255, rows top to bottom, no padding — what
//! `image::RgbaImage::from_raw(width, height, frame.into_rgba())` takes without conversion.

use std::sync::Arc;

use crate::Rect;
use crate::framebuffer::BYTES_PER_PIXEL;

/// An immutable snapshot of the server's screen.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) pixels: Arc<Vec<u8>>,
    pub(crate) serial: u64,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("serial", &self.serial)
            .finish()
    }
}

impl Frame {
    /// A frame from RGBA pixels (`width * height * 4` bytes, rows top to bottom) that did not come from a server
    /// — a recorded screen read back from a file; `None` when the length does not fit the size. `serial` plays
    /// the role of [`Frame::serial`]: give each different screen its own.
    pub fn from_rgba(width: u32, height: u32, pixels: Vec<u8>, serial: u64) -> Option<Frame> {
        let expected = (width as usize).checked_mul(height as usize)?.checked_mul(BYTES_PER_PIXEL)?;
        (pixels.len() == expected).then(|| Frame { width, height, pixels: Arc::new(pixels), serial })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Grows by one with every FramebufferUpdate that changed pixels or the size: equal serials mean equal
    /// screens (within one connection).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The pixels: RGBA, rows top to bottom, `width * 4` bytes per row, alpha 255.
    pub fn rgba(&self) -> &[u8] {
        &self.pixels
    }

    /// The RGBA pixels as an owned buffer (no copy when this is the only handle on them).
    pub fn into_rgba(self) -> Vec<u8> {
        Arc::try_unwrap(self.pixels).unwrap_or_else(|shared| shared.as_ref().clone())
    }

    /// The pixels as packed RGB (3 bytes per pixel).
    pub fn to_rgb(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.pixels.len() / BYTES_PER_PIXEL * 3);
        for px in self.pixels.chunks_exact(BYTES_PER_PIXEL) {
            out.extend_from_slice(&px[..3]);
        }
        out
    }

    /// One pixel's RGBA value, `None` outside the screen.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (y as usize * self.width as usize + x as usize) * BYTES_PER_PIXEL;
        let p = self.pixels.get(at..at + BYTES_PER_PIXEL)?;
        Some([p[0], p[1], p[2], p[3]])
    }

    /// The RGBA pixels of `rect` (rows packed), `None` when it does not lie inside the screen.
    pub fn crop_rgba(&self, rect: Rect) -> Option<Vec<u8>> {
        if !rect.fits_in(self.width, self.height) {
            return None;
        }
        let mut out = Vec::with_capacity(rect.area() as usize * BYTES_PER_PIXEL);
        for y in rect.y..rect.y + rect.height {
            let start = (y as usize * self.width as usize + rect.x as usize) * BYTES_PER_PIXEL;
            out.extend_from_slice(self.pixels.get(start..start + rect.width as usize * BYTES_PER_PIXEL)?);
        }
        Some(out)
    }

    /// The frame as a binary PPM (P6) image: no dependencies, viewable anywhere, handy for debugging.
    pub fn to_ppm(&self) -> Vec<u8> {
        let mut out = format!("P6\n{} {}\n255\n", self.width, self.height).into_bytes();
        out.reserve(self.pixels.len() / BYTES_PER_PIXEL * 3);
        for px in self.pixels.chunks_exact(BYTES_PER_PIXEL) {
            out.extend_from_slice(&px[..3]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        let pixels: Vec<u8> = (0..6u8).flat_map(|i| [i, i * 10, i * 20, 255]).collect();
        Frame { width: 3, height: 2, pixels: Arc::new(pixels), serial: 1 }
    }

    #[test]
    fn from_rgba_checks_the_length() {
        assert!(Frame::from_rgba(2, 1, vec![0; 8], 7).is_some_and(|f| f.serial() == 7 && f.width() == 2));
        assert!(Frame::from_rgba(2, 1, vec![0; 7], 7).is_none());
        assert!(Frame::from_rgba(u32::MAX, u32::MAX, Vec::new(), 0).is_none());
    }

    #[test]
    fn conversions() {
        let f = frame();
        assert_eq!(f.pixel(2, 1), Some([5, 50, 100, 255]));
        assert_eq!(f.pixel(3, 0), None);
        assert_eq!(f.to_rgb()[3..6], [1, 10, 20]);
        assert_eq!(f.crop_rgba(Rect::new(1, 1, 2, 1)).unwrap(), [4, 40, 80, 255, 5, 50, 100, 255]);
        assert_eq!(f.crop_rgba(Rect::new(2, 1, 2, 1)), None);
        let ppm = f.to_ppm();
        assert!(ppm.starts_with(b"P6\n3 2\n255\n"));
        assert_eq!(ppm.len(), 11 + 18);
        let held = f.clone();
        assert_eq!(f.into_rgba(), held.rgba());
    }
}
