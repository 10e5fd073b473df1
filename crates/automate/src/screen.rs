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
//! Where the frames come from is a [`Source`]: the live VNC server, or a recording replayed.
//!
//! Damage is taken from the client *before* the frame is snapshotted, so a change racing with a read is always
//! in the next damage list and is never lost.

use std::time::Duration;

use ocr::ScreenText;

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

/// A screen with its text, over a [`Source`]: a live VNC server ([`VncSource`], the default) or a recording.
pub struct Screen<S: Source = VncSource> {
    source: S,
    engine: ocr::Engine,
    text: Option<ScreenText>,
    pending: Vec<ocr::Rect>,
    /// Serial of the last frame read in full (not incrementally).
    full_serial: Option<u64>,
    stats: ScreenStats,
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
        Self { source, engine, text: None, pending: Vec::new(), full_serial: None, stats: ScreenStats::default() }
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

    /// True if the frame with this serial has been read in full (see [`Screen::text_full`]).
    pub fn read_in_full(&self, serial: u64) -> bool {
        self.full_serial == Some(serial)
    }

    /// The text on the screen now, read from the whole frame rather than from what changed. Incremental reads
    /// recognise crops cut around the damage, and OCR can read a crop differently from the whole piece; when a
    /// search misses on a screen that has gone quiet, one full read settles it (pieces seen before still come
    /// from the cache).
    pub fn text_full(&mut self) -> Result<(&ScreenText, rfb::Frame), ScreenError> {
        self.text = None;
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
}
