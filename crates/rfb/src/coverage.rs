//! Which pixels have been painted since a point in time — how [`crate::Client::refresh`] knows that a complete
//! frame has arrived.
//!
//! A server may answer one full-screen request with several FramebufferUpdate messages (congestion control,
//! throttled output), and a single update may carry overlapping rectangles, so neither "the next update" nor
//! "rectangle areas add up to the screen" is a safe test. A bitmap with one bit per pixel (260 KB at 1920×1080,
//! only while a refresh is pending) answers exactly.

use crate::Rect;

/// One bit per pixel: set once painted.
#[derive(Debug, Clone)]
pub(crate) struct Coverage {
    width: u32,
    height: u32,
    words_per_row: usize,
    bits: Vec<u64>,
    covered: u64,
}

impl Coverage {
    pub(crate) fn new(width: u32, height: u32) -> Self {
        let words_per_row = (width as usize).div_ceil(64);
        Self { width, height, words_per_row, bits: vec![0; words_per_row * height as usize], covered: 0 }
    }

    /// Marks `rect` (clipped to the screen) as painted.
    pub(crate) fn add(&mut self, rect: Rect) {
        let x0 = rect.x.min(self.width) as usize;
        let x1 = rect.x.saturating_add(rect.width).min(self.width) as usize;
        let y0 = rect.y.min(self.height);
        let y1 = rect.y.saturating_add(rect.height).min(self.height);
        if x0 >= x1 {
            return;
        }
        for y in y0..y1 {
            let row = y as usize * self.words_per_row;
            let mut x = x0;
            while x < x1 {
                let word = x / 64;
                let bit = x % 64;
                let n = (x1 - x).min(64 - bit);
                let mask = if n == 64 { u64::MAX } else { ((1u64 << n) - 1) << bit };
                if let Some(w) = self.bits.get_mut(row + word) {
                    self.covered += u64::from((mask & !*w).count_ones());
                    *w |= mask;
                }
                x += n;
            }
        }
    }

    /// True when every pixel has been painted.
    pub(crate) fn is_complete(&self) -> bool {
        self.covered >= u64::from(self.width) * u64::from(self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_pixel_once() {
        let mut c = Coverage::new(130, 3);
        c.add(Rect::new(0, 0, 100, 3));
        assert!(!c.is_complete());
        c.add(Rect::new(50, 0, 60, 3)); // overlaps
        assert_eq!(c.covered, 110 * 3);
        c.add(Rect::new(110, 0, 500, 2)); // clipped
        assert!(!c.is_complete());
        c.add(Rect::new(129, 2, 1, 1));
        c.add(Rect::new(110, 2, 19, 1));
        assert!(c.is_complete());
        let mut empty = Coverage::new(0, 0);
        empty.add(Rect::new(0, 0, 5, 5));
        assert!(empty.is_complete());
    }
}
