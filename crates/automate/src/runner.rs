//! Running a script against a VNC server: the step loop, reconnects, the health check, and the run result.
//!
//! Behaviour that peers get wrong and this runner is built around:
//! - `wait` and `click` sleep until the screen changes (RFB damage) and re-read only what changed; an unchanged
//!   screen costs no OCR at all (see [`crate::screen`]);
//! - `click` first waits (briefly, configurable) for its text to appear and for the matched area to stop
//!   changing (a still screen, [`ClickPolicy::still`]), so it neither fails on a screen that is still drawing
//!   nor clicks a button mid-animation or before an emulated installer accepts input;
//! - a click rests on its target, holds the button, and checks that the screen reacted; a click with no visible
//!   effect is made again a bounded number of times, and the pointer is moved away only once the guest has had
//!   time to see the release (see [`ClickPolicy`] and [`rfb::ClickTiming`] for why);
//! - a dropped VNC connection is re-established with bounded backoff and the interrupted step is run again
//!   (a `wait` keeps its original deadline); nothing is skipped;
//! - the screen is a [`Source`]: a live VNC server, or a recording of an earlier run ([`mod@crate::replay`]),
//!   which this same runner drives in the recording's own time; a `--debug` run records its frames and input;
//! - every outcome is recorded in one [`RunResult`], from which `--json`, `automation.log` and `report.html`
//!   are produced, with secrets scrubbed.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use image::RgbaImage;
use ocr::ScreenText;
use ocr::matching::{Match, MatchKind};

use crate::annotate::Marks;
use crate::debug::DebugRecorder;
use crate::find;
use crate::recording::FrameRecorder;
use crate::redact::Redactor;
use crate::replay::ReplaySource;
use crate::result::{
    AttemptResult, BBox, ClickResult, Failure, HealthResult, OcrText, Outcome, PointXY, RunResult, ScreenFiles,
    StepResult, Verdict, ms,
};
use crate::screen::{ReconnectPolicy, Screen, ScreenError};
use crate::script::{
    Action, Click, ClickCheck, DEFAULT_CLICK_TIMEOUT, DEFAULT_SSH_PORT, MouseButton, Point, Script, Secret, Step,
    Target,
};
use crate::source::{Source, VncSource};
use ssh::{SshTarget, run_health_check};

/// Longest wait for hover effects to finish after the pointer reaches a click's target.
const HOVER_MAX: Duration = Duration::from_secs(1);
/// Half the side of the box around a click point left out of the reaction check when the server paints the
/// pointer into the screen image (the pointer itself may be redrawn there).
const POINTER_BOX: u32 = 20;
/// How long a screen must stay unchanged, with the searched text missing, before it is read once in full.
const QUIET: Duration = Duration::from_millis(500);
/// How alike a text on a quiet screen must be to a missed target to get a second look (`Screen::second_look`).
const SECOND_LOOK: f32 = 0.5;
/// How far below a clicked text the pointer is parked.
const PARK_BELOW: u32 = 24;
/// Closest candidates listed for a failed search.
const CANDIDATES: usize = 5;

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// VNC server, `HOST:PORT`.
    pub vnc: String,
    /// VNC password, if the server asks for one.
    pub vnc_password: Option<Secret>,
    /// SSH host for the health check (from `--ssh` or `--vm-ip`); else the script's `host`, else the VNC host.
    pub ssh_host: Option<String>,
    /// SSH port (from `--ssh HOST:PORT` or `--ssh-port`); else the script's `port`, else 22.
    pub ssh_port: Option<u16>,
    /// Write debug output: `Some(None)` into a fresh directory under the temp dir, `Some(Some(dir))` into `dir`.
    pub debug: Option<Option<PathBuf>>,
    /// How long a `click` waits for its text when the step does not say.
    pub click_timeout: Duration,
    /// Reconnect behaviour.
    pub reconnect: ReconnectPolicy,
    /// RFB timeout for connecting and for each message.
    pub vnc_timeout: Duration,
    /// Key pacing for `type`.
    pub typing: rfb::TypeOptions,
    /// Replaces the script's `boot_wait`.
    pub boot_wait: Option<Duration>,
    /// Keep the pointer off the text being read, on servers that paint it into the screen image (where it
    /// would hide letters from OCR): after clicking a text, move it just below that text, and if a search
    /// misses before the runner has placed the pointer at all, move it to the screen's right edge. Servers that
    /// send the pointer's shape separately (the RFB Cursor pseudo-encodings: Xvnc, x11vnc, QEMU with a guest's
    /// hardware cursor) keep it out of the screen image, and the pointer is left where it clicked.
    pub park_pointer: bool,
    /// How clicks are made and checked.
    pub clicks: ClickPolicy,
    /// Read changes first (default on): what is on the screen when the run connects is read at idle priority
    /// in the background while every change is read at once (see [`crate::screen`]). Off, the first look reads
    /// the whole screen before anything else, as replays always do.
    pub changes_first: bool,
}

/// How clicks are made and checked (the steps' `expect_change`, `retries` and `still` keys override).
///
/// A click that reports "passed" must have taken effect: the runner watches the screen after each click and,
/// when nothing changed within [`ClickPolicy::confirm`], clicks again, at most [`ClickPolicy::retries`] times,
/// then fails the step. Any change of the screen's pixels counts (a page change, a button's pressed look, a
/// focus ring, a caret that starts blinking), except where the pointer itself may be drawn; so on a screen
/// that animates by itself a click that did nothing goes unnoticed, and a click meant to change nothing
/// (`expect_change: false`) is neither watched nor repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClickPolicy {
    /// Press and hold timing.
    pub timing: rfb::ClickTiming,
    /// How long the target's area must have been unchanged before a `click` (default 300 ms): installers
    /// under emulation draw a page before they accept input.
    pub still: Duration,
    /// After moving onto the target, wait until the screen has been quiet this long (at most a second), so
    /// hover effects are not taken for the click's effect (default 100 ms).
    pub hover: Duration,
    /// How long to watch for a visible effect after the release (default 2 s; zero: do not watch).
    pub confirm: Duration,
    /// Clicks made again when one has no visible effect (default 2).
    pub retries: u32,
    /// Least time between a release and parking the pointer (default 300 ms): a slowly polled USB tablet would
    /// otherwise report the release where the pointer was parked.
    pub park_delay: Duration,
}

impl Default for ClickPolicy {
    fn default() -> Self {
        Self {
            timing: rfb::ClickTiming::default(),
            still: Duration::from_millis(300),
            hover: Duration::from_millis(100),
            confirm: Duration::from_secs(2),
            retries: 2,
            park_delay: Duration::from_millis(300),
        }
    }
}

impl RunOptions {
    /// Defaults for a server at `vnc`.
    pub fn new(vnc: impl Into<String>) -> Self {
        Self {
            vnc: vnc.into(),
            vnc_password: None,
            ssh_host: None,
            ssh_port: None,
            debug: None,
            click_timeout: DEFAULT_CLICK_TIMEOUT,
            reconnect: ReconnectPolicy::default(),
            vnc_timeout: Duration::from_secs(10),
            typing: rfb::TypeOptions::default(),
            boot_wait: None,
            park_pointer: true,
            clicks: ClickPolicy::default(),
            changes_first: true,
        }
    }

    /// The host part of [`RunOptions::vnc`].
    pub fn vnc_host(&self) -> String {
        let v = self.vnc.trim();
        if let Some(rest) = v.strip_prefix('[')
            && let Some((host, _)) = rest.split_once(']')
        {
            return host.to_owned();
        }
        v.rsplit_once(':').map_or(v, |(h, _)| h).to_owned()
    }
}

/// Why a step did not pass.
enum StepError {
    /// The connection dropped: reconnect and run the step again.
    Lost(ScreenError),
    /// The step failed for good (with the screen it failed on, if kept).
    Failed(Box<(Failure, Option<Shot>)>),
    /// The run cannot go on (credentials, protocol, OCR).
    Fatal(ScreenError),
}

impl From<ScreenError> for StepError {
    fn from(e: ScreenError) -> Self {
        match e {
            ScreenError::Lost(_) => StepError::Lost(e),
            ScreenError::Input(_) => StepError::Failed(Box::new((plain_failure(e.to_string()), None))),
            other => StepError::Fatal(other),
        }
    }
}

/// A screen a step acted on, kept for the debug output.
struct Shot {
    frame: rfb::Frame,
    words: Vec<OcrText>,
    matched: Vec<BBox>,
    region: Option<BBox>,
    point: Option<PointXY>,
}

/// What a passed step reports.
#[derive(Default)]
struct Passed {
    detail: Option<String>,
    matched: Option<OcrText>,
    tier: Option<MatchKind>,
    point: Option<PointXY>,
    shot: Option<Shot>,
}

/// Runs `script`. `progress` receives human-readable lines as the run goes (for stderr).
pub async fn run(script: &Script, opts: &RunOptions, progress: &mut (dyn FnMut(&str) + Send)) -> RunResult {
    drive(script, opts, progress, Mode::Live).await
}

/// How to replay (`vmkit automate replay`).
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The recording: a debug directory of an earlier run, or its `frames` directory.
    pub frames: PathBuf,
    /// How far (pixels, each axis) a click may land from the recorded one.
    pub tolerance: u32,
    /// Everything else as for a run (timeouts, click checks, debug output); the VNC and SSH settings are not
    /// used.
    pub run: RunOptions,
}

impl ReplayOptions {
    /// Defaults for replaying `frames`.
    pub fn new(frames: impl Into<PathBuf>) -> Self {
        Self { frames: frames.into(), tolerance: crate::replay::DEFAULT_TOLERANCE, run: RunOptions::new("") }
    }
}

/// Runs `script` against a recording instead of a VNC server (see [`mod@crate::replay`]): the same runner, the
/// same result. A recording that cannot be read is bad input (exit 2, with the file and what is wrong with it); the
/// health check is not run (there is no machine).
pub async fn replay(script: &Script, opts: &ReplayOptions, progress: &mut (dyn FnMut(&str) + Send)) -> RunResult {
    let recording = crate::recording::Recording::open(&opts.frames);
    let mut run = opts.run.clone();
    if let Ok(r) = &recording {
        run.vnc = r.index.start.vnc.clone();
    }
    // The replay's debug output must not land on the recording it reads.
    if let (Some(Some(debug)), Ok(r)) = (&run.debug, &recording)
        && let (Ok(a), Ok(b)) = (debug.canonicalize(), r.dir.canonicalize())
        && (b.starts_with(&a) || a.starts_with(&b))
    {
        let mut result = new_result(script, &run);
        result.frames = Some(opts.frames.clone());
        result.verdict = Verdict::BadInput;
        result.error = Some(format!(
            "--debug {} would write into the recording being replayed ({}); give another directory",
            debug.display(),
            r.dir.display()
        ));
        return result;
    }
    let mode = Mode::Replay { recording: Box::new(recording), tolerance: opts.tolerance };
    let mut result = drive(script, &run, progress, mode).await;
    result.frames = Some(opts.frames.clone());
    result
}

/// Where the screen comes from.
enum Mode {
    Live,
    Replay { recording: Box<Result<crate::recording::Recording, crate::recording::RecordingError>>, tolerance: u32 },
}

fn new_result(script: &Script, opts: &RunOptions) -> RunResult {
    RunResult {
        script: script.path.clone(),
        vnc: opts.vnc.clone(),
        frames: None,
        started_at: crate::time::utc(SystemTime::now()).rfc3339(),
        duration_ms: 0.0,
        outcome: Outcome::Failed,
        verdict: Verdict::Failed,
        error: None,
        steps: script.steps.iter().map(not_run).collect(),
        health_check: None,
        reconnects: 0,
        ocr_passes: 0,
        tesseract_calls: 0,
        debug_dir: None,
    }
}

async fn drive(script: &Script, opts: &RunOptions, progress: &mut (dyn FnMut(&str) + Send), mode: Mode) -> RunResult {
    let start = Instant::now();
    let mut redactor = Redactor::for_script(script);
    if let Some(pw) = &opts.vnc_password {
        redactor.add(pw.expose());
    }
    let mut runner = Runner {
        script,
        opts,
        redactor: redactor.clone(),
        recorder: None,
        progress,
        start,
        end: None,
        deadline: script.max_install_time.map(|t| start + t),
        pointer_placed: !opts.park_pointer,
        relative_said: false,
        last_click: None,
        bad_input: false,
    };
    let mut result = new_result(script, opts);
    let unbound = script.unbound();
    if !unbound.is_empty() {
        result.error = Some(format!(
            "{}: the script declares variables ({}) whose values were not given",
            script.path.display(),
            unbound.join(", ")
        ));
        result.verdict = Verdict::BadInput;
        return result;
    }
    if let Some(dir) = &opts.debug {
        match DebugRecorder::create(dir.as_deref(), redactor) {
            Ok(rec) => {
                result.debug_dir = Some(rec.dir().to_owned());
                runner.say(&format!("debug output in {}", rec.dir().display()));
                runner.recorder = Some(rec);
            }
            Err(e) => {
                result.error = Some(e.to_string());
                result.verdict = Verdict::BadInput;
                result.duration_ms = ms(start.elapsed());
                return result;
            }
        }
    }
    runner.run(&mut result, mode).await;
    result.duration_ms = ms(runner.end.unwrap_or_else(Instant::now).saturating_duration_since(start));
    if let Some(rec) = &mut runner.recorder {
        rec.log(&format!(
            "run {} (exit {}) in {:.1}s",
            result.outcome.as_str(),
            result.verdict,
            result.duration_ms / 1000.0
        ));
        match rec.write_report(&result) {
            Ok(path) => runner.say(&format!("report: {}", path.display())),
            Err(e) => runner.say(&format!("warning: {e}")),
        }
    }
    result
}

fn not_run(step: &Step) -> StepResult {
    StepResult {
        number: step.number,
        line: step.pos.line,
        action: step.action.keyword(),
        summary: step.to_string(),
        description: step.description.clone(),
        started_ms: 0.0,
        duration_ms: 0.0,
        outcome: Outcome::NotRun,
        detail: None,
        matched: None,
        tier: None,
        point: None,
        click: None,
        ocr_passes: 0,
        tesseract_calls: 0,
        reconnects: 0,
        failure: None,
        screen: None,
    }
}

fn plain_failure(message: String) -> Failure {
    Failure { message, searched: Vec::new(), region: None, min_confidence: None, matches: None, candidates: Vec::new() }
}

struct Runner<'a> {
    script: &'a Script,
    opts: &'a RunOptions,
    redactor: Redactor,
    recorder: Option<DebugRecorder>,
    progress: &'a mut (dyn FnMut(&str) + Send),
    start: Instant,
    /// When the steps ended, in the source's time (a replay's differs from the wall clock's).
    end: Option<Instant>,
    deadline: Option<Instant>,
    /// Whether the runner has put the pointer somewhere yet (see [`wait_for`]).
    pointer_placed: bool,
    /// Whether the log has said that the guest's pointer is relative.
    relative_said: bool,
    /// What the current step's click did (also when the step failed).
    last_click: Option<ClickResult>,
    /// Whether the run stopped on bad input (credentials, a recording that cannot be read): exit 2.
    bad_input: bool,
}

impl Runner<'_> {
    /// A progress line: to the caller (stderr), the log file and tracing; secrets scrubbed.
    fn say(&mut self, line: &str) {
        let line = self.redactor.clean(line);
        (self.progress)(&line);
        tracing::info!("{line}");
        if let Some(rec) = &mut self.recorder {
            rec.log(&line);
        }
    }

    async fn run(&mut self, result: &mut RunResult, mode: Mode) {
        let engine = match crate::blocking(ocr::Engine::new) {
            Ok(e) => e,
            Err(e) => {
                result.error = Some(format!("loading the OCR engine: {e}"));
                return;
            }
        };
        match mode {
            Mode::Live => self.run_live(result, engine).await,
            Mode::Replay { recording, tolerance } => {
                let source = (*recording).map_err(ScreenError::from).and_then(|recording| {
                    ReplaySource::new(recording, self.start, Redactor::for_script(self.script), tolerance)
                });
                match source {
                    Ok(source) => {
                        let mut screen = Screen::new(source, engine);
                        self.say(&format!("replaying the {}", screen.source().name()));
                        self.run_on(&mut screen, result).await;
                        if result.verdict == Verdict::Passed
                            && let Some((n, first)) = screen.source().unplayed_input()
                        {
                            self.say(&format!(
                                "note: the recording goes on after the script's last step: {n} more input event(s), \
                                 the first {first}"
                            ));
                        }
                    }
                    Err(e) => {
                        result.verdict = Verdict::BadInput;
                        result.error = Some(e.to_string());
                        self.say(&format!("error: {e}"));
                    }
                }
            }
        }
    }

    async fn run_live(&mut self, result: &mut RunResult, engine: ocr::Engine) {
        self.say(&format!("connecting to {}", self.opts.vnc));
        let mut lines = Vec::new();
        let connected = VncSource::connect(
            &self.opts.vnc,
            self.opts.vnc_password.as_ref(),
            self.opts.vnc_timeout,
            self.opts.reconnect,
            &mut |l| lines.push(l),
        )
        .await;
        for l in lines {
            self.say(&l);
        }
        let mut source = match connected {
            Ok(s) => s,
            Err(e) => {
                result.verdict = if matches!(e, ScreenError::Auth(_)) { Verdict::BadInput } else { Verdict::Failed };
                result.error = Some(self.redactor.clean(&e.to_string()));
                self.say(&format!("error: {e}"));
                return;
            }
        };
        if let Some(rec) = &self.recorder {
            let dir = rec.dir().join(crate::recording::FRAMES_DIR);
            let header = crate::recording::start_line(&self.opts.vnc, &source.name(), source.size());
            match FrameRecorder::create(&dir, self.start, self.redactor.clone(), header) {
                Ok(frames) => source.record(frames),
                Err(e) => self.say(&format!("warning: not recording the screens for replay: {e}")),
            }
        }
        let mut screen = Screen::new(source, engine).changes_first(self.opts.changes_first);
        self.run_on(&mut screen, result).await;
        screen.source_mut().finish_recording();
    }

    /// Notes when a replay's steps ended in its own time (a live run's duration is the wall clock's).
    fn mark_end<S: Source>(&mut self, screen: &Screen<S>) {
        if !S::LIVE {
            self.end = Some(screen.source().now());
        }
    }

    /// Runs the steps and the health check on a connected screen.
    async fn run_on<S: Source>(&mut self, screen: &mut Screen<S>, result: &mut RunResult) {
        if S::LIVE {
            let (w, h) = screen.source().size();
            self.say(&format!("connected: {} ({w}x{h})", screen.source().name()));
        }
        let boot_wait = self.opts.boot_wait.unwrap_or(self.script.boot_wait);
        if !boot_wait.is_zero() {
            self.say(&format!("boot_wait: waiting {}", crate::script::secs(boot_wait)));
            let now = screen.source().now();
            screen.source_mut().sleep_until(now + boot_wait).await;
        }

        let total = self.script.steps.len();
        for (i, step) in self.script.steps.iter().enumerate() {
            let step_result = self.run_step(screen, step, total).await;
            let failed = step_result.outcome == Outcome::Failed;
            if let Some(slot) = result.steps.get_mut(i) {
                *slot = step_result;
            }
            let stats = screen.stats();
            result.reconnects = stats.reconnects;
            result.ocr_passes = stats.ocr_passes;
            result.tesseract_calls = stats.tesseract_calls;
            if failed {
                let step_error = result.steps.get(i).and_then(|s| s.failure.as_ref()).map(|f| f.message.clone());
                result.error = Some(format!("step {} failed: {}", step.number, step_error.unwrap_or_default()));
                result.verdict = if self.bad_input { Verdict::BadInput } else { Verdict::Failed };
                self.mark_end(screen);
                return;
            }
        }

        self.mark_end(screen);
        if let Some(check) = &self.script.health_check
            && S::LIVE
        {
            let host =
                self.opts.ssh_host.clone().or_else(|| check.host.clone()).unwrap_or_else(|| self.opts.vnc_host());
            let port = self.opts.ssh_port.or(check.port).unwrap_or(DEFAULT_SSH_PORT);
            let target = SshTarget { host, port };
            self.say(&format!(
                "health check: ssh {}@{target}, `{}` ({} attempts, {} each, {} apart)",
                check.user,
                check.command,
                check.retries,
                crate::script::secs(check.timeout),
                crate::script::secs(check.retry_delay)
            ));
            let started = Instant::now();
            let mut lines = Vec::new();
            let report = run_health_check(check, &target, |a| {
                lines.push(match &a.result {
                    Ok(_) => format!("  attempt {}/{}: ok ({:.1}s)", a.number, check.retries, a.duration.as_secs_f64()),
                    Err(e) => format!("  attempt {}/{}: {e}", a.number, check.retries),
                });
            })
            .await;
            for l in lines {
                self.say(&l);
            }
            let passed = report.passed();
            let health = HealthResult {
                target: target.to_string(),
                user: check.user.clone(),
                command: self.redactor.clean(&check.command),
                outcome: if passed { Outcome::Passed } else { Outcome::Failed },
                duration_ms: ms(started.elapsed()),
                output: report
                    .attempts
                    .last()
                    .and_then(|a| a.result.as_ref().ok())
                    .map(|out| self.redactor.clean(out.trim_end())),
                attempts: report
                    .attempts
                    .iter()
                    .map(|a| AttemptResult {
                        number: a.number,
                        duration_ms: ms(a.duration),
                        error: a.result.as_ref().err().map(|e| self.redactor.clean(&e.to_string())),
                    })
                    .collect(),
            };
            result.health_check = Some(health);
            if !passed {
                result.error = Some(format!("health check failed after {} attempts", report.attempts.len()));
                self.say(&format!("health check FAILED after {} attempts", report.attempts.len()));
                return;
            }
            self.say("health check passed");
        } else if self.script.health_check.is_some() {
            self.say("health check: not run in a replay (there is no machine to log in to)");
        }
        result.outcome = Outcome::Passed;
        result.verdict = Verdict::Passed;
    }

    async fn run_step<S: Source>(&mut self, screen: &mut Screen<S>, step: &Step, total: usize) -> StepResult {
        let mut r = not_run(step);
        let started = screen.source().now();
        r.started_ms = ms(started.saturating_duration_since(self.start));
        let before = screen.stats();
        let summary = self.redactor.clean(&step.to_string());
        r.summary = summary.clone();
        match &step.description {
            Some(d) => self.say(&format!("[{}/{total}] {summary} — {d}", step.number)),
            None => self.say(&format!("[{}/{total}] {summary}", step.number)),
        }
        self.last_click = None;
        let outcome = loop {
            if let Err(e) = screen.check() {
                if !matches!(e, ScreenError::Lost(_)) {
                    break Err(StepError::Fatal(e));
                }
                if let Err(stop) = self.reconnect(screen, &e).await {
                    break Err(stop);
                }
            }
            match self.exec(screen, step, started).await {
                Err(StepError::Lost(e)) => {
                    if let Err(stop) = self.reconnect(screen, &e).await {
                        break Err(stop);
                    }
                    if matches!(step.action, Action::Type(_)) {
                        // RFB has no acknowledgements: which keys reached the guest before the drop is unknowable.
                        self.say(
                            "  warning: the connection dropped while typing; the text is typed again in full, so \
                             the field may now hold its first part twice",
                        );
                    }
                }
                other => break other,
            }
        };
        let after = screen.stats();
        r.ocr_passes = after.ocr_passes - before.ocr_passes;
        r.tesseract_calls = after.tesseract_calls - before.tesseract_calls;
        r.reconnects = after.reconnects - before.reconnects;
        let took = screen.source().now().saturating_duration_since(started);
        r.duration_ms = ms(took);
        r.click = self.last_click.take();
        let took = took.as_secs_f64();
        match outcome {
            Ok(passed) => {
                r.outcome = Outcome::Passed;
                r.detail = passed.detail.map(|d| self.redactor.clean(&d));
                r.matched = passed.matched.map(|mut m| {
                    m.text = self.redactor.clean(&m.text);
                    m
                });
                r.tier = passed.tier;
                r.point = passed.point;
                r.screen = self.save_shot(step, passed.shot);
                let detail = r.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
                self.say(&format!("[{}/{total}] passed in {took:.2}s{detail}", step.number));
            }
            Err(err) => {
                let (failure, shot) = match err {
                    StepError::Failed(boxed) => *boxed,
                    StepError::Fatal(e) => {
                        self.bad_input |= matches!(e, ScreenError::Auth(_) | ScreenError::Recording(_));
                        (plain_failure(e.to_string()), None)
                    }
                    StepError::Lost(e) => (plain_failure(e.to_string()), None),
                };
                let mut failure = failure;
                failure.message = self.redactor.clean(&failure.message);
                // A script may wait for the very password it typed: what was searched for and what the screen
                // showed instead are scrubbed like any other text (the JSON, report.html, the log).
                for searched in &mut failure.searched {
                    *searched = self.redactor.clean(searched);
                }
                for candidate in &mut failure.candidates {
                    candidate.text = self.redactor.clean(&candidate.text);
                }
                self.say(&format!("[{}/{total}] FAILED after {took:.2}s: {}", step.number, failure.message));
                if !failure.candidates.is_empty() {
                    let list: Vec<String> = failure
                        .candidates
                        .iter()
                        .map(|c| format!("{:?} ({:.0}%)", c.text, c.similarity * 100.0))
                        .collect();
                    self.say(&format!("  closest texts on the screen: {}", list.join(", ")));
                }
                r.outcome = Outcome::Failed;
                r.failure = Some(failure);
                r.screen = self.save_shot(step, shot);
            }
        }
        r
    }

    /// Reconnects after a loss; a failure to reconnect ends the step.
    async fn reconnect<S: Source>(&mut self, screen: &mut Screen<S>, cause: &ScreenError) -> Result<(), StepError> {
        self.say(&format!("connection lost ({cause}); reconnecting"));
        let mut lines = Vec::new();
        let result = screen.reconnect(&mut |l| lines.push(l)).await;
        for l in lines {
            self.say(&l);
        }
        match result {
            Ok(()) => {
                self.say("reconnected; running the step again");
                Ok(())
            }
            Err(e @ ScreenError::Auth(_)) => Err(StepError::Fatal(e)),
            Err(e) => Err(StepError::Failed(Box::new((plain_failure(e.to_string()), None)))),
        }
    }

    fn save_shot(&mut self, step: &Step, shot: Option<Shot>) -> Option<ScreenFiles> {
        let rec = self.recorder.as_ref()?;
        let shot = shot?;
        let frame = shot.frame;
        let (w, h) = (frame.width(), frame.height());
        let image = RgbaImage::from_raw(w, h, frame.into_rgba())?;
        let marks = Marks { words: &shot.words, matched: shot.matched, region: shot.region, click: shot.point };
        match rec.save_screen(step, &image, &marks) {
            Ok(files) => Some(files),
            Err(e) => {
                self.say(&format!("warning: {e}"));
                None
            }
        }
    }

    /// The time left for something that may take `timeout` from `started`, within `max_install_time`.
    fn deadline(&self, started: Instant, timeout: Duration) -> Instant {
        let d = started + timeout;
        self.deadline.map_or(d, |overall| d.min(overall))
    }

    fn past_overall_deadline(&self, now: Instant) -> Option<Failure> {
        let overall = self.deadline?;
        (now >= overall).then(|| {
            plain_failure(format!(
                "max_install_time ({}) exceeded",
                crate::script::secs(self.script.max_install_time.unwrap_or_default())
            ))
        })
    }

    async fn exec<S: Source>(
        &mut self,
        screen: &mut Screen<S>,
        step: &Step,
        started: Instant,
    ) -> Result<Passed, StepError> {
        if let Some(f) = self.past_overall_deadline(screen.source().now()) {
            return Err(StepError::Failed(Box::new((f, None))));
        }
        let debug = self.recorder.is_some();
        match &step.action {
            Action::Wait(w) => {
                let deadline = self.deadline(started, w.timeout);
                let (found, shot) = match w.still {
                    Some(still) if !still.is_zero() => {
                        wait_still(screen, &w.target, None, still, deadline, debug, &mut self.pointer_placed).await?
                    }
                    _ => wait_for(screen, &w.target, None, deadline, debug, &mut self.pointer_placed).await?,
                };
                Ok(Passed {
                    detail: Some(format!(
                        "found {:?} at ({}, {}), {} match",
                        found.text,
                        found.bbox.x,
                        found.bbox.y,
                        found.kind.name()
                    )),
                    matched: Some(ocr_text(&found)),
                    tier: Some(found.kind),
                    point: None,
                    shot,
                })
            }
            Action::Click(c) => self.click(screen, c, started, debug).await,
            Action::ClickAt(c) => {
                let p = &c.point;
                let shot = if debug { Some(shot_now(screen, p)?) } else { None };
                let still = c.check.still.unwrap_or(self.opts.clicks.still);
                if !still.is_zero() {
                    let area = grow(&ocr::Rect::new(p.x, p.y, 1, 1), POINTER_BOX);
                    let _ = settle(screen, &area, still, self.deadline(started, self.opts.click_timeout)).await?;
                }
                let click = self.click_checked(screen, p.x, p.y, &c.check).await;
                self.finish_click(screen, p.x, p.y, None, click?, shot).await
            }
            Action::MoveMouse(p) => {
                let shot = if debug { Some(shot_now(screen, p)?) } else { None };
                screen.source_mut().move_to(p.x, p.y).await.map_err(input_error)?;
                self.pointer_placed = true;
                Ok(Passed { point: Some(point(p)), shot, ..Passed::default() })
            }
            Action::Type(t) => {
                let typing = rfb::TypeOptions {
                    char_delay: t.char_delay.unwrap_or(self.opts.typing.char_delay),
                    ..self.opts.typing
                };
                screen.source_mut().type_text(&t.text, &typing).await.map_err(input_error)?;
                let n = t.text.chars().count();
                Ok(Passed { detail: Some(format!("{n} characters")), ..Passed::default() })
            }
            Action::Key(k) | Action::Hotkey(k) => {
                screen.source_mut().press_chord(&k.chord).await.map_err(input_error)?;
                Ok(Passed::default())
            }
            Action::Delay(d) => {
                let until = self.deadline(started, *d);
                screen.source_mut().sleep_until(until).await;
                if let Some(f) = self.past_overall_deadline(screen.source().now()) {
                    return Err(StepError::Failed(Box::new((f, None))));
                }
                Ok(Passed::default())
            }
        }
    }

    async fn click<S: Source>(
        &mut self,
        screen: &mut Screen<S>,
        c: &Click,
        started: Instant,
        debug: bool,
    ) -> Result<Passed, StepError> {
        let deadline = self.deadline(started, c.timeout.unwrap_or(self.opts.click_timeout));
        let still = c.check.still.unwrap_or(self.opts.clicks.still);
        let (found, shot) =
            wait_still(screen, &c.target, Some(c.index), still, deadline, debug, &mut self.pointer_placed).await?;
        let (fw, fh) = screen.source().size();
        let cx = i64::from(found.bbox.x) + i64::from(found.bbox.width) / 2 + i64::from(c.offset.x);
        let cy = i64::from(found.bbox.y) + i64::from(found.bbox.height) / 2 + i64::from(c.offset.y);
        let (Ok(x), Ok(y)) = (u32::try_from(cx), u32::try_from(cy)) else {
            return Err(off_screen(cx, cy, fw, fh, shot));
        };
        if x >= fw || y >= fh {
            return Err(off_screen(cx, cy, fw, fh, shot));
        }
        let click = self.click_checked(screen, x, y, &c.check).await;
        let click = match click {
            Err(StepError::Failed(boxed)) => {
                let (failure, own) = *boxed;
                let shot = own.or(shot.map(|s| Shot { point: Some(PointXY { x: cx, y: cy }), ..s }));
                return Err(StepError::Failed(Box::new((failure, shot))));
            }
            other => other?,
        };
        let mut passed = self.finish_click(screen, x, y, Some(found.bbox.height), click, shot).await?;
        let clicked = match c.check.button {
            MouseButton::Left => "clicked".to_owned(),
            other => format!("{}-clicked", other.name()),
        };
        passed.detail = Some(format!(
            "{clicked} {:?} at ({x}, {y}), {} match; {}",
            found.text,
            found.kind.name(),
            passed.detail.unwrap_or_default()
        ));
        passed.matched = Some(ocr_text(&found));
        passed.tier = Some(found.kind);
        Ok(passed)
    }

    /// Clicks at (x, y) and checks that the screen reacts, clicking again (bounded) when it does not. The
    /// pointer stays on the target; [`Runner::finish_click`] parks it.
    async fn click_checked<S: Source>(
        &mut self,
        screen: &mut Screen<S>,
        x: u32,
        y: u32,
        check: &ClickCheck,
    ) -> Result<(ClickResult, Instant), StepError> {
        let policy = self.opts.clicks;
        let mode = screen.source().pointer_mode();
        if mode == rfb::PointerMode::Relative && !self.relative_said {
            self.relative_said = true;
            self.say(
                "  note: the guest's pointer is relative (QEMU's PS/2 mouse): vmkit moves it to the top-left corner \
                 and then in small steps, which lands exactly unless the guest accelerates pointer motion \
                 (desktops with libinput do); for exact clicks give the VM an absolute pointer: \
                 `-device usb-tablet` (libvirt: <input type='tablet' bus='usb'/>)",
            );
        }
        let watch = check.expect_change.unwrap_or(true) && !policy.confirm.is_zero();
        let retries = if watch { check.retries.unwrap_or(policy.retries) } else { 0 };
        // A click made but not watched: `expect_change: false`, or the connection dropped while watching.
        let unchecked = |attempts| ClickResult {
            attempts,
            checked: false,
            took_effect: None,
            reaction_ms: None,
            pointer: mode.as_str(),
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            screen.source_mut().move_to(x, y).await.map_err(input_error)?;
            self.pointer_placed = true;
            let now = screen.source().now();
            screen.source_mut().sleep_until(now + policy.timing.before_press).await;
            // Hover effects (a highlighted button) are not the click's effect: let them finish first.
            if watch && !policy.hover.is_zero() {
                let until = screen.source().now() + HOVER_MAX;
                while screen.source().now() < until
                    && screen
                        .wait_change(policy.hover.min(until.saturating_duration_since(screen.source().now())))
                        .await?
                        .is_some()
                {}
            }
            let before = screen.frame();
            let source = screen.source_mut();
            source.button(check.button.rfb(), true).await.map_err(input_error)?;
            let now = source.now();
            source.sleep_until(now + policy.timing.hold).await;
            source.button(check.button.rfb(), false).await.map_err(input_error)?;
            let released = source.now();
            if !watch {
                return Ok((unchecked(attempts), released));
            }
            let ignore = (!screen.source().pointer_out_of_framebuffer()).then(|| pointer_box(x, y));
            let reacted = match watch_reaction(screen, &before, ignore, released + policy.confirm).await {
                // The press and the release were sent before the drop: the click may well have taken effect (the
                // page may have moved on), so the step is not run again — only its effect goes unchecked.
                Err(StepError::Lost(e)) => {
                    self.reconnect(screen, &e).await?;
                    self.say(
                        "  warning: the connection dropped after the click was sent; its effect could not be \
                         checked, and the click is not repeated",
                    );
                    return Ok((unchecked(attempts), released));
                }
                other => other?,
            };
            if let Some(after) = reacted {
                if attempts > 1 {
                    self.say(&format!("  click {attempts} at ({x}, {y}) took effect"));
                }
                let result = ClickResult {
                    attempts,
                    checked: true,
                    took_effect: Some(true),
                    reaction_ms: Some(ms(after)),
                    pointer: mode.as_str(),
                };
                return Ok((result, released));
            }
            let within = crate::script::secs(policy.confirm);
            if attempts > retries {
                let result = ClickResult {
                    attempts,
                    checked: true,
                    took_effect: Some(false),
                    reaction_ms: None,
                    pointer: mode.as_str(),
                };
                self.last_click = Some(result);
                let message = format!(
                    "the click at ({x}, {y}) had no visible effect within {within}, {attempts} time(s) (if the \
                     click is meant to change nothing, add `expect_change: false` to the step)"
                );
                let shot = Shot {
                    frame: screen.frame(),
                    words: Vec::new(),
                    matched: Vec::new(),
                    region: None,
                    point: Some(PointXY { x: x.into(), y: y.into() }),
                };
                return Err(StepError::Failed(Box::new((plain_failure(message), Some(shot)))));
            }
            self.say(&format!("  click {attempts} at ({x}, {y}): no visible change within {within}; clicking again"));
        }
    }

    /// After a click: parks the pointer where the server paints it (once the guest has had time to see the
    /// release) and reports the click.
    async fn finish_click<S: Source>(
        &mut self,
        screen: &mut Screen<S>,
        x: u32,
        y: u32,
        text_height: Option<u32>,
        (click, released): (ClickResult, Instant),
        shot: Option<Shot>,
    ) -> Result<Passed, StepError> {
        let (_, fh) = screen.source().size();
        if self.opts.park_pointer && !screen.source().pointer_out_of_framebuffer() {
            // Servers that paint the pointer into the screen image (those without the Cursor pseudo-encoding,
            // QEMU with a guest that draws its own pointer) would hide the next screen's text at this very
            // spot — installers put "Continue" in the same place on every page. Move it a pointer's size below
            // the clicked text (pointer shapes reach up to ~16 px around their hot spot), near the same control
            // and in the same window. A server that sends the pointer's shape separately needs none of this,
            // and a pointer left alone sets off no hover effects. Not before the guest has seen the release: a
            // USB tablet polled late would merge this motion into it.
            screen.source_mut().sleep_until(released + self.opts.clicks.park_delay).await;
            let park_y = (y + text_height.unwrap_or(0) / 2 + PARK_BELOW).min(fh.saturating_sub(1));
            match screen.source_mut().move_to(x, park_y).await.map_err(input_error) {
                Ok(()) => {
                    self.say(&format!("  pointer parked at ({x}, {park_y}): the server paints it into the screen"))
                }
                // The click itself was made: a drop now must not make the step click again.
                Err(StepError::Lost(e)) => {
                    self.reconnect(screen, &e).await?;
                    self.say(
                        "  the connection dropped after the click, before the pointer was parked; not clicking again",
                    );
                }
                Err(other) => return Err(other),
            }
        }
        let detail = match (click.took_effect, click.attempts) {
            (Some(true), 1) => format!("the screen reacted after {:.0} ms", click.reaction_ms.unwrap_or(0.0)),
            (Some(true), n) => format!(
                "the screen reacted after {:.0} ms to click {n} (the earlier clicks had no visible effect)",
                click.reaction_ms.unwrap_or(0.0)
            ),
            _ => "effect not checked (expect_change: false, or the connection dropped after the click)".to_owned(),
        };
        self.last_click = Some(click);
        let p = PointXY { x: x.into(), y: y.into() };
        Ok(Passed {
            detail: Some(detail),
            matched: None,
            tier: None,
            point: Some(p),
            shot: shot.map(|s| Shot { point: Some(p), ..s }),
        })
    }
}

/// The box around a click point where a pointer painted into the screen image may be redrawn.
fn pointer_box(x: u32, y: u32) -> ocr::Rect {
    grow(&ocr::Rect::new(x, y, 1, 1), POINTER_BOX)
}

/// Watches the screen until its pixels differ from `before` (outside `ignore`) or `until`; returns how long
/// after the call the difference showed.
async fn watch_reaction<S: Source>(
    screen: &mut Screen<S>,
    before: &rfb::Frame,
    ignore: Option<ocr::Rect>,
    until: Instant,
) -> Result<Option<Duration>, StepError> {
    let start = screen.source().now();
    loop {
        let now = screen.source().now();
        // Damage that arrived during the press and the hold is checked at once.
        let Some(rects) = screen.wait_change(until.saturating_duration_since(now)).await? else {
            return Ok(None);
        };
        if differs(before, &screen.frame(), &rects, ignore) {
            return Ok(Some(screen.source().now().saturating_duration_since(start)));
        }
        if screen.source().now() >= until {
            return Ok(None);
        }
    }
}

/// True if any pixel inside `rects` (outside `ignore`) differs between the two frames, or their sizes do.
fn differs(a: &rfb::Frame, b: &rfb::Frame, rects: &[ocr::Rect], ignore: Option<ocr::Rect>) -> bool {
    if (a.width(), a.height()) != (b.width(), b.height()) {
        return true;
    }
    let w = a.width() as usize;
    let (pa, pb) = (a.rgba(), b.rgba());
    let skip = |x: u32, y: u32| ignore.is_some_and(|r| x >= r.x && y >= r.y && x - r.x < r.width && y - r.y < r.height);
    for r in rects {
        let x_end = (r.x + r.width).min(a.width());
        let y_end = (r.y + r.height).min(a.height());
        for y in r.y..y_end {
            let row = y as usize * w;
            if ignore.is_none() {
                let (s, e) = ((row + r.x as usize) * 4, (row + x_end as usize) * 4);
                if pa.get(s..e) != pb.get(s..e) {
                    return true;
                }
                continue;
            }
            for x in r.x..x_end {
                let i = (row + x as usize) * 4;
                if !skip(x, y) && pa.get(i..i + 3) != pb.get(i..i + 3) {
                    return true;
                }
            }
        }
    }
    false
}

/// Waits until the matched area has been unchanged for `still` (re-finding the text when it moved), bounded by
/// `deadline`.
async fn wait_still<S: Source>(
    screen: &mut Screen<S>,
    target: &Target,
    index: Option<i64>,
    still: Duration,
    deadline: Instant,
    debug: bool,
    pointer_placed: &mut bool,
) -> Result<(Match, Option<Shot>), StepError> {
    loop {
        let (found, shot) = wait_for(screen, target, index, deadline, debug, pointer_placed).await?;
        if still.is_zero() || settle(screen, &grow(&found.bbox, 8), still, deadline).await? {
            return Ok((found, shot));
        }
    }
}

/// Waits until `area` has not changed for `still` (true) or `deadline` passes (true as well: act on what is
/// there); false when the area changed, so the caller looks again.
async fn settle<S: Source>(
    screen: &mut Screen<S>,
    area: &ocr::Rect,
    still: Duration,
    deadline: Instant,
) -> Result<bool, StepError> {
    let until = screen.source().now() + still;
    loop {
        let now = screen.source().now();
        if now >= until || now >= deadline {
            return Ok(true);
        }
        match screen.wait_change(until.min(deadline) - now).await? {
            None => return Ok(true),
            Some(rects) if rects.iter().any(|r| intersects(r, area)) => return Ok(false),
            Some(_) => {}
        }
    }
}

fn off_screen(x: i64, y: i64, w: u32, h: u32, shot: Option<Shot>) -> StepError {
    StepError::Failed(Box::new((
        plain_failure(format!("the click point ({x}, {y}) is outside the {w}x{h} screen (check the offset)")),
        shot,
    )))
}

/// An input event that could not be sent: the connection dropped (reconnect and run the step again), the
/// credentials or the recording are bad (the run cannot go on), or it failed (the step fails; in a replay, the
/// script sent other input than the recording did).
fn input_error(e: ScreenError) -> StepError {
    match e {
        ScreenError::Lost(_) => StepError::Lost(e),
        ScreenError::Auth(_) | ScreenError::Recording(_) => StepError::Fatal(e),
        other => StepError::Failed(Box::new((plain_failure(other.to_string()), None))),
    }
}

fn point(p: &Point) -> PointXY {
    PointXY { x: i64::from(p.x), y: i64::from(p.y) }
}

fn bbox(r: &ocr::Rect) -> BBox {
    BBox { x: r.x, y: r.y, width: r.width, height: r.height }
}

fn grow(r: &ocr::Rect, by: u32) -> ocr::Rect {
    ocr::Rect::new(r.x.saturating_sub(by), r.y.saturating_sub(by), r.width + 2 * by, r.height + 2 * by)
}

fn intersects(a: &ocr::Rect, b: &ocr::Rect) -> bool {
    !a.intersection(b).is_empty()
}

fn ocr_text(f: &Match) -> OcrText {
    OcrText { text: f.text.clone(), confidence: f.confidence / 100.0, bbox: bbox(&f.bbox) }
}

fn words(text: &ScreenText) -> Vec<OcrText> {
    text.words
        .iter()
        .map(|w| OcrText { text: w.text.clone(), confidence: w.confidence / 100.0, bbox: bbox(&w.bbox) })
        .collect()
}

fn region_box(target: &Target) -> Option<BBox> {
    target.region.map(|r| BBox { x: r.x, y: r.y, width: r.width, height: r.height })
}

/// The screen now, for the debug output of a pointer step.
fn shot_now<S: Source>(screen: &mut Screen<S>, p: &Point) -> Result<Shot, StepError> {
    let (text, frame) = screen.text()?;
    Ok(Shot { frame, words: words(text), matched: Vec::new(), region: None, point: Some(point(p)) })
}

/// Waits until `target` has a match number `index` (top to bottom; negative from the end), or `deadline`.
/// `None`: any match will do (a `wait` asks only whether the text is there), so a match found before the whole
/// screen has been read counts at once.
///
/// If the text is not there at first and the runner has not yet placed the pointer anywhere (`pointer_placed`),
/// the pointer is moved to the middle of the screen's right edge: wherever it was left, it may be covering the
/// very text searched for on a server that paints it into the screen image. Not on a server that keeps the
/// pointer out of the screen image (see [`rfb::Client::pointer_out_of_framebuffer`]; Xvnc paints it until this
/// client first moves it, so there the move happens).
async fn wait_for<S: Source>(
    screen: &mut Screen<S>,
    target: &Target,
    index: Option<i64>,
    deadline: Instant,
    debug: bool,
    pointer_placed: &mut bool,
) -> Result<(Match, Option<Shot>), StepError> {
    let ordered = index.is_some();
    let index = index.unwrap_or(0);
    let within = format!("{:.1}s", deadline.saturating_duration_since(screen.source().now()).as_secs_f64());
    let mut read_in_full = false;
    // A full read was asked for and the second look at near misses waits for it to be done.
    let mut full_asked = false;
    loop {
        let frame = if read_in_full { screen.text_full()?.1 } else { screen.text()?.1 };
        full_asked |= read_in_full;
        read_in_full = false;
        let blank = ScreenText::empty(frame.width(), frame.height());
        let mut found = find::find(target, screen.last_text().unwrap_or(&blank));
        if full_asked && screen.read_in_full(frame.serial()) {
            full_asked = false;
            if found.is_empty() {
                // A near miss on a quiet screen read in full: look at it once more, piece by piece
                // (see `Screen::second_look`).
                let near: Vec<ocr::Rect> = find::closest(target, screen.last_text().unwrap_or(&blank), CANDIDATES)
                    .iter()
                    .filter(|c| c.similarity >= SECOND_LOOK)
                    .map(|c| ocr::Rect::new(c.bbox.x, c.bbox.y, c.bbox.width, c.bbox.height))
                    .collect();
                if !near.is_empty() {
                    let text = screen.second_look(&frame, &near)?;
                    found = find::find(target, text);
                }
            }
        }
        let now = screen.source().now();
        let text = screen.last_text().unwrap_or(&blank);
        if let Some(hit) = ocr::matching::pick(&found, index) {
            // Changes first, parts of the screen may not have been read yet; where the match's rank counts, an
            // unread part that could hold an earlier match is waited for (until the deadline: then the match
            // found is taken).
            let earlier = earlier_area(&hit.bbox, index, target, (frame.width(), frame.height()));
            if !ordered || now >= deadline || !screen.may_hide(&earlier) {
                let shot = debug.then(|| Shot {
                    frame: frame.clone(),
                    words: words(text),
                    matched: vec![bbox(&hit.bbox)],
                    region: region_box(target),
                    point: None,
                });
                return Ok((hit.clone(), shot));
            }
        } else if now >= deadline {
            let searched: Vec<String> = target.patterns.iter().map(|p| p.describe()).collect();
            let message = if found.is_empty() {
                format!("{target} not found on the screen within {within}")
            } else {
                format!(
                    "{target}: index {index} asked for, but only {} match(es) on the screen after {within}",
                    found.len()
                )
            };
            let failure = Failure {
                message,
                searched,
                region: region_box(target),
                min_confidence: target.min_confidence,
                matches: Some(found.len()),
                candidates: find::closest(target, text, CANDIDATES),
            };
            let shot = Shot {
                frame,
                words: words(text),
                matched: found.iter().map(|f| bbox(&f.bbox)).collect(),
                region: region_box(target),
                point: None,
            };
            return Err(StepError::Failed(Box::new((failure, Some(shot)))));
        }
        if !*pointer_placed && !screen.source().pointer_out_of_framebuffer() {
            *pointer_placed = true;
            let (w, h) = screen.source().size();
            screen.source_mut().move_to(w.saturating_sub(1), h / 2).await.map_err(input_error)?;
            continue;
        }
        // Not there: sleep until the screen changes. Once it has been quiet for a moment without a match, read
        // it once in full (see `Screen::text_full`).
        // While the background reader is busy, its bands wake the search too.
        if screen.read_in_full(frame.serial()) || screen.reading() {
            screen.wait_change_or_text(deadline - now).await?;
        } else if screen.wait_change(QUIET.min(deadline - now)).await?.is_none() {
            read_in_full = true;
        }
    }
}

/// Where a match earlier than `hit` in the search's order could be: above it and in its line (counting from the
/// top), or in its line and below (counting from the end), inside the target's region if it has one.
fn earlier_area(hit: &ocr::Rect, index: i64, target: &Target, (w, h): (u32, u32)) -> ocr::Rect {
    let rows = if index >= 0 {
        ocr::Rect::new(0, 0, w, hit.bottom())
    } else {
        ocr::Rect::new(0, hit.y, w, h.saturating_sub(hit.y))
    };
    match target.region {
        Some(r) => rows.intersection(&ocr::Rect::new(r.x, r.y, r.width, r.height)),
        None => rows,
    }
}
