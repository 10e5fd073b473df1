//! Recorded screens: what a run saw and what it sent, in order, so `vmkit automate replay` can run a script
//! again without a machine.
//!
//! A live run with `--debug DIR` writes `DIR/frames/`: one PNG per distinct screen the runner looked at, and
//! `index.jsonl`, one JSON object per line in the order things happened — the run's start (screen size, server,
//! pointer), each frame with its time and file, and each input event the run sent (pointer motion, button
//! presses and releases with where the pointer was, typed text, key chords). Typed text goes through the
//! [`Redactor`] first, so a secret is stored as `<redacted>` and never reaches the recording. The index is
//! written line by line, each frame's line only after its PNG is complete, so a run killed half-way leaves a
//! recording that replays up to where it stopped.
//!
//! Why JSON Lines: appending never rewrites what is there, a reader needs nothing but `serde_json` per line, and
//! an error can name the line. [`parse_index`] is the one reader of outside input here (fuzzed:
//! `fuzz/fuzz_targets/recording_index.rs`); [`Recording::open`] checks the PNGs against it, and
//! [`FrameRecorder`] writes the recording on a thread of its own so the run does not wait for PNG encoding.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::redact::Redactor;
use crate::time::utc;

/// The index's file name inside the frames directory.
pub const INDEX: &str = "index.jsonl";
/// The frames directory's name inside a debug directory.
pub const FRAMES_DIR: &str = "frames";
/// The index format this vmkit writes and reads.
pub const VERSION: u32 = 1;
/// Largest screen side accepted from an index (a bigger one is a damaged or hostile file, not a screen).
pub const MAX_SIDE: u32 = 8192;
/// Largest PNG file read.
const MAX_PNG_BYTES: u64 = 512 << 20;
/// Frames queued for the writer thread before the run waits for it.
const QUEUE: usize = 16;

/// One line of `index.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Line {
    /// The first line.
    Start(Start),
    /// A screen the run looked at.
    Frame(FrameLine),
    /// The pointer moved (not checked on replay: only where buttons go down and up is).
    Move {
        /// Milliseconds since the run started.
        t_ms: f64,
        /// Where to, framebuffer pixels.
        x: u32,
        /// Where to.
        y: u32,
    },
    /// A mouse button went down or up.
    Button {
        /// Milliseconds since the run started.
        t_ms: f64,
        /// Which.
        button: ButtonName,
        /// Pressed (true) or released.
        down: bool,
        /// Where the pointer was.
        x: u32,
        /// Where the pointer was.
        y: u32,
    },
    /// Text typed (secrets as `<redacted>`).
    Type {
        /// Milliseconds since the run started.
        t_ms: f64,
        /// The text.
        text: String,
    },
    /// A key or chord pressed, as `ctrl+alt+delete`.
    Key {
        /// Milliseconds since the run started.
        t_ms: f64,
        /// The chord.
        chord: String,
    },
    /// The server's pointer changed: absolute or relative, painted into the screen image or not.
    Pointer {
        /// Milliseconds since the run started.
        t_ms: f64,
        /// `absolute`, `relative` or `unknown`.
        mode: PointerName,
        /// Whether the server keeps the pointer out of the screen image.
        out_of_framebuffer: bool,
    },
    /// The connection dropped and was made again.
    Reconnect {
        /// Milliseconds since the run started.
        t_ms: f64,
    },
}

/// The first line of the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Start {
    /// The index format ([`VERSION`]).
    pub version: u32,
    /// When the run started, UTC, RFC 3339.
    pub started_at: String,
    /// The VNC server, `HOST:PORT`.
    pub vnc: String,
    /// The name the server gave.
    pub server: String,
    /// The screen size at the start.
    pub width: u32,
    /// The screen size at the start.
    pub height: u32,
}

/// A frame line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameLine {
    /// Milliseconds since the run started.
    pub t_ms: f64,
    /// The PNG's file name, in the frames directory.
    pub file: String,
    /// Its width.
    pub width: u32,
    /// Its height.
    pub height: u32,
}

/// A mouse button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ButtonName {
    Left,
    Middle,
    Right,
    WheelUp,
    WheelDown,
}

impl ButtonName {
    /// The name for a button.
    pub fn of(b: rfb::Button) -> Self {
        match b {
            rfb::Button::Left => Self::Left,
            rfb::Button::Middle => Self::Middle,
            rfb::Button::Right => Self::Right,
            rfb::Button::WheelUp => Self::WheelUp,
            rfb::Button::WheelDown => Self::WheelDown,
        }
    }

    /// The name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::Middle => "middle",
            Self::Right => "right",
            Self::WheelUp => "wheel-up",
            Self::WheelDown => "wheel-down",
        }
    }
}

/// A pointer mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum PointerName {
    Absolute,
    Relative,
    Unknown,
}

impl PointerName {
    /// The name for a mode.
    pub fn of(m: rfb::PointerMode) -> Self {
        match m {
            rfb::PointerMode::Absolute => Self::Absolute,
            rfb::PointerMode::Relative => Self::Relative,
            rfb::PointerMode::Unknown => Self::Unknown,
        }
    }

    /// Back to the mode.
    pub fn mode(self) -> rfb::PointerMode {
        match self {
            Self::Absolute => rfb::PointerMode::Absolute,
            Self::Relative => rfb::PointerMode::Relative,
            Self::Unknown => rfb::PointerMode::Unknown,
        }
    }
}

impl Line {
    /// The line's time, milliseconds since the run started (the start line: 0).
    pub fn t_ms(&self) -> f64 {
        match self {
            Line::Start(_) => 0.0,
            Line::Frame(f) => f.t_ms,
            Line::Move { t_ms, .. }
            | Line::Button { t_ms, .. }
            | Line::Type { t_ms, .. }
            | Line::Key { t_ms, .. }
            | Line::Pointer { t_ms, .. }
            | Line::Reconnect { t_ms } => *t_ms,
        }
    }

    /// True for the input events a replay checks (buttons, typed text, keys).
    pub fn is_checked_input(&self) -> bool {
        matches!(self, Line::Button { .. } | Line::Type { .. } | Line::Key { .. })
    }

    /// What the recorded run did, for messages: `a left-button press at (10, 20)`, `typing "ada"`, `key tab`.
    pub fn describe(&self) -> String {
        match self {
            Line::Button { button, down, x, y, .. } => {
                let what = if *down { "press" } else { "release" };
                format!("a {}-button {what} at ({x}, {y})", button.as_str())
            }
            Line::Type { text, .. } => format!("typing {text:?}"),
            Line::Key { chord, .. } => format!("key {chord}"),
            Line::Move { x, y, .. } => format!("a pointer motion to ({x}, {y})"),
            Line::Frame(f) => format!("frame {}", f.file),
            Line::Pointer { .. } => "a pointer change".to_owned(),
            Line::Reconnect { .. } => "a reconnection".to_owned(),
            Line::Start(_) => "the start".to_owned(),
        }
    }
}

/// A parsed, checked index.
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    /// The first line.
    pub start: Start,
    /// Every later line, in order, each with its 1-based line number in the file.
    pub lines: Vec<(usize, Line)>,
}

/// What is wrong with a recording.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// A line of the index is not what it must be.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Index {
        /// The index file.
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// 1-based.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A frame's PNG is not what the index says.
    #[error("{}: {message}", path.display())]
    Frame {
        /// The PNG.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Parses `index.jsonl` text (`path` is only for messages) and checks it: a start line first and only there,
/// in a known version; times finite, not negative and never going back; frames with a sensible size and a plain
/// file name (no directories: a recording reads nothing outside its own directory); a frame before any click,
/// key or typed text.
pub fn parse_index(text: &str, path: &Path) -> Result<Index, RecordingError> {
    let err = |line: usize, column: usize, message: String| RecordingError::Index {
        path: path.to_owned(),
        line,
        column,
        message,
    };
    let mut start = None;
    let mut lines = Vec::new();
    let mut last_t = 0.0f64;
    let mut frames = 0usize;
    let mut count = 0usize;
    for (i, raw) in text.split('\n').enumerate() {
        let number = i + 1;
        count = number;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(raw).map_err(|e| {
            // serde_json ends its message with its own "at line 1 column N", which would contradict ours.
            let message = e.to_string();
            let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m).to_owned();
            err(number, e.column().max(1), message)
        })?;
        let t = line.t_ms();
        if !t.is_finite() || t < 0.0 {
            return Err(err(number, 1, format!("time {t} ms: expected a number of milliseconds from 0 up")));
        }
        if t < last_t && !matches!(line, Line::Start(_)) {
            return Err(err(number, 1, format!("time {t} ms goes back (the line before says {last_t} ms)")));
        }
        last_t = t;
        match line {
            Line::Start(s) => {
                if start.is_some() || !lines.is_empty() {
                    return Err(err(number, 1, "a second start line (the start must be the first line)".into()));
                }
                if s.version != VERSION {
                    return Err(err(
                        number,
                        1,
                        format!("index version {} (this vmkit reads version {VERSION})", s.version),
                    ));
                }
                check_size(s.width, s.height).map_err(|m| err(number, 1, m))?;
                start = Some(s);
            }
            other if start.is_none() => {
                return Err(err(number, 1, format!("{} before the start line", other.describe())));
            }
            other if other.is_checked_input() && frames == 0 => {
                return Err(err(number, 1, format!("{} before the first frame", other.describe())));
            }
            Line::Frame(f) => {
                check_size(f.width, f.height).map_err(|m| err(number, 1, m))?;
                check_file_name(&f.file).map_err(|m| err(number, 1, m))?;
                frames += 1;
                lines.push((number, Line::Frame(f)));
            }
            Line::Key { t_ms, chord } => {
                if chord.trim().is_empty() {
                    return Err(err(number, 1, "an empty key chord".into()));
                }
                lines.push((number, Line::Key { t_ms, chord }));
            }
            other => lines.push((number, other)),
        }
    }
    let Some(start) = start else {
        return Err(err(1, 1, "empty index: expected a start line".into()));
    };
    if frames == 0 {
        return Err(err(count.max(1), 1, "the recording has no frames".into()));
    }
    Ok(Index { start, lines })
}

fn check_size(w: u32, h: u32) -> Result<(), String> {
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(format!("screen size {w}x{h}: expected 1 to {MAX_SIDE} pixels a side"));
    }
    Ok(())
}

fn check_file_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !plain {
        return Err(format!("frame file {name:?}: expected a plain file name in the frames directory"));
    }
    Ok(())
}

/// A recording opened for replay: the checked index and where its frames are.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The frames directory.
    pub dir: PathBuf,
    /// The index.
    pub index: Index,
}

impl Recording {
    /// Opens the recording in `dir`: a debug directory (with `frames/index.jsonl`) or its `frames` directory
    /// itself. Reads the index and the header of every PNG it names, so a missing, unreadable or wrongly sized
    /// frame is reported before anything runs.
    pub fn open(dir: &Path) -> Result<Self, RecordingError> {
        let dir = if dir.join(INDEX).is_file() || !dir.join(FRAMES_DIR).is_dir() {
            dir.to_owned()
        } else {
            dir.join(FRAMES_DIR)
        };
        let index_path = dir.join(INDEX);
        let text = userfile::read_to_string(&index_path, userfile::Limit::Config)
            .map_err(|e| RecordingError::Read { path: index_path.clone(), source: e.into_io() })?;
        let index = parse_index(&text, &index_path)?;
        for (_, line) in &index.lines {
            if let Line::Frame(f) = line {
                let path = dir.join(&f.file);
                let (w, h) = image::ImageReader::open(&path)
                    .and_then(|r| r.with_guessed_format())
                    .map_err(|source| RecordingError::Read { path: path.clone(), source })?
                    .into_dimensions()
                    .map_err(|e| RecordingError::Frame { path: path.clone(), message: format!("not a PNG: {e}") })?;
                if (w, h) != (f.width, f.height) {
                    return Err(RecordingError::Frame {
                        path,
                        message: format!("the image is {w}x{h}, the index says {}x{}", f.width, f.height),
                    });
                }
            }
        }
        Ok(Self { dir, index })
    }

    /// Reads and decodes one frame, checking its size against the index.
    pub fn load_frame(&self, frame: &FrameLine, serial: u64) -> Result<rfb::Frame, RecordingError> {
        let path = self.dir.join(&frame.file);
        let bytes = userfile::read(&path, userfile::Limit::Bytes(MAX_PNG_BYTES))
            .map_err(|e| RecordingError::Read { path: path.clone(), source: e.into_io() })?;
        let bad = |message: String| RecordingError::Frame { path: path.clone(), message };
        let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Png);
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
        reader.limits(limits);
        let img = reader.decode().map_err(|e| bad(format!("cannot decode the PNG: {e}")))?.into_rgba8();
        if img.dimensions() != (frame.width, frame.height) {
            let (w, h) = img.dimensions();
            return Err(bad(format!("the image is {w}x{h}, the index says {}x{}", frame.width, frame.height)));
        }
        rfb::Frame::from_rgba(frame.width, frame.height, img.into_raw(), serial)
            .ok_or_else(|| bad("the pixels do not fit the size".into()))
    }
}

/// Writes a recording while a run goes (the live side of [`Recording`]).
#[derive(Debug)]
pub struct FrameRecorder {
    tx: Option<mpsc::SyncSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    start: Instant,
    redactor: Redactor,
    last: Option<rfb::Frame>,
    pointer: Option<(rfb::PointerMode, bool)>,
    next: u64,
}

enum Job {
    Frame(rfb::Frame, String, f64),
    Line(Line),
}

impl FrameRecorder {
    /// Starts a recording in `dir` (created if needed; an earlier recording there is replaced: its index is
    /// removed first, then its frames). `start` is the run's start, the zero of every time in the index.
    pub fn create(dir: &Path, start: Instant, redactor: Redactor, header: Start) -> Result<Self, RecordingError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| RecordingError::Read { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let index_path = dir.join(INDEX);
        match std::fs::remove_file(&index_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&index_path)(e)),
            _ => {}
        }
        for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if is_frame_name(&name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let mut index = std::fs::File::create(&index_path).map_err(io(&index_path))?;
        let first = serde_json::to_string(&Line::Start(header)).unwrap_or_default();
        writeln!(index, "{first}").map_err(io(&index_path))?;
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let dir = dir.to_owned();
        let thread = std::thread::Builder::new()
            .name("vmkit-frames".into())
            .spawn(move || write_jobs(&dir, index, &rx))
            .map_err(io(&index_path))?;
        Ok(Self { tx: Some(tx), thread: Some(thread), start, redactor, last: None, pointer: None, next: 1 })
    }

    /// Milliseconds since the run started, to the microsecond.
    fn t_ms(&self) -> f64 {
        (crate::result::ms(self.start.elapsed()) * 1000.0).round() / 1000.0
    }

    fn send(&mut self, job: Job) {
        if let Some(tx) = &self.tx
            && tx.send(job).is_err()
        {
            // The writer stopped (it logged why): record nothing more.
            self.tx = None;
        }
    }

    /// Records `frame` unless it shows the same pixels as the last one recorded, and the pointer's state when
    /// it changed.
    pub fn frame(&mut self, frame: &rfb::Frame, pointer: (rfb::PointerMode, bool)) {
        if self.pointer != Some(pointer) {
            self.pointer = Some(pointer);
            let line =
                Line::Pointer { t_ms: self.t_ms(), mode: PointerName::of(pointer.0), out_of_framebuffer: pointer.1 };
            self.send(Job::Line(line));
        }
        if self.last.as_ref().is_some_and(|l| l.serial() == frame.serial()) {
            return;
        }
        let same_pixels = self
            .last
            .as_ref()
            .is_some_and(|l| (l.width(), l.height()) == (frame.width(), frame.height()) && l.rgba() == frame.rgba());
        self.last = Some(frame.clone());
        if same_pixels {
            return;
        }
        let name = format!("{:06}.png", self.next);
        self.next += 1;
        let t = self.t_ms();
        self.send(Job::Frame(frame.clone(), name, t));
    }

    /// Records an input event (`t_ms` is filled in here; typed text is redacted).
    pub fn input(&mut self, mut line: Line) {
        let t = self.t_ms();
        match &mut line {
            Line::Move { t_ms, .. }
            | Line::Button { t_ms, .. }
            | Line::Key { t_ms, .. }
            | Line::Pointer { t_ms, .. }
            | Line::Reconnect { t_ms } => *t_ms = t,
            Line::Type { t_ms, text } => {
                *t_ms = t;
                *text = self.redactor.clean(text);
            }
            Line::Frame(f) => f.t_ms = t,
            Line::Start(_) => return,
        }
        if matches!(line, Line::Reconnect { .. }) {
            self.last = None;
        }
        self.send(Job::Line(line));
    }

    /// Waits until everything queued is on disk.
    pub fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FrameRecorder {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `NNNNNN.png`, as [`FrameRecorder`] names frames.
fn is_frame_name(name: &str) -> bool {
    name.strip_suffix(".png").is_some_and(|stem| stem.len() >= 6 && stem.bytes().all(|b| b.is_ascii_digit()))
}

fn write_jobs(dir: &Path, mut index: std::fs::File, rx: &mpsc::Receiver<Job>) {
    let index_path = dir.join(INDEX);
    for job in rx {
        let line = match job {
            Job::Frame(frame, name, t_ms) => {
                let (width, height) = (frame.width(), frame.height());
                if let Err(e) = write_png(dir, &name, frame) {
                    tracing::warn!("recording frames: {e}; the recording stops here");
                    return;
                }
                Line::Frame(FrameLine { t_ms, file: name, width, height })
            }
            Job::Line(line) => line,
        };
        let text = serde_json::to_string(&line).unwrap_or_default();
        if let Err(e) = writeln!(index, "{text}") {
            tracing::warn!("recording frames: writing {}: {e}; the recording stops here", index_path.display());
            return;
        }
    }
}

/// Encodes a frame as PNG (fast compression: this runs while the run goes) into `name`, through a temporary
/// file, so the index never names a half-written frame.
fn write_png(dir: &Path, name: &str, frame: rfb::Frame) -> Result<(), String> {
    use image::ImageEncoder;
    let (w, h) = (frame.width(), frame.height());
    let mut bytes = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new_with_quality(
        &mut bytes,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    );
    encoder.write_image(frame.rgba(), w, h, image::ExtendedColorType::Rgba8).map_err(|e| format!("{name}: {e}"))?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The header of a new recording.
pub fn start_line(vnc: &str, server: &str, (width, height): (u32, u32)) -> Start {
    Start {
        version: VERSION,
        started_at: utc(std::time::SystemTime::now()).rfc3339(),
        vnc: vnc.to_owned(),
        server: server.to_owned(),
        width,
        height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = concat!(
        r#"{"kind":"start","version":1,"started_at":"2026-01-01T00:00:00Z","vnc":"127.0.0.1:5901","server":"x","width":4,"height":2}"#,
        "\n",
        r#"{"kind":"frame","t_ms":1.5,"file":"000001.png","width":4,"height":2}"#,
        "\n",
        r#"{"kind":"move","t_ms":2,"x":1,"y":1}"#,
        "\n",
        r#"{"kind":"button","t_ms":3,"button":"left","down":true,"x":1,"y":1}"#,
        "\n",
        r#"{"kind":"key","t_ms":4,"chord":"ctrl+c"}"#,
        "\n",
    );

    fn parse(text: &str) -> Result<Index, String> {
        parse_index(text, Path::new("frames/index.jsonl")).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_a_good_index() {
        let index = parse(GOOD).expect("parses");
        assert_eq!(index.start.width, 4);
        assert_eq!(index.lines.len(), 4);
        assert_eq!(index.lines[2].0, 4);
        assert_eq!(index.lines[2].1.describe(), "a left-button press at (1, 1)");
    }

    #[test]
    fn says_where_an_index_is_wrong() {
        let header = GOOD.lines().next().unwrap_or_default();
        for (text, expect) in [
            ("", "frames/index.jsonl:1:1: empty index"),
            (r#"{"kind":"move","t_ms":2,"x":1,"y":1}"#, ":1:1: a pointer motion to (1, 1) before the start line"),
            (&format!("{header}\n"), "the recording has no frames"),
            (&format!("{header}\n{{\"kind\":\"frame\"}}"), ":2:"),
            (&format!("{header}\nnot json"), "index.jsonl:2:2: expected ident"),
            (&GOOD.replace("\"version\":1", "\"version\":9"), ":1:1: index version 9"),
            (&GOOD.replace("000001.png", "../../etc/x.png"), ":2:1: frame file \"../../etc/x.png\""),
            (&GOOD.replace("\"t_ms\":4", "\"t_ms\":0.5"), ":5:1: time 0.5 ms goes back"),
            (&GOOD.replace("\"t_ms\":4", "\"t_ms\":-1"), ":5:1: time -1 ms"),
            (&GOOD.replace("\"width\":4,\"height\":2}", "\"width\":0,\"height\":2}"), "screen size 0x2"),
            (&format!("{GOOD}{header}\n"), ":6:1: a second start line"),
            (&GOOD.replace("ctrl+c", " "), "an empty key chord"),
            (
                &GOOD.replace(r#""kind":"frame""#, r#""kind":"type","text":"x""#),
                ":2:1: typing \"x\" before the first frame",
            ),
        ] {
            let e = parse(text).expect_err(text);
            assert!(e.contains(expect), "{e:?} lacks {expect:?}");
        }
    }

    #[test]
    fn records_and_reopens() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join(FRAMES_DIR);
        let mut redactor = Redactor::default();
        redactor.add("hunter2");
        let mut rec =
            FrameRecorder::create(&dir, Instant::now(), redactor, start_line("h:1", "srv", (3, 2))).expect("recorder");
        let a = rfb::Frame::from_rgba(3, 2, vec![10; 24], 1).expect("frame");
        let b = rfb::Frame::from_rgba(3, 2, vec![20; 24], 2).expect("frame");
        let pointer = (rfb::PointerMode::Absolute, true);
        rec.frame(&a, pointer);
        rec.frame(&a, pointer); // the same serial: not again
        rec.frame(&rfb::Frame::from_rgba(3, 2, vec![10; 24], 5).expect("frame"), pointer); // same pixels
        rec.input(Line::Type { t_ms: 0.0, text: "login hunter2".into() });
        rec.frame(&b, pointer);
        rec.finish();
        let recording = Recording::open(tmp.path()).expect("opens");
        let kinds: Vec<String> = recording.index.lines.iter().map(|(_, l)| l.describe()).collect();
        assert_eq!(kinds, ["a pointer change", "frame 000001.png", "typing \"login <redacted>\"", "frame 000002.png"]);
        let Line::Frame(f) = &recording.index.lines[3].1 else { panic!("a frame") };
        let frame = recording.load_frame(f, 9).expect("loads");
        assert_eq!(frame.rgba(), b.rgba());

        // A new recording in the same place replaces the old one.
        let rec = FrameRecorder::create(&dir, Instant::now(), Redactor::default(), start_line("h:1", "s", (3, 2)));
        drop(rec);
        assert!(!dir.join("000002.png").exists());
        assert!(Recording::open(&dir).is_err_and(|e| e.to_string().contains("no frames")));
    }

    #[test]
    fn a_wrong_frame_is_named() {
        let tmp = tempfile::tempdir().expect("tmp");
        std::fs::write(tmp.path().join(INDEX), GOOD).expect("index");
        let missing = Recording::open(tmp.path()).expect_err("no png").to_string();
        assert!(missing.contains("000001.png"), "{missing}");
        std::fs::write(tmp.path().join("000001.png"), b"not a png").expect("write");
        let garbage = Recording::open(tmp.path()).expect_err("garbage").to_string();
        assert!(garbage.contains("000001.png: not a PNG"), "{garbage}");
        image::RgbaImage::new(5, 2).save(tmp.path().join("000001.png")).expect("png");
        let size = Recording::open(tmp.path()).expect_err("size").to_string();
        assert!(size.contains("the image is 5x2, the index says 4x2"), "{size}");
    }
}
