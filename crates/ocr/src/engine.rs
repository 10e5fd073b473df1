//! The OCR engine: Tesseract loaded once, fed preprocessed crops in parallel, with a cache per crop.
//!
//! A read segments the frame into pieces that may hold text ([`crate::prep`]), looks each piece up in a cache
//! keyed by a hash of its pixels, and sends only the unknown pieces to Tesseract. Those are normalised,
//! upscaled and packed onto a few canvases (shelf packing, white gutters between pieces), one canvas set per
//! worker; each worker owns a Tesseract instance and runs on its own thread, so a 2-core machine reads two
//! canvases at once. Word boxes come back in canvas pixels and are mapped to the piece they fall in, then to
//! framebuffer pixels.
//!
//! Cost model, which the automation engine's wait loop relies on:
//! - an unchanged screen read with [`Engine::read`] costs the segmentation and hashing (about 10 ms of CPU for
//!   1920×1080) and no recognition at all; read with [`Engine::reread`] and no damage it costs nothing;
//! - a screen where a window appeared, read with [`Engine::reread`] and the damage the RFB client reported,
//!   costs the segmentation of the rows around the damage, the recognition of the window's text and of the words
//!   the window's edges cut; every other word is kept from the previous read;
//! - a full read costs about 0.7 ms of CPU per character on screen, spread over the workers: a dialog is tens of
//!   milliseconds, a 1920×1080 terminal full of text (≈9 700 characters) several seconds.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use tesseract::PageSegMode;

use crate::console::{ConsoleReader, ConsoleText};
use crate::error::OcrError;
use crate::frame::{Frame, PixelLayout};
use crate::geom::Rect;
use crate::omp;
use crate::prep::{self, Gray, Prepared, SegParams, Segmentation};
use crate::tess::{RawWord, Tess};
use crate::text::{ScreenText, Word};

/// Whether the engine limits Tesseract's OpenMP threads (see [`crate::omp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpenMp {
    /// One OpenMP thread per Tesseract worker, unless the user set `OMP_THREAD_LIMIT` (the default).
    #[default]
    Limit,
    /// Leave OpenMP as the environment configured it (for measuring the difference).
    Untouched,
}

/// How an [`Engine`] is set up.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Tesseract language code(s), e.g. `eng` or `eng+deu`.
    pub language: String,
    /// Directory holding `<language>.traineddata`; `None` uses `TESSDATA_PREFIX` or Debian's default.
    pub datapath: Option<String>,
    /// Tesseract instances reading in parallel (each takes ~60 ms to load and ~20 MB of memory).
    pub workers: usize,
    /// OpenMP policy.
    pub openmp: OpenMp,
    /// Segmentation tunables.
    pub segmentation: SegParams,
    /// Page segmentation mode for the packed canvases.
    pub page_mode: PageMode,
    /// How many crops the cache remembers.
    pub cache_capacity: usize,
    /// Read frames that show a text console by matching glyphs instead of OCR (see [`crate::console`]).
    pub console: bool,
}

/// Page segmentation mode used on the canvases of crops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PageMode {
    /// Sparse text: find as much text as possible, in no particular order (Tesseract's PSM 11). Finds isolated
    /// words such as button labels, which the default mode misses.
    #[default]
    Sparse,
    /// One uniform block of text (PSM 6).
    Block,
    /// Fully automatic page segmentation (PSM 3), Tesseract's default.
    Auto,
}

impl PageMode {
    fn psm(self) -> PageSegMode {
        match self {
            PageMode::Sparse => PageSegMode::PsmSparseText,
            PageMode::Block => PageSegMode::PsmSingleBlock,
            PageMode::Auto => PageSegMode::PsmAuto,
        }
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            language: "eng".into(),
            datapath: None,
            workers: cores.clamp(1, 4),
            openmp: OpenMp::Limit,
            segmentation: SegParams::default(),
            page_mode: PageMode::Sparse,
            cache_capacity: 8192,
            console: true,
        }
    }
}

/// What the last read did, for benchmarks and the automation engine's log.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReadStats {
    /// Pieces the segmentation found.
    pub pieces: usize,
    /// Pieces (or parts of pieces) answered from the cache.
    pub cached: usize,
    /// Words kept from the previous read by [`Engine::reread`] because no damage touched them.
    pub kept: usize,
    /// Pieces (or parts of pieces) sent to Tesseract.
    pub recognised: usize,
    /// Source pixels sent to Tesseract.
    pub recognised_pixels: u64,
    /// Tesseract calls made.
    pub tesseract_calls: usize,
    /// Time spent before recognition: grey conversion, segmentation, hashing, normalisation.
    pub prepare: Duration,
    /// Time spent in Tesseract (wall clock, workers in parallel).
    pub recognise: Duration,
    /// The whole read.
    pub total: Duration,
    /// The frame was a text console, read by glyph matching (no Tesseract call).
    pub console: bool,
}

/// A word relative to the crop it was read from.
#[derive(Debug, Clone)]
struct CachedWord {
    text: String,
    confidence: f32,
    rel: Rect,
}

#[derive(Debug)]
struct CacheEntry {
    words: Vec<CachedWord>,
    last_used: u64,
}

/// A crop to recognise.
struct Job {
    rect: Rect,
    key: u64,
    prepared: Prepared,
}

/// A loaded OCR engine. Create one per process (loading takes tens of milliseconds per worker) and reuse it.
#[derive(Debug)]
pub struct Engine {
    workers: Vec<Tess>,
    opts: EngineOptions,
    cache: HashMap<u64, CacheEntry>,
    generation: u64,
    stats: ReadStats,
    console: ConsoleReader,
}

/// Gutter between crops on a canvas, in canvas pixels; wider than any word space, so no word spans two crops.
const GUTTER: u32 = 24;
/// White border around each prepared crop.
const PAD: u32 = 8;
/// Canvas width for shelf packing.
const CANVAS_WIDTH: u32 = 2400;
/// Canvas height before a new canvas is started.
const CANVAS_HEIGHT: u32 = 2400;
/// Resolution Tesseract is told for the upscaled crops.
const CROP_DPI: u32 = 150;
/// How far around a region [`Engine::second_look`] segments, so the pieces it cuts are whole.
const SECOND_LOOK_MARGIN: u32 = 16;

impl Engine {
    /// Loads Tesseract with the default options: English, one worker per core (at most 4).
    pub fn new() -> Result<Self, OcrError> {
        Self::with_options(EngineOptions::default())
    }

    /// Loads Tesseract with `opts`; the workers load in parallel.
    pub fn with_options(opts: EngineOptions) -> Result<Self, OcrError> {
        let n = opts.workers.max(1);
        let workers = std::thread::scope(|s| {
            let handles: Vec<_> =
                (0..n).map(|_| s.spawn(|| Tess::new(opts.datapath.as_deref(), &opts.language))).collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| OcrError::WorkerPanicked).and_then(|r| r))
                .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(Self {
            workers,
            opts,
            cache: HashMap::new(),
            generation: 0,
            stats: ReadStats::default(),
            console: ConsoleReader::new(),
        })
    }

    /// The options the engine was built with.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// What the last read did.
    pub fn last_stats(&self) -> ReadStats {
        self.stats
    }

    /// Forgets every cached crop.
    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// Reads all text in `frame`. Pieces seen before (same pixels, anywhere on screen) come from the cache.
    pub fn read(&mut self, frame: &Frame<'_>) -> Result<ScreenText, OcrError> {
        self.read_inner(frame, None)
    }

    /// Reads `frame` knowing that it differs from the frame `previous` was read from only inside `damage`
    /// (the rectangles an RFB client reports as changed, in framebuffer pixels).
    ///
    /// No damage returns `previous` unchanged without looking at a pixel. Otherwise only bands of rows around the
    /// damage are segmented; the pieces there that the damage touches are read again (in a long piece only the
    /// words around the damage), and every word of `previous` that no damage touches is kept as it was. A frame
    /// of another size than `previous` is read in full.
    ///
    /// To watch only what changes — waiting for a window to appear on a busy screen without paying for a full
    /// read first — pass [`ScreenText::empty`] as `previous`.
    pub fn reread(
        &mut self,
        frame: &Frame<'_>,
        previous: &ScreenText,
        damage: &[Rect],
    ) -> Result<ScreenText, OcrError> {
        let bounds = Rect::new(0, 0, frame.width(), frame.height());
        if previous.width != frame.width() || previous.height != frame.height() {
            return self.read_inner(frame, None);
        }
        let damage: Vec<Rect> = damage.iter().map(|d| d.intersection(&bounds)).filter(|d| !d.is_empty()).collect();
        if damage.is_empty() {
            self.stats = ReadStats::default();
            return Ok(previous.clone());
        }
        self.read_inner(frame, Some((previous, &damage)))
    }

    /// Reads the pieces of `frame` that lie in `regions` once more, each alone on its own canvas and bypassing the
    /// cache, and returns `text` (read from this same frame) with the words there replaced by what this second
    /// look found. The cache learns the new reading.
    ///
    /// A read packs many pieces onto one canvas for speed, and Tesseract's line finding can then read a piece
    /// differently from how it reads it alone ("Done" as "Lone"); the cache would repeat that reading for as long
    /// as the pixels stay the same. A caller whose search found only a near miss asks for a second look at it.
    pub fn second_look(
        &mut self,
        frame: &Frame<'_>,
        text: &ScreenText,
        regions: &[Rect],
    ) -> Result<ScreenText, OcrError> {
        let start = Instant::now();
        if let Some(read) = self.try_console(frame, start) {
            return Ok(read);
        }
        self.generation += 1;
        let bounds = Rect::new(0, 0, frame.width(), frame.height());
        let mut jobs: Vec<Job> = Vec::new();
        for region in regions.iter().map(|r| r.intersection(&bounds)).filter(|r| !r.is_empty()) {
            let band = region.expand(SECOND_LOOK_MARGIN, SECOND_LOOK_MARGIN, &bounds);
            let gray = Gray::of_rect(frame, &band);
            let seg = prep::segment(&gray, &self.opts.segmentation);
            let local = Rect::new(0, 0, band.width, band.height);
            let wanted = to_local(&region, &band);
            for piece in seg.pieces.iter().filter(|p| p.intersects(&wanted)) {
                let part = piece.expand(2, 2, &local);
                let rect = to_frame(&part, &band);
                if jobs.iter().any(|j| j.rect == rect) {
                    continue;
                }
                let prepared = prep::prepare(&gray, &seg, part, prep::scale_for(part.height), PAD);
                jobs.push(Job { rect, key: crop_key(frame, &rect) ^ u64::from(seg.in_field(&part)), prepared });
            }
        }
        let limit = self.opts.openmp == OpenMp::Limit;
        let psm = self.opts.page_mode.psm();
        let tess = self.workers.first_mut().ok_or(OcrError::WorkerPanicked)?;
        let mut words: Vec<Word> =
            text.words.iter().filter(|w| !jobs.iter().any(|j| j.rect.intersects(&w.bbox))).cloned().collect();
        let mut calls = 0;
        for i in 0..jobs.len() {
            let (found, c) = run_share(tess, &jobs, &[i], psm, limit)?;
            calls += c;
            let found = found.into_iter().next().map(|(_, f)| f).unwrap_or_default();
            words.extend(found.iter().map(|c| absolute(c, &jobs[i].rect)));
            self.cache.insert(jobs[i].key, CacheEntry { words: found, last_used: self.generation });
        }
        let elapsed = start.elapsed();
        self.stats = ReadStats {
            pieces: jobs.len(),
            recognised: jobs.len(),
            recognised_pixels: jobs.iter().map(|j| j.rect.area()).sum(),
            tesseract_calls: calls,
            recognise: elapsed,
            total: elapsed,
            ..ReadStats::default()
        };
        Ok(ScreenText::from_words(frame.width(), frame.height(), words))
    }

    /// Plain Tesseract on the whole frame: no preprocessing, automatic page segmentation, no cache. The baseline
    /// the benchmarks compare against; also a diagnostic when a read misses something.
    pub fn read_plain(&mut self, frame: &Frame<'_>) -> Result<ScreenText, OcrError> {
        let start = Instant::now();
        let (w, h) = (frame.width(), frame.height());
        let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
        for y in 0..h {
            let row = frame.row_bytes(y, 0, w);
            match frame.layout() {
                PixelLayout::Rgb => rgb.extend_from_slice(row),
                PixelLayout::Rgbx => row.chunks_exact(4).for_each(|p| rgb.extend_from_slice(&p[..3])),
                PixelLayout::Bgrx => row.chunks_exact(4).for_each(|p| rgb.extend_from_slice(&[p[2], p[1], p[0]])),
                PixelLayout::Gray => row.iter().for_each(|&g| rgb.extend_from_slice(&[g, g, g])),
            }
        }
        let limit = self.opts.openmp == OpenMp::Limit;
        let tess = self.workers.first_mut().ok_or(OcrError::WorkerPanicked)?;
        if limit {
            omp::limit_current_thread();
        }
        let raw = tess.recognise(&rgb, w, h, 3, PageSegMode::PsmAuto, None)?;
        let words = raw
            .into_iter()
            .filter_map(|r| {
                let bbox = clamp_box(r.left, r.top, r.width, r.height, w, h)?;
                Some(Word { text: r.text, confidence: r.conf, bbox })
            })
            .collect();
        let elapsed = start.elapsed();
        self.stats = ReadStats { tesseract_calls: 1, recognise: elapsed, total: elapsed, ..ReadStats::default() };
        Ok(ScreenText::from_words(w, h, words))
    }

    /// The pieces the segmentation finds in `frame` and the canvases Tesseract would be given for them (all
    /// pieces, ignoring the cache): for tuning and for explaining a miss.
    #[doc(hidden)]
    pub fn debug_canvases(&self, frame: &Frame<'_>) -> (Vec<Rect>, Vec<image::GrayImage>) {
        let bounds = Rect::new(0, 0, frame.width(), frame.height());
        let gray = Gray::of_rect(frame, &bounds);
        let seg = prep::segment(&gray, &self.opts.segmentation);
        let jobs: Vec<Job> = seg
            .pieces
            .iter()
            .map(|p| {
                let rect = p.expand(2, 2, &bounds);
                Job { rect, key: 0, prepared: prep::prepare(&gray, &seg, rect, prep::scale_for(rect.height), PAD) }
            })
            .collect();
        let all: Vec<usize> = (0..jobs.len()).collect();
        let canvases =
            pack(&jobs, &all).into_iter().filter_map(|c| image::GrayImage::from_raw(c.w, c.h, c.px)).collect();
        (seg.pieces, canvases)
    }

    /// The frame read as a text console (see [`crate::console`]), or `None` if it is not one or console reading
    /// is off. The automation engine's reads do this first on their own.
    pub fn read_console(&mut self, frame: &Frame<'_>) -> Option<ConsoleText> {
        if !self.opts.console {
            return None;
        }
        self.console.read(frame)
    }

    /// A console read as words, with the stats of a read that called no Tesseract.
    fn try_console(&mut self, frame: &Frame<'_>, start: Instant) -> Option<ScreenText> {
        let text = self.read_console(frame)?.screen_text(frame.width(), frame.height());
        let total = start.elapsed();
        self.stats =
            ReadStats { pieces: text.lines.len(), prepare: total, total, console: true, ..ReadStats::default() };
        Some(text)
    }

    fn read_inner(
        &mut self,
        frame: &Frame<'_>,
        damaged: Option<(&ScreenText, &[Rect])>,
    ) -> Result<ScreenText, OcrError> {
        let start = Instant::now();
        if let Some(read) = self.try_console(frame, start) {
            return Ok(read);
        }
        self.generation += 1;
        let mut stats = ReadStats::default();
        let bounds = Rect::new(0, 0, frame.width(), frame.height());
        let bands = match damaged {
            None => vec![bounds],
            Some((_, damage)) => bands_around(damage, &bounds),
        };
        let mut words: Vec<Word> = Vec::new();
        let mut jobs: Vec<Job> = Vec::new();
        // With damage: the parts of pieces read again; previous words touching them are replaced.
        let mut reread_parts: Vec<Rect> = Vec::new();
        for band in bands {
            let gray = Gray::of_rect(frame, &band);
            let seg = prep::segment(&gray, &self.opts.segmentation);
            stats.pieces += seg.pieces.len();
            let local = Rect::new(0, 0, band.width, band.height);
            for piece in &seg.pieces {
                let mut part = piece.expand(2, 2, &local);
                if let Some((_, damage)) = damaged {
                    let hit: Vec<Rect> =
                        damage.iter().map(|d| to_local(d, &band)).filter(|d| touches(d, &part)).collect();
                    if hit.is_empty() {
                        continue;
                    }
                    part = dirty_part(&seg, piece, &part, &hit);
                    reread_parts.push(to_frame(&part, &band));
                }
                let rect = to_frame(&part, &band);
                // The same pixels are prepared differently inside an entry field (the caret is dropped there).
                let key = crop_key(frame, &rect) ^ u64::from(seg.in_field(&part));
                if self.take_cached(key, &rect, &mut words) {
                    stats.cached += 1;
                    continue;
                }
                let prepared = prep::prepare(&gray, &seg, part, prep::scale_for(part.height), PAD);
                jobs.push(Job { rect, key, prepared });
            }
        }
        if let Some((previous, damage)) = damaged {
            // Words no damage touched are still on screen, pixel for pixel.
            let before = words.len();
            words.extend(
                previous
                    .words
                    .iter()
                    .filter(|w| !damage.iter().any(|d| touches(d, &w.bbox)))
                    .filter(|w| !reread_parts.iter().any(|p| p.intersects(&w.bbox)))
                    .cloned(),
            );
            stats.kept = words.len() - before;
        }
        stats.recognised = jobs.len();
        stats.recognised_pixels = jobs.iter().map(|j| j.rect.area()).sum();
        stats.prepare = start.elapsed();
        let rec_start = Instant::now();
        let (results, calls) = self.recognise_jobs(&jobs)?;
        stats.recognise = rec_start.elapsed();
        stats.tesseract_calls = calls;
        for (job, found) in jobs.iter().zip(results) {
            words.extend(found.iter().map(|c| absolute(c, &job.rect)));
            self.cache.insert(job.key, CacheEntry { words: found, last_used: self.generation });
        }
        self.evict();
        // Crops overlap by their 2-pixel margins; a word read from two of them is kept once.
        let mut seen = std::collections::HashSet::new();
        words.retain(|w| seen.insert((w.bbox, w.text.clone())));
        stats.total = start.elapsed();
        self.stats = stats;
        Ok(ScreenText::from_words(frame.width(), frame.height(), words))
    }

    /// Appends the cached words of the crop with `key` placed at `rect`; false if not cached.
    fn take_cached(&mut self, key: u64, rect: &Rect, words: &mut Vec<Word>) -> bool {
        let Some(entry) = self.cache.get_mut(&key) else { return false };
        entry.last_used = self.generation;
        words.extend(entry.words.iter().map(|c| absolute(c, rect)));
        true
    }

    /// Drops the least recently used entries once the cache is over capacity.
    fn evict(&mut self) {
        let cap = self.opts.cache_capacity.max(1);
        if self.cache.len() <= cap {
            return;
        }
        let mut ages: Vec<u64> = self.cache.values().map(|e| e.last_used).collect();
        ages.sort_unstable();
        let cutoff = ages[ages.len() - cap];
        let current = self.generation;
        self.cache.retain(|_, e| e.last_used >= cutoff || e.last_used == current);
    }

    /// Recognises the jobs on the workers in parallel; returns each job's words (relative to its crop) and the
    /// number of Tesseract calls.
    fn recognise_jobs(&mut self, jobs: &[Job]) -> Result<(Vec<Vec<CachedWord>>, usize), OcrError> {
        let mut results: Vec<Vec<CachedWord>> = vec![Vec::new(); jobs.len()];
        if jobs.is_empty() {
            return Ok((results, 0));
        }
        // Balance by output pixels: largest first, each to the least-loaded worker.
        let n = self.workers.len().min(jobs.len()).max(1);
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(u64::from(jobs[i].prepared.w) * u64::from(jobs[i].prepared.h)));
        let mut shares: Vec<(u64, Vec<usize>)> = vec![(0, Vec::new()); n];
        for i in order {
            if let Some(s) = shares.iter_mut().min_by_key(|s| s.0) {
                s.0 += u64::from(jobs[i].prepared.w) * u64::from(jobs[i].prepared.h);
                s.1.push(i);
            }
        }
        let limit = self.opts.openmp == OpenMp::Limit;
        let psm = self.opts.page_mode.psm();
        let outcomes: Vec<ShareResult> = if n == 1 {
            let tess = self.workers.first_mut().ok_or(OcrError::WorkerPanicked)?;
            vec![run_share(tess, jobs, &shares[0].1, psm, limit)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = self
                    .workers
                    .iter_mut()
                    .zip(&shares)
                    .map(|(tess, share)| s.spawn(move || run_share(tess, jobs, &share.1, psm, limit)))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or(Err(OcrError::WorkerPanicked))).collect()
            })
        };
        let mut calls = 0;
        for outcome in outcomes {
            let (found, c) = outcome?;
            calls += c;
            for (i, words) in found {
                if let Some(slot) = results.get_mut(i) {
                    *slot = words;
                }
            }
        }
        Ok((results, calls))
    }
}

/// A worker's words per job index, and how many Tesseract calls it made.
type ShareResult = Result<(Vec<(usize, Vec<CachedWord>)>, usize), OcrError>;

/// Runs one worker's share of jobs: packs them onto canvases and recognises each canvas.
fn run_share(tess: &mut Tess, jobs: &[Job], share: &[usize], psm: PageSegMode, limit_openmp: bool) -> ShareResult {
    if limit_openmp {
        omp::limit_current_thread();
    }
    let mut out: Vec<(usize, Vec<CachedWord>)> = share.iter().map(|&i| (i, Vec::new())).collect();
    let mut calls = 0;
    for canvas in pack(jobs, share) {
        let raw = tess.recognise(&canvas.px, canvas.w, canvas.h, 1, psm, Some(CROP_DPI))?;
        calls += 1;
        for word in raw {
            if let Some((slot, cw)) = place_word(&canvas, jobs, &word)
                && let Some(entry) = out.iter_mut().find(|(i, _)| *i == slot)
            {
                entry.1.push(cw);
            }
        }
    }
    Ok((out, calls))
}

/// A crop's position on a canvas.
struct Placement {
    job: usize,
    x: u32,
    y: u32,
}

struct Canvas {
    w: u32,
    h: u32,
    px: Vec<u8>,
    placed: Vec<Placement>,
}

/// Shelf-packs the prepared crops of `share` onto white canvases, tallest first.
fn pack(jobs: &[Job], share: &[usize]) -> Vec<Canvas> {
    let mut order: Vec<usize> = share.to_vec();
    order.sort_by_key(|&i| (std::cmp::Reverse(jobs[i].prepared.h), std::cmp::Reverse(jobs[i].prepared.w)));
    let mut layouts: Vec<(u32, u32, Vec<Placement>)> = Vec::new();
    let (mut x, mut y, mut shelf_h, mut width) = (0u32, 0u32, 0u32, 0u32);
    let mut placed: Vec<Placement> = Vec::new();
    for i in order {
        let p = &jobs[i].prepared;
        if x > 0 && x + p.w > CANVAS_WIDTH {
            x = 0;
            y += shelf_h + GUTTER;
            shelf_h = 0;
        }
        if y > 0 && x == 0 && y + p.h > CANVAS_HEIGHT {
            layouts.push((width, y - GUTTER, std::mem::take(&mut placed)));
            y = 0;
            width = 0;
        }
        placed.push(Placement { job: i, x, y });
        x += p.w + GUTTER;
        shelf_h = shelf_h.max(p.h);
        width = width.max(x - GUTTER);
    }
    if !placed.is_empty() {
        layouts.push((width, y + shelf_h, placed));
    }
    layouts
        .into_iter()
        .map(|(w, h, placed)| {
            let mut px = vec![255u8; w as usize * h as usize];
            for pl in &placed {
                let p = &jobs[pl.job].prepared;
                for row in 0..p.h as usize {
                    let dst = (pl.y as usize + row) * w as usize + pl.x as usize;
                    let src = row * p.w as usize;
                    px[dst..dst + p.w as usize].copy_from_slice(&p.px[src..src + p.w as usize]);
                }
            }
            Canvas { w, h, px, placed }
        })
        .collect()
}

/// Maps a word found on a canvas to the crop whose area holds its centre, in that crop's source pixels.
fn place_word(canvas: &Canvas, jobs: &[Job], word: &RawWord) -> Option<(usize, CachedWord)> {
    let cx = word.left + word.width / 2;
    let cy = word.top + word.height / 2;
    let pl = canvas.placed.iter().find(|pl| {
        let p = &jobs[pl.job].prepared;
        cx >= i64::from(pl.x) && cx < i64::from(pl.x + p.w) && cy >= i64::from(pl.y) && cy < i64::from(pl.y + p.h)
    })?;
    let job = &jobs[pl.job];
    let p = &job.prepared;
    let s = i64::from(p.scale.max(1));
    let (ox, oy) = (i64::from(pl.x + p.pad), i64::from(pl.y + p.pad));
    let (cw, ch) = (i64::from(job.rect.width), i64::from(job.rect.height));
    let x0 = ((word.left - ox) / s).clamp(0, cw);
    let y0 = ((word.top - oy) / s).clamp(0, ch);
    let x1 = ((word.left + word.width - ox + s - 1) / s).clamp(0, cw);
    let y1 = ((word.top + word.height - oy + s - 1) / s).clamp(0, ch);
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let rel = Rect::from_edges(x0 as u32, y0 as u32, x1 as u32, y1 as u32);
    Some((pl.job, CachedWord { text: word.text.clone(), confidence: word.conf, rel }))
}

/// A cached word placed at the crop `rect`.
fn absolute(c: &CachedWord, rect: &Rect) -> Word {
    Word {
        text: c.text.clone(),
        confidence: c.confidence,
        bbox: Rect::new(rect.x + c.rel.x, rect.y + c.rel.y, c.rel.width, c.rel.height),
    }
}

/// Tesseract's box clipped to the frame; `None` if nothing is left.
fn clamp_box(left: i64, top: i64, width: i64, height: i64, w: u32, h: u32) -> Option<Rect> {
    let x0 = left.clamp(0, i64::from(w));
    let y0 = top.clamp(0, i64::from(h));
    let x1 = (left + width).clamp(0, i64::from(w));
    let y1 = (top + height).clamp(0, i64::from(h));
    (x1 > x0 && y1 > y0).then(|| Rect::from_edges(x0 as u32, y0 as u32, x1 as u32, y1 as u32))
}

/// The cache key of a crop: a hash of its size, pixel layout and pixels (not its position, so a piece that moved
/// is still found).
fn crop_key(frame: &Frame<'_>, rect: &Rect) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    (rect.width, rect.height, frame.layout().bytes_per_pixel()).hash(&mut h);
    for y in rect.y..rect.bottom() {
        h.write(frame.row_bytes(y, rect.x, rect.right()));
    }
    h.finish()
}

/// Rows within this distance of a damaged rectangle are segmented with it, so that pieces crossing its top or
/// bottom edge are found whole.
const BAND_MARGIN: u32 = 64;

/// Full-width bands of rows around the damage, merged where they overlap; the whole frame when the bands would
/// cover most of it anyway.
fn bands_around(damage: &[Rect], bounds: &Rect) -> Vec<Rect> {
    let mut bands: Vec<Rect> = damage
        .iter()
        .map(|d| {
            Rect::from_edges(bounds.x, d.y.saturating_sub(BAND_MARGIN), bounds.right(), d.bottom() + BAND_MARGIN)
                .intersection(bounds)
        })
        .filter(|b| !b.is_empty())
        .collect();
    bands.sort_by_key(|b| b.y);
    let mut merged: Vec<Rect> = Vec::new();
    for b in bands {
        match merged.last_mut() {
            Some(last) if b.y <= last.bottom() => *last = last.union(&b),
            _ => merged.push(b),
        }
    }
    let rows: u64 = merged.iter().map(|b| u64::from(b.height)).sum();
    if rows * 10 > u64::from(bounds.height) * 7 { vec![*bounds] } else { merged }
}

/// Whether damage `d` changes `r` substantially: it covers at least a third of `r`'s height somewhere. A window
/// whose edge clips the descenders of the line above it grazes that line; the line is still there, unchanged.
fn touches(d: &Rect, r: &Rect) -> bool {
    let i = d.intersection(r);
    !i.is_empty() && i.height * 3 >= r.height
}

/// `r` (frame pixels) clipped to `band` and made relative to it.
fn to_local(r: &Rect, band: &Rect) -> Rect {
    let c = r.intersection(band);
    if c.is_empty() {
        return Rect::default();
    }
    Rect::new(c.x - band.x, c.y - band.y, c.width, c.height)
}

/// `r` (relative to `band`) in frame pixels.
fn to_frame(r: &Rect, band: &Rect) -> Rect {
    Rect::new(r.x + band.x, r.y + band.y, r.width, r.height)
}

/// The part of a damaged piece that must be read again: the columns the damage covers, widened to the nearest
/// gap between words on each side (a run of empty columns at least 0.6 line heights wide, wider than the
/// spaces between letters even in monospace fonts), so no word is cut. The whole crop when that part is most of
/// it. All rectangles are in the segmentation's coordinates.
fn dirty_part(seg: &Segmentation, piece: &Rect, crop: &Rect, hit: &[Rect]) -> Rect {
    let dx0 = hit.iter().map(|d| d.x.max(crop.x)).min().unwrap_or(crop.x);
    let dx1 = hit.iter().map(|d| d.right().min(crop.right())).max().unwrap_or(crop.right());
    let gap = (piece.height * 3 / 5).max(4);
    let empty = |x: u32| !seg.column_has_ink(x, piece.y, piece.bottom());
    // Walk outwards until `gap` empty columns in a row; cut in the middle of them.
    let mut left = dx0;
    let mut run = 0;
    while left > crop.x {
        left -= 1;
        if empty(left) {
            run += 1;
            if run >= gap {
                left += gap / 2;
                break;
            }
        } else {
            run = 0;
        }
    }
    let mut right = dx1;
    run = 0;
    while right < crop.right() {
        if empty(right) {
            run += 1;
            if run >= gap {
                right -= gap / 2;
                break;
            }
        } else {
            run = 0;
        }
        right += 1;
    }
    let part = Rect::from_edges(left.max(crop.x), crop.y, right.min(crop.right()), crop.bottom());
    if part.width * 4 >= crop.width * 3 { *crop } else { part }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(rect: Rect, scale: u32) -> Job {
        let (w, h) = (rect.width * scale + 2 * PAD, rect.height * scale + 2 * PAD);
        Job { rect, key: 0, prepared: Prepared { w, h, px: vec![255; (w * h) as usize], scale, pad: PAD } }
    }

    #[test]
    fn words_on_a_canvas_map_back_to_their_crop() {
        let jobs = vec![job(Rect::new(700, 300, 120, 14), 2), job(Rect::new(10, 900, 40, 9), 3)];
        let canvases = pack(&jobs, &[0, 1]);
        assert_eq!(canvases.len(), 1);
        let c = &canvases[0];
        let pl = c.placed.iter().find(|p| p.job == 0).expect("placed");
        // A word covering source columns 10..60 and rows 2..12 of the first crop, as Tesseract reports it.
        let word = RawWord {
            block: 1,
            par: 1,
            line: 1,
            left: i64::from(pl.x + PAD + 20),
            top: i64::from(pl.y + PAD + 4),
            width: 100,
            height: 20,
            conf: 90.0,
            text: "Continue".into(),
        };
        let (slot, cw) = place_word(c, &jobs, &word).expect("mapped");
        assert_eq!(slot, 0);
        assert_eq!(absolute(&cw, &jobs[0].rect).bbox, Rect::new(710, 302, 50, 10));
        // Boxes spilling into the padding are clipped to the crop.
        let spill = RawWord { left: i64::from(pl.x), width: 40, ..word };
        let (_, cw) = place_word(c, &jobs, &spill).expect("mapped");
        assert_eq!(cw.rel.x, 0);
        // The second crop, upscaled 3x.
        let pl = c.placed.iter().find(|p| p.job == 1).expect("placed");
        let word =
            RawWord { left: i64::from(pl.x + PAD + 3), top: i64::from(pl.y + PAD), width: 30, height: 27, ..spill };
        let (slot, cw) = place_word(c, &jobs, &word).expect("mapped");
        assert_eq!((slot, absolute(&cw, &jobs[1].rect).bbox), (1, Rect::new(11, 900, 10, 9)));
    }

    #[test]
    fn damage_becomes_merged_full_width_bands() {
        let bounds = Rect::new(0, 0, 1920, 1080);
        let bands =
            bands_around(&[Rect::new(700, 400, 100, 50), Rect::new(10, 480, 5, 5), Rect::new(0, 900, 9, 9)], &bounds);
        assert_eq!(bands, [Rect::new(0, 336, 1920, 213), Rect::new(0, 836, 1920, 137)]);
        // Bands covering most of the screen become the whole screen.
        assert_eq!(bands_around(&[Rect::new(0, 50, 10, 900)], &bounds), [bounds]);
        assert!(bands_around(&[], &bounds).is_empty());
    }

    #[test]
    fn grazing_damage_does_not_touch() {
        let line = Rect::new(100, 100, 300, 15);
        assert!(touches(&Rect::new(0, 100, 200, 15), &line));
        assert!(touches(&Rect::new(390, 0, 5, 200), &line), "a narrow full-height change touches");
        assert!(!touches(&Rect::new(0, 112, 1000, 300), &line), "a window clipping 3 rows of descenders");
        assert!(!touches(&Rect::new(0, 0, 50, 50), &line));
    }

    #[test]
    fn dirty_part_stops_at_word_gaps() {
        // Three "words" of vertical stripes on one line, 20 px apart; damage inside the middle one.
        let w = 300;
        let mut px = vec![255u8; w * 20];
        for y in 4..16 {
            for x in (10..70).chain(90..150).chain(170..230) {
                if x % 3 == 0 {
                    px[y * w + x] = 0;
                }
            }
        }
        let seg = prep::segment(&Gray { w, h: 20, px }, &SegParams { hgap: 24, ..SegParams::default() });
        assert_eq!(seg.pieces.len(), 1, "{:?}", seg.pieces);
        let piece = seg.pieces[0];
        let crop = piece.expand(2, 2, &Rect::new(0, 0, w as u32, 20));
        let part = dirty_part(&seg, &piece, &crop, &[Rect::new(110, 0, 5, 20)]);
        assert!(part.x > 69 && part.x < 90 && part.right() > 150 && part.right() < 170, "{part:?}");
        // Damage over most of the piece reads it whole.
        assert_eq!(dirty_part(&seg, &piece, &crop, &[Rect::new(20, 0, 200, 20)]), crop);
    }
}
