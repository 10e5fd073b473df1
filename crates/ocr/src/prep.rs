//! Preprocessing: find where the text is, and turn each piece into an image Tesseract reads well.
//!
//! Tesseract run on a whole 1920×1080 screenshot is slow (it binarises and analyses millions of background
//! pixels), misses small UI text (it wants glyphs larger than a screen draws them), and skips light text on dark
//! or coloured backgrounds (it assumes dark ink on light paper). So instead of handing it the frame:
//!
//! 1. **Text-like pixels.** A pixel is *active* when its luminance differs from its right or lower neighbour by at
//!    least [`SegParams::edge_threshold`]: glyph outlines, whatever the colours. Uniform areas and smooth gradients
//!    are not active, whatever their colour.
//! 2. **No frames.** Long straight runs of active pixels (window borders, the edges of a selection bar, table
//!    rules, underlines) are cleared, so they do not glue a whole window into one piece.
//!    **Fields.** An entry field's frame is a box whose top and bottom are long lines but whose sides are
//!    shorter than a frame line (a field is 25–40 pixels tall): a vertical run whose ends both touch a frame line
//!    is a side of a box and is cleared too, with the rounded corners around its ends, so the field's frame does
//!    not read as `{` or `|` around the typed text. The inside of such a box is a *field interior*.
//! 3. **Pieces.** Active pixels are smeared horizontally across gaps narrower than a word space and grouped into
//!    8-connected components: roughly one per text line (or per isolated word). Their boxes are the *crops*.
//! 4. **Per-crop normalisation.** Each crop gets its own background (the most common luminance on its rim) and
//!    is mapped to *distance from that background*, stretched to full contrast: dark ink on white, whether the
//!    original was black on white, white on blue, or grey on black. Rows that are almost entirely a different
//!    uniform colour (the edge of a selection bar cutting through the crop) are treated as background.
//!    In a piece inside a field interior, a text caret — one stroke at most 2 pixels wide, standing alone, and
//!    clearly taller than every other glyph (it spans the whole line, ascender to descender) — is painted over,
//!    so the typed text reads without a trailing `|`.
//! 5. **Upscale.** Small text is enlarged 2× (3× for tiny) with bilinear interpolation and padded with white.
//!
//! Every crop depends only on its own pixels, which is what lets [`crate::engine`] cache results per crop: a crop
//! whose pixels were read before is never read again, wherever it moved to.

use crate::frame::Frame;
use crate::geom::Rect;

/// Tunables of the segmentation; the defaults are measured on GTK dialogs, a terminal and a VGA console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegParams {
    /// Minimum luminance step between neighbours that counts as an edge.
    pub edge_threshold: u8,
    /// Straight runs of edge pixels longer than this (horizontal) are frames, not text.
    pub max_hrun: u32,
    /// Straight runs of edge pixels longer than this (vertical) are frames, not text.
    pub max_vrun: u32,
    /// Horizontal gaps up to this width are bridged when grouping pixels into pieces.
    pub hgap: u32,
    /// Pieces lower than this are noise unless they sit right above or below a larger piece.
    pub min_height: u32,
    /// Pieces narrower than this are noise (the sides of buttons and bars).
    pub min_width: u32,
    /// Clear the sides of boxes (entry fields) and the caret inside them (see the module docs).
    pub fields: bool,
}

impl Default for SegParams {
    fn default() -> Self {
        Self { edge_threshold: 40, max_hrun: 48, max_vrun: 40, hgap: 12, min_height: 6, min_width: 4, fields: true }
    }
}

/// The luminance of a frame, packed.
pub(crate) struct Gray {
    pub w: usize,
    pub h: usize,
    pub px: Vec<u8>,
}

impl Gray {
    /// The luminance of the pixels of `rect` (which must lie inside the frame).
    pub(crate) fn of_rect(frame: &Frame<'_>, rect: &Rect) -> Self {
        Self { w: rect.width as usize, h: rect.height as usize, px: frame.gray_rect(rect) }
    }
}

/// The result of segmenting a frame.
pub(crate) struct Segmentation {
    /// Pixel boxes of the pieces that may hold text, top to bottom.
    pub pieces: Vec<Rect>,
    /// The edge mask: [`TEXT`], [`LINE`] or 0, `w * h`.
    pub mask: Vec<u8>,
    pub w: usize,
    /// Interiors of boxes found by their cleared sides (entry fields).
    pub fields: Vec<Rect>,
}

impl Segmentation {
    /// Whether column `x` holds any text-like pixel between rows `y0..y1`.
    pub(crate) fn column_has_ink(&self, x: u32, y0: u32, y1: u32) -> bool {
        let x = x as usize;
        (y0 as usize..y1 as usize).any(|y| self.mask.get(y * self.w + x).is_some_and(|&m| m == TEXT))
    }

    /// Whether `rect` lies inside a field interior. A crop may reach a few pixels over the interior's edge: in a
    /// tight field (Tk's) the text sits right against the frame, and the crop's margin takes the frame in.
    pub(crate) fn in_field(&self, rect: &Rect) -> bool {
        self.fields.iter().any(|f| {
            let reach = Rect::from_edges(
                f.x.saturating_sub(FIELD_REACH),
                f.y.saturating_sub(FIELD_REACH),
                f.right() + FIELD_REACH,
                f.bottom() + FIELD_REACH,
            );
            reach.contains_rect(rect)
        })
    }
}

/// Finds the pieces of `gray` that may hold text.
pub(crate) fn segment(gray: &Gray, params: &SegParams) -> Segmentation {
    let (w, h) = (gray.w, gray.h);
    let mut mask = edge_mask(gray, params.edge_threshold);
    remove_long_runs(&mut mask, w, h, params.max_hrun as usize, params.max_vrun as usize);
    let fields = if params.fields { clear_box_sides(&mut mask, w, h) } else { Vec::new() };
    let runs = smeared_runs(&mask, w, h, params.hgap as usize);
    let boxes = components(&runs);
    let pieces = filter_pieces(boxes, params);
    Segmentation { pieces, mask, w, fields }
}

/// How far (pixels) the end of a box side may be from the frame line it meets: rounded corners.
const CORNER: usize = 6;

/// How far (pixels) a crop may reach over a field interior's edge and still count as inside the field.
const FIELD_REACH: u32 = 3;

/// Clears vertical runs of [`TEXT`] whose both ends touch a [`LINE`] (the sides of boxes shorter than a frame
/// line), and the corner pixels around their ends; returns the interiors of the boxes whose two sides were found.
fn clear_box_sides(mask: &mut [u8], w: usize, h: usize) -> Vec<Rect> {
    // A frame line that ends within CORNER of column `x` in rows `y0..y1` (a caret in the middle of a field also
    // has frame lines above and below it, but they run on past it on both sides).
    let line_ends_near = |mask: &[u8], x: usize, y0: usize, y1: usize| {
        let (xa, xb) = (x.saturating_sub(CORNER), (x + CORNER + 1).min(w));
        (y0..y1.min(h)).any(|y| {
            let row = &mask[y * w..(y + 1) * w];
            let left_open = xa < 3 || !row[xa - 3..xa].contains(&LINE);
            let right_open = xb + 3 > w || !row[xb..xb + 3].contains(&LINE);
            row[xa..xb].contains(&LINE) && (left_open || right_open)
        })
    };
    // A side meets its frame line without a gap: walking from the run's end towards the line, every row holds an
    // edge pixel within a cone that widens by a pixel a row (a rounded corner's curve) until the line is reached.
    // A letter's stroke near the end of a highlight bar is not a side: the bar's padding leaves blank rows.
    let joined = |mask: &[u8], x: usize, end: usize, down: bool| {
        for k in 1..=CORNER {
            let y = if down { end + k } else { end.wrapping_sub(k) };
            if y >= h {
                return false;
            }
            let (xa, xb) = (x.saturating_sub(k + 1), (x + k + 2).min(w));
            let row = &mask[y * w + xa..y * w + xb];
            if row.contains(&LINE) {
                return true;
            }
            if !row.iter().any(|&m| m != 0) {
                return false;
            }
        }
        false
    };
    // (x, top, bottom) of each side found.
    let mut sides: Vec<(usize, usize, usize)> = Vec::new();
    for x in 0..w {
        let mut y = 0;
        while y < h {
            if mask[y * w + x] != TEXT {
                y += 1;
                continue;
            }
            let top = y;
            while y < h && mask[y * w + x] == TEXT {
                y += 1;
            }
            let bottom = y;
            if bottom - top >= 12
                && line_ends_near(mask, x, top.saturating_sub(CORNER), top)
                && line_ends_near(mask, x, bottom, bottom + CORNER)
                && joined(mask, x, top, false)
                && joined(mask, x, bottom - 1, true)
            {
                sides.push((x, top, bottom));
            }
        }
    }
    // In a tight field (Tk's) a letter's stem two pixels inside a side, as tall as the field allows, looks like a
    // side too; the side is the longer run, from frame line to frame line.
    let sides: Vec<(usize, usize, usize)> = sides
        .iter()
        .filter(|&&(x, top, bottom)| {
            !sides.iter().any(|&(x2, t2, b2)| x2 != x && x2.abs_diff(x) <= CORNER && b2 - t2 > bottom - top + 2)
        })
        .copied()
        .collect();
    for &(x, top, bottom) in &sides {
        // The side itself, and around its ends the rounded corners (text can sit right next to a side, so the
        // columns beside it are left alone between the corners).
        let (xa, xb) = (x.saturating_sub(2), (x + 3).min(w));
        for y in top.saturating_sub(CORNER)..(bottom + CORNER).min(h) {
            let cols = if (top..bottom).contains(&y) { x..x + 1 } else { xa..xb };
            for m in &mut mask[y * w + cols.start..y * w + cols.end] {
                if *m == TEXT {
                    *m = LINE;
                }
            }
        }
    }
    // A box: a left and a right side spanning about the same rows, with something between them.
    let mut fields = Vec::new();
    for (i, &(lx, lt, lb)) in sides.iter().enumerate() {
        let right = sides[i + 1..]
            .iter()
            .filter(|&&(rx, rt, rb)| rx > lx + 2 * CORNER && rt.abs_diff(lt) <= 3 && rb.abs_diff(lb) <= 3)
            .min_by_key(|&&(rx, _, _)| rx);
        if let Some(&(rx, _, _)) = right {
            let r = Rect::from_edges(lx as u32 + 2, lt as u32, rx as u32 - 1, lb as u32);
            if !fields.iter().any(|f: &Rect| f.intersects(&r)) {
                fields.push(r);
            }
        }
    }
    fields
}

/// Paints over a text caret in a normalised crop (dark on white): a stroke at most 2 pixels wide whose ink is at
/// least 1.12 times as tall as that of any other column. It may touch the glyph before it (Tk draws the caret
/// over the last glyph's right edge): what makes it a caret is that it spans the whole line, ascender to
/// descender, and nothing else does.
fn remove_caret(crop: &mut [u8], w: usize, h: usize) {
    const INK: u8 = 128;
    let height: Vec<usize> = (0..w)
        .map(|x| {
            let top = (0..h).find(|&y| crop[y * w + x] < INK);
            let bottom = (0..h).rev().find(|&y| crop[y * w + x] < INK);
            match (top, bottom) {
                (Some(t), Some(b)) => b + 1 - t,
                _ => 0,
            }
        })
        .collect();
    let Some(&tallest) = height.iter().max() else { return };
    if tallest == 0 {
        return;
    }
    // The columns within a pixel of the tallest: they must form one run of at most 2 columns.
    let tall: Vec<usize> = (0..w).filter(|&x| height[x] + 1 >= tallest).collect();
    let (first, last) = (tall[0], tall[tall.len() - 1]);
    if last - first + 1 != tall.len() || tall.len() > 2 || first == 0 && last == w - 1 {
        return;
    }
    let others = (0..w).filter(|x| !(first..=last).contains(x)).map(|x| height[x]).max().unwrap_or(0);
    if others > 0 && tallest * 100 >= others * 112 {
        for c in first..=last {
            (0..h).for_each(|y| crop[y * w + c] = 255);
        }
    }
}

/// 1 where a pixel differs from its right or lower neighbour by at least `threshold`.
fn edge_mask(gray: &Gray, threshold: u8) -> Vec<u8> {
    let (w, h) = (gray.w, gray.h);
    let mut mask = vec![0u8; w * h];
    if w == 0 || h == 0 {
        return mask;
    }
    for y in 0..h {
        let row = &gray.px[y * w..(y + 1) * w];
        let below = if y + 1 < h { &gray.px[(y + 1) * w..(y + 2) * w] } else { row };
        let out = &mut mask[y * w..(y + 1) * w];
        for x in 0..w {
            let g = row[x];
            let right = if x + 1 < w { row[x + 1] } else { g };
            let dv = g.abs_diff(below[x]);
            let dh = g.abs_diff(right);
            out[x] = u8::from(dv.max(dh) >= threshold);
        }
    }
    mask
}

/// Mask value of a text-like pixel.
pub(crate) const TEXT: u8 = 1;
/// Mask value of a pixel on a frame line (a long straight run), removed from the text.
pub(crate) const LINE: u8 = 2;

/// Turns horizontal runs longer than `max_h` and vertical runs longer than `max_v` (both measured on the original
/// mask, so a border crossing text does not shorten the text's runs) from [`TEXT`] into [`LINE`].
fn remove_long_runs(mask: &mut [u8], w: usize, h: usize, max_h: usize, max_v: usize) {
    // Mark with bit 1 (value 2) first, clear at the end.
    for y in 0..h {
        let row = &mut mask[y * w..(y + 1) * w];
        let mut x = 0;
        while x < w {
            if row[x] & 1 == 0 {
                x += 1;
                continue;
            }
            let start = x;
            while x < w && row[x] & 1 != 0 {
                x += 1;
            }
            if x - start > max_h {
                row[start..x].iter_mut().for_each(|m| *m |= 2);
            }
        }
    }
    let mut run = vec![0usize; w];
    for y in 0..=h {
        for x in 0..w {
            let on = y < h && mask[y * w + x] & 1 != 0;
            if on {
                run[x] += 1;
            } else {
                if run[x] > max_v {
                    for yy in y - run[x]..y {
                        mask[yy * w + x] |= 2;
                    }
                }
                run[x] = 0;
            }
        }
    }
    for m in mask.iter_mut() {
        *m = match *m {
            1 => TEXT,
            0 => 0,
            _ => LINE,
        };
    }
}

/// A horizontal run of smeared mask pixels: row `y`, columns `x0..x1`.
#[derive(Debug, Clone, Copy)]
struct Run {
    y: u32,
    x0: u32,
    x1: u32,
}

/// The runs of the mask after bridging gaps up to `gap` pixels in each row.
fn smeared_runs(mask: &[u8], w: usize, h: usize, gap: usize) -> Vec<Run> {
    let mut runs = Vec::new();
    for y in 0..h {
        let row = &mask[y * w..(y + 1) * w];
        let mut x = 0;
        let mut current: Option<(usize, usize)> = None;
        while x < w {
            if row[x] != TEXT {
                x += 1;
                continue;
            }
            let start = x;
            while x < w && row[x] == TEXT {
                x += 1;
            }
            current = match current {
                Some((s, e)) if start - e <= gap => Some((s, x)),
                Some((s, e)) => {
                    runs.push(Run { y: y as u32, x0: s as u32, x1: e as u32 });
                    Some((start, x))
                }
                None => Some((start, x)),
            };
        }
        if let Some((s, e)) = current {
            runs.push(Run { y: y as u32, x0: s as u32, x1: e as u32 });
        }
    }
    runs
}

/// Union-find root with path halving.
fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Bounding boxes of the 8-connected components formed by `runs` (sorted by row, then column).
fn components(runs: &[Run]) -> Vec<Rect> {
    let mut parent: Vec<usize> = (0..runs.len()).collect();
    let mut prev_start = 0;
    let mut prev_end = 0;
    let mut i = 0;
    while i < runs.len() {
        let y = runs[i].y;
        let start = i;
        while i < runs.len() && runs[i].y == y {
            i += 1;
        }
        // Runs of the previous row touch a run of this row if their column ranges overlap or meet diagonally.
        if prev_end > prev_start && runs[prev_start].y + 1 == y {
            let mut p = prev_start;
            for c in start..i {
                while p < prev_end && runs[p].x1 < runs[c].x0 {
                    p += 1;
                }
                let mut q = p;
                while q < prev_end && runs[q].x0 <= runs[c].x1 {
                    let (a, b) = (find(&mut parent, q), find(&mut parent, c));
                    if a != b {
                        parent[a.max(b)] = a.min(b);
                    }
                    q += 1;
                }
            }
        }
        prev_start = start;
        prev_end = i;
    }
    let mut boxes: Vec<Option<Rect>> = vec![None; runs.len()];
    for (k, r) in runs.iter().enumerate() {
        let root = find(&mut parent, k);
        let b = Rect::from_edges(r.x0, r.y, r.x1, r.y + 1);
        boxes[root] = Some(boxes[root].map_or(b, |old| old.union(&b)));
    }
    boxes.into_iter().flatten().collect()
}

/// Drops noise, lets dots and accents join the piece below or above them, and sorts top to bottom.
fn filter_pieces(boxes: Vec<Rect>, params: &SegParams) -> Vec<Rect> {
    let (mut big, small): (Vec<Rect>, Vec<Rect>) = boxes.into_iter().partition(|b| b.height >= params.min_height);
    // Narrow pieces are noise; tall thin ones are the sides of buttons and fields (a lone tall glyph is rare).
    big.retain(|b| b.width >= params.min_width && (b.width * 2 >= b.height || b.height <= 16));
    for s in small {
        // A dot over an i, an accent, the lower part of a colon: attach to a piece within 3 rows that spans it.
        let near = big.iter_mut().find(|b| {
            s.x < b.right()
                && b.x < s.right()
                && (s.bottom() + 3 >= b.y && s.bottom() <= b.y + 1 || b.bottom() + 3 >= s.y && b.bottom() <= s.y + 1)
        });
        if let Some(b) = near {
            *b = b.union(&s);
        }
    }
    big.sort_by_key(|b| (b.y, b.x));
    big
}

/// A crop made ready for Tesseract: dark text on white, upscaled, padded.
pub(crate) struct Prepared {
    pub w: u32,
    pub h: u32,
    pub px: Vec<u8>,
    /// Upscale factor.
    pub scale: u32,
    /// White border added on each side, in output pixels.
    pub pad: u32,
}

/// The upscale factor for a piece `height` pixels tall.
pub(crate) fn scale_for(height: u32) -> u32 {
    match height {
        0..=10 => 3,
        11..=56 => 2,
        _ => 1,
    }
}

/// Normalises, upscales and pads the pixels of `rect` (which must lie inside `gray`); frame lines found by the
/// segmentation are painted over with the background.
pub(crate) fn prepare(gray: &Gray, seg: &Segmentation, rect: Rect, scale: u32, pad: u32) -> Prepared {
    let (cw, ch) = (rect.width as usize, rect.height as usize);
    let mut crop = Vec::with_capacity(cw * ch);
    for y in rect.y as usize..rect.bottom() as usize {
        crop.extend_from_slice(&gray.px[y * gray.w + rect.x as usize..y * gray.w + rect.right() as usize]);
    }
    let mut lines = Vec::with_capacity(cw * ch);
    for y in rect.y as usize..rect.bottom() as usize {
        lines.extend(
            seg.mask[y * seg.w + rect.x as usize..y * seg.w + rect.right() as usize].iter().map(|&k| k == LINE),
        );
    }
    normalise(&mut crop, cw, ch, &lines);
    if seg.in_field(&rect) {
        remove_caret(&mut crop, cw, ch);
    }
    for (v, &line) in crop.iter_mut().zip(&lines) {
        if line {
            *v = 255;
        }
    }
    upscale_and_pad(&crop, cw, ch, scale, pad)
}

/// The most common value of `values`, in 8-level buckets refined to the exact value.
fn mode(values: impl Iterator<Item = u8> + Clone) -> (u8, usize, usize) {
    let mut hist = [0usize; 256];
    let mut n = 0;
    for v in values {
        hist[v as usize] += 1;
        n += 1;
    }
    // Anti-aliasing and dithering spread a background over neighbouring values; pick the densest window of 5.
    let mut best = (0usize, 0usize);
    for c in 0usize..256 {
        let lo = c.saturating_sub(2);
        let hi = (c + 2).min(255);
        let s: usize = hist[lo..=hi].iter().sum();
        if s > best.1 || (s == best.1 && hist[c] > hist[best.0]) {
            best = (c, s);
        }
    }
    (best.0 as u8, best.1, n)
}

/// Fewest rim pixels off frame lines that decide a crop's background on their own.
const MIN_OPEN_RIM: usize = 8;

/// Maps a crop to dark-on-white: each pixel's distance from the background, stretched to full contrast.
/// `lines` marks the pixels of frame lines (see [`LINE`]), which say nothing about the background.
fn normalise(crop: &mut [u8], w: usize, h: usize, lines: &[bool]) {
    if w == 0 || h == 0 {
        return;
    }
    // The background is what the rim of the crop mostly shows (glyphs touch the rim less than they fill the middle),
    // leaving out frame lines: a crop of the text in a tight entry field (Tk's) has the field's frame all along
    // its rim, and taking the frame's colour for the background would turn the field inside out. Only when
    // (nearly) the whole rim is frame does the frame count.
    let rim: Vec<usize> =
        (0..w).flat_map(|x| [x, (h - 1) * w + x]).chain((0..h).flat_map(|y| [y * w, y * w + w - 1])).collect();
    let open: Vec<u8> = rim.iter().filter(|&&i| !lines.get(i).copied().unwrap_or(false)).map(|&i| crop[i]).collect();
    let (bg, _, _) =
        if open.len() >= MIN_OPEN_RIM { mode(open.into_iter()) } else { mode(rim.iter().map(|&i| crop[i])) };
    // Rows that are almost all one other colour belong to a different background (a bar's edge crossing the crop).
    let mut row_bg = vec![bg; h];
    for (y, rb) in row_bg.iter_mut().enumerate() {
        let row = &crop[y * w..(y + 1) * w];
        let (m, count, n) = mode(row.iter().copied());
        if m.abs_diff(bg) > 24 && count * 10 >= n * 9 {
            *rb = m;
        }
    }
    // Columns likewise (the side of a field or a list box running through the crop).
    let mut col_line = vec![false; w];
    for (x, line) in col_line.iter_mut().enumerate() {
        let (m, count, n) = mode((0..h).map(|y| crop[y * w + x]));
        *line = m.abs_diff(bg) > 24 && count * 10 >= n * 9 && h >= 8;
    }
    let mut contrast = 0u8;
    for y in 0..h {
        for x in 0..w {
            if !col_line[x] {
                contrast = contrast.max(crop[y * w + x].abs_diff(row_bg[y]));
            }
        }
    }
    let contrast = u32::from(contrast.max(48));
    for y in 0..h {
        let b = row_bg[y];
        for (x, v) in crop[y * w..(y + 1) * w].iter_mut().enumerate() {
            let d = if col_line[x] { 0 } else { u32::from(v.abs_diff(b)) * 255 / contrast };
            *v = 255 - d.min(255) as u8;
        }
    }
}

/// Bilinear upscale by `scale`, then a white border of `pad` pixels.
fn upscale_and_pad(src: &[u8], w: usize, h: usize, scale: u32, pad: u32) -> Prepared {
    let s = scale.max(1) as usize;
    let p = pad as usize;
    let (ow, oh) = (w * s + 2 * p, h * s + 2 * p);
    let mut out = vec![255u8; ow * oh];
    if w > 0 && h > 0 {
        for oy in 0..h * s {
            // Sample at pixel centres: source coordinate (oy + 0.5) / s - 0.5, in 1/256ths.
            let sy = ((2 * oy + 1) * 256 / (2 * s)).saturating_sub(128);
            let y0 = (sy >> 8).min(h - 1);
            let y1 = (y0 + 1).min(h - 1);
            let fy = (sy & 255) as u32;
            let dst = &mut out[(oy + p) * ow + p..(oy + p) * ow + p + w * s];
            for (ox, d) in dst.iter_mut().enumerate() {
                let sx = ((2 * ox + 1) * 256 / (2 * s)).saturating_sub(128);
                let x0 = (sx >> 8).min(w - 1);
                let x1 = (x0 + 1).min(w - 1);
                let fx = (sx & 255) as u32;
                let a = u32::from(src[y0 * w + x0]) * (256 - fx) + u32::from(src[y0 * w + x1]) * fx;
                let b = u32::from(src[y1 * w + x0]) * (256 - fx) + u32::from(src[y1 * w + x1]) * fx;
                *d = ((a * (256 - fy) + b * fy + (1 << 15)) >> 16) as u8;
            }
        }
    }
    Prepared { w: ow as u32, h: oh as u32, px: out, scale: s as u32, pad }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray_from(w: usize, h: usize, f: impl Fn(usize, usize) -> u8) -> Gray {
        let mut px = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                px.push(f(x, y));
            }
        }
        Gray { w, h, px }
    }

    #[test]
    fn blocks_separated_by_space_are_separate_pieces_and_frames_vanish() {
        // Two 20x8 "words" of stripes, far apart, inside a 1-pixel frame around the whole image.
        let g = gray_from(200, 60, |x, y| {
            let frame = x == 0 || y == 0 || x == 199 || y == 59;
            let word1 = (20..40).contains(&x) && (10..18).contains(&y) && x % 3 == 0;
            let word2 = (120..140).contains(&x) && (30..38).contains(&y) && x % 3 == 0;
            if frame || word1 || word2 { 0 } else { 255 }
        });
        let seg = segment(&g, &SegParams::default());
        assert_eq!(seg.pieces.len(), 2, "{:?}", seg.pieces);
        assert!(seg.pieces[0].contains_rect(&Rect::new(20, 10, 19, 8)), "{:?}", seg.pieces[0]);
        assert!(seg.pieces[1].y >= 29 && seg.pieces[1].x >= 118, "{:?}", seg.pieces[1]);
    }

    #[test]
    fn an_entry_fields_frame_and_caret_are_dropped() {
        // A 30-pixel-high field (frame lines top and bottom, short sides) holding two "letters" and a caret.
        let g = gray_from(200, 50, |x, y| {
            let frame =
                (10..190).contains(&x) && (y == 10 || y == 40) || (x == 10 || x == 189) && (10..=40).contains(&y);
            let letter = |x0: usize| (x0..x0 + 8).contains(&x) && (18..30).contains(&y) && (x - x0).is_multiple_of(3);
            let caret = x == 46 && (15..36).contains(&y);
            if frame || letter(18) || letter(30) || caret { 0 } else { 255 }
        });
        let seg = segment(&g, &SegParams::default());
        assert_eq!(seg.fields.len(), 1, "{:?}", seg.fields);
        assert!(seg.fields[0].contains_rect(&Rect::new(14, 14, 170, 24)), "{:?}", seg.fields);
        assert_eq!(seg.pieces.len(), 1, "{:?}", seg.pieces);
        let piece = seg.pieces[0];
        assert!(piece.x >= 14 && piece.right() <= 50, "the sides are not part of the text: {piece:?}");
        let p = prepare(&g, &seg, piece, 1, 0);
        let col = |x: u32| (0..p.h).all(|y| p.px[(y * p.w + x - piece.x) as usize] == 255);
        assert!(col(46), "the caret is painted over");
        assert!(!col(18) && !col(30), "the letters stay");
        // Without the field rules the sides stay text.
        let seg = segment(&g, &SegParams { fields: false, ..SegParams::default() });
        assert!(seg.fields.is_empty());
        assert!(seg.pieces.iter().any(|p| p.x <= 10), "{:?}", seg.pieces);
    }

    #[test]
    fn a_tight_fields_text_keeps_its_background_and_loses_a_touching_caret() {
        // A Tk-like field on a grey window: 1-pixel frame, the text 2 pixels from the left side and 4 from the
        // frame lines, the caret spanning the whole interior and touching the last letter's top bar. The
        // engine's crop has frame on three sides of its rim.
        let g = gray_from(200, 44, |x, y| {
            let inside = (11..189).contains(&x) && (11..32).contains(&y);
            let frame =
                (10..190).contains(&x) && (y == 10 || y == 32) || (x == 10 || x == 189) && (10..=32).contains(&y);
            let letter = |x0: usize| (x0..x0 + 8).contains(&x) && (14..28).contains(&y) && (x - x0).is_multiple_of(3);
            let bar = (36..41).contains(&x) && y == 14;
            let caret = x == 41 && (12..31).contains(&y);
            if frame || letter(12) || letter(28) || bar || caret {
                0
            } else if inside {
                255
            } else {
                217
            }
        });
        let seg = segment(&g, &SegParams::default());
        assert_eq!(seg.fields.len(), 1, "{:?}", seg.fields);
        let bounds = Rect::new(0, 0, 200, 44);
        let piece = *seg.pieces.iter().find(|p| p.x < 20).expect("the text's piece");
        // The engine's crop: the piece and a 2-pixel margin, which takes in the frame.
        let crop = piece.expand(2, 2, &bounds);
        assert!(seg.in_field(&crop), "{crop:?} in {:?}", seg.fields);
        let p = prepare(&g, &seg, crop, 1, 0);
        let at = |x: u32, y: u32| p.px[((y - crop.y) * p.w + x - crop.x) as usize];
        assert_eq!(at(14, 20), 255, "the field's white stays background, the frame on the rim notwithstanding");
        assert!(at(12, 20) < 128 && at(31, 20) < 128, "the letters stay ink");
        assert!((crop.y..crop.bottom()).all(|y| at(41, y) == 255), "the caret is painted over");
    }

    #[test]
    fn normalising_makes_light_on_dark_dark_on_light() {
        // White text pixels on a blue-ish dark background: after normalising, text is dark and background white.
        let w = 10;
        let mut crop: Vec<u8> = (0..w * 5).map(|i| if i % w == 4 && i / w > 0 { 250 } else { 60 }).collect();
        normalise(&mut crop, w, 5, &[]);
        assert_eq!(crop[0], 255);
        assert_eq!(crop[w + 4], 0);
    }

    #[test]
    fn upscale_keeps_flat_areas_flat_and_pads_white() {
        let src = vec![100u8; 4 * 3];
        let p = upscale_and_pad(&src, 4, 3, 2, 5);
        assert_eq!((p.w, p.h), (18, 16));
        assert_eq!(p.px[0], 255);
        assert_eq!(p.px[5 * 18 + 5], 100);
        assert_eq!(p.px[(5 + 5) * 18 + 12], 100);
    }
}
