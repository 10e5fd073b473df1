//! The typed script model: what a YAML automation script means once it has been checked.
//!
//! Everything here is already valid — key names resolved to keysyms, regexes compiled, durations non-negative —
//! so the runner never has to re-check a value, and `vmkit automate check` finds every mistake up front. Loading
//! lives in [`crate::load`]; this module only describes the result.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::keys::KeyPress;
use crate::yaml::{Pos, quote};

/// Seconds waited after connecting when a script does not say (`boot_wait`).
pub const DEFAULT_BOOT_WAIT: Duration = Duration::from_secs(30);
/// How long a `wait` looks for its text when the script does not say.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a `click` waits for its text before giving up, when neither the step nor the command line says.
pub const DEFAULT_CLICK_TIMEOUT: Duration = Duration::from_secs(10);
/// Health check defaults, as the original runner had them.
pub const DEFAULT_SSH_TIMEOUT: Duration = Duration::from_secs(30);
/// Health check attempts when the script does not say.
pub const DEFAULT_SSH_RETRIES: u32 = 3;
/// Pause between health check attempts when the script does not say.
pub const DEFAULT_SSH_RETRY_DELAY: Duration = Duration::from_secs(5);
/// The command a health check runs when the script does not name one; it works in sh, cmd.exe and PowerShell.
pub const DEFAULT_SSH_COMMAND: &str = "echo SSH OK";
/// SSH port when neither the script nor the command line names one.
pub const DEFAULT_SSH_PORT: u16 = 22;

/// A loaded, valid automation script.
#[derive(Debug, Clone)]
pub struct Script {
    /// The file it came from.
    pub path: PathBuf,
    /// Pause after connecting, before the first step.
    pub boot_wait: Duration,
    /// Upper bound for the whole run (`max_install_time`), if set.
    pub max_install_time: Option<Duration>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The SSH check run after the last step, if any.
    pub health_check: Option<HealthCheck>,
    /// Declared variables (`variables:`), typed as `${name}` (see [`crate::vars`]).
    pub variables: Vec<crate::vars::Variable>,
    /// Whether [`Script::bind`] has substituted the variables' values.
    pub bound: bool,
    /// The values of secret variables, once bound: scrubbed from every output.
    pub bound_secrets: Vec<Secret>,
}

/// One item of `boot_commands`.
#[derive(Debug, Clone)]
pub struct Step {
    /// 1-based position in `boot_commands`.
    pub number: usize,
    /// Where the step starts in the file.
    pub pos: Pos,
    /// The author's note (`description:` next to the action).
    pub description: Option<String>,
    /// What to do.
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Wait until a text is on the screen.
    Wait(Wait),
    /// Wait (briefly) for a text, then click it.
    Click(Click),
    /// Click at a framebuffer position.
    ClickAt(ClickAt),
    /// Move the pointer without clicking.
    MoveMouse(Point),
    /// Type text.
    Type(TypeText),
    /// Press one key, optionally with modifiers (`key: enter`, `key: ctrl+alt+delete`).
    Key(KeyPress),
    /// Press a key while holding modifiers (`hotkey: {modifiers: [...], key: ...}`).
    Hotkey(KeyPress),
    /// Do nothing for a while.
    Delay(Duration),
}

impl Action {
    /// The step's keyword, as written in scripts.
    pub fn keyword(&self) -> &'static str {
        match self {
            Action::Wait(_) => "wait",
            Action::Click(_) => "click",
            Action::ClickAt(_) => "click_at",
            Action::MoveMouse(_) => "move_mouse",
            Action::Type(_) => "type",
            Action::Key(_) => "key",
            Action::Hotkey(_) => "hotkey",
            Action::Delay(_) => "delay",
        }
    }

    /// The text or regex the step looks for on the screen, if it looks for one.
    pub fn target(&self) -> Option<&Target> {
        match self {
            Action::Wait(w) => Some(&w.target),
            Action::Click(c) => Some(&c.target),
            _ => None,
        }
    }
}

impl fmt::Display for Step {
    /// A one-line summary for logs and reports. Secret text is never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            Action::Wait(w) => write!(f, "wait {} (timeout {})", w.target, secs(w.timeout)),
            Action::Click(c) => {
                write!(f, "click {}", c.target)?;
                if c.index != 0 {
                    write!(f, " index {}", c.index)?;
                }
                if c.offset != (Offset { x: 0, y: 0 }) {
                    write!(f, " offset ({}, {})", c.offset.x, c.offset.y)?;
                }
                c.check.fmt_button(f)
            }
            Action::ClickAt(c) => {
                write!(f, "click_at ({}, {})", c.point.x, c.point.y)?;
                c.check.fmt_button(f)
            }
            Action::MoveMouse(p) => write!(f, "move_mouse ({}, {})", p.x, p.y),
            Action::Type(t) if t.secret => f.write_str("type <secret>"),
            Action::Type(t) => write!(f, "type {}", quote(&t.text)),
            Action::Key(c) => write!(f, "key {c}"),
            Action::Hotkey(c) => write!(f, "hotkey {c}"),
            Action::Delay(d) => write!(f, "delay {}", secs(*d)),
        }
    }
}

/// `1.5s`-style rendering of a duration.
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 { format!("{s:.0}s") } else { format!("{s}s") }
}

/// What a `wait` or `click` looks for.
#[derive(Debug, Clone)]
pub struct Target {
    /// Alternatives: the target is found when any of them is.
    pub patterns: Vec<Pattern>,
    /// Only text inside this rectangle counts.
    pub region: Option<Region>,
    /// Only words recognised with at least this confidence (0…1) count.
    pub min_confidence: Option<f32>,
    /// Whether the lookalike tier may match (`lookalikes:` on the step, or at the top of the script for every
    /// step that does not say); `None`: not set anywhere, off.
    pub lookalikes: Option<bool>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [one] = self.patterns.as_slice() {
            f.write_str(&show_pattern(one))?;
        } else {
            let all: Vec<String> = self.patterns.iter().map(show_pattern).collect();
            write!(f, "[{}]", all.join(", "))?;
        }
        if let Some(r) = &self.region {
            write!(f, " in {}x{}+{}+{}", r.width, r.height, r.x, r.y)?;
        }
        if let Some(c) = self.min_confidence {
            write!(f, " (confidence ≥ {c})")?;
        }
        if self.lookalikes == Some(true) {
            f.write_str(" (lookalikes allowed)")?;
        }
        Ok(())
    }
}

/// A text to find: a phrase or a `/regex/`, as [`ocr::matching`] matches them (the same rules as
/// `vmkit screen find`).
pub use ocr::matching::Pattern;

/// A pattern as logs and messages show it: a phrase in quotes, a regex as `/.../`.
pub fn show_pattern(p: &Pattern) -> String {
    match p {
        Pattern::Phrase(text) => quote(text),
        Pattern::Regex(_) => p.describe(),
    }
}

/// A rectangle in framebuffer pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Region {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width, at least 1.
    pub width: u32,
    /// Height, at least 1.
    pub height: u32,
}

/// A framebuffer position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Point {
    /// Pixels from the left.
    pub x: u32,
    /// Pixels from the top.
    pub y: u32,
}

/// A displacement from a click target's centre, in pixels (right and down are positive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Offset {
    /// Pixels to the right (negative: left).
    pub x: i32,
    /// Pixels down (negative: up).
    pub y: i32,
}

/// `wait`.
#[derive(Debug, Clone)]
pub struct Wait {
    /// What to wait for.
    pub target: Target,
    /// Give up after this long.
    pub timeout: Duration,
    /// `still`: return only once the matched area has not changed for this long; `None`: at once.
    pub still: Option<Duration>,
}

/// Which mouse button a click presses: `button: left` (the default), `middle` or `right` (a context menu).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MouseButton {
    /// The primary button.
    #[default]
    Left,
    /// The middle button (the wheel's press).
    Middle,
    /// The secondary button.
    Right,
}

impl MouseButton {
    /// Every button with its name in scripts.
    pub const NAMES: [(&'static str, MouseButton); 3] =
        [("left", MouseButton::Left), ("middle", MouseButton::Middle), ("right", MouseButton::Right)];

    /// The name in scripts.
    pub fn name(self) -> &'static str {
        match self {
            MouseButton::Left => "left",
            MouseButton::Middle => "middle",
            MouseButton::Right => "right",
        }
    }

    /// The RFB button it presses.
    pub fn rfb(self) -> rfb::Button {
        match self {
            MouseButton::Left => rfb::Button::Left,
            MouseButton::Middle => rfb::Button::Middle,
            MouseButton::Right => rfb::Button::Right,
        }
    }
}

/// How a click is made and checked: the optional keys `button`, `expect_change`, `retries` and `still` of `click`
/// and `click_at`. `None` leaves a value to the runner's options (see [`crate::runner::ClickPolicy`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClickCheck {
    /// `button`: which button is pressed (left unless given).
    pub button: MouseButton,
    /// `expect_change: false` for a click meant to change nothing on the screen: it is neither watched nor
    /// retried.
    pub expect_change: Option<bool>,
    /// `retries`: how many times a click with no visible effect is made again.
    pub retries: Option<u32>,
    /// `still`: how long the target area must have been unchanged before the click.
    pub still: Option<Duration>,
}

impl ClickCheck {
    /// ` button right` after a step's description, nothing for the left button.
    fn fmt_button(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.button {
            MouseButton::Left => Ok(()),
            other => write!(f, " button {}", other.name()),
        }
    }
}

/// `click_at`.
#[derive(Debug, Clone)]
pub struct ClickAt {
    /// Where, in framebuffer pixels.
    pub point: Point,
    /// How the click is checked.
    pub check: ClickCheck,
}

/// `click`.
#[derive(Debug, Clone)]
pub struct Click {
    /// What to click.
    pub target: Target,
    /// Which match, top to bottom: 0 the first, -1 the last.
    pub index: i64,
    /// Added to the centre of the matched words.
    pub offset: Offset,
    /// How long to wait for the text to appear; `None`: the runner's default.
    pub timeout: Option<Duration>,
    /// How the click is checked.
    pub check: ClickCheck,
}

/// `type`.
#[derive(Clone)]
pub struct TypeText {
    /// The characters to type.
    pub text: String,
    /// Never shown in logs, reports or JSON output: set by `secret: true`, or because the text equals the
    /// health check's password.
    pub secret: bool,
    /// Pause between characters; `None`: as fast as the connection takes them.
    pub char_delay: Option<Duration>,
}

impl fmt::Debug for TypeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = if self.secret { "<secret>".to_owned() } else { self.text.clone() };
        f.debug_struct("TypeText")
            .field("text", &text)
            .field("secret", &self.secret)
            .field("char_delay", &self.char_delay)
            .finish()
    }
}

pub use ssh::HealthCheck;
pub use userfile::Secret;
