//! Screenshots of an X display without a VNC client: `xwd -root` parsed into packed RGB.
//!
//! Tests of the OCR layer need real screenshots of real windows, and they should not depend on vmkit's own RFB
//! client (a bug there would look like an OCR failure). `xwd` (Debian package `x11-apps`) asks the X server for
//! the root window's pixels; this module parses its XWD output (ZPixmap, 24/32 bits per pixel, either byte order)
//! into packed 8-bit RGB. PPM and QEMU's screendump format are parsed too, so a test can compare screens taken
//! either way.

use std::path::Path;

use anyhow::{Context, bail, ensure};

use crate::process::run;
use crate::x11::Display;

/// A screenshot: packed RGB, 3 bytes per pixel, rows top to bottom, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screenshot {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub rgb: Vec<u8>,
}

impl Screenshot {
    /// The pixel at (x, y) as `[r, g, b]`, or `None` outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (usize::try_from(y).ok()? * usize::try_from(self.width).ok()? + usize::try_from(x).ok()?) * 3;
        let p = self.rgb.get(i..i + 3)?;
        Some([p[0], p[1], p[2]])
    }

    /// Writes the image as a binary PPM (P6), the simplest format any viewer opens.
    pub fn write_ppm(&self, path: &Path) -> anyhow::Result<()> {
        let mut out = format!("P6\n{} {}\n255\n", self.width, self.height).into_bytes();
        out.extend_from_slice(&self.rgb);
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
    }

    /// Parses a binary PPM (P6, maxval 255), e.g. what QEMU's `screendump` writes.
    pub fn from_ppm(bytes: &[u8]) -> anyhow::Result<Self> {
        let mut fields = Vec::new();
        let mut pos = 0;
        while fields.len() < 4 {
            while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if bytes.get(pos) == Some(&b'#') {
                while pos < bytes.len() && bytes[pos] != b'\n' {
                    pos += 1;
                }
                continue;
            }
            let start = pos;
            while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            ensure!(pos > start, "PPM header ends after {} fields", fields.len());
            fields.push(std::str::from_utf8(&bytes[start..pos]).context("PPM header is not text")?.to_owned());
        }
        ensure!(fields[0] == "P6", "not a binary PPM (magic {:?})", fields[0]);
        let width: u32 = fields[1].parse().context("PPM width")?;
        let height: u32 = fields[2].parse().context("PPM height")?;
        ensure!(fields[3] == "255", "PPM maxval {} is not 255", fields[3]);
        let data = bytes.get(pos + 1..).context("PPM has no pixel data")?;
        let len = usize::try_from(u64::from(width) * u64::from(height) * 3)?;
        ensure!(data.len() >= len, "PPM {width}x{height} has only {} bytes of pixels", data.len());
        Ok(Self { width, height, rgb: data[..len].to_vec() })
    }

    /// Parses the output of `xwd` (XWD version 7, ZPixmap, TrueColor, 24 or 32 bits per pixel).
    pub fn from_xwd(bytes: &[u8]) -> anyhow::Result<Self> {
        let field = |i: usize| -> anyhow::Result<u32> {
            let b = bytes.get(i * 4..i * 4 + 4).context("XWD header is truncated")?;
            Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let header_size = usize::try_from(field(0)?)?;
        ensure!(field(1)? == 7, "XWD file version {} is not 7", field(1)?);
        ensure!(field(2)? == 2, "XWD pixmap format {} is not ZPixmap", field(2)?);
        let (width, height) = (field(4)?, field(5)?);
        let byte_order = field(7)?;
        let bits_per_pixel = field(11)?;
        let bytes_per_line = usize::try_from(field(12)?)?;
        let masks = [field(14)?, field(15)?, field(16)?];
        let ncolors = usize::try_from(field(19)?)?;
        ensure!(bits_per_pixel == 32 || bits_per_pixel == 24, "XWD with {bits_per_pixel} bits per pixel");
        let bpp = usize::try_from(bits_per_pixel / 8)?;
        let (w, h) = (usize::try_from(width)?, usize::try_from(height)?);
        ensure!(bytes_per_line >= w * bpp, "XWD line of {bytes_per_line} bytes is too short for {w} pixels");
        let data_start = header_size + ncolors * 12;
        let data = bytes.get(data_start..).context("XWD has no pixel data")?;
        ensure!(data.len() >= bytes_per_line * h, "XWD {w}x{h} has only {} bytes of pixels", data.len());
        let shifts = masks.map(|m| m.trailing_zeros());
        let mut rgb = Vec::with_capacity(w * h * 3);
        for row in data.chunks_exact(bytes_per_line).take(h) {
            for px in row[..w * bpp].chunks_exact(bpp) {
                let mut b = [0u8; 4];
                b[..bpp].copy_from_slice(px);
                let value = if byte_order == 0 {
                    u32::from_le_bytes(b)
                } else {
                    u32::from_be_bytes(b) >> (32 - bits_per_pixel)
                };
                for (mask, shift) in masks.iter().zip(shifts) {
                    // Masks are 8 bits wide on every TrueColor visual Xvnc and Xvfb offer.
                    rgb.push(u8::try_from(((value & mask) >> shift) & 0xff).unwrap_or(0));
                }
            }
        }
        if rgb.len() != w * h * 3 {
            bail!("XWD pixel data did not fill {w}x{h}");
        }
        Ok(Self { width, height, rgb })
    }
}

impl Display {
    /// The whole screen as it is now, read from the X server with `xwd -root`.
    pub fn screenshot(&self) -> anyhow::Result<Screenshot> {
        let mut cmd = self.command("xwd");
        cmd.args(["-root", "-silent"]);
        let out = cmd.output().context("running xwd (Debian package x11-apps)")?;
        if !out.status.success() {
            bail!("xwd -root on {} failed: {}", self.name(), String::from_utf8_lossy(&out.stderr));
        }
        Screenshot::from_xwd(&out.stdout).with_context(|| format!("parsing xwd output of {}", self.name()))
    }

    /// A window's geometry `(x, y, width, height)` on the root window, as `xdotool getwindowgeometry` reports it.
    pub fn window_geometry(&self, window: u64) -> anyhow::Result<(i32, i32, u32, u32)> {
        let mut cmd = self.command("xdotool");
        cmd.args(["getwindowgeometry", "--shell", &window.to_string()]);
        let text = run(&mut cmd)?;
        let get = |key: &str| -> anyhow::Result<i64> {
            text.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
                .with_context(|| format!("xdotool printed no {key}: {text}"))?
                .trim()
                .parse::<i64>()
                .with_context(|| format!("xdotool {key} is not a number: {text}"))
        };
        Ok((
            i32::try_from(get("X")?)?,
            i32::try_from(get("Y")?)?,
            u32::try_from(get("WIDTH")?)?,
            u32::try_from(get("HEIGHT")?)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppm_round_trip() {
        let shot = Screenshot { width: 2, height: 1, rgb: vec![1, 2, 3, 4, 5, 6] };
        let mut bytes = b"P6\n# comment\n2 1\n255\n".to_vec();
        bytes.extend_from_slice(&shot.rgb);
        assert_eq!(Screenshot::from_ppm(&bytes).unwrap(), shot);
        assert_eq!(shot.pixel(1, 0), Some([4, 5, 6]));
        assert_eq!(shot.pixel(2, 0), None);
    }

    #[test]
    fn truncated_inputs_are_errors() {
        assert!(Screenshot::from_ppm(b"P6\n2 1\n255\n\x01").is_err());
        assert!(Screenshot::from_xwd(&[0, 0, 0]).is_err());
    }
}
