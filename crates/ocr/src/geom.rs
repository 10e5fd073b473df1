//! Rectangles and points in framebuffer pixels.
//!
//! Every box this crate reports is in the coordinates of the frame it was given (not of the upscaled crops that
//! Tesseract saw), so a caller can click at a box's centre without knowing how the image was preprocessed. The
//! serde form `{"x","y","width","height"}` is the `bbox` of vmkit's OCR JSON.

use serde::{Deserialize, Serialize};

/// A point in framebuffer pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Point {
    /// Column, 0 at the left.
    pub x: u32,
    /// Row, 0 at the top.
    pub y: u32,
}

/// An axis-aligned rectangle in framebuffer pixels; `width` or `height` 0 means empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Rect {
    /// Left column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Rect {
    /// A rectangle from its top-left corner and size.
    pub const fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Self { x, y, width, height }
    }

    /// A rectangle from its left, top, right and bottom edges (right and bottom exclusive).
    pub fn from_edges(left: u32, top: u32, right: u32, bottom: u32) -> Self {
        Self { x: left, y: top, width: right.saturating_sub(left), height: bottom.saturating_sub(top) }
    }

    /// One past the right-most column.
    pub const fn right(&self) -> u32 {
        self.x.saturating_add(self.width)
    }

    /// One past the bottom row.
    pub const fn bottom(&self) -> u32 {
        self.y.saturating_add(self.height)
    }

    /// Whether the rectangle covers no pixel.
    pub const fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// Number of pixels covered.
    pub const fn area(&self) -> u64 {
        self.width as u64 * self.height as u64
    }

    /// The centre, rounded down: where a click on this box lands.
    pub const fn centre(&self) -> Point {
        Point { x: self.x + self.width / 2, y: self.y + self.height / 2 }
    }

    /// Whether `p` lies inside.
    pub const fn contains(&self, p: Point) -> bool {
        p.x >= self.x && p.x < self.right() && p.y >= self.y && p.y < self.bottom()
    }

    /// Whether `other` lies entirely inside.
    pub const fn contains_rect(&self, other: &Rect) -> bool {
        other.x >= self.x && other.y >= self.y && other.right() <= self.right() && other.bottom() <= self.bottom()
    }

    /// Whether the two rectangles share at least one pixel.
    pub const fn intersects(&self, other: &Rect) -> bool {
        !self.is_empty()
            && !other.is_empty()
            && self.x < other.right()
            && other.x < self.right()
            && self.y < other.bottom()
            && other.y < self.bottom()
    }

    /// The pixels both rectangles cover (empty if none).
    pub fn intersection(&self, other: &Rect) -> Rect {
        if !self.intersects(other) {
            return Rect::default();
        }
        Rect::from_edges(
            self.x.max(other.x),
            self.y.max(other.y),
            self.right().min(other.right()),
            self.bottom().min(other.bottom()),
        )
    }

    /// The smallest rectangle covering both; an empty rectangle does not count.
    pub fn union(&self, other: &Rect) -> Rect {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        Rect::from_edges(
            self.x.min(other.x),
            self.y.min(other.y),
            self.right().max(other.right()),
            self.bottom().max(other.bottom()),
        )
    }

    /// Grown by `dx` columns left and right and `dy` rows up and down, clipped to `bounds`.
    pub fn expand(&self, dx: u32, dy: u32, bounds: &Rect) -> Rect {
        Rect::from_edges(
            self.x.saturating_sub(dx),
            self.y.saturating_sub(dy),
            self.right().saturating_add(dx),
            self.bottom().saturating_add(dy),
        )
        .intersection(bounds)
    }

    /// How many rows the two rectangles share.
    pub fn vertical_overlap(&self, other: &Rect) -> u32 {
        self.bottom().min(other.bottom()).saturating_sub(self.y.max(other.y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_and_set_operations() {
        let a = Rect::new(10, 10, 20, 10);
        let b = Rect::new(25, 15, 10, 10);
        assert!(a.intersects(&b));
        assert_eq!(a.intersection(&b), Rect::new(25, 15, 5, 5));
        assert_eq!(a.union(&b), Rect::new(10, 10, 25, 15));
        assert_eq!(a.centre(), Point { x: 20, y: 15 });
        assert!(!a.intersects(&Rect::new(30, 10, 5, 5)), "touching edges do not intersect");
        assert_eq!(a.expand(20, 20, &Rect::new(0, 0, 40, 25)), Rect::new(0, 0, 40, 25));
        assert_eq!(a.vertical_overlap(&b), 5);
        assert!(Rect::default().union(&a) == a && a.union(&Rect::default()) == a);
        assert!(a.contains_rect(&Rect::new(10, 10, 20, 10)) && !a.contains_rect(&b));
    }
}
