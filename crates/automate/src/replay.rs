//! Replaying a recording: the [`Source`] behind `vmkit automate replay`, which runs a script against the frames
//! an earlier run recorded (see [`crate::recording`]) with no machine, the same way every time.
//!
//! The rules, and why:
//! - **Frames come in the order they were recorded.** Waiting for a change delivers the next recorded frame,
//!   with the rectangles that differ from the one before as damage; a frame recorded later than the wait's
//!   timeout does not arrive within it, so a timeout too short for the recorded screen fails here as it would
//!   have live.
//! - **Input is checked, and holds the frames back.** A frame recorded after an input event (a click, a key,
//!   typed text) is the screen's answer to it, so it is not delivered until the script has sent that input:
//!   a wait that needs it times out. When the script sends input, frames recorded before the matching event are
//!   taken as seen, and the event must be the same — the same button going the same way at the same place
//!   (within a tolerance, default [`DEFAULT_TOLERANCE`] pixels: another OCR version may place a word's box a
//!   pixel off), the same typed text (compared after redaction: secrets are recorded as `<redacted>`), the
//!   same key chord. Anything else fails the step, naming both. Pointer motion alone is not checked (the runner
//!   moves the pointer away from text for its own reasons); where a button goes down and up is.
//! - **Time is the replay's own.** Sleeps and timeouts advance a virtual clock at once, and the clock is set to
//!   the recorded time of each input event as it is matched, so a replay takes as long as its OCR and its
//!   results (step times included) do not depend on the machine.

use std::time::{Duration, Instant};

use crate::recording::{ButtonName, FrameLine, Line, Recording};
use crate::redact::Redactor;
use crate::screen::ScreenError;
use crate::source::Source;

/// Default for [`ReplaySource::new`]'s tolerance: how far (pixels, each axis) a click may land from the
/// recorded one.
pub const DEFAULT_TOLERANCE: u32 = 4;

/// A recording played back as a screen.
#[derive(Debug)]
pub struct ReplaySource {
    recording: Recording,
    /// The next line of the index to play.
    cursor: usize,
    current: rfb::Frame,
    pending: Vec<ocr::Rect>,
    serial: u64,
    base: Instant,
    elapsed: Duration,
    pointer: (u32, u32),
    mode: rfb::PointerMode,
    out_of_framebuffer: bool,
    redactor: Redactor,
    tolerance: u32,
}

impl ReplaySource {
    /// Plays `recording` from its first frame. `start` is the run's start (time 0 of the recording),
    /// `redactor` the script's (typed text is compared redacted), `tolerance` in pixels.
    pub fn new(recording: Recording, start: Instant, redactor: Redactor, tolerance: u32) -> Result<Self, ScreenError> {
        // Replaced by the first recorded frame below (a checked index has one before any input).
        let placeholder = rfb::Frame::from_rgba(1, 1, vec![0; 4], 0)
            .ok_or_else(|| ScreenError::Differs("an empty screen".to_owned()))?;
        let mut source = Self {
            recording,
            cursor: 0,
            current: placeholder,
            pending: Vec::new(),
            serial: 0,
            base: start,
            elapsed: Duration::ZERO,
            pointer: (0, 0),
            mode: rfb::PointerMode::Unknown,
            out_of_framebuffer: false,
            redactor,
            tolerance,
        };
        // The screen as the run first saw it: everything up to the first frame, unless input comes first.
        while let Some((_, line)) = source.recording.index.lines.get(source.cursor).cloned() {
            if line.is_checked_input() {
                break;
            }
            source.cursor += 1;
            let frame = matches!(line, Line::Frame(_));
            source.apply(&line)?;
            if frame {
                break;
            }
        }
        source.pending.clear();
        Ok(source)
    }

    /// Index lines not played yet that the script did not match: checked input the recording made after the
    /// script's last step (the number, and the first one described).
    pub fn unplayed_input(&self) -> Option<(usize, String)> {
        let rest: Vec<&Line> = self.recording.index.lines.iter().skip(self.cursor).map(|(_, l)| l).collect();
        let inputs: Vec<&&Line> = rest.iter().filter(|l| l.is_checked_input()).collect();
        inputs.first().map(|first| (inputs.len(), first.describe()))
    }

    fn at(&self, t_ms: f64) -> Duration {
        Duration::from_secs_f64(t_ms / 1000.0)
    }

    /// Plays one non-input line: a frame becomes the screen (its difference to the last one is the damage), a
    /// pointer line sets the pointer's state.
    fn apply(&mut self, line: &Line) -> Result<(), ScreenError> {
        match line {
            Line::Frame(f) => self.show(f),
            Line::Pointer { mode, out_of_framebuffer, .. } => {
                self.mode = mode.mode();
                self.out_of_framebuffer = *out_of_framebuffer;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn show(&mut self, f: &FrameLine) -> Result<(), ScreenError> {
        self.serial += 1;
        let frame = self.recording.load_frame(f, self.serial)?;
        let damage = diff(&self.current, &frame);
        self.pending.extend(damage);
        self.current = frame;
        Ok(())
    }

    /// Checks the script's input event `ours` against the recording's next one, taking the frames before it
    /// as seen.
    fn expect(&mut self, ours: &Line) -> Result<(), ScreenError> {
        loop {
            let Some((number, line)) = self.recording.index.lines.get(self.cursor).cloned() else {
                return Err(ScreenError::Differs(format!(
                    "replay: the script sends {} after the recording's last input (the recording ends here)",
                    ours.describe()
                )));
            };
            if !line.is_checked_input() {
                self.cursor += 1;
                self.apply(&line)?;
                continue;
            }
            if !self.same(ours, &line) {
                return Err(ScreenError::Differs(format!(
                    "replay: the script sends {} where the recording sent {} ({} line {number}, {:.2} s into the \
                     recorded run)",
                    ours.describe(),
                    line.describe(),
                    crate::recording::INDEX,
                    line.t_ms() / 1000.0
                )));
            }
            self.cursor += 1;
            self.elapsed = self.elapsed.max(self.at(line.t_ms()));
            return Ok(());
        }
    }

    fn same(&self, ours: &Line, recorded: &Line) -> bool {
        match (ours, recorded) {
            (
                Line::Button { button: b1, down: d1, x: x1, y: y1, .. },
                Line::Button { button: b2, down: d2, x: x2, y: y2, .. },
            ) => b1 == b2 && d1 == d2 && x1.abs_diff(*x2) <= self.tolerance && y1.abs_diff(*y2) <= self.tolerance,
            (Line::Type { text: a, .. }, Line::Type { text: b, .. }) => a == b,
            (Line::Key { chord: a, .. }, Line::Key { chord: b, .. }) => a == b,
            _ => false,
        }
    }
}

impl Source for ReplaySource {
    const LIVE: bool = false;

    fn name(&self) -> String {
        let start = &self.recording.index.start;
        format!("recording of {} ({}) in {}", start.vnc, start.server, self.recording.dir.display())
    }

    fn size(&self) -> (u32, u32) {
        (self.current.width(), self.current.height())
    }

    fn pointer_mode(&self) -> rfb::PointerMode {
        self.mode
    }

    fn pointer_out_of_framebuffer(&self) -> bool {
        self.out_of_framebuffer
    }

    fn status(&self) -> Result<(), ScreenError> {
        Ok(())
    }

    async fn reconnect(&mut self, _log: &mut (dyn FnMut(String) + Send)) -> Result<(), ScreenError> {
        Ok(())
    }

    fn frame(&mut self) -> rfb::Frame {
        self.current.clone()
    }

    fn take_damage(&mut self) -> (Vec<ocr::Rect>, rfb::Frame) {
        (std::mem::take(&mut self.pending), self.current.clone())
    }

    async fn wait_for_damage(&mut self, timeout: Duration) -> Result<Option<Vec<ocr::Rect>>, ScreenError> {
        if !self.pending.is_empty() {
            return Ok(Some(std::mem::take(&mut self.pending)));
        }
        let deadline = self.elapsed + timeout;
        while let Some((_, line)) = self.recording.index.lines.get(self.cursor).cloned() {
            if line.is_checked_input() {
                break;
            }
            if let Line::Frame(f) = &line {
                let t = self.at(f.t_ms);
                if t > deadline {
                    break;
                }
                self.elapsed = self.elapsed.max(t);
            }
            self.cursor += 1;
            self.apply(&line)?;
            if !self.pending.is_empty() {
                return Ok(Some(std::mem::take(&mut self.pending)));
            }
        }
        self.elapsed = self.elapsed.max(deadline);
        Ok(None)
    }

    async fn move_to(&mut self, x: u32, y: u32) -> Result<(), ScreenError> {
        let (w, h) = self.size();
        if x >= w || y >= h {
            return Err(ScreenError::Differs(format!("the point ({x}, {y}) is outside the {w}x{h} screen")));
        }
        self.pointer = (x, y);
        Ok(())
    }

    async fn button(&mut self, button: rfb::Button, down: bool) -> Result<(), ScreenError> {
        let (x, y) = self.pointer;
        self.expect(&Line::Button { t_ms: 0.0, button: ButtonName::of(button), down, x, y })
    }

    async fn type_text(&mut self, text: &str, _opts: &rfb::TypeOptions) -> Result<(), ScreenError> {
        self.expect(&Line::Type { t_ms: 0.0, text: self.redactor.clean(text) })
    }

    async fn press_chord(&mut self, chord: &rfb::Chord) -> Result<(), ScreenError> {
        self.expect(&Line::Key { t_ms: 0.0, chord: chord.to_string() })
    }

    fn now(&self) -> Instant {
        self.base + self.elapsed
    }

    async fn sleep_until(&mut self, until: Instant) {
        self.elapsed = self.elapsed.max(until.saturating_duration_since(self.base));
    }
}

/// The rectangles where two frames differ: one per run of changed rows, as wide as the changes in it; the whole
/// of `b` when the sizes differ.
pub fn diff(a: &rfb::Frame, b: &rfb::Frame) -> Vec<ocr::Rect> {
    let (w, h) = (b.width(), b.height());
    if (a.width(), a.height()) != (w, h) {
        return vec![ocr::Rect::new(0, 0, w, h)];
    }
    let stride = w as usize * 4;
    let (pa, pb) = (a.rgba(), b.rgba());
    let mut rects = Vec::new();
    let mut band: Option<(u32, u32, u32)> = None; // first row, first column, last column
    let differs = |ra: &[u8], rb: &[u8], x: usize| ra.get(x * 4..x * 4 + 3) != rb.get(x * 4..x * 4 + 3);
    for y in 0..h {
        let range = y as usize * stride..(y as usize + 1) * stride;
        let (ra, rb) = (pa.get(range.clone()).unwrap_or_default(), pb.get(range).unwrap_or_default());
        let first = if ra == rb { None } else { (0..w as usize).find(|&x| differs(ra, rb, x)) };
        match (first, band) {
            (Some(x0), _) => {
                let x1 = (0..w as usize).rev().find(|&x| differs(ra, rb, x)).unwrap_or(x0);
                let (x0, x1) = (x0 as u32, x1 as u32);
                band = Some(match band {
                    Some((y0, b0, b1)) => (y0, b0.min(x0), b1.max(x1)),
                    None => (y, x0, x1),
                });
            }
            (None, Some((y0, x0, x1))) => {
                rects.push(ocr::Rect::new(x0, y0, x1 - x0 + 1, y - y0));
                band = None;
            }
            (None, None) => {}
        }
    }
    if let Some((y0, x0, x1)) = band {
        rects.push(ocr::Rect::new(x0, y0, x1 - x0 + 1, h - y0));
    }
    rects
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: u32, h: u32, paint: &[(u32, u32)]) -> rfb::Frame {
        let mut px = vec![0u8; (w * h * 4) as usize];
        for &(x, y) in paint {
            let i = ((y * w + x) * 4) as usize;
            px[i] = 255;
        }
        rfb::Frame::from_rgba(w, h, px, 1).expect("frame")
    }

    /// A recording: screen A, a click at (10, 10), then screen B (the click's answer).
    fn recording(dir: &std::path::Path) -> Recording {
        use crate::recording::{FrameRecorder, start_line};
        let mut rec = FrameRecorder::create(dir, Instant::now(), Redactor::default(), start_line("h:1", "s", (20, 20)))
            .expect("recorder");
        let pointer = (rfb::PointerMode::Absolute, true);
        rec.frame(&frame(20, 20, &[]), pointer);
        for down in [true, false] {
            rec.input(Line::Button { t_ms: 0.0, button: ButtonName::Left, down, x: 10, y: 10 });
        }
        rec.frame(&rfb::Frame::from_rgba(20, 20, vec![255; 1600], 2).expect("b"), pointer);
        rec.finish();
        Recording::open(dir).expect("opens")
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
    }

    #[test]
    fn frames_wait_for_the_input_they_answer_and_input_is_checked() {
        let tmp = tempfile::tempdir().expect("tmp");
        let start = Instant::now();
        let mut src = ReplaySource::new(recording(tmp.path()), start, Redactor::default(), 4).expect("source");
        block_on(async {
            assert_eq!(src.frame().rgba()[0], 0);
            // Screen B answers the click: it does not come before it, and the clock moves on by the timeout.
            assert_eq!(src.wait_for_damage(Duration::from_secs(2)).await.expect("wait"), None);
            assert!(src.now() >= start + Duration::from_secs(2));
            src.move_to(12, 9).await.expect("move");
            src.button(rfb::Button::Left, true).await.expect("within the tolerance");
            src.button(rfb::Button::Left, false).await.expect("release");
            let damage = src.wait_for_damage(Duration::from_secs(1)).await.expect("wait");
            assert_eq!(damage, Some(vec![ocr::Rect::new(0, 0, 20, 20)]));
            assert_eq!(src.frame().rgba()[0], 255);
            let end = src.button(rfb::Button::Left, true).await.expect_err("nothing more recorded").to_string();
            assert!(end.contains("after the recording's last input"), "{end}");
        });

        let mut src = ReplaySource::new(recording(tmp.path()), start, Redactor::default(), 4).expect("source");
        block_on(async {
            src.move_to(15, 10).await.expect("move");
            let moved = src.button(rfb::Button::Left, true).await.expect_err("moved").to_string();
            assert!(
                moved.contains(
                    "sends a left-button press at (15, 10) where the recording sent a left-button press \
                 at (10, 10)"
                ),
                "{moved}"
            );
            let typed = src.type_text("x", &rfb::TypeOptions::default()).await.expect_err("typed").to_string();
            assert!(typed.contains("sends typing \"x\" where the recording sent a left-button press"), "{typed}");
        });
    }

    #[test]
    fn diff_finds_changed_bands() {
        let a = frame(10, 10, &[]);
        assert!(diff(&a, &a).is_empty());
        let b = frame(10, 10, &[(2, 1), (5, 2), (7, 8)]);
        let rects = diff(&a, &b);
        assert_eq!(rects, vec![ocr::Rect::new(2, 1, 4, 2), ocr::Rect::new(7, 8, 1, 1)]);
        let c = frame(10, 10, &[(0, 9), (9, 9)]);
        assert_eq!(diff(&a, &c), vec![ocr::Rect::new(0, 9, 10, 1)]);
        assert_eq!(diff(&a, &frame(4, 4, &[])), vec![ocr::Rect::new(0, 0, 4, 4)]);
    }
}
