//! The crate's error type.
//!
//! One enum for everything that can fail while reading a screen, so callers (the CLI, the automation engine)
//! can tell a broken installation (no English traineddata) from a bad input (a pixel buffer that does not fit its
//! claimed size) and print a message that says what to do.

use thiserror::Error;

/// What went wrong in the OCR layer.
#[derive(Debug, Error)]
pub enum OcrError {
    /// Tesseract could not load its language data.
    #[error(
        "Tesseract could not load the {language:?} language data from {datapath}: install the Debian package \
         tesseract-ocr-{language} (or set TESSDATA_PREFIX to a directory holding {language}.traineddata)"
    )]
    TessdataMissing {
        /// Language code, e.g. `eng`.
        language: String,
        /// Where Tesseract looked (the `TESSDATA_PREFIX` value or Tesseract's built-in default).
        datapath: String,
    },

    /// A language code or data path holds a NUL byte.
    #[error("invalid Tesseract setting {what}: {value:?} holds a NUL byte")]
    InvalidSetting {
        /// Which setting.
        what: &'static str,
        /// The rejected value.
        value: String,
    },

    /// A pixel buffer does not match the dimensions claimed for it.
    #[error("a {width}x{height} {layout} frame with {stride} bytes per row needs {needed} bytes, got {got}")]
    FrameSize {
        /// Claimed width.
        width: u32,
        /// Claimed height.
        height: u32,
        /// Claimed pixel layout.
        layout: &'static str,
        /// Claimed bytes per row.
        stride: usize,
        /// Bytes the claim requires.
        needed: u64,
        /// Bytes given.
        got: usize,
    },

    /// A frame larger than Tesseract can take (its API counts pixels in C `int`s).
    #[error("a {width}x{height} frame is larger than Tesseract accepts")]
    FrameTooLarge {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },

    /// Tesseract failed while recognising an image.
    #[error("Tesseract failed to {stage} a {width}x{height} image")]
    Recognition {
        /// What Tesseract was doing: `set`, `recognise` or `report`.
        stage: &'static str,
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },

    /// A recognition worker thread died (a bug in Tesseract or here).
    #[error("an OCR worker thread panicked")]
    WorkerPanicked,
}
