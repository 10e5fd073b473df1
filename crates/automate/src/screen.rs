//! The runner's view of the screen: a VNC connection that comes back when it drops, and the text on the
//! screen, kept current at the lowest possible cost.
//!
//! Cost model (what makes `wait` fast and an idle screen free):
//! - the RFB client reports which rectangles changed (damage); [`Screen::wait_change`] sleeps until the server
//!   sends a change, it never polls;
//! - [`Screen::text`] hands the damage to [`ocr::Engine::reread`], which recognises only the changed parts and
//!   keeps the words of everything else; no damage means no OCR at all, not even a look at the pixels;
//! - after a reconnect the first read is a full read, but the engine's pixel-keyed cache makes an unchanged
//!   screen cheap.
//!
//! Changes first ([`Screen::changes_first`], on for live runs): a screen full of text costs seconds of OCR to
//! read once, and a `wait` that started by reading all of it would see the dialog it waits for only after that
//! read — with eight runners sharing two cores, many seconds late. So the text that was on the screen before
//! the runner looked is read by a background reader instead: its own engine on its own thread at idle CPU
//! priority (`SCHED_IDLE`), band by band, top to bottom. What changes is read at once, in the foreground, at
//! normal priority, whatever the background is doing; the bands the background finishes are merged in as they
//! arrive, except where the screen has changed since (the foreground has read those parts from newer pixels).
//! A search that needs the whole screen (a click on the first of several matches) asks [`Screen::may_hide`]
//! whether an unread band could hold an earlier match. Replays keep the synchronous full read: they must be
//! deterministic.
//!
//! Where the frames come from is a [`Source`]: the live VNC server, or a recording replayed.
//!
//! Damage is taken from the client *before* the frame is snapshotted, so a change racing with a read is always
//! in the next damage list and is never lost.

use std::time::Duration;

use ocr::{Rect, ScreenText, Word};

use crate::script::Secret;
use crate::source::{Source, VncSource};

/// How reconnecting behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Give up when the server has been unreachable this long.
    pub budget: Duration,
    /// First pause between attempts; doubles up to [`ReconnectPolicy::max_backoff`].
    pub initial_backoff: Duration,
    /// Longest pause between attempts.
    pub max_backoff: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            budget: Duration::from_secs(120),
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Why the screen is unavailable.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    /// The server could not be reached again within the reconnect budget.
    #[error("VNC server {addr} unreachable for {budget:?} ({attempts} attempts); last error: {last}")]
    Unreachable {
        /// The server.
        addr: String,
        /// The budget that ran out.
        budget: Duration,
        /// Attempts made.
        attempts: u32,
        /// The last connection error.
        last: rfb::Error,
    },
    /// The server rejected the credentials (retrying would not help).
    #[error("{0}")]
    Auth(rfb::Error),
    /// The server broke the protocol (retrying the same server would fail the same way).
    #[error("{0}")]
    Protocol(rfb::Error),
    /// The connection was lost; the caller should [`Screen::reconnect`] and retry its step.
    #[error("{0}")]
    Lost(rfb::Error),
    /// An input event could not be sent (e.g. a point off the screen).
    #[error("{0}")]
    Input(rfb::Error),
    /// OCR failed.
    #[error("OCR: {0}")]
    Ocr(#[from] ocr::OcrError),
    /// A replay: the script sent input other than what the recording did.
    #[error("{0}")]
    Differs(String),
    /// A replay: the recording cannot be read.
    #[error("{0}")]
    Recording(#[from] crate::recording::RecordingError),
}

impl ScreenError {
    pub(crate) fn from_rfb(e: rfb::Error) -> Self {
        if e.is_auth_failure() {
            ScreenError::Auth(e)
        } else if e.is_protocol_violation() {
            ScreenError::Protocol(e)
        } else if e.is_connection_lost() {
            ScreenError::Lost(e)
        } else {
            ScreenError::Input(e)
        }
    }
}

/// Counters for the run result and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScreenStats {
    /// Reads that had something to recognise (a first read, or damage).
    pub ocr_passes: u64,
    /// Tesseract calls in all (0 for a read answered entirely from the cache or the previous text).
    pub tesseract_calls: u64,
    /// Successful reconnections.
    pub reconnects: u32,
}

/// What woke [`Screen::wait_change_or_text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// The screen changed in these rectangles (kept for the next [`Screen::text`]).
    Changed(Vec<Rect>),
    /// The background reader finished a band; the next [`Screen::text`] merges it.
    Text,
    /// Neither happened within the timeout.
    Timeout,
}

/// A screen with its text, over a [`Source`]: a live VNC server ([`VncSource`], the default) or a recording.
pub struct Screen<S: Source = VncSource> {
    source: S,
    engine: ocr::Engine,
    text: Option<ScreenText>,
    pending: Vec<ocr::Rect>,
    /// Serial of the last frame read in full (not incrementally).
    full_serial: Option<u64>,
    stats: ScreenStats,
    /// Changes first: the reader of the text that was there before (see the module docs); `None` reads
    /// everything in the foreground.
    background: Option<Background>,
    /// Bands of the screen no read has covered yet, top to bottom (changes first only).
    unread: Vec<Rect>,
}

impl<S: Source> std::fmt::Debug for Screen<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen").field("source", &self.source.name()).field("stats", &self.stats).finish()
    }
}

impl Screen<VncSource> {
    /// Connects (retrying within the policy's budget: the VM may still be starting) and loads the OCR engine.
    pub async fn connect(
        addr: &str,
        password: Option<&Secret>,
        timeout: Duration,
        policy: ReconnectPolicy,
        engine: ocr::Engine,
        log: &mut (dyn FnMut(String) + Send),
    ) -> Result<Self, ScreenError> {
        let source = VncSource::connect(addr, password, timeout, policy, log).await?;
        Ok(Self::new(source, engine))
    }

    /// The connected client (for input).
    pub fn client(&self) -> &rfb::Client {
        self.source.client()
    }
}

impl<S: Source> Screen<S> {
    /// A screen over `source`, read with `engine`.
    pub fn new(source: S, engine: ocr::Engine) -> Self {
        Self {
            source,
            engine,
            text: None,
            pending: Vec::new(),
            full_serial: None,
            stats: ScreenStats::default(),
            background: None,
            unread: Vec::new(),
        }
    }

    /// Reads changes first (see the module docs): the text already on the screen is read by a second engine on
    /// an idle-priority thread while changes are read at once. Falls back to reading everything in the
    /// foreground if the thread cannot be started.
    #[must_use]
    pub fn changes_first(mut self, on: bool) -> Self {
        self.background = if on { Background::spawn(self.engine.options().clone()) } else { None };
        self.text = None;
        self.unread.clear();
        self
    }

    /// True while parts of the screen have not been read yet (changes first only): a search that found nothing
    /// may find it once the background reader is done.
    pub fn reading(&self) -> bool {
        !self.unread.is_empty() || self.background.as_ref().is_some_and(|b| b.in_flight.is_some())
    }

    /// True if a part of the screen not read yet lies inside `area` — there a search could still find text it
    /// has not seen (changes first only; always false when everything is read in the foreground).
    pub fn may_hide(&self, area: &Rect) -> bool {
        let flying = self.background.as_ref().and_then(|b| b.in_flight.as_ref()).map(|f| &f.band);
        self.unread.iter().chain(flying).any(|band| band.intersects(area))
    }

    /// The source (size, pointer, clock).
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The source, for input.
    pub fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    /// Counters so far.
    pub fn stats(&self) -> ScreenStats {
        self.stats
    }

    /// `Err(Lost)` if the connection has dropped, so a step can reconnect before acting.
    pub fn check(&self) -> Result<(), ScreenError> {
        self.source.status()
    }

    /// Connects again after a loss; the text is re-read from scratch on the next [`Screen::text`].
    pub async fn reconnect(&mut self, log: &mut (dyn FnMut(String) + Send)) -> Result<(), ScreenError> {
        self.source.reconnect(log).await?;
        self.text = None;
        self.pending.clear();
        self.full_serial = None;
        self.unread.clear();
        if let Some(bg) = &mut self.background {
            bg.cancel();
        }
        self.stats.reconnects += 1;
        Ok(())
    }

    /// The latest frame.
    pub fn frame(&mut self) -> rfb::Frame {
        self.source.frame()
    }

    /// Waits until the screen changes or `timeout` passes; returns the changed rectangles (kept for the next
    /// [`Screen::text`]), or `None` on timeout.
    pub async fn wait_change(&mut self, timeout: Duration) -> Result<Option<Vec<ocr::Rect>>, ScreenError> {
        let rects = self.source.wait_for_damage(timeout).await?;
        if let Some(rects) = &rects {
            self.pending.extend_from_slice(rects);
        }
        Ok(rects)
    }

    /// Waits until the screen changes, the background reader finishes a band, or `timeout` passes. Without
    /// changes first (or with nothing left to read) this is [`Screen::wait_change`].
    pub async fn wait_change_or_text(&mut self, timeout: Duration) -> Result<Wake, ScreenError> {
        let waiting = match &mut self.background {
            Some(bg) if bg.in_flight.is_some() && bg.ready.is_none() => bg,
            Some(bg) if bg.ready.is_some() => return Ok(Wake::Text),
            _ => {
                return Ok(match self.wait_change(timeout).await? {
                    Some(rects) => Wake::Changed(rects),
                    None => Wake::Timeout,
                });
            }
        };
        // Both waits are cancel-safe: the damage is taken from the client only when the future completes, and a
        // reply taken from the channel is kept in `ready`.
        tokio::select! {
            biased;
            rects = self.source.wait_for_damage(timeout) => match rects? {
                Some(rects) => {
                    self.pending.extend_from_slice(&rects);
                    Ok(Wake::Changed(rects))
                }
                None => Ok(Wake::Timeout),
            },
            reply = waiting.replies.recv() => {
                waiting.ready = Some(reply.unwrap_or(Err(ocr::OcrError::WorkerPanicked)));
                Ok(Wake::Text)
            }
        }
    }

    /// True if the frame with this serial has been read in full (see [`Screen::text_full`]).
    pub fn read_in_full(&self, serial: u64) -> bool {
        self.full_serial == Some(serial)
    }

    /// The text on the screen now, read from the whole frame rather than from what changed. Incremental reads
    /// recognise crops cut around the damage, and OCR can read a crop differently from the whole piece; when a
    /// search misses on a screen that has gone quiet, one full read settles it (pieces seen before still come
    /// from the cache).
    ///
    /// Changes first, the full read is the background reader's: the text read so far stays, and every band is
    /// read again (its engine's cache makes what it read before cheap); [`Screen::read_in_full`] turns true once
    /// it is done with no change in between.
    pub fn text_full(&mut self) -> Result<(&ScreenText, rfb::Frame), ScreenError> {
        if self.background.is_some() && self.text.is_some() {
            let (w, h) = self.source.size();
            self.unread = bands(w, h);
            self.full_serial = None;
        } else {
            self.text = None;
        }
        self.text()
    }

    /// Looks again at `regions` of `frame` — the frame the current text was read from — each piece alone and
    /// bypassing the OCR cache, and updates the text with what it finds (see [`ocr::Engine::second_look`]).
    /// For a search that found only a near miss on a screen that has gone quiet.
    pub fn second_look(&mut self, frame: &rfb::Frame, regions: &[ocr::Rect]) -> Result<&ScreenText, ScreenError> {
        let pixels = ocr::Frame::packed(frame.rgba(), frame.width(), frame.height(), ocr::PixelLayout::Rgbx)?;
        let previous = self.text.take().unwrap_or_else(|| ScreenText::empty(frame.width(), frame.height()));
        let engine = &mut self.engine;
        let text = crate::blocking(|| engine.second_look(&pixels, &previous, regions))?;
        self.stats.ocr_passes += 1;
        self.stats.tesseract_calls += self.engine.last_stats().tesseract_calls as u64;
        Ok(self.text.insert(text))
    }

    /// The text read last (by [`Screen::text`], [`Screen::text_full`] or [`Screen::second_look`]), if any.
    pub fn last_text(&self) -> Option<&ScreenText> {
        self.text.as_ref()
    }

    /// The text on the screen now. Recognises only what changed since the last call; nothing if nothing did.
    pub fn text(&mut self) -> Result<(&ScreenText, rfb::Frame), ScreenError> {
        self.check()?;
        let (damage, frame) = self.source.take_damage();
        self.pending.extend(damage);
        if self.background.is_some() {
            return self.text_changes_first(frame);
        }
        let pixels = ocr::Frame::packed(frame.rgba(), frame.width(), frame.height(), ocr::PixelLayout::Rgbx)?;
        let unchanged =
            |prev: &ScreenText| self.pending.is_empty() && prev.width == frame.width() && prev.height == frame.height();
        let text = match self.text.take() {
            Some(prev) if unchanged(&prev) => prev,
            previous => {
                let engine = &mut self.engine;
                let damage = &self.pending;
                let text = crate::blocking(|| match &previous {
                    Some(prev) => engine.reread(&pixels, prev, damage),
                    None => engine.read(&pixels),
                })?;
                self.stats.ocr_passes += 1;
                self.stats.tesseract_calls += self.engine.last_stats().tesseract_calls as u64;
                if previous.is_none() {
                    self.full_serial = Some(frame.serial());
                }
                text
            }
        };
        self.pending.clear();
        Ok((self.text.insert(text), frame))
    }

    /// [`Screen::text`] with changes first: what changed is read now; what was there before comes from the
    /// background reader, band by band.
    fn text_changes_first(&mut self, frame: rfb::Frame) -> Result<(&ScreenText, rfb::Frame), ScreenError> {
        let (w, h) = (frame.width(), frame.height());
        let fresh = self.text.as_ref().is_none_or(|t| t.width != w || t.height != h);
        if fresh {
            // Nothing read yet (or a new size): all of it is unread, and the damage that brought the first frame
            // is not a change to read at once.
            self.text = Some(ScreenText::empty(w, h));
            self.unread = bands(w, h);
            self.pending.clear();
            self.full_serial = None;
            if let Some(bg) = &mut self.background {
                bg.cancel();
            }
        }
        if !self.pending.is_empty() {
            if let Some(bg) = &mut self.background {
                bg.changed(&self.pending);
            }
            let pixels = ocr::Frame::packed(frame.rgba(), w, h, ocr::PixelLayout::Rgbx)?;
            let previous = self.text.take().unwrap_or_else(|| ScreenText::empty(w, h));
            let engine = &mut self.engine;
            let damage = &self.pending;
            let read = crate::blocking(|| engine.reread(&pixels, &previous, damage));
            let text = match read {
                Ok(t) => t,
                Err(e) => {
                    self.text = Some(previous);
                    return Err(e.into());
                }
            };
            self.stats.ocr_passes += 1;
            self.stats.tesseract_calls += self.engine.last_stats().tesseract_calls as u64;
            self.text = Some(text);
            self.full_serial = None;
            self.pending.clear();
        }
        self.merge_background()?;
        self.schedule(&frame);
        let text = self.text.get_or_insert_with(|| ScreenText::empty(w, h));
        Ok((text, frame))
    }

    /// Merges the bands the background reader has finished into the text.
    fn merge_background(&mut self) -> Result<(), ScreenError> {
        let Some(bg) = &mut self.background else { return Ok(()) };
        while let Some((flight, reply)) = bg.finished() {
            let read = reply?;
            let Some(text) = &mut self.text else { continue };
            if (text.width, text.height) != (read.width, read.height) {
                continue;
            }
            self.stats.ocr_passes += 1;
            let newer = |w: &Word| flight.changed.iter().any(|d| touches(d, &w.bbox));
            let inside = |w: &Word| flight.band.contains(w.bbox.centre());
            // Words the foreground read from newer pixels stay; the band's other words are the background's.
            let mut words: Vec<Word> = text.words.iter().filter(|w| !inside(w) || newer(w)).cloned().collect();
            let kept = words.len();
            for word in read.words {
                if inside(&word) && !newer(&word) && !words[..kept].iter().any(|k| k.bbox.intersects(&word.bbox)) {
                    words.push(word);
                }
            }
            *text = ScreenText::from_words(text.width, text.height, words);
            if self.unread.is_empty() && flight.changed.is_empty() {
                self.full_serial = Some(flight.serial);
            }
        }
        Ok(())
    }

    /// Hands the next unread band to the background reader if it is idle.
    fn schedule(&mut self, frame: &rfb::Frame) {
        let Some(bg) = &mut self.background else { return };
        if bg.in_flight.is_some() || bg.ready.is_some() || self.unread.is_empty() {
            return;
        }
        let band = self.unread.remove(0);
        if !bg.send(frame, band) {
            // The reader is gone: read in the foreground from now on, from scratch.
            self.background = None;
            self.text = None;
            self.unread.clear();
        }
    }
}

/// Height of the bands the background reader reads at a time: a full 1080p screen in four parts, so a search
/// sees the top of a dense screen long before the bottom is read.
const BAND_HEIGHT: u32 = 270;

/// The screen cut into full-width bands, top to bottom.
fn bands(width: u32, height: u32) -> Vec<Rect> {
    (0..height).step_by(BAND_HEIGHT as usize).map(|y| Rect::new(0, y, width, BAND_HEIGHT.min(height - y))).collect()
}

/// True if `d` overlaps `r` or touches it (a word next to a change may have been repainted with it).
fn touches(d: &Rect, r: &Rect) -> bool {
    d.x <= r.right() && r.x <= d.right() && d.y <= r.bottom() && r.y <= d.bottom()
}

/// A band handed to the background reader.
#[derive(Debug)]
struct Flight {
    band: Rect,
    /// Serial of the frame the band is read from.
    serial: u64,
    /// What changed on the screen since that frame (the foreground reads it from newer pixels).
    changed: Vec<Rect>,
    /// The band was handed out before the screen was reset (reconnect, new size): its reply is dropped.
    cancelled: bool,
}

/// The background reader: a thread with its own [`ocr::Engine`] at idle CPU priority, reading one band of a
/// frame at a time.
struct Background {
    requests: std::sync::mpsc::Sender<(rfb::Frame, Rect)>,
    replies: tokio::sync::mpsc::UnboundedReceiver<Result<ScreenText, ocr::OcrError>>,
    in_flight: Option<Flight>,
    /// A reply taken from the channel by [`Screen::wait_change_or_text`], not merged yet.
    ready: Option<Result<ScreenText, ocr::OcrError>>,
}

impl Background {
    /// Starts the thread; its engine loads on the first band. `None` if the thread cannot be started.
    fn spawn(options: ocr::EngineOptions) -> Option<Self> {
        let (requests, inbox) = std::sync::mpsc::channel::<(rfb::Frame, Rect)>();
        let (outbox, replies) = tokio::sync::mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("ocr-background".into())
            .spawn(move || {
                idle_priority();
                let mut engine: Option<ocr::Engine> = None;
                while let Ok((frame, band)) = inbox.recv() {
                    let reply = read_band(&mut engine, &options, &frame, band);
                    if outbox.send(reply).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Self { requests, replies, in_flight: None, ready: None })
    }

    /// Hands out `band` of `frame`; false if the thread is gone.
    fn send(&mut self, frame: &rfb::Frame, band: Rect) -> bool {
        if self.requests.send((frame.clone(), band)).is_err() {
            return false;
        }
        self.in_flight = Some(Flight { band, serial: frame.serial(), changed: Vec::new(), cancelled: false });
        true
    }

    /// Notes a change of the screen while a band is being read.
    fn changed(&mut self, rects: &[Rect]) {
        if let Some(f) = &mut self.in_flight {
            f.changed.extend_from_slice(rects);
        }
    }

    /// Drops the band being read: the screen it was cut from is gone.
    fn cancel(&mut self) {
        if let Some(f) = &mut self.in_flight {
            f.cancelled = true;
        }
    }

    /// The finished band and its reading, if one has arrived (cancelled ones are skipped).
    fn finished(&mut self) -> Option<(Flight, Result<ScreenText, ocr::OcrError>)> {
        loop {
            let reply = match self.ready.take() {
                Some(r) => r,
                None => match self.replies.try_recv() {
                    Ok(r) => r,
                    Err(tokio::sync::mpsc::error::TryRecvError::Empty) => return None,
                    Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                        self.in_flight.as_ref()?;
                        Err(ocr::OcrError::WorkerPanicked)
                    }
                },
            };
            let flight = self.in_flight.take()?;
            if !flight.cancelled {
                return Some((flight, reply));
            }
        }
    }
}

/// Reads `band` of `frame` with the background engine (loaded on first use).
fn read_band(
    engine: &mut Option<ocr::Engine>,
    options: &ocr::EngineOptions,
    frame: &rfb::Frame,
    band: Rect,
) -> Result<ScreenText, ocr::OcrError> {
    let engine = match engine {
        Some(e) => e,
        None => engine.insert(ocr::Engine::with_options(options.clone())?),
    };
    let pixels = ocr::Frame::packed(frame.rgba(), frame.width(), frame.height(), ocr::PixelLayout::Rgbx)?;
    engine.reread(&pixels, &ScreenText::empty(frame.width(), frame.height()), &[band])
}

/// Puts the calling thread (and the threads it starts) in the idle scheduling class: it runs only when no other
/// thread wants the CPU, so the background reader never delays the foreground or other runners. Best effort: if
/// the kernel refuses, the thread runs at the lowest nice level instead, or as it is.
#[allow(unsafe_code)]
fn idle_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain system calls on the calling thread (pid 0) with a valid parameter block.
    unsafe {
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        }
    }
}
