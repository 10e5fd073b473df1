//! One Tesseract instance, fed grey pixels, answering with words.
//!
//! The `tesseract` crate's builder API consumes the handle on every call and drops it on error; an engine that
//! is loaded once and reused for thousands of reads needs `&mut` access instead, so this wraps the crate's
//! re-exported `plumbing::TessBaseApi` directly. Results come back as Tesseract's TSV (word boxes, confidences,
//! block/paragraph/line ids), which is parsed here; no `unsafe` is needed.

use std::ffi::CString;

use tesseract::PageSegMode;
use tesseract::plumbing::TessBaseApi;

use crate::error::OcrError;

/// Where Tesseract looks for language data when `TESSDATA_PREFIX` is not set (Debian's libtesseract 5).
pub(crate) const DEFAULT_TESSDATA: &str = "/usr/share/tesseract-ocr/5/tessdata";

/// A word as Tesseract reports it, in the pixel coordinates of the image it was given.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawWord {
    pub block: u32,
    pub par: u32,
    pub line: u32,
    pub left: i64,
    pub top: i64,
    pub width: i64,
    pub height: i64,
    pub conf: f32,
    pub text: String,
}

/// A loaded Tesseract.
pub(crate) struct Tess {
    api: TessBaseApi,
}

impl std::fmt::Debug for Tess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tess")
    }
}

impl Tess {
    /// Loads `language` from `datapath` (or Tesseract's default: `TESSDATA_PREFIX`, else Debian's directory).
    pub(crate) fn new(datapath: Option<&str>, language: &str) -> Result<Self, OcrError> {
        let lang = CString::new(language)
            .map_err(|_| OcrError::InvalidSetting { what: "language", value: language.to_owned() })?;
        let path = datapath
            .map(|p| {
                CString::new(p).map_err(|_| OcrError::InvalidSetting { what: "tessdata path", value: p.to_owned() })
            })
            .transpose()?;
        let mut api = TessBaseApi::create();
        api.init_2(path.as_deref(), Some(&lang)).map_err(|_| OcrError::TessdataMissing {
            language: language.to_owned(),
            datapath: datapath
                .map(str::to_owned)
                .or_else(|| std::env::var("TESSDATA_PREFIX").ok())
                .unwrap_or_else(|| DEFAULT_TESSDATA.to_owned()),
        })?;
        let mut tess = Self { api };
        // Tesseract writes debug chatter to stderr; nothing it says there is for our users.
        tess.set("debug_file", "/dev/null");
        Ok(tess)
    }

    fn set(&mut self, name: &str, value: &str) {
        if let (Ok(n), Ok(v)) = (CString::new(name), CString::new(value)) {
            // An unknown variable only means an older Tesseract; nothing depends on it.
            let _ = self.api.set_variable(&n, &v);
        }
    }

    /// Recognises a packed image (`bytes_per_pixel` 1 = grey, 3 = RGB, 4 = RGBA) with page segmentation `psm`;
    /// `dpi` tells Tesseract the resolution (`None`: it estimates one).
    pub(crate) fn recognise(
        &mut self,
        px: &[u8],
        width: u32,
        height: u32,
        bytes_per_pixel: u32,
        psm: PageSegMode,
        dpi: Option<u32>,
    ) -> Result<Vec<RawWord>, OcrError> {
        let err = |stage| OcrError::Recognition { stage, width, height };
        let w = i32::try_from(width).map_err(|_| OcrError::FrameTooLarge { width, height })?;
        let h = i32::try_from(height).map_err(|_| OcrError::FrameTooLarge { width, height })?;
        let bpp = i32::try_from(bytes_per_pixel).map_err(|_| err("set"))?;
        let line = w.checked_mul(bpp).ok_or(OcrError::FrameTooLarge { width, height })?;
        h.checked_mul(line).ok_or(OcrError::FrameTooLarge { width, height })?;
        if width == 0 || height == 0 {
            return Ok(Vec::new());
        }
        self.api.set_image(px, w, h, bpp, line).map_err(|_| err("set"))?;
        if let Some(dpi) = dpi.and_then(|d| i32::try_from(d).ok()) {
            self.api.set_source_resolution(dpi);
        }
        self.api.set_page_seg_mode(psm.as_tess_page_seg_mode());
        self.api.recognize().map_err(|_| err("recognise"))?;
        let tsv = self.api.get_tsv_text(0).map_err(|_| err("report"))?;
        let text = AsRef::<std::ffi::CStr>::as_ref(&tsv).to_string_lossy();
        Ok(parse_tsv(&text))
    }
}

/// Parses the word rows (level 5) of Tesseract's TSV output; rows that do not parse are skipped.
pub(crate) fn parse_tsv(tsv: &str) -> Vec<RawWord> {
    let mut words = Vec::new();
    for line in tsv.lines() {
        let f: Vec<&str> = line.splitn(12, '\t').collect();
        if f.len() < 12 || f[0] != "5" {
            continue;
        }
        let num = |i: usize| f[i].trim().parse::<i64>().ok();
        let (Some(block), Some(par), Some(ln), Some(left), Some(top), Some(width), Some(height)) =
            (num(2), num(3), num(4), num(6), num(7), num(8), num(9))
        else {
            continue;
        };
        let Ok(conf) = f[10].trim().parse::<f32>() else { continue };
        let text = f[11].trim();
        if text.is_empty() || conf < 0.0 || width <= 0 || height <= 0 {
            continue;
        }
        words.push(RawWord {
            block: u32::try_from(block).unwrap_or(0),
            par: u32::try_from(par).unwrap_or(0),
            line: u32::try_from(ln).unwrap_or(0),
            left,
            top,
            width,
            height,
            conf,
            text: text.to_owned(),
        });
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_word_rows_are_parsed_and_others_skipped() {
        let tsv = "1\t1\t0\t0\t0\t0\t0\t0\t640\t480\t-1\t\n\
                   4\t1\t1\t1\t1\t0\t10\t10\t100\t20\t-1\t\n\
                   5\t1\t1\t1\t1\t1\t10\t10\t40\t20\t96.5\tWelcome\n\
                   5\t1\t1\t1\t1\t2\t55\t10\t20\t20\t91\tto\n\
                   5\t1\t1\t1\t1\t3\t80\t10\t20\t20\t-1\t \n\
                   5\t1\t2\tx\t1\t1\t10\t10\t40\t20\t96.5\tbroken\n";
        let words = parse_tsv(tsv);
        assert_eq!(words.len(), 2);
        assert_eq!(words[0].text, "Welcome");
        assert_eq!((words[0].left, words[0].top, words[0].width, words[0].height), (10, 10, 40, 20));
        assert!((words[0].conf - 96.5).abs() < 1e-3);
        assert_eq!((words[1].block, words[1].par, words[1].line), (1, 1, 1));
    }
}
