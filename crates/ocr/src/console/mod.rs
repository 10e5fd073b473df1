//! Text consoles read exactly: glyphs matched cell by cell instead of OCR.
//!
//! VGA text mode, the Linux framebuffer console, BIOS and UEFI set-up screens and boot loaders draw text as fixed
//! bitmaps in a fixed grid of cells, two colours per cell, no anti-aliasing. Tesseract reads such screens
//! *almost* right (`$((6*?7))` for `$((6*7))`, `umkit` for `vmkit`): its models are trained on typeset text, not
//! on 8×16 bitmaps. Matching each cell's pixels against the font's glyphs is exact and takes well under a
//! millisecond for a whole screen.
//!
//! Nothing is configured: [`ConsoleReader::read`] decides per frame whether the screen is a console.
//!
//! 1. **Looks like a console?** The frame is cut into 8×16 blocks; on a console nearly every block holds at most
//!    two colours, while anti-aliased GUI text gives most text blocks many. A screen failing this costs a few
//!    hundred blocks' worth of pixels (the scan stops early) and goes to OCR.
//! 2. **Grid and font.** Fonts come from real files on the machine ([`FontSet::system`]: the VGA BIOS ROMs QEMU
//!    runs, and the Linux console fonts of Debian's `console-setup-linux`). For every glyph size (and 9-pixel
//!    cells for 8-pixel fonts, as VGA text mode draws them) and every cell origin, a sample of cells with ink is
//!    looked up in an index of every font's bitmaps; wrong origins fail on their first few cells. The grid and
//!    the font where the sample matches are kept and tried first on the next frame.
//! 3. **Read.** Every cell: one colour is a space; two colours are looked up (either colour as ink, so inverse
//!    video reads too; a cursor's solid rows at the bottom of a cell are ignored if the cell does not match with
//!    them). The screen is a console when at least 90% of the cells with ink match a glyph and at least eight of
//!    those are letters or digits; cells that match nothing read as U+FFFD with confidence 0.
//!
//! What it cannot read: proportional or anti-aliased text (that is OCR's job), a font that is on no file here
//! (a console's font loaded from elsewhere, or the kernel's built-in font where it differs from the VGA font),
//! glyphs scaled by the display, and a pointer painted over a cell (that cell reads as U+FFFD).

mod font;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub use font::{Font, FontError, Glyph, MAX_HEIGHT, MAX_WIDTH, cp437};

use crate::frame::{Frame, PixelLayout};
use crate::geom::Rect;
use crate::text::{ScreenText, Word};

/// Where [`FontSet::system`] looks for VGA BIOS ROMs (every `vgabios*.bin` in them).
const ROM_DIRS: &[&str] = &["/usr/share/seabios", "/usr/share/qemu"];
/// Where [`FontSet::system`] looks for PSF fonts.
const PSF_DIRS: &[&str] = &["/usr/share/consolefonts", "/usr/share/kbd/consolefonts", "/usr/lib/kbd/consolefonts"];

/// The fonts a console may use, indexed by glyph bitmap.
#[derive(Debug, Default)]
pub struct FontSet {
    fonts: Vec<Font>,
    /// Per font: its size and how it draws printable ASCII (a hash), to merge fonts that draw it alike.
    faces: Vec<(u32, u32, u64)>,
    /// One index per glyph size.
    classes: Vec<SizeClass>,
}

/// Every font of one glyph size, indexed by bitmap.
#[derive(Debug)]
struct SizeClass {
    width: u32,
    height: u32,
    /// Bitmap rows → (font, character) for every font of this size that has the bitmap.
    index: HashMap<Vec<u32>, Vec<(u16, char)>>,
}

/// Which character a font's glyph should read as when several share a bitmap: printable ASCII first, then the
/// lowest code point.
fn preference(c: char) -> (bool, u32) {
    (!(' '..='~').contains(&c), u32::from(c))
}

impl FontSet {
    /// The fonts installed on this machine: the 8×16, 8×14 and 8×8 fonts of every VGA BIOS ROM under
    /// `/usr/share/seabios` and `/usr/share/qemu`, then every PSF font under `/usr/share/consolefonts` (Debian's
    /// `console-setup-linux`) and kbd's font directories. Fonts that draw printable ASCII exactly like one loaded
    /// before are merged into it (their other glyphs are added). Loaded once per process, on first use.
    pub fn system() -> Arc<FontSet> {
        static SYSTEM: OnceLock<Arc<FontSet>> = OnceLock::new();
        SYSTEM
            .get_or_init(|| {
                let mut files: Vec<PathBuf> = Vec::new();
                for dir in ROM_DIRS.iter().chain(PSF_DIRS) {
                    let Ok(entries) = std::fs::read_dir(dir) else { continue };
                    let mut found: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                    found.sort();
                    files.extend(found);
                }
                Arc::new(Self::from_files(&files))
            })
            .clone()
    }

    /// The fonts in `files`: `vgabios*.bin` ROM images and PSF fonts (`.psf`, `.psfu`, optionally `.gz`); other
    /// files and files that fail to parse are skipped (and logged at debug level).
    pub fn from_files(files: &[PathBuf]) -> Self {
        let mut set = FontSet::default();
        for path in files {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let loaded = if name.starts_with("vgabios") && name.ends_with(".bin") {
                std::fs::read(path)
                    .map_err(|source| FontError::Io { path: path.clone(), source })
                    .and_then(|rom| Font::from_vga_rom(&rom, &name))
            } else if [".psf", ".psfu", ".psf.gz", ".psfu.gz"].iter().any(|s| name.ends_with(s)) {
                Font::load_psf(path).map(|f| vec![f])
            } else {
                continue;
            };
            match loaded {
                Ok(fonts) => fonts.into_iter().for_each(|f| set.add(f)),
                Err(e) => tracing::debug!("console font {}: {e}", path.display()),
            }
        }
        set
    }

    /// The fonts of one ROM or PSF file (see [`FontSet::from_files`]).
    pub fn from_file(path: &Path) -> Self {
        Self::from_files(&[path.to_owned()])
    }

    /// Adds a font; one drawing printable ASCII exactly like a font already in the set is merged into that one.
    pub fn add(&mut self, font: Font) {
        use std::hash::{Hash, Hasher};
        let mut ascii: Vec<Option<&[u32]>> = vec![None; 95];
        for g in &font.glyphs {
            for &c in &g.chars {
                if let Some(slot) = ascii.get_mut((c as usize).wrapping_sub(0x20)).filter(|s| s.is_none()) {
                    *slot = Some(&g.rows);
                }
            }
        }
        let mut h = std::hash::DefaultHasher::new();
        ascii.hash(&mut h);
        let face = (font.width, font.height, h.finish());
        let twin = self.faces.iter().position(|f| *f == face);
        let id = match twin {
            Some(i) => {
                let known = &mut self.fonts[i];
                for g in font.glyphs {
                    if !known.glyphs.iter().any(|k| k.rows == g.rows) {
                        known.glyphs.push(g);
                    }
                }
                i
            }
            None => {
                if self.fonts.len() >= usize::from(u16::MAX) {
                    return;
                }
                self.fonts.push(font);
                self.faces.push(face);
                self.fonts.len() - 1
            }
        };
        self.reindex(id);
    }

    /// Rebuilds the index entries of font `id`.
    fn reindex(&mut self, id: usize) {
        let font = &self.fonts[id];
        let fid = id as u16;
        let pos = match self.classes.iter().position(|c| (c.width, c.height) == (font.width, font.height)) {
            Some(p) => p,
            None => {
                self.classes.push(SizeClass { width: font.width, height: font.height, index: HashMap::new() });
                self.classes.len() - 1
            }
        };
        let class = &mut self.classes[pos];
        // The preferred character per bitmap within this font.
        let mut best: HashMap<&[u32], char> = HashMap::new();
        for g in &font.glyphs {
            if g.rows.iter().all(|&r| r == 0) || g.rows.iter().all(|&r| r == font::full_row(font.width)) {
                continue; // blank and solid glyphs: a one-colour cell, read as a space
            }
            for &c in g.chars.iter().filter(|c| !c.is_control()) {
                let slot = best.entry(g.rows.as_slice()).or_insert(c);
                if preference(c) < preference(*slot) {
                    *slot = c;
                }
            }
        }
        for (rows, c) in best {
            let list = class.index.entry(rows.to_vec()).or_default();
            list.retain(|(f, _)| *f != fid);
            list.push((fid, c));
        }
    }

    /// The fonts in the set.
    pub fn fonts(&self) -> &[Font] {
        &self.fonts
    }

    /// Whether the set has no fonts (console reading is then off).
    pub fn is_empty(&self) -> bool {
        self.fonts.is_empty()
    }
}

/// A console's cell grid: cell size, origin and font.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// Cell width in pixels (the font's width, or one more for VGA text mode's 9-dot cells).
    pub cell_width: u32,
    /// Cell height in pixels (the font's height).
    pub cell_height: u32,
    /// Left edge of the first column.
    pub x: u32,
    /// Top edge of the first row.
    pub y: u32,
    /// Index into [`FontSet::fonts`].
    pub font: usize,
    class: usize,
}

/// What one cell shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell<'a> {
    /// One colour.
    Blank,
    /// A glyph: the fonts that have it and the character each reads it as (only the asked-for font, if one was).
    Glyph(&'a [(u16, char)]),
    /// Two colours that match no glyph, or more than two colours.
    Unknown,
}

impl Cell<'_> {
    /// The character of font `f` (or of the first font) for a glyph.
    fn char_of(&self, f: Option<u16>) -> Option<char> {
        let Cell::Glyph(list) = self else { return None };
        match f {
            Some(f) => list.iter().find(|(id, _)| *id == f).map(|&(_, c)| c),
            None => list.first().map(|&(_, c)| c),
        }
    }
}

/// A screen read as a console.
#[derive(Debug, Clone)]
pub struct ConsoleText {
    /// The grid it was read on.
    pub grid: Grid,
    /// The font's name.
    pub font: String,
    /// Columns and rows of the grid.
    pub columns: u32,
    /// Rows of the grid.
    pub rows: u32,
    /// Every cell, row by row: a space for a blank cell, U+FFFD for one that matches no glyph.
    pub cells: Vec<char>,
}

impl ConsoleText {
    /// Row `r` as text (trailing spaces kept).
    pub fn row(&self, r: u32) -> String {
        let w = self.columns as usize;
        self.cells[r as usize * w..(r as usize + 1) * w].iter().collect()
    }

    /// The words: runs of non-space cells, with cell boxes and confidence 100 (0 for a word holding a cell that
    /// matched nothing).
    pub fn screen_text(&self, width: u32, height: u32) -> ScreenText {
        let g = &self.grid;
        let mut words = Vec::new();
        for r in 0..self.rows {
            let row: Vec<char> = self.row(r).chars().collect();
            let mut c = 0usize;
            while c < row.len() {
                if row[c] == ' ' {
                    c += 1;
                    continue;
                }
                let start = c;
                while c < row.len() && row[c] != ' ' {
                    c += 1;
                }
                let text: String = row[start..c].iter().collect();
                let unknown = text.contains(char::REPLACEMENT_CHARACTER);
                words.push(Word {
                    text,
                    confidence: if unknown { 0.0 } else { 100.0 },
                    bbox: Rect::new(
                        g.x + start as u32 * g.cell_width,
                        g.y + r * g.cell_height,
                        (c - start) as u32 * g.cell_width,
                        g.cell_height,
                    ),
                });
            }
        }
        ScreenText::from_words(width, height, words)
    }
}

/// Reads frames that show a text console; remembers the last grid found.
#[derive(Debug)]
pub struct ConsoleReader {
    fonts: Option<Arc<FontSet>>,
    last: Option<Grid>,
}

/// Cells with ink sampled per candidate grid.
const SAMPLES: usize = 24;
/// A candidate grid is dropped after this many sampled cells that match nothing.
const SAMPLE_MISSES: usize = 3;

impl Default for ConsoleReader {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleReader {
    /// A reader with the machine's fonts ([`FontSet::system`], loaded when a frame first looks like a console).
    pub fn new() -> Self {
        Self { fonts: None, last: None }
    }

    /// A reader with these fonts.
    pub fn with_fonts(fonts: Arc<FontSet>) -> Self {
        Self { fonts: Some(fonts), last: None }
    }

    /// The frame read as a console, or `None` if it is not one (see the module docs).
    pub fn read(&mut self, frame: &Frame<'_>) -> Option<ConsoleText> {
        let px = Pixels::of(frame);
        if !looks_like_console(&px) {
            return None;
        }
        let fonts = self.fonts.get_or_insert_with(FontSet::system).clone();
        if fonts.is_empty() {
            return None;
        }
        if let Some(grid) = self.last
            && let Some(text) = read_grid(&px, &fonts, grid)
        {
            return Some(text);
        }
        let grid = find_grid(&px, &fonts)?;
        let text = read_grid(&px, &fonts, grid)?;
        self.last = Some(grid);
        Some(text)
    }
}

/// A frame's pixels as comparable colour values.
struct Pixels<'a> {
    frame: &'a Frame<'a>,
    bpp: usize,
}

impl<'a> Pixels<'a> {
    fn of(frame: &'a Frame<'a>) -> Self {
        Self { frame, bpp: frame.layout().bytes_per_pixel() }
    }

    fn width(&self) -> u32 {
        self.frame.width()
    }

    fn height(&self) -> u32 {
        self.frame.height()
    }

    /// The colours of row `y`, columns `x0..x1`, into `out`.
    fn row(&self, y: u32, x0: u32, x1: u32, out: &mut Vec<u32>) {
        out.clear();
        let bytes = self.frame.row_bytes(y, x0, x1);
        match self.frame.layout() {
            PixelLayout::Gray => out.extend(bytes.iter().map(|&b| u32::from(b))),
            _ => out.extend(
                bytes.chunks_exact(self.bpp).map(|p| u32::from(p[0]) | u32::from(p[1]) << 8 | u32::from(p[2]) << 16),
            ),
        }
    }
}

/// Whether nearly all 8×16 blocks with more than one colour have exactly two.
fn looks_like_console(px: &Pixels<'_>) -> bool {
    let (w, h) = (px.width(), px.height());
    if w < 64 || h < 64 {
        return false;
    }
    let (mut multi, mut over) = (0u32, 0u32);
    let mut row = Vec::with_capacity(8);
    for by in (0..h - 15).step_by(16) {
        for bx in (0..w - 7).step_by(8) {
            let mut colours: [Option<u32>; 2] = [None, None];
            let mut many = false;
            'block: for y in by..by + 16 {
                px.row(y, bx, bx + 8, &mut row);
                for &c in &row {
                    match colours {
                        [None, _] => colours[0] = Some(c),
                        [Some(a), _] if a == c => {}
                        [_, None] => colours[1] = Some(c),
                        [_, Some(b)] if b == c => {}
                        _ => {
                            many = true;
                            break 'block;
                        }
                    }
                }
            }
            if colours[1].is_some() {
                multi += 1;
            }
            if many {
                over += 1;
                if over >= 8 && over * 20 > multi {
                    return false;
                }
            }
        }
    }
    multi >= 8 && over * 20 <= multi
}

/// Reads one cell at pixel position `(x, y)` of a grid with cells `cw`×`ch` and a font `fw` wide.
fn read_cell<'a>(px: &Pixels<'_>, class: &'a SizeClass, font: Option<u16>, x: u32, y: u32, cw: u32) -> Cell<'a> {
    let (fw, ch) = (class.width, class.height);
    let mut row = Vec::with_capacity(cw as usize);
    let mut colours: [Option<u32>; 2] = [None, None];
    let mut ink_a: Vec<u32> = Vec::with_capacity(ch as usize); // bit set where the pixel is the first colour
    let mut extra_a: Vec<bool> = Vec::with_capacity(ch as usize); // column `fw` (9-dot cells) is the first colour
    let mut count_a = 0u32;
    for yy in y..y + ch {
        px.row(yy, x, x + cw, &mut row);
        let mut bits = 0u32;
        for (i, &c) in row.iter().enumerate() {
            let is_a = match colours {
                [None, _] => {
                    colours[0] = Some(c);
                    true
                }
                [Some(a), _] if a == c => true,
                [_, None] => {
                    colours[1] = Some(c);
                    false
                }
                [_, Some(b)] if b == c => false,
                _ => return Cell::Unknown,
            };
            if is_a {
                count_a += 1;
                if (i as u32) < fw {
                    bits |= 1 << (fw - 1 - i as u32);
                }
            }
        }
        ink_a.push(bits);
        extra_a.push(cw > fw && row.get(fw as usize).is_some_and(|&c| Some(c) == colours[0]));
    }
    if colours[1].is_none() {
        return Cell::Blank;
    }
    let full = font::full_row(fw);
    let ink_b: Vec<u32> = ink_a.iter().map(|r| !r & full).collect();
    let extra_b: Vec<bool> = extra_a.iter().map(|e| cw > fw && !e).collect();
    // The minority colour is the ink first (glyphs cover less than half their cell), then the other.
    let polarities = if count_a * 2 <= cw * ch {
        [(ink_a, extra_a), (ink_b, extra_b)]
    } else {
        [(ink_b, extra_b), (ink_a, extra_a)]
    };
    for (rows, extra) in &polarities {
        if let Some(list) = lookup(class, font, rows, extra, fw) {
            return Cell::Glyph(list);
        }
    }
    // A text cursor: solid rows at the bottom of the cell over the glyph (or a blank cell).
    for (rows, extra) in &polarities {
        let solid = rows.iter().rev().take_while(|&&r| r == full).count();
        if solid == 0 || solid * 2 > rows.len() {
            continue;
        }
        let mut cleared = rows.clone();
        let keep = rows.len() - solid;
        cleared[keep..].iter_mut().for_each(|r| *r = 0);
        let mut extra = extra.clone();
        extra[keep..].iter_mut().for_each(|e| *e = false);
        if cleared.iter().all(|&r| r == 0) {
            return Cell::Blank;
        }
        if let Some(list) = lookup(class, font, &cleared, &extra, fw) {
            return Cell::Glyph(list);
        }
    }
    Cell::Unknown
}

/// The fonts that have a bitmap (`None` if `font` is given and does not); a 9-dot cell's ninth column must be
/// background, or repeat the eighth (VGA's line-graphics characters).
fn lookup<'a>(
    class: &'a SizeClass,
    font: Option<u16>,
    rows: &[u32],
    extra: &[bool],
    fw: u32,
) -> Option<&'a [(u16, char)]> {
    let ninth_ok = rows.iter().zip(extra).all(|(&r, &e)| !e || r & 1 == 1);
    if !ninth_ok || fw == 0 {
        return None;
    }
    let list = class.index.get(rows)?;
    match font {
        Some(f) if !list.iter().any(|(id, _)| *id == f) => None,
        _ => Some(list.as_slice()),
    }
}

/// Points with ink spread over the frame: where a pixel differs from its left neighbour.
fn ink_points(px: &Pixels<'_>, n: usize) -> Vec<(u32, u32)> {
    let (w, h) = (px.width(), px.height());
    let mut all = Vec::new();
    let mut row = Vec::new();
    for y in (0..h).step_by(3) {
        px.row(y, 0, w, &mut row);
        let mut x = 1;
        while x < row.len() {
            if row[x] != row[x - 1] {
                all.push((x as u32, y));
                x += 24; // one point per few cells
            } else {
                x += 1;
            }
        }
    }
    if all.len() <= n {
        return all;
    }
    let step = all.len() as f64 / n as f64;
    (0..n).map(|i| all[(i as f64 * step) as usize]).collect()
}

/// The grid and font under which sampled cells with ink match glyphs; the best over every glyph size, cell
/// width and origin.
fn find_grid(px: &Pixels<'_>, fonts: &FontSet) -> Option<Grid> {
    let points = ink_points(px, SAMPLES * 4);
    if points.len() < 8 {
        return None;
    }
    let mut best: Option<(usize, Grid)> = None;
    for (ci, class) in fonts.classes.iter().enumerate() {
        let widths: &[u32] = if class.width == 8 { &[9, 8] } else { &[class.width] };
        for &cw in widths {
            let ch = class.height;
            for oy in 0..ch {
                for ox in 0..cw {
                    let mut hits: HashMap<u16, usize> = HashMap::new();
                    let (mut misses, mut seen) = (0, 0);
                    let mut cells_seen: Vec<(u32, u32)> = Vec::new();
                    for &(x, y) in &points {
                        if x < ox || y < oy {
                            continue;
                        }
                        let (col, r) = ((x - ox) / cw, (y - oy) / ch);
                        let (cx, cy) = (ox + col * cw, oy + r * ch);
                        if cx + cw > px.width() || cy + ch > px.height() || cells_seen.contains(&(col, r)) {
                            continue;
                        }
                        cells_seen.push((col, r));
                        match read_cell(px, class, None, cx, cy, cw) {
                            Cell::Blank => continue,
                            Cell::Glyph(list) => {
                                seen += 1;
                                for &(fid, _) in list {
                                    *hits.entry(fid).or_default() += 1;
                                }
                            }
                            Cell::Unknown => {
                                seen += 1;
                                misses += 1;
                                if misses >= SAMPLE_MISSES {
                                    break;
                                }
                            }
                        }
                        if seen >= SAMPLES {
                            break;
                        }
                    }
                    if misses >= SAMPLE_MISSES || seen < 4 {
                        continue;
                    }
                    let Some((&font, &n)) = hits.iter().max_by_key(|(f, n)| (**n, std::cmp::Reverse(**f))) else {
                        continue;
                    };
                    let grid =
                        Grid { cell_width: cw, cell_height: ch, x: ox, y: oy, font: usize::from(font), class: ci };
                    // Prefer more matches; among equals, the larger cell (9-dot VGA cells over 8).
                    if best
                        .as_ref()
                        .is_none_or(|(bn, bg)| n > *bn || (n == *bn && cw * ch > bg.cell_width * bg.cell_height))
                    {
                        best = Some((n, grid));
                    }
                }
            }
        }
    }
    best.map(|(_, g)| g)
}

/// Reads every cell of `grid`; `None` unless the frame is a console under it (see the module docs).
fn read_grid(px: &Pixels<'_>, fonts: &FontSet, grid: Grid) -> Option<ConsoleText> {
    let class = fonts.classes.get(grid.class)?;
    let (cw, ch) = (grid.cell_width, grid.cell_height);
    if grid.x + cw > px.width() || grid.y + ch > px.height() {
        return None;
    }
    let columns = (px.width() - grid.x) / cw;
    let rows = (px.height() - grid.y) / ch;
    let font = u16::try_from(grid.font).ok()?;
    let mut cells = Vec::with_capacity((columns * rows) as usize);
    let (mut inked, mut matched, mut alnum) = (0usize, 0usize, 0usize);
    for r in 0..rows {
        for c in 0..columns {
            let cell = read_cell(px, class, Some(font), grid.x + c * cw, grid.y + r * ch, cw);
            cells.push(match (cell, cell.char_of(Some(font))) {
                (Cell::Blank, _) => ' ',
                (_, Some(ch)) => {
                    inked += 1;
                    matched += 1;
                    alnum += usize::from(ch.is_alphanumeric());
                    ch
                }
                _ => {
                    inked += 1;
                    char::REPLACEMENT_CHARACTER
                }
            });
        }
        // Give up early on a screen that is clearly not this console.
        if inked >= 40 && matched * 10 < inked * 9 {
            return None;
        }
    }
    if matched * 10 < inked * 9 || alnum < 8 {
        return None;
    }
    let font_name = fonts.fonts.get(grid.font).map(|f| f.name.clone()).unwrap_or_default();
    Some(ConsoleText { grid, font: font_name, columns, rows, cells })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A font of 8x16 glyphs for 'A'..'Z' and 'a'..'z' with distinct made-up bitmaps.
    fn test_font() -> Font {
        let glyphs = ('A'..='Z')
            .chain('a'..='z')
            .enumerate()
            .map(|(i, c)| {
                let mut rows = vec![0u32; 16];
                rows[3] = 0x3c;
                rows[4 + i % 8] = 0x42 | (i as u32 & 0x3) << 3;
                rows[12] = (i as u32 >> 3) | 0x80;
                Glyph { rows, chars: vec![c] }
            })
            .collect();
        Font { name: "test".into(), width: 8, height: 16, glyphs }
    }

    /// Draws `lines` into an RGB image with `font` in cells `cw` wide from `(ox, oy)`.
    fn draw(font: &Font, lines: &[&str], cw: u32, ox: u32, oy: u32, size: (u32, u32)) -> Vec<u8> {
        let (w, h) = size;
        let mut img = vec![0u8; (w * h * 3) as usize];
        // A dark blue background, light grey ink.
        img.chunks_exact_mut(3).for_each(|p| p.copy_from_slice(&[0, 0, 170]));
        for (r, line) in lines.iter().enumerate() {
            for (c, ch) in line.chars().enumerate() {
                let Some(g) = font.glyphs.iter().find(|g| g.chars.contains(&ch)) else { continue };
                for (gy, bits) in g.rows.iter().enumerate() {
                    for gx in 0..8 {
                        if bits >> (7 - gx) & 1 == 1 {
                            let x = ox + c as u32 * cw + gx;
                            let y = oy + r as u32 * 16 + gy as u32;
                            let i = ((y * w + x) * 3) as usize;
                            img[i..i + 3].copy_from_slice(&[170, 170, 170]);
                        }
                    }
                }
            }
        }
        img
    }

    #[test]
    fn a_drawn_console_is_found_and_read_exactly() {
        let font = test_font();
        let mut set = FontSet::default();
        set.add(font.clone());
        let lines = ["Hello World from the console", "", "abc DEF ghi", "Typed with nine dot cells"];
        for (cw, ox, oy) in [(9, 0, 0), (8, 3, 5)] {
            let img = draw(&font, &lines, cw, ox, oy, (400, 120));
            let frame = Frame::packed(&img, 400, 120, PixelLayout::Rgb).unwrap();
            let mut reader = ConsoleReader::with_fonts(Arc::new(FontSet {
                fonts: set.fonts.clone(),
                faces: vec![],
                classes: vec![],
            }));
            // An empty index: nothing matches.
            assert!(reader.read(&frame).is_none());
            let mut reader = ConsoleReader::with_fonts(Arc::new(std::mem::take(&mut set)));
            let text = reader.read(&frame).expect("a console");
            assert_eq!((text.grid.cell_width, text.grid.x, text.grid.y), (cw, ox, oy));
            for (r, line) in lines.iter().enumerate() {
                assert_eq!(text.row(r as u32).trim_end(), *line);
            }
            let s = text.screen_text(400, 120);
            assert_eq!(s.lines[0].text, "Hello World from the console");
            assert_eq!(s.words[0].bbox, Rect::new(ox, oy, 5 * cw, 16));
            set.add(font.clone());
        }
    }

    #[test]
    fn anti_aliased_screens_are_not_consoles() {
        // Grey ramps everywhere: every block has many colours.
        let (w, h) = (320u32, 160u32);
        let img: Vec<u8> = (0..w * h).flat_map(|i| [(i % 7 * 30) as u8, (i % 5 * 40) as u8, 9]).collect();
        let frame = Frame::packed(&img, w, h, PixelLayout::Rgb).unwrap();
        let mut set = FontSet::default();
        set.add(test_font());
        assert!(ConsoleReader::with_fonts(Arc::new(set)).read(&frame).is_none());
    }

    #[test]
    fn inverse_video_and_a_cursor_read_too() {
        let font = test_font();
        let mut set = FontSet::default();
        set.add(font.clone());
        let (w, h) = (300u32, 64u32);
        let mut img = draw(&font, &["Inverse Video here", "", "Cursor"], 8, 0, 0, (w, h));
        // Invert the first word's cells; put a cursor (two solid rows) under the 'C' of "Cursor".
        for y in 0..16 {
            for x in 0..7 * 8 {
                let i = ((y * w + x) * 3) as usize;
                let p = if img[i] == 170 { [0, 0, 170] } else { [170, 170, 170] };
                img[i..i + 3].copy_from_slice(&p);
            }
        }
        for y in 32 + 14..32 + 16 {
            for x in 0..8 {
                let i = ((y * w + x) * 3) as usize;
                img[i..i + 3].copy_from_slice(&[170, 170, 170]);
            }
        }
        let frame = Frame::packed(&img, w, h, PixelLayout::Rgb).unwrap();
        let text = ConsoleReader::with_fonts(Arc::new(set)).read(&frame).expect("a console");
        assert_eq!(text.row(0).trim_end(), "Inverse Video here");
        assert_eq!(text.row(2).trim_end(), "Cursor");
    }
}
