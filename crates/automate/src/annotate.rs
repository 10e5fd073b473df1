//! The annotated screenshot of the debug output: a box around every recognised word with its text as a label,
//! the matched words highlighted, the searched region outlined and a red crosshair where the pointer clicked.
//!
//! Labels are drawn with a DejaVu Sans Mono compiled into the binary (its licence is next to it in `assets/`),
//! so screenshots look the same on every machine and need no font installed.

use std::sync::OnceLock;

use ab_glyph::{FontRef, PxScale};
use image::{Rgba, RgbaImage};
use imageproc::drawing::{
    draw_filled_rect_mut, draw_hollow_circle_mut, draw_hollow_rect_mut, draw_line_segment_mut, draw_text_mut,
};
use imageproc::rect::Rect;

use crate::result::{BBox, OcrText, PointXY};

const FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");

const WORD: Rgba<u8> = Rgba([0, 150, 255, 255]);
const MATCH: Rgba<u8> = Rgba([255, 140, 0, 255]);
const REGION: Rgba<u8> = Rgba([200, 0, 200, 255]);
const CLICK: Rgba<u8> = Rgba([255, 0, 0, 255]);
const LABEL_BG: Rgba<u8> = Rgba([255, 255, 255, 255]);
const LABEL_FG: Rgba<u8> = Rgba([0, 70, 160, 255]);
const LABEL_PX: f32 = 12.0;

/// What to draw on top of a screenshot.
#[derive(Debug, Clone, Default)]
pub struct Marks<'a> {
    /// Every recognised word: boxed and labelled.
    pub words: &'a [OcrText],
    /// Boxes of the matched text, drawn thick.
    pub matched: Vec<BBox>,
    /// The searched region, if the step limited the search.
    pub region: Option<BBox>,
    /// Where the pointer went.
    pub click: Option<PointXY>,
}

fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok()).as_ref()
}

fn rect(b: &BBox) -> Option<Rect> {
    (b.width > 0 && b.height > 0).then(|| Rect::at(b.x as i32, b.y as i32).of_size(b.width, b.height))
}

/// A copy of `screen` with the marks drawn on it.
pub fn annotate(screen: &RgbaImage, marks: &Marks<'_>) -> RgbaImage {
    let mut img = screen.clone();
    for w in marks.words {
        if let Some(r) = rect(&w.bbox) {
            draw_hollow_rect_mut(&mut img, r, WORD);
        }
    }
    if let Some(font) = font() {
        let scale = PxScale::from(LABEL_PX);
        for w in marks.words {
            let (tw, th) = imageproc::drawing::text_size(scale, font, &w.text);
            let x = w.bbox.x as i32;
            let y = (w.bbox.y as i32 - th as i32 - 3).max(0);
            if tw > 0 && th > 0 {
                draw_filled_rect_mut(&mut img, Rect::at(x, y).of_size(tw + 2, th + 2), LABEL_BG);
            }
            draw_text_mut(&mut img, LABEL_FG, x + 1, y, scale, font, &w.text);
        }
    }
    for m in &marks.matched {
        if let Some(r) = rect(m) {
            for grow in 0..3 {
                let g = grow as i32;
                let r = Rect::at(r.left() - g, r.top() - g).of_size(r.width() + 2 * grow, r.height() + 2 * grow);
                draw_hollow_rect_mut(&mut img, r, MATCH);
            }
        }
    }
    if let Some(r) = marks.region.as_ref().and_then(rect) {
        draw_hollow_rect_mut(&mut img, r, REGION);
        draw_hollow_rect_mut(
            &mut img,
            Rect::at(r.left() + 1, r.top() + 1)
                .of_size(r.width().saturating_sub(2).max(1), r.height().saturating_sub(2).max(1)),
            REGION,
        );
    }
    if let Some(p) = marks.click {
        let (x, y) = (p.x as f32, p.y as f32);
        const ARM: f32 = 20.0;
        for d in -1..=1 {
            let d = d as f32;
            draw_line_segment_mut(&mut img, (x - ARM, y + d), (x + ARM, y + d), CLICK);
            draw_line_segment_mut(&mut img, (x + d, y - ARM), (x + d, y + ARM), CLICK);
        }
        let (cx, cy) =
            (p.x.clamp(i32::MIN.into(), i32::MAX.into()) as i32, p.y.clamp(i32::MIN.into(), i32::MAX.into()) as i32);
        draw_hollow_circle_mut(&mut img, (cx, cy), ARM as i32, CLICK);
        draw_hollow_circle_mut(&mut img, (cx, cy), ARM as i32 - 1, CLICK);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_boxes_and_crosshair_inside_bounds_and_tolerates_marks_outside() {
        let screen = RgbaImage::from_pixel(200, 100, Rgba([0, 0, 0, 255]));
        let words =
            [OcrText { text: "Continue".into(), confidence: 0.9, bbox: BBox { x: 50, y: 40, width: 60, height: 15 } }];
        let marks = Marks {
            words: &words,
            matched: vec![words[0].bbox, BBox { x: 190, y: 90, width: 500, height: 500 }],
            region: Some(BBox { x: 0, y: 0, width: 200, height: 100 }),
            click: Some(PointXY { x: 80, y: 47 }),
        };
        let out = annotate(&screen, &marks);
        assert_eq!(out.dimensions(), (200, 100));
        assert_eq!(*out.get_pixel(80, 47), CLICK, "crosshair centre");
        assert_eq!(*out.get_pixel(50, 50), MATCH, "matched box edge");
        // Far outside the screen: ignored without panicking.
        let _ = annotate(&screen, &Marks { click: Some(PointXY { x: 10_000, y: -5 }), ..Default::default() });
    }

    #[test]
    fn the_font_loads() {
        assert!(font().is_some());
    }
}
