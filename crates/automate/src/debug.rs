//! Debug output (`--debug [DIR]`): per acted-on screen `NNN-<step>.png` (raw), `NNN-<step>-annotated.png` and
//! `NNN-<step>-ocr.json`, a running `automation.log`, and at the end `report.html`.
//!
//! `NNN` is the step's 1-based number in `boot_commands`, so files sort in script order and match the log and
//! the report; `<step>` is the keyword and the searched text made file-name safe. Without a directory, a fresh
//! `unattended-YYYYMMDD-HHMMSS` under the temp dir is used (the original runner's naming, UTC). Log lines go
//! through the [`Redactor`], and files are written to a temporary name and renamed, so a reader never sees half
//! a file. The `frames/` recording that `vmkit automate replay` reads is written beside these by
//! [`crate::recording::FrameRecorder`].

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use image::RgbaImage;

use crate::annotate::{Marks, annotate};
use crate::redact::Redactor;
use crate::result::{OcrDump, OcrText, RunResult, ScreenFiles};
use crate::script::{Action, Step};
use crate::time::utc;

/// Writing the debug output failed.
#[derive(Debug, thiserror::Error)]
#[error("debug output: {doing} {}: {source}", path.display())]
pub struct DebugError {
    doing: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

/// Writes debug files into one directory.
#[derive(Debug)]
pub struct DebugRecorder {
    dir: PathBuf,
    log: File,
    redactor: Redactor,
    start: Instant,
}

/// `<temp dir>/unattended-YYYYMMDD-HHMMSS` for now (UTC).
pub fn default_dir() -> PathBuf {
    std::env::temp_dir().join(format!("unattended-{}", utc(SystemTime::now()).compact()))
}

impl DebugRecorder {
    /// Opens (creating it if needed) `dir`, or a fresh timestamped directory under the temp dir.
    pub fn create(dir: Option<&Path>, redactor: Redactor) -> Result<Self, DebugError> {
        let dir = match dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|source| DebugError {
                    doing: "creating",
                    path: d.to_owned(),
                    source,
                })?;
                d.to_owned()
            }
            None => fresh_dir(&default_dir())?,
        };
        let log_path = dir.join("automation.log");
        let log = File::options().create(true).append(true).open(&log_path).map_err(|source| DebugError {
            doing: "opening",
            path: log_path,
            source,
        })?;
        Ok(Self { dir, log, redactor, start: Instant::now() })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends a line to `automation.log`: wall-clock time, seconds since the start, the (redacted) message.
    pub fn log(&mut self, message: &str) {
        let line = format!(
            "{} +{:>8.3}s {}\n",
            utc(SystemTime::now()).rfc3339_millis(),
            self.start.elapsed().as_secs_f64(),
            self.redactor.clean(message)
        );
        if let Err(e) = self.log.write_all(line.as_bytes()) {
            tracing::warn!("writing automation.log: {e}");
        }
    }

    /// Saves the screen a step acted on: raw, annotated and OCR JSON.
    pub fn save_screen(&self, step: &Step, screen: &RgbaImage, marks: &Marks<'_>) -> Result<ScreenFiles, DebugError> {
        let stem = file_stem(step, &self.redactor);
        let files = ScreenFiles {
            raw: format!("{stem}.png"),
            annotated: format!("{stem}-annotated.png"),
            ocr_json: format!("{stem}-ocr.json"),
        };
        self.write_png(&files.raw, screen)?;
        self.write_png(&files.annotated, &annotate(screen, marks))?;
        let json = serde_json::to_vec_pretty(&OcrDump { texts: marks.words }).unwrap_or_default();
        self.write_file(&files.ocr_json, &json)?;
        Ok(files)
    }

    /// Writes `report.html` and returns its path.
    pub fn write_report(&self, result: &RunResult) -> Result<PathBuf, DebugError> {
        self.write_file("report.html", crate::report::render(result).as_bytes())?;
        Ok(self.dir.join("report.html"))
    }

    fn write_png(&self, name: &str, img: &RgbaImage) -> Result<(), DebugError> {
        let mut bytes = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).map_err(|e| DebugError {
            doing: "encoding",
            path: self.dir.join(name),
            source: std::io::Error::other(e),
        })?;
        self.write_file(name, &bytes)
    }

    fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), DebugError> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &path)).map_err(|source| DebugError {
            doing: "writing",
            path,
            source,
        })
    }
}

/// Creates `base`, or `base-2`, `base-3`, ... if it exists.
fn fresh_dir(base: &Path) -> Result<PathBuf, DebugError> {
    let mut candidate = base.to_owned();
    for n in 2..1000 {
        match std::fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                candidate = PathBuf::from(format!("{}-{n}", base.display()));
            }
            Err(source) => return Err(DebugError { doing: "creating", path: candidate, source }),
        }
    }
    Err(DebugError {
        doing: "creating",
        path: base.to_owned(),
        source: std::io::Error::other("too many runs this second"),
    })
}

/// `NNN-<keyword>[-<text>]`, safe as a file name; a secret in the text (a script waiting for the password it
/// typed) is masked first, so it never becomes part of a file name.
pub fn file_stem(step: &Step, redactor: &Redactor) -> String {
    let text = match &step.action {
        Action::Wait(w) => w.target.patterns.first().map(|p| p.describe()),
        Action::Click(c) => c.target.patterns.first().map(|p| p.describe()),
        Action::ClickAt(c) => Some(format!("{}x{}", c.point.x, c.point.y)),
        Action::MoveMouse(p) => Some(format!("{}x{}", p.x, p.y)),
        Action::Key(k) | Action::Hotkey(k) => Some(k.spec.clone()),
        Action::Type(_) | Action::Delay(_) => None,
    };
    let mut stem = format!("{:03}-{}", step.number, step.action.keyword().replace('_', "-"));
    if let Some(text) = text.map(|t| redactor.clean(&t)) {
        let safe: String = text
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .take(30)
            .collect();
        let safe = safe.trim_matches('_');
        if !safe.is_empty() {
            stem.push('-');
            stem.push_str(safe);
        }
    }
    stem
}

/// Converts recognised words to the OCR JSON entries (top to bottom, left to right).
pub fn sorted_texts(mut texts: Vec<OcrText>) -> Vec<OcrText> {
    texts.sort_by_key(|t| (t.bbox.y, t.bbox.x));
    texts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::BBox;

    #[test]
    fn file_names_follow_the_spec() {
        let s = crate::load_str(
            "boot_commands:\n  - wait: 'Select Your Country or Region'\n  - click: {text: 'I Agree'}\n  - click_at: {x: 5, y: 6}\n  - type: secret\n",
            Path::new("t.yaml"),
        )
        .expect("loads");
        let stems: Vec<String> = s.steps.iter().map(|st| file_stem(st, &Redactor::default())).collect();
        assert_eq!(
            stems,
            ["001-wait-Select_Your_Country_or_Region", "002-click-I_Agree", "003-click-at-5x6", "004-type"]
        );
    }

    #[test]
    fn writes_screens_log_and_report() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut redactor = Redactor::default();
        redactor.add("hunter2");
        let mut rec = DebugRecorder::create(Some(tmp.path()), redactor).expect("recorder");
        rec.log("typing hunter2 into the field");
        let s = crate::load_str("boot_commands:\n  - click: Continue\n", Path::new("t.yaml")).expect("loads");
        let screen = RgbaImage::new(64, 32);
        let words = vec![OcrText {
            text: "Continue".into(),
            confidence: 0.95,
            bbox: BBox { x: 2, y: 3, width: 40, height: 10 },
        }];
        let files =
            rec.save_screen(&s.steps[0], &screen, &Marks { words: &words, ..Default::default() }).expect("save");
        assert_eq!(files.raw, "001-click-Continue.png");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tmp.path().join(&files.ocr_json)).expect("json")).expect("parse");
        assert_eq!(json["texts"][0]["text"], "Continue");
        assert_eq!(json["texts"][0]["bbox"]["width"], 40);
        assert!((json["texts"][0]["confidence"].as_f64().expect("f64") - 0.95).abs() < 1e-6);
        let img = image::open(tmp.path().join(&files.annotated)).expect("png");
        assert_eq!((img.width(), img.height()), (64, 32));
        let log = std::fs::read_to_string(tmp.path().join("automation.log")).expect("log");
        assert!(log.contains("typing <redacted> into the field") && !log.contains("hunter2"), "{log}");
    }
}
