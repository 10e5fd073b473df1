//! Screen text recognition for vmkit, on Tesseract.
//!
//! vmkit reads VM screens to decide what to click and when a step is done, so this crate is built for screens,
//! not scanned pages: small anti-aliased UI fonts, light text on dark or coloured bars, buttons scattered over a
//! mostly empty desktop, and the same screen read many times a second while little of it changes.
//!
//! - [`Engine`] loads Tesseract once (one instance per worker thread) and reads a [`Frame`] — any RGB, RGBX,
//!   BGRX or grey pixel buffer, borrowed without copying — into a [`ScreenText`]: words with confidences and
//!   boxes in framebuffer pixels, grouped into lines. Preprocessing ([`prep`]) finds the pieces of the screen
//!   that hold text, normalises each to dark-on-white, upscales small text, and only those pieces are read;
//!   a cache keyed by their pixels makes unchanged pieces free, and [`Engine::reread`] uses the damage an RFB
//!   client reports to touch nothing else.
//! - [`matching`] finds phrases and regular expressions in a [`ScreenText`] the way the automation engine's
//!   scripts need: runs of consecutive words in one line, tiers from exact over substring to the fallbacks for
//!   OCR slips (spacing ignored, a misread letter in a long phrase), top-to-bottom order, click points, and the
//!   closest candidates for a failure report. `vmkit screen find` and the automation engine share it, so the
//!   command shows exactly what a script would match.
//! - [`console`] reads text consoles (VGA text mode, the Linux framebuffer console, BIOS and boot-loader screens)
//!   exactly, by matching each character cell against the glyphs of the fonts installed on the machine; the
//!   engine uses it instead of Tesseract whenever a frame is such a console.
//! - [`omp`] keeps Debian's OpenMP build of Tesseract from running 6× slower on small machines.

pub mod console;
pub mod engine;
mod error;
mod frame;
mod geom;
pub mod matching;
pub mod omp;
pub mod prep;
mod tess;
mod text;

pub use engine::{Engine, EngineOptions, OpenMp, PageMode, ReadStats};
pub use error::OcrError;
pub use frame::{Frame, PixelLayout};
pub use geom::{Point, Rect};
pub use text::{Line, ScreenText, Word};
