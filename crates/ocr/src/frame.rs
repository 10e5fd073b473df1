//! A borrowed view of a screen's pixels.
//!
//! The OCR layer reads whatever the caller already holds without copying it: an RFB framebuffer (32-bit pixels,
//! in either byte order), a decoded PNG (`image::RgbImage` / `RgbaImage`), or a grey image. [`Frame`] is a
//! pointer, a size, a row stride and a [`PixelLayout`]; it validates once, at construction, that the buffer
//! holds every row it claims, so the preprocessing can index without further checks failing.

use crate::error::OcrError;

/// How one pixel is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelLayout {
    /// 3 bytes: red, green, blue.
    Rgb,
    /// 4 bytes: red, green, blue, then alpha or padding (ignored). `image::RgbaImage` and an RFB framebuffer whose
    /// pixel format puts red in the lowest byte.
    Rgbx,
    /// 4 bytes: blue, green, red, then padding (ignored). A little-endian `0x00RRGGBB` word: the native 32-bit
    /// true-colour format of X servers, QEMU and most VNC framebuffers.
    Bgrx,
    /// 1 byte of luminance.
    Gray,
}

impl PixelLayout {
    /// Bytes per pixel.
    pub const fn bytes_per_pixel(self) -> usize {
        match self {
            PixelLayout::Rgb => 3,
            PixelLayout::Rgbx | PixelLayout::Bgrx => 4,
            PixelLayout::Gray => 1,
        }
    }

    /// A short name for messages.
    pub const fn name(self) -> &'static str {
        match self {
            PixelLayout::Rgb => "RGB",
            PixelLayout::Rgbx => "RGBX",
            PixelLayout::Bgrx => "BGRX",
            PixelLayout::Gray => "grey",
        }
    }
}

/// Pixels borrowed from the caller: `height` rows of `stride` bytes, each starting with `width` pixels.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    data: &'a [u8],
    width: u32,
    height: u32,
    stride: usize,
    layout: PixelLayout,
}

/// The largest side Tesseract's `int`-based API and the preprocessing's 3x upscale are sure to handle.
const MAX_SIDE: u32 = 16_384;

impl<'a> Frame<'a> {
    /// A view of `data` as `height` rows of `stride` bytes. Fails if the buffer is too short for that claim, if
    /// a row is narrower than `width` pixels, or if a side exceeds 16384 pixels.
    pub fn new(data: &'a [u8], width: u32, height: u32, stride: usize, layout: PixelLayout) -> Result<Self, OcrError> {
        if width > MAX_SIDE || height > MAX_SIDE {
            return Err(OcrError::FrameTooLarge { width, height });
        }
        let bpp = layout.bytes_per_pixel();
        let row = width as usize * bpp;
        // The last row needs only its pixels, not the full stride.
        let needed = if height == 0 { 0 } else { (height as u64 - 1) * stride as u64 + row as u64 };
        if stride < row || (data.len() as u64) < needed {
            return Err(OcrError::FrameSize {
                width,
                height,
                layout: layout.name(),
                stride,
                needed: needed.max(height as u64 * row as u64),
                got: data.len(),
            });
        }
        Ok(Self { data, width, height, stride, layout })
    }

    /// Tightly packed pixels (`stride = width * bytes per pixel`).
    pub fn packed(data: &'a [u8], width: u32, height: u32, layout: PixelLayout) -> Result<Self, OcrError> {
        Self::new(data, width, height, width as usize * layout.bytes_per_pixel(), layout)
    }

    /// Width in pixels.
    pub const fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub const fn height(&self) -> u32 {
        self.height
    }

    /// How pixels are stored.
    pub const fn layout(&self) -> PixelLayout {
        self.layout
    }

    /// The bytes of row `y`, columns `x0..x1` (clamped to the frame).
    pub(crate) fn row_bytes(&self, y: u32, x0: u32, x1: u32) -> &'a [u8] {
        if y >= self.height {
            return &[];
        }
        let bpp = self.layout.bytes_per_pixel();
        let x1 = x1.min(self.width) as usize;
        let x0 = (x0 as usize).min(x1);
        let start = y as usize * self.stride;
        self.data.get(start + x0 * bpp..start + x1 * bpp).unwrap_or(&[])
    }

    /// Luminance of the pixels of `rect` (ITU-R BT.601 weights), packed row by row; parts of `rect` outside the
    /// frame are left out.
    pub(crate) fn gray_rect(self, rect: &crate::geom::Rect) -> Vec<u8> {
        let r = rect.intersection(&crate::geom::Rect::new(0, 0, self.width, self.height));
        let mut out = Vec::with_capacity(r.width as usize * r.height as usize);
        for y in r.y..r.bottom() {
            let row = self.row_bytes(y, r.x, r.right());
            match self.layout {
                PixelLayout::Gray => out.extend_from_slice(row),
                PixelLayout::Rgb => out.extend(row.chunks_exact(3).map(|p| luma(p[0], p[1], p[2]))),
                PixelLayout::Rgbx => out.extend(row.chunks_exact(4).map(|p| luma(p[0], p[1], p[2]))),
                PixelLayout::Bgrx => out.extend(row.chunks_exact(4).map(|p| luma(p[2], p[1], p[0]))),
            }
        }
        out
    }
}

/// BT.601 luma in fixed point.
#[inline]
fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b) + 128) >> 8) as u8
}

impl<'a> From<&'a image::RgbImage> for Frame<'a> {
    fn from(img: &'a image::RgbImage) -> Self {
        let (width, height) = img.dimensions();
        // `ImageBuffer` guarantees `width * height * 3` bytes.
        Frame { data: img.as_raw(), width, height, stride: width as usize * 3, layout: PixelLayout::Rgb }
    }
}

impl<'a> From<&'a image::RgbaImage> for Frame<'a> {
    fn from(img: &'a image::RgbaImage) -> Self {
        let (width, height) = img.dimensions();
        Frame { data: img.as_raw(), width, height, stride: width as usize * 4, layout: PixelLayout::Rgbx }
    }
}

impl<'a> From<&'a image::GrayImage> for Frame<'a> {
    fn from(img: &'a image::GrayImage) -> Self {
        let (width, height) = img.dimensions();
        Frame { data: img.as_raw(), width, height, stride: width as usize, layout: PixelLayout::Gray }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_buffers_are_rejected() {
        assert!(Frame::packed(&[0; 11], 2, 2, PixelLayout::Rgb).is_err());
        assert!(Frame::packed(&[0; 12], 2, 2, PixelLayout::Rgb).is_ok());
        // The last row needs no padding.
        assert!(Frame::new(&[0; 14], 2, 2, 8, PixelLayout::Rgb).is_ok());
        assert!(Frame::new(&[0; 16], 3, 2, 8, PixelLayout::Rgb).is_err(), "stride narrower than a row");
        assert!(Frame::packed(&[], 20_000, 0, PixelLayout::Gray).is_err());
    }

    #[test]
    fn layouts_give_the_same_grey() {
        let rgb = [200u8, 100, 50];
        let bgrx = [50u8, 100, 200, 0];
        let rgbx = [200u8, 100, 50, 255];
        let g1 = Frame::packed(&rgb, 1, 1, PixelLayout::Rgb).unwrap().gray_rect(&crate::geom::Rect::new(0, 0, 1, 1));
        let g2 = Frame::packed(&bgrx, 1, 1, PixelLayout::Bgrx).unwrap().gray_rect(&crate::geom::Rect::new(0, 0, 1, 1));
        let g3 = Frame::packed(&rgbx, 1, 1, PixelLayout::Rgbx).unwrap().gray_rect(&crate::geom::Rect::new(0, 0, 1, 1));
        assert_eq!(g1, g2);
        assert_eq!(g1, g3);
        assert_eq!(g1, vec![luma(200, 100, 50)]);
    }
}
