//! What a run did: the typed result that `--json` prints, `automation.log` narrates and `report.html` renders.
//!
//! One model feeds all three outputs so they never disagree. Every string in it has already been through the
//! [`crate::redact::Redactor`] (typed secrets and the health-check password never reach this model), so the
//! renderers need no knowledge of secrets. Times are milliseconds as floats, which JSON and humans both read.

use std::path::PathBuf;

use serde::Serialize;

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// The script file.
    pub script: PathBuf,
    /// The VNC server, `HOST:PORT` (in a replay: the server the recording was made from).
    pub vnc: String,
    /// The recording replayed (`vmkit automate replay`); `null` for a live run.
    pub frames: Option<PathBuf>,
    /// When the run started, UTC, RFC 3339.
    pub started_at: String,
    /// Total wall time.
    pub duration_ms: f64,
    /// Overall outcome.
    pub outcome: Outcome,
    /// Why the run ended as it did; in JSON the `exit_code` the documented contract gives it (0, 1 or 2).
    #[serde(rename = "exit_code")]
    pub verdict: Verdict,
    /// Why the run failed, when it did.
    pub error: Option<String>,
    /// Every step of the script, including those not reached.
    pub steps: Vec<StepResult>,
    /// The SSH check, if the script has one and it was reached.
    pub health_check: Option<HealthResult>,
    /// How many times the VNC connection was re-established.
    pub reconnects: u32,
    /// OCR passes over the whole run (each pass reads only the screen regions that changed).
    pub ocr_passes: u64,
    /// Tesseract calls over the whole run (a pass answered from the cache makes none).
    pub tesseract_calls: u64,
    /// Where debug files went, if `--debug` was given.
    pub debug_dir: Option<PathBuf>,
}

/// How a run ended, for the caller to turn into an exit status. In the JSON result it is the field `exit_code`
/// with the runner's documented numbers (0 passed, 1 failed, 2 bad input); the binary maps it to its own exit
/// codes (which are the same numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every step and the health check passed.
    Passed,
    /// A step or the health check failed, or the connection was lost for good.
    Failed,
    /// Bad input: the script, the arguments, the VNC credentials, a recording that cannot be read.
    BadInput,
}

impl Verdict {
    /// The number the JSON result's `exit_code` field carries.
    pub fn json_code(self) -> u8 {
        match self {
            Verdict::Passed => 0,
            Verdict::Failed => 1,
            Verdict::BadInput => 2,
        }
    }
}

impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.json_code())
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.json_code())
    }
}

/// Overall or per-step outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done as asked.
    Passed,
    /// Tried and failed (text not found, health check refused, connection lost for good, ...).
    Failed,
    /// Not reached because an earlier step failed.
    NotRun,
}

impl Outcome {
    /// Lower-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::NotRun => "not run",
        }
    }
}

/// One step.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// 1-based position in `boot_commands`.
    pub number: usize,
    /// Line of the step in the script.
    pub line: u64,
    /// The step's keyword (`wait`, `click`, ...).
    pub action: &'static str,
    /// One-line summary, secrets redacted.
    pub summary: String,
    /// The author's `description`, if any.
    pub description: Option<String>,
    /// Start, relative to the run's start.
    pub started_ms: f64,
    /// How long the step took.
    pub duration_ms: f64,
    /// What happened.
    pub outcome: Outcome,
    /// A short note: where the text was found, what was clicked, ...
    pub detail: Option<String>,
    /// The text that matched, for `wait` and `click`.
    pub matched: Option<OcrText>,
    /// The matching tier that found it: `exact`, `substring`, `spaceless`, `near`, `regex`, or `lookalike` (only
    /// where the script allows it).
    pub tier: Option<ocr::matching::MatchKind>,
    /// Where the pointer clicked or moved, in framebuffer pixels.
    pub point: Option<PointXY>,
    /// For `click` and `click_at`: how the click went (attempts, whether the screen reacted).
    pub click: Option<ClickResult>,
    /// OCR passes during this step (0 while the screen does not change).
    pub ocr_passes: u64,
    /// Tesseract calls during this step.
    pub tesseract_calls: u64,
    /// Reconnections during this step.
    pub reconnects: u32,
    /// Why it failed, with what was searched for and what was there instead.
    pub failure: Option<Failure>,
    /// Debug files of the screen the step acted on (names relative to the debug directory).
    pub screen: Option<ScreenFiles>,
}

/// How a click went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClickResult {
    /// Clicks made (1 when the first took effect; more when earlier ones had no visible effect).
    pub attempts: u32,
    /// Whether the screen was watched for the click's effect (false with `expect_change: false`).
    pub checked: bool,
    /// Whether the screen changed after the last click; `None` when not checked.
    pub took_effect: Option<bool>,
    /// How long after the (last) release the screen changed.
    pub reaction_ms: Option<f64>,
    /// The guest's pointer as the server said: `absolute`, `relative` or `unknown` (treated as absolute).
    pub pointer: &'static str,
}

/// A point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PointXY {
    /// Pixels from the left.
    pub x: i64,
    /// Pixels from the top.
    pub y: i64,
}

/// A rectangle in framebuffer pixels, as the OCR JSON writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BBox {
    /// Left.
    pub x: u32,
    /// Top.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// A recognised piece of text: the `texts` entries of `NNN-<step>-ocr.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OcrText {
    /// The text.
    pub text: String,
    /// Recognition confidence, 0…1.
    pub confidence: f32,
    /// Where it is.
    pub bbox: BBox,
}

/// The OCR JSON file: `{"texts": [...]}`.
#[derive(Debug, Clone, Serialize)]
pub struct OcrDump<'a> {
    /// Every recognised word, top to bottom, left to right.
    pub texts: &'a [OcrText],
}

/// Why a step failed.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// What went wrong.
    pub message: String,
    /// The patterns searched for (`/.../` for regexes).
    pub searched: Vec<String>,
    /// The region searched, if limited.
    pub region: Option<BBox>,
    /// The minimum confidence asked for, if any.
    pub min_confidence: Option<f32>,
    /// How many matches there were (for an `index` out of range).
    pub matches: Option<usize>,
    /// Screen texts most like what was searched for, best first.
    pub candidates: Vec<Candidate>,
}

/// A screen text that resembles a searched pattern.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// The text on screen (a word or a run of words of one line).
    pub text: String,
    /// How alike, 0…1.
    pub similarity: f32,
    /// OCR confidence, 0…1.
    pub confidence: f32,
    /// Where.
    pub bbox: BBox,
}

/// Debug files of one screen.
#[derive(Debug, Clone, Serialize)]
pub struct ScreenFiles {
    /// The raw screenshot.
    pub raw: String,
    /// With word boxes, labels and the click crosshair.
    pub annotated: String,
    /// The recognised words.
    pub ocr_json: String,
}

/// The SSH check.
#[derive(Debug, Clone, Serialize)]
pub struct HealthResult {
    /// `HOST:PORT`.
    pub target: String,
    /// Login.
    pub user: String,
    /// The command run.
    pub command: String,
    /// Passed or failed.
    pub outcome: Outcome,
    /// Total time.
    pub duration_ms: f64,
    /// Each attempt.
    pub attempts: Vec<AttemptResult>,
    /// The command's output on success (truncated, redacted).
    pub output: Option<String>,
}

/// One SSH attempt.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptResult {
    /// 1-based.
    pub number: u32,
    /// How long it took.
    pub duration_ms: f64,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Milliseconds of a duration, as a float.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
