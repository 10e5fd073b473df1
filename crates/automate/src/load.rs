//! Loading scripts: YAML text → checked [`Script`], or every problem with its line, column and what was expected.
//!
//! The walk is written by hand over `yaml::Node` (the YAML tree with positions) rather than derived, so that it can go on after the
//! first mistake (a script author fixing a 200-step macOS script wants all typos at once), give each mistake
//! a message in the script's own terms ("`wait.timeout`: expected a number of seconds"), suggest the key that
//! was probably meant, and recognise the classic indentation slip where a step's options end up beside it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ocr::matching::PatternError;

use crate::keys::{self, KeyPress};
use crate::script::{
    Action, Click, ClickAt, ClickCheck, DEFAULT_BOOT_WAIT, DEFAULT_SSH_COMMAND, DEFAULT_SSH_RETRIES,
    DEFAULT_SSH_RETRY_DELAY, DEFAULT_SSH_TIMEOUT, DEFAULT_WAIT_TIMEOUT, HealthCheck, MouseButton, Offset, Pattern,
    Point, Region, Script, Secret, Step, Target, TypeText, Wait,
};
use crate::yaml::{Kind, Node, Pos, quote};
pub use diag::Diagnostic;

/// Why a script could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The file could not be read.
    #[error("cannot read script {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but is not a valid script; every problem found is listed.
    #[error("{}", diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// Every problem, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

impl ScriptError {
    /// The problems, one per line, each `file:line:col: message` (one entry for a read error).
    pub fn diagnostics(&self) -> Vec<String> {
        match self {
            ScriptError::Read { .. } => vec![self.to_string()],
            ScriptError::Invalid { diagnostics } => diagnostics.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Reads and checks a script file (read through [`userfile`]: an endless file such as `/dev/zero` is refused after
/// [`userfile::Limit::Config`] bytes).
pub fn load_file(path: &Path) -> Result<Script, ScriptError> {
    let text = match userfile::read_to_string(path, userfile::Limit::Config) {
        Ok(text) => text,
        Err(userfile::ReadError::NotText { offset, bytes, .. }) => {
            let pos = utf8_error_pos(&bytes, offset);
            return Err(ScriptError::Invalid {
                diagnostics: vec![diagnostic(path.display().to_string(), pos, "the file is not valid UTF-8 text")],
            });
        }
        Err(e) => return Err(ScriptError::Read { path: path.to_owned(), source: e.into_io() }),
    };
    load_str(&text, path)
}

/// An error at a YAML position.
fn diagnostic(file: impl Into<String>, pos: Pos, message: impl Into<String>) -> Diagnostic {
    let at = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    Diagnostic::error(file, at(pos.line), at(pos.column), message)
}

fn utf8_error_pos(bytes: &[u8], valid_up_to: usize) -> Pos {
    let before = bytes.get(..valid_up_to).unwrap_or_default();
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    Pos { line: line as u64, column: column as u64 }
}

/// Checks a script given as text; `path` names it in messages and anchors relative paths (`key_file`).
pub fn load_str(text: &str, path: &Path) -> Result<Script, ScriptError> {
    let root = match crate::yaml::parse(text) {
        Ok(root) => root,
        Err(e) => {
            return Err(ScriptError::Invalid {
                diagnostics: vec![diagnostic(path.display().to_string(), e.pos, e.message)],
            });
        }
    };
    let mut checker = Checker {
        file: path.display().to_string(),
        errors: Vec::new(),
        base: path.parent().map(Path::to_owned).unwrap_or_default(),
        variables: None,
    };
    let script = checker.script(&root, path);
    if checker.errors.is_empty()
        && let Some(script) = script
    {
        return Ok(script);
    }
    let mut diagnostics = checker.errors;
    diagnostics.sort_by_key(|d| (d.line, d.col));
    diagnostics.dedup();
    Err(ScriptError::Invalid { diagnostics })
}

const TOP_KEYS: &[&str] =
    &["boot_wait", "boot_commands", "health_check", "max_install_time", "lookalikes", "variables"];
const VARIABLE_KEYS: &[&str] = &["secret", "default", "description"];
const STEP_KEYS: &[&str] = &["wait", "click", "click_at", "move_mouse", "type", "key", "hotkey", "delay"];
const WAIT_KEYS: &[&str] = &["text", "timeout", "region", "min_confidence", "lookalikes", "still"];
const CLICK_KEYS: &[&str] = &[
    "text",
    "index",
    "offset",
    "xoffset",
    "yoffset",
    "region",
    "min_confidence",
    "timeout",
    "lookalikes",
    "expect_change",
    "retries",
    "still",
    "button",
];
const POINT_KEYS: &[&str] = &["x", "y"];
const CLICK_AT_KEYS: &[&str] = &["x", "y", "expect_change", "retries", "still", "button"];
/// Most retries a click may ask for.
const MAX_CLICK_RETRIES: i128 = 10;
/// Longest `still` a step may ask for.
const MAX_STILL: Duration = Duration::from_secs(60);
const REGION_KEYS: &[&str] = &["x", "y", "width", "height"];
const TYPE_KEYS: &[&str] = &["text", "secret", "char_delay"];
const HOTKEY_KEYS: &[&str] = &["modifiers", "key"];
const HEALTH_KEYS: &[&str] =
    &["type", "user", "password", "key_file", "host", "port", "command", "timeout", "retries", "retry_delay"];

/// Largest coordinate a framebuffer can have (RFB sizes are 16-bit).
const MAX_COORD: i128 = 65535;

struct Checker {
    /// The script's name in diagnostics.
    file: String,
    errors: Vec<Diagnostic>,
    base: PathBuf,
    /// The declared variables, when the script has `variables:` (then `type` texts may use `${name}`).
    variables: Option<Vec<crate::vars::Variable>>,
}

/// The entries of a mapping whose keys were all known.
struct Fields<'n> {
    pos: Pos,
    entries: Vec<(String, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    fn get(&self, name: &str) -> Option<&'n Node> {
        self.entries.iter().find(|(k, _, _)| k == name).map(|(_, _, v)| *v)
    }

    fn key_pos(&self, name: &str) -> Option<Pos> {
        self.entries.iter().find(|(k, _, _)| k == name).map(|(_, k, _)| k.pos)
    }
}

impl Checker {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.error_suggesting(pos, message, None);
    }

    /// An unknown key, with the key probably meant as the suggestion.
    fn unknown_key(&mut self, pos: Pos, ctx: &str, name: &str, allowed: &[&str]) {
        let meant = diag::suggest(name, allowed.iter().copied());
        self.error_suggesting(pos, unknown_key_message(ctx, name, allowed), meant);
    }

    fn error_suggesting(&mut self, pos: Pos, message: impl Into<String>, meant: Option<&str>) {
        self.errors.push(diagnostic(self.file.as_str(), pos, message).suggesting(meant));
    }

    fn expected(&mut self, node: &Node, ctx: &str, what: &str) {
        self.error(node.pos, format!("{ctx}: expected {what}, found {}", node.describe()));
    }

    /// A mapping whose keys are all in `allowed`; unknown keys are reported (with a suggestion) and skipped.
    fn fields<'n>(&mut self, node: &'n Node, ctx: &str, allowed: &[&str], what: &str) -> Option<Fields<'n>> {
        let Kind::Map(entries) = &node.kind else {
            self.expected(node, ctx, what);
            return None;
        };
        let mut fields = Fields { pos: node.pos, entries: Vec::new() };
        for (k, v) in entries {
            let Some(name) = k.as_text() else {
                self.error(k.pos, format!("{ctx}: expected a key name, found {}", k.describe()));
                continue;
            };
            if allowed.contains(&name.as_str()) {
                fields.entries.push((name, k, v));
            } else {
                self.unknown_key(k.pos, ctx, &name, allowed);
            }
        }
        Some(fields)
    }

    fn required<'n>(&mut self, fields: &Fields<'n>, name: &str, ctx: &str, what: &str) -> Option<&'n Node> {
        let found = fields.get(name);
        if found.is_none() {
            self.error(fields.pos, format!("{ctx}: missing `{name}` ({what})"));
        }
        found
    }

    fn text(&mut self, node: &Node, ctx: &str) -> Option<String> {
        let text = node.as_text();
        if text.is_none() {
            self.expected(node, ctx, "text");
        }
        text
    }

    fn non_empty_text(&mut self, node: &Node, ctx: &str) -> Option<String> {
        let text = self.text(node, ctx)?;
        if text.trim().is_empty() {
            self.error(node.pos, format!("{ctx}: must not be empty"));
            return None;
        }
        Some(text)
    }

    fn number(&mut self, node: &Node, ctx: &str, what: &str) -> Option<f64> {
        match node.kind {
            Kind::Int(i) => Some(i as f64),
            Kind::Float(x) if x.is_finite() => Some(x),
            _ => {
                self.expected(node, ctx, what);
                None
            }
        }
    }

    /// A number of seconds ≥ 0 (or > 0 when `positive`).
    fn seconds(&mut self, node: &Node, ctx: &str, positive: bool) -> Option<Duration> {
        let what = if positive {
            "a number of seconds greater than 0 (e.g. 120 or 0.5)"
        } else {
            "a number of seconds (e.g. 120 or 0.5)"
        };
        let secs = self.number(node, ctx, what)?;
        if secs < 0.0 || (positive && secs == 0.0) {
            self.error(node.pos, format!("{ctx}: expected {what}, found {secs}"));
            return None;
        }
        match Duration::try_from_secs_f64(secs) {
            Ok(d) if d <= Duration::from_secs(365 * 24 * 3600) => Some(d),
            _ => {
                self.error(node.pos, format!("{ctx}: {secs} seconds is more than a year"));
                None
            }
        }
    }

    fn int(&mut self, node: &Node, ctx: &str, what: &str, range: std::ops::RangeInclusive<i128>) -> Option<i128> {
        let value = match node.kind {
            Kind::Int(i) => i,
            Kind::Float(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e18 => x as i128,
            _ => {
                self.expected(node, ctx, what);
                return None;
            }
        };
        if !range.contains(&value) {
            self.error(node.pos, format!("{ctx}: expected {what}, found {value}"));
            return None;
        }
        Some(value)
    }

    fn coord(&mut self, node: &Node, ctx: &str) -> Option<u32> {
        let v = self.int(node, ctx, "a pixel coordinate from 0 to 65535", 0..=MAX_COORD)?;
        u32::try_from(v).ok()
    }

    fn boolean(&mut self, node: &Node, ctx: &str) -> Option<bool> {
        match node.kind {
            Kind::Bool(b) => Some(b),
            _ => {
                self.expected(node, ctx, "true or false");
                None
            }
        }
    }

    fn script(&mut self, root: &Node, path: &Path) -> Option<Script> {
        if root.kind == Kind::Null {
            self.error(
                Pos { line: 1, column: 1 },
                "the script is empty; expected a mapping with `boot_commands` (a list of steps)",
            );
            return None;
        }
        let fields = self.fields(root, "script", TOP_KEYS, "a mapping with `boot_commands` (a list of steps)")?;
        // Before the steps, which may refer to them.
        let variables = fields.get("variables").map(|n| {
            let (declared, ok) = self.variables(n);
            self.variables = Some(declared.clone());
            ok.then_some(declared)
        });
        let boot_wait = fields.get("boot_wait").map(|n| self.seconds(n, "boot_wait", false));
        let max_install_time = fields.get("max_install_time").map(|n| self.seconds(n, "max_install_time", true));
        let steps = fields.get("boot_commands").map(|n| self.steps(n));
        let health_check = fields.get("health_check").map(|n| self.health_check(n));
        let lookalikes = fields.get("lookalikes").map(|n| self.boolean(n, "lookalikes"));

        let mut steps = steps.unwrap_or(Some(Vec::new()))?;
        let health_check = health_check.unwrap_or(Some(None))?;
        // `lookalikes:` at the top applies to every wait and click that does not say otherwise.
        if lookalikes.unwrap_or(Some(false))? {
            for step in &mut steps {
                if let Action::Wait(Wait { target, .. }) | Action::Click(Click { target, .. }) = &mut step.action {
                    target.lookalikes.get_or_insert(true);
                }
            }
        }
        // Typing the health check's password is typing a secret, whether or not the step says so.
        if let Some(password) = health_check.as_ref().and_then(|h| h.password.as_ref()) {
            for step in &mut steps {
                if let Action::Type(t) = &mut step.action
                    && t.text == password.expose()
                {
                    t.secret = true;
                }
            }
        }
        Some(Script {
            path: path.to_owned(),
            boot_wait: boot_wait.unwrap_or(Some(DEFAULT_BOOT_WAIT))?,
            max_install_time: max_install_time.map_or(Some(None), |t| t.map(Some))?,
            steps,
            health_check,
            variables: variables.unwrap_or(Some(Vec::new()))?,
            bound: false,
            bound_secrets: Vec::new(),
        })
    }

    /// The declared variables that are well formed, and whether all were.
    fn variables(&mut self, node: &Node) -> (Vec<crate::vars::Variable>, bool) {
        let Kind::Map(entries) = &node.kind else {
            self.expected(node, "variables", "a mapping of names to `{secret, default, description}`");
            return (Vec::new(), false);
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (key, value) in entries {
            let Some(name) = key.as_text() else {
                self.expected(key, "variables", "a variable name");
                ok = false;
                continue;
            };
            let ctx = format!("variables.{name}");
            if !crate::vars::valid_name(&name) {
                self.error(key.pos, format!("{ctx}: a variable name is lower-case letters, digits and `_`"));
                ok = false;
                continue;
            }
            if value.kind == Kind::Null {
                out.push(crate::vars::Variable { name, secret: false, default: None, description: None });
                continue;
            }
            let Some(f) =
                self.fields(value, &ctx, VARIABLE_KEYS, "a mapping (`{}`, or with secret, default, description)")
            else {
                ok = false;
                continue;
            };
            let secret = f.get("secret").map(|n| self.boolean(n, &format!("{ctx}.secret")));
            let default = f.get("default").map(|n| self.typeable(n, &format!("{ctx}.default")));
            let description = f.get("description").map(|n| self.text(n, &format!("{ctx}.description")));
            match (
                secret.unwrap_or(Some(false)),
                default.map_or(Some(None), |d| d.map(Some)),
                description.map_or(Some(None), |d| d.map(Some)),
            ) {
                (Some(secret), Some(default), Some(description)) => {
                    out.push(crate::vars::Variable { name, secret, default, description });
                }
                _ => ok = false,
            }
        }
        (out, ok)
    }

    /// Checks the `${name}` references of a `type` text against the declared variables.
    fn references(&mut self, node: &Node, ctx: &str, text: &str) -> Option<bool> {
        let Some(declared) = &self.variables else { return Some(false) };
        match crate::vars::parse(text) {
            Err(why) => {
                self.error(node.pos, format!("{ctx}: {why}"));
                None
            }
            Ok(pieces) => {
                let mut secret = false;
                let mut unknown = None;
                for piece in pieces {
                    if let crate::vars::Piece::Var(name) = piece {
                        match declared.iter().find(|v| v.name == name) {
                            Some(v) => secret |= v.secret,
                            None => unknown = Some(name),
                        }
                    }
                }
                if let Some(name) = unknown {
                    let names: Vec<&str> = declared.iter().map(|v| v.name.as_str()).collect();
                    let meant = diag::suggest(&name, names.iter().copied()).map(str::to_owned);
                    self.error_suggesting(
                        node.pos,
                        format!("{ctx}: `${{{name}}}` is not declared under `variables`"),
                        meant.as_deref(),
                    );
                    return None;
                }
                Some(secret)
            }
        }
    }

    fn steps(&mut self, node: &Node) -> Option<Vec<Step>> {
        let Kind::Seq(items) = &node.kind else {
            self.expected(node, "boot_commands", "a list of steps, each starting with `- ` (e.g. `- click: 'OK'`)");
            return None;
        };
        let mut steps = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.step(item, i + 1) {
                Some(step) => steps.push(step),
                None => ok = false,
            }
        }
        ok.then_some(steps)
    }

    fn step(&mut self, item: &Node, number: usize) -> Option<Step> {
        let ctx = format!("step {number}");
        let Kind::Map(entries) = &item.kind else {
            self.expected(
                item,
                &ctx,
                &format!("a step: a mapping with one of {} (e.g. `- click: 'Continue'`)", list(STEP_KEYS)),
            );
            return None;
        };
        let mut action: Option<(&str, &Node, &Node)> = None;
        let mut description = None;
        let mut misplaced: Vec<(&Node, String)> = Vec::new();
        let mut ok = true;
        for (k, v) in entries {
            let Some(name) = k.as_text() else {
                self.error(k.pos, format!("{ctx}: expected a step name, found {}", k.describe()));
                ok = false;
                continue;
            };
            if name == "description" {
                description = self.text(v, &format!("{ctx}: description"));
                ok &= description.is_some();
            } else if let Some(known) = STEP_KEYS.iter().find(|s| **s == name) {
                if let Some((first, _, _)) = action {
                    self.error(
                        k.pos,
                        format!(
                            "{ctx}: a step has exactly one action, but this one has `{first}` and `{known}`; \
                             start each step with its own `- `"
                        ),
                    );
                    ok = false;
                } else {
                    action = Some((known, k, v));
                }
            } else if is_option_name(&name) {
                misplaced.push((k, name));
            } else {
                self.unknown_key(k.pos, &ctx, &name, &[STEP_KEYS, &["description"]].concat());
                ok = false;
            }
        }
        if !misplaced.is_empty() {
            ok = false;
            let names: Vec<String> = misplaced.iter().map(|(_, n)| format!("`{n}`")).collect();
            let message = match action {
                Some((kw, _, v)) if v.kind == Kind::Null => format!(
                    "{ctx}: `{kw}` has no value and {} sit beside it; indent {} under `{kw}:`",
                    names.join(", "),
                    if names.len() == 1 { "it" } else { "them" }
                ),
                Some((kw, _, _)) => format!(
                    "{ctx}: {} is not a step; options go inside the step's mapping, e.g. `{kw}: {{text: ..., {}: ...}}`",
                    names.join(", "),
                    misplaced[0].1
                ),
                None => format!("{ctx}: {} is not a step; expected one of {}", names.join(", "), list(STEP_KEYS)),
            };
            self.error(misplaced[0].0.pos, message);
        }
        let Some((keyword, _, value)) = action else {
            if ok {
                self.error(item.pos, format!("{ctx}: a step needs one of {}", list(STEP_KEYS)));
            }
            return None;
        };
        if !misplaced.is_empty() && value.kind == Kind::Null {
            // Already explained as an indentation slip; "expected a mapping, found null" would only repeat it.
            return None;
        }
        let ctx = keyword.to_owned();
        let action = match keyword {
            "wait" => self.wait(value, &ctx).map(Action::Wait),
            "click" => self.click(value, &ctx).map(Action::Click),
            "click_at" => self.click_at(value, &ctx).map(Action::ClickAt),
            "move_mouse" => self.point(value, &ctx).map(Action::MoveMouse),
            "type" => self.type_text(value, &ctx).map(Action::Type),
            "key" => self.key(value, &ctx).map(Action::Key),
            "hotkey" => self.hotkey(value, &ctx).map(Action::Hotkey),
            "delay" => self.seconds(value, &ctx, false).map(Action::Delay),
            _ => None,
        };
        if !ok {
            return None;
        }
        Some(Step { number, pos: item.pos, description, action: action? })
    }

    /// `text:` of a wait or click: one pattern or a list of alternatives.
    fn patterns(&mut self, node: &Node, ctx: &str) -> Option<Vec<Pattern>> {
        match &node.kind {
            Kind::Seq(items) if items.is_empty() => {
                self.error(node.pos, format!("{ctx}: the list of alternatives is empty"));
                None
            }
            Kind::Seq(items) => {
                let all: Vec<Option<Pattern>> = items.iter().map(|i| self.pattern(i, ctx)).collect();
                all.into_iter().collect()
            }
            Kind::Map(_) | Kind::Null => {
                self.expected(node, ctx, "a text, a /regex/, or a list of them");
                None
            }
            _ => self.pattern(node, ctx).map(|p| vec![p]),
        }
    }

    fn pattern(&mut self, node: &Node, ctx: &str) -> Option<Pattern> {
        let Some(text) = node.as_text() else {
            self.expected(node, ctx, "a text or a /regex/");
            return None;
        };
        if text.trim().is_empty() {
            self.error(node.pos, format!("{ctx}: an empty text would match anything"));
            return None;
        }
        match Pattern::parse(&text) {
            // Whitespace runs are one space in matching; logs and reports show the phrase that way too.
            Ok(Pattern::Phrase(p)) => Some(Pattern::Phrase(p.split_whitespace().collect::<Vec<_>>().join(" "))),
            Ok(re) => Some(re),
            Err(PatternError::Empty) => {
                self.error(node.pos, format!("{ctx}: the regex `//` is empty"));
                None
            }
            Err(PatternError::Regex { reason, .. }) => {
                // The regex parser's message ends with the one line that says what is wrong.
                let last = reason.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("invalid").trim();
                let last = last.strip_prefix("error: ").unwrap_or(last);
                self.error(node.pos, format!("{ctx}: invalid regex {}: {last}", quote(&text)));
                None
            }
        }
    }

    fn target(&mut self, fields: &Fields<'_>, ctx: &str) -> Option<Target> {
        let patterns = self
            .required(fields, "text", ctx, "the text to look for")
            .map(|n| self.patterns(n, &format!("{ctx}.text")));
        let region = fields.get("region").map(|n| self.region(n, &format!("{ctx}.region")));
        let min_confidence = fields.get("min_confidence").map(|n| {
            let c = format!("{ctx}.min_confidence");
            let v = self.number(n, &c, "a confidence between 0 and 1 (e.g. 0.6)")?;
            if !(0.0..=1.0).contains(&v) {
                self.error(n.pos, format!("{c}: expected a confidence between 0 and 1 (e.g. 0.6), found {v}"));
                return None;
            }
            Some(v as f32)
        });
        let lookalikes = fields.get("lookalikes").map(|n| self.boolean(n, &format!("{ctx}.lookalikes")));
        Some(Target {
            patterns: patterns??,
            region: region.map_or(Some(None), |r| r.map(Some))?,
            min_confidence: min_confidence.map_or(Some(None), |c| c.map(Some))?,
            lookalikes: lookalikes.map_or(Some(None), |l| l.map(Some))?,
        })
    }

    fn region(&mut self, node: &Node, ctx: &str) -> Option<Region> {
        let f = self.fields(node, ctx, REGION_KEYS, "a mapping {x, y, width, height}")?;
        let mut get = |name: &str, min: i128| {
            let n = self.required(&f, name, ctx, "pixels")?;
            let what = if min == 0 { "a pixel coordinate from 0 to 65535" } else { "a size from 1 to 65535 pixels" };
            self.int(n, &format!("{ctx}.{name}"), what, min..=MAX_COORD).and_then(|v| u32::try_from(v).ok())
        };
        let (x, y, width, height) = (get("x", 0), get("y", 0), get("width", 1), get("height", 1));
        Some(Region { x: x?, y: y?, width: width?, height: height? })
    }

    fn wait(&mut self, node: &Node, ctx: &str) -> Option<Wait> {
        if !matches!(node.kind, Kind::Map(_)) {
            // Short form: `wait: 'Welcome'` or `wait: ['A', 'B']`.
            let patterns = self.patterns(node, ctx)?;
            return Some(Wait {
                target: Target { patterns, region: None, min_confidence: None, lookalikes: None },
                timeout: DEFAULT_WAIT_TIMEOUT,
                still: None,
            });
        }
        let f = self.fields(node, ctx, WAIT_KEYS, "a mapping")?;
        let target = self.target(&f, ctx);
        let timeout = f.get("timeout").map(|n| self.seconds(n, &format!("{ctx}.timeout"), false));
        let still = f.get("still").map(|n| self.still(n, &format!("{ctx}.still")));
        Some(Wait {
            target: target?,
            timeout: timeout.unwrap_or(Some(DEFAULT_WAIT_TIMEOUT))?,
            still: still.map_or(Some(None), |s| s.map(Some))?,
        })
    }

    fn click(&mut self, node: &Node, ctx: &str) -> Option<Click> {
        if !matches!(node.kind, Kind::Map(_)) {
            let patterns = self.patterns(node, ctx)?;
            return Some(Click {
                target: Target { patterns, region: None, min_confidence: None, lookalikes: None },
                index: 0,
                offset: Offset::default(),
                timeout: None,
                check: ClickCheck::default(),
            });
        }
        let f = self.fields(node, ctx, CLICK_KEYS, "a mapping")?;
        let target = self.target(&f, ctx);
        let index = f.get("index").map(|n| {
            self.int(
                n,
                &format!("{ctx}.index"),
                "a whole number (0 is the first match top to bottom, -1 the last)",
                -(MAX_COORD)..=MAX_COORD,
            )
            .and_then(|v| i64::try_from(v).ok())
        });
        let timeout = f.get("timeout").map(|n| self.seconds(n, &format!("{ctx}.timeout"), false));
        let delta = |c: &mut Self, n: &Node, name: &str| {
            c.int(
                n,
                &format!("{ctx}.{name}"),
                "a whole number of pixels (negative: left or up)",
                -MAX_COORD..=MAX_COORD,
            )
            .and_then(|v| i32::try_from(v).ok())
        };
        let legacy = f.get("xoffset").is_some() || f.get("yoffset").is_some();
        let offset = match f.get("offset") {
            Some(_) if legacy => {
                let pos = f.key_pos("xoffset").or_else(|| f.key_pos("yoffset")).unwrap_or(f.pos);
                self.error(pos, format!("{ctx}: give either `offset: {{x, y}}` or `xoffset`/`yoffset`, not both"));
                None
            }
            Some(n) => (|| {
                let o = self.fields(n, &format!("{ctx}.offset"), POINT_KEYS, "a mapping {x, y}")?;
                let x = o.get("x").map_or(Some(0), |n| delta(self, n, "offset.x"));
                let y = o.get("y").map_or(Some(0), |n| delta(self, n, "offset.y"));
                Some(Offset { x: x?, y: y? })
            })(),
            None => {
                let x = f.get("xoffset").map_or(Some(0), |n| delta(self, n, "xoffset"));
                let y = f.get("yoffset").map_or(Some(0), |n| delta(self, n, "yoffset"));
                x.zip(y).map(|(x, y)| Offset { x, y })
            }
        };
        let check = self.click_check(&f, ctx);
        Some(Click {
            target: target?,
            index: index.unwrap_or(Some(0))?,
            offset: offset?,
            timeout: timeout.map_or(Some(None), |t| t.map(Some))?,
            check: check?,
        })
    }

    fn click_at(&mut self, node: &Node, ctx: &str) -> Option<ClickAt> {
        let f = self.fields(node, ctx, CLICK_AT_KEYS, "a mapping {x, y} of framebuffer pixels")?;
        let x = self.required(&f, "x", ctx, "pixels from the left").map(|n| self.coord(n, &format!("{ctx}.x")));
        let y = self.required(&f, "y", ctx, "pixels from the top").map(|n| self.coord(n, &format!("{ctx}.y")));
        let check = self.click_check(&f, ctx);
        Some(ClickAt { point: Point { x: x??, y: y?? }, check: check? })
    }

    /// The keys that say how a click is checked: `expect_change`, `retries`, `still`.
    fn click_check(&mut self, f: &Fields<'_>, ctx: &str) -> Option<ClickCheck> {
        let expect_change = f.get("expect_change").map(|n| self.boolean(n, &format!("{ctx}.expect_change")));
        let retries = f.get("retries").map(|n| {
            self.int(
                n,
                &format!("{ctx}.retries"),
                &format!("a whole number of clicks made again, 0 to {MAX_CLICK_RETRIES}"),
                0..=MAX_CLICK_RETRIES,
            )
            .and_then(|v| u32::try_from(v).ok())
        });
        let still = f.get("still").map(|n| self.still(n, &format!("{ctx}.still")));
        let button = f.get("button").map(|n| self.button(n, &format!("{ctx}.button")));
        Some(ClickCheck {
            button: button.unwrap_or(Some(MouseButton::Left))?,
            expect_change: expect_change.map_or(Some(None), |v| v.map(Some))?,
            retries: retries.map_or(Some(None), |v| v.map(Some))?,
            still: still.map_or(Some(None), |v| v.map(Some))?,
        })
    }

    /// `button`: `left`, `middle` or `right`.
    fn button(&mut self, node: &Node, ctx: &str) -> Option<MouseButton> {
        let name = self.text(node, ctx)?;
        if let Some((_, b)) = MouseButton::NAMES.iter().find(|(n, _)| *n == name) {
            return Some(*b);
        }
        let meant = diag::suggest(&name, MouseButton::NAMES.iter().map(|(n, _)| *n));
        self.error_suggesting(
            node.pos,
            format!("{ctx}: expected left, middle or right, found {}", quote(&name)),
            meant,
        );
        None
    }

    /// `still`: seconds, at most [`MAX_STILL`].
    fn still(&mut self, node: &Node, ctx: &str) -> Option<Duration> {
        let d = self.seconds(node, ctx, false)?;
        if d > MAX_STILL {
            self.error(node.pos, format!("{ctx}: at most {} seconds", MAX_STILL.as_secs()));
            return None;
        }
        Some(d)
    }

    fn point(&mut self, node: &Node, ctx: &str) -> Option<Point> {
        let f = self.fields(node, ctx, POINT_KEYS, "a mapping {x, y} of framebuffer pixels")?;
        let x = self.required(&f, "x", ctx, "pixels from the left").map(|n| self.coord(n, &format!("{ctx}.x")));
        let y = self.required(&f, "y", ctx, "pixels from the top").map(|n| self.coord(n, &format!("{ctx}.y")));
        Some(Point { x: x??, y: y?? })
    }

    /// Text to type: newlines (Enter) and tabs (Tab) are fine, other control characters cannot be typed.
    fn typeable(&mut self, node: &Node, ctx: &str) -> Option<String> {
        let text = self.text(node, ctx)?;
        if let Some(c) = text.chars().find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            self.error(node.pos, format!("{ctx}: the control character {c:?} cannot be typed (use `key:` for keys)"));
            return None;
        }
        Some(text)
    }

    fn type_text(&mut self, node: &Node, ctx: &str) -> Option<TypeText> {
        if !matches!(node.kind, Kind::Map(_)) {
            let text = self.typeable(node, ctx)?;
            let secret = self.references(node, ctx, &text)?;
            return Some(TypeText { text, secret, char_delay: None });
        }
        let f = self.fields(node, ctx, TYPE_KEYS, "a mapping")?;
        let text = self.required(&f, "text", ctx, "the text to type").map(|n| self.typeable(n, &format!("{ctx}.text")));
        let secret = f.get("secret").map(|n| self.boolean(n, &format!("{ctx}.secret")));
        let char_delay = f.get("char_delay").map(|n| {
            let d = self.seconds(n, &format!("{ctx}.char_delay"), false)?;
            if d > Duration::from_secs(10) {
                self.error(n.pos, format!("{ctx}.char_delay: at most 10 seconds between characters"));
                return None;
            }
            Some(d)
        });
        let text = text??;
        let uses_secret = self.references(node, ctx, &text)?;
        Some(TypeText {
            text,
            secret: secret.unwrap_or(Some(false))? || uses_secret,
            char_delay: char_delay.map_or(Some(None), |d| d.map(Some))?,
        })
    }

    fn key(&mut self, node: &Node, ctx: &str) -> Option<KeyPress> {
        let Some(text) = node.as_text() else {
            self.expected(node, ctx, "a key name (e.g. enter, tab, f5), a single character, or a chord like ctrl+c");
            return None;
        };
        match keys::parse_key(&text) {
            Ok(press) => Some(press),
            Err(e) => {
                self.error_suggesting(node.pos, format!("{ctx}: {}", e.message), e.meant);
                None
            }
        }
    }

    fn hotkey(&mut self, node: &Node, ctx: &str) -> Option<KeyPress> {
        let f = self.fields(node, ctx, HOTKEY_KEYS, "a mapping {modifiers: [...], key: ...}")?;
        let key = self
            .required(&f, "key", ctx, "the key pressed while the modifiers are held")
            .map(|n| (n, self.text(n, &format!("{ctx}.key"))));
        let modifiers = match f.get("modifiers") {
            None => Some(Vec::new()),
            Some(n) => self.modifiers(n, &format!("{ctx}.modifiers")),
        };
        let (key_node, key) = key?;
        let (key, modifiers) = (key?, modifiers?);
        match keys::parse_hotkey(&modifiers, &key) {
            Ok(press) => Some(press),
            Err(e) => {
                self.error_suggesting(key_node.pos, format!("{ctx}.key: {}", e.message), e.meant);
                None
            }
        }
    }

    fn modifiers(&mut self, node: &Node, ctx: &str) -> Option<Vec<String>> {
        let items: Vec<&Node> = match &node.kind {
            Kind::Seq(items) => items.iter().collect(),
            Kind::Str(_) => vec![node],
            _ => {
                self.expected(node, ctx, "a list of modifiers (cmd, ctrl, alt, shift, ...)");
                return None;
            }
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            let Some(name) = item.as_text() else {
                self.expected(item, ctx, "a modifier name");
                ok = false;
                continue;
            };
            if keys::is_modifier(&name) {
                out.push(name);
            } else {
                let e = keys::unknown_modifier(&name);
                self.error_suggesting(item.pos, format!("{ctx}: {}", e.message), e.meant);
                ok = false;
            }
        }
        ok.then_some(out)
    }

    fn health_check(&mut self, node: &Node) -> Option<Option<HealthCheck>> {
        let ctx = "health_check";
        let f = self.fields(node, ctx, HEALTH_KEYS, "a mapping (type: ssh, user, password or key_file, ...)")?;
        let mut ok = true;
        if let Some(t) = f.get("type") {
            match t.as_text() {
                Some(kind) if kind == "ssh" => {}
                _ => {
                    self.expected(t, "health_check.type", "`ssh` (the only kind of health check)");
                    ok = false;
                }
            }
        }
        let user = self
            .required(&f, "user", ctx, "the user to log in as")
            .map(|n| self.non_empty_text(n, "health_check.user"));
        let password = f.get("password").map(|n| self.text(n, "health_check.password").map(Secret::new));
        let key_file = f.get("key_file").map(|n| {
            self.non_empty_text(n, "health_check.key_file").map(|p| {
                let p = PathBuf::from(p);
                if p.is_relative() { self.base.join(p) } else { p }
            })
        });
        if password.is_none() && key_file.is_none() {
            self.error(f.pos, "health_check: needs `password` or `key_file` to log in");
            ok = false;
        }
        let host = f.get("host").map(|n| self.non_empty_text(n, "health_check.host"));
        let port = f.get("port").map(|n| {
            self.int(n, "health_check.port", "a TCP port from 1 to 65535", 1..=65535)
                .and_then(|p| u16::try_from(p).ok())
        });
        let command = f.get("command").map(|n| self.non_empty_text(n, "health_check.command"));
        let timeout = f.get("timeout").map(|n| self.seconds(n, "health_check.timeout", true));
        let retries = f.get("retries").map(|n| {
            self.int(n, "health_check.retries", "a number of attempts from 1 to 10000", 1..=10000)
                .and_then(|r| u32::try_from(r).ok())
        });
        let retry_delay = f.get("retry_delay").map(|n| self.seconds(n, "health_check.retry_delay", false));
        let check = HealthCheck {
            user: user??,
            password: password.map_or(Some(None), |p| p.map(Some))?,
            key_file: key_file.map_or(Some(None), |k| k.map(Some))?,
            host: host.map_or(Some(None), |h| h.map(Some))?,
            port: port.map_or(Some(None), |p| p.map(Some))?,
            command: command.unwrap_or_else(|| Some(DEFAULT_SSH_COMMAND.to_owned()))?,
            timeout: timeout.unwrap_or(Some(DEFAULT_SSH_TIMEOUT))?,
            retries: retries.unwrap_or(Some(DEFAULT_SSH_RETRIES))?,
            retry_delay: retry_delay.unwrap_or(Some(DEFAULT_SSH_RETRY_DELAY))?,
        };
        ok.then_some(Some(check))
    }
}

/// Names that are options of some step, so that one found beside a step is reported as misplaced.
fn is_option_name(name: &str) -> bool {
    [WAIT_KEYS, CLICK_KEYS, TYPE_KEYS, HOTKEY_KEYS, POINT_KEYS].iter().any(|keys| keys.contains(&name))
}

fn list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

fn unknown_key_message(ctx: &str, name: &str, allowed: &[&str]) -> String {
    let what = if ctx.starts_with("step ") { "step" } else { "key" };
    let placement = if name == "description" && STEP_KEYS.contains(&ctx) {
        format!("; `description` goes beside the action (`- {ctx}: ...` then `  description: ...`), not inside it")
    } else {
        String::new()
    };
    format!("{ctx}: unknown {what} `{name}`{placement}; expected one of {}", list(allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Script, ScriptError> {
        load_str(text, Path::new("t.yaml"))
    }

    fn errors(text: &str) -> Vec<String> {
        match load(text) {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(e) => e.diagnostics(),
        }
    }

    #[test]
    fn click_checks_and_still_screens() {
        let s = load(
            "boot_commands:\n  - click: {text: Next, expect_change: false, still: 0.5}\n  - click_at: {x: 1, y: 2, retries: 4}\n  - wait: {text: Done, still: 1}\n  - click: Next\n",
        )
        .expect("loads");
        let Action::Click(c) = &s.steps[0].action else { panic!("click") };
        assert_eq!(
            c.check,
            ClickCheck {
                button: MouseButton::Left,
                expect_change: Some(false),
                retries: None,
                still: Some(Duration::from_millis(500))
            }
        );
        let Action::ClickAt(c) = &s.steps[1].action else { panic!("click_at") };
        assert_eq!((c.point, c.check.retries, c.check.expect_change), (Point { x: 1, y: 2 }, Some(4), None));
        let Action::Wait(w) = &s.steps[2].action else { panic!("wait") };
        assert_eq!(w.still, Some(Duration::from_secs(1)));
        let Action::Click(c) = &s.steps[3].action else { panic!("click") };
        assert_eq!(c.check, ClickCheck::default());

        let errs = errors(
            "boot_commands:\n  - click: {text: A, retries: 11}\n  - click_at: {x: 1, y: 2, expect_change: maybe}\n  - wait: {text: B, still: 61}\n  - click: {text: C, retires: 1}\n",
        );
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].contains("2:") && errs[0].contains("retries"), "{}", errs[0]);
        assert!(errs[1].contains("3:") && errs[1].contains("expect_change"), "{}", errs[1]);
        assert!(errs[2].contains("4:") && errs[2].contains("still"), "{}", errs[2]);
        assert!(errs[3].contains("did you mean `retries`"), "{}", errs[3]);
    }

    #[test]
    fn clicks_may_press_another_button() {
        let s = load(
            "boot_commands:\n  - click: {text: File, button: right}\n  - click_at: {x: 1, y: 2, button: middle}\n",
        )
        .expect("loads");
        let Action::Click(c) = &s.steps[0].action else { panic!("click") };
        assert_eq!(c.check.button, MouseButton::Right);
        assert_eq!(s.steps[0].to_string(), "click \"File\" button right");
        let Action::ClickAt(c) = &s.steps[1].action else { panic!("click_at") };
        assert_eq!(c.check.button, MouseButton::Middle);
        let errs =
            errors("boot_commands:\n  - click: {text: File, button: rigth}\n  - click_at: {x: 1, y: 2, button: 3}\n");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("t.yaml:2:33: error: click.button: expected left, middle or right"), "{}", errs[0]);
        assert!(errs[0].ends_with("did you mean `right`?"), "{}", errs[0]);
        assert!(errs[1].contains("3:36") && errs[1].contains("click_at.button"), "{}", errs[1]);
    }

    #[test]
    fn variables_are_declared_checked_bound_and_secret() {
        let s = load(
            "variables:\n  user: {default: agent}\n  pw: {secret: true}\n  key:\nboot_commands:\n  - type: '${user}'\n  - type: 'x ${pw} $${lit} $HOME'\n  - type: {text: 'echo ${key}', char_delay: 0}\n",
        )
        .unwrap();
        assert_eq!(s.variables.len(), 3);
        assert_eq!(s.unbound(), ["user", "pw", "key"]);
        let Action::Type(t) = &s.steps[1].action else { panic!("type") };
        assert!(t.secret, "a step typing a secret variable is secret");
        let Action::Type(t) = &s.steps[0].action else { panic!("type") };
        assert!(!t.secret);

        let values = |pairs: &[(&str, &str)]| {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<std::collections::BTreeMap<_, _>>()
        };
        let err = s.bind(&values(&[("key", "k")])).unwrap_err();
        assert!(err.to_string().contains("`pw`") && !err.to_string().contains("`user`"), "{err}");
        assert!(s.bind(&values(&[("pw", "p"), ("key", "k"), ("nope", "x")])).unwrap_err().to_string().contains("nope"));
        let bound = s.bind(&values(&[("pw", "hunter2"), ("key", "ssh-ed25519 AAAA")])).unwrap();
        assert!(bound.unbound().is_empty());
        let texts: Vec<String> = bound
            .steps
            .iter()
            .map(|st| match &st.action {
                Action::Type(t) => t.text.clone(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(texts, ["agent", "x hunter2 ${lit} $HOME", "echo ssh-ed25519 AAAA"]);
        assert_eq!(crate::redact::Redactor::for_script(&bound).clean("it was hunter2"), "it was <redacted>");
        // Without `variables:`, `${x}` is typed as it is.
        let plain = load("boot_commands:\n  - type: '${x}'\n").unwrap();
        let Action::Type(t) = &plain.steps[0].action else { panic!("type") };
        assert_eq!(t.text, "${x}");

        let errs = errors(
            "variables:\n  user: {secret: maybe}\n  Bad: {}\n  pw: {secret: true}\nboot_commands:\n  - type: '${usr}'\n  - type: '${pw'\n",
        );
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].contains(":2:") && errs[0].contains("secret"), "{}", errs[0]);
        assert!(errs[1].contains(":3:") && errs[1].contains("lower-case"), "{}", errs[1]);
        assert!(errs[2].contains(":6:") && errs[2].contains("`${usr}` is not declared"), "{}", errs[2]);
        assert!(errs[3].contains(":7:") && errs[3].contains("closing"), "{}", errs[3]);
    }

    const SPEC_EXAMPLE: &str = r#"
boot_wait: 30            # seconds to wait after connecting (default 30)
boot_commands:           # list; each item is a map with exactly one key
  - wait: {text: 'Welcome', timeout: 120}     # timeout default 120 s
  - click: 'Continue'                         # short form
  - click: {text: 'Agree', index: -1, offset: {x: 50, y: 0}}   # index: 0 first, -1 last (top-to-bottom order)
  - click_at: {x: 960, y: 540}
  - move_mouse: {x: 10, y: 10}
  - type: 'Hello, World!'
  - key: enter           # enter/return tab space backspace/bsp delete/del esc/escape up down left right home end
                         # pgup pgdn f1..f12 (…f20), single characters
  - hotkey: {modifiers: [cmd, shift], key: enter}   # modifiers: cmd/command/super/win/meta, ctrl/control,
                                                    # alt/option, shift
  - delay: 0.5           # seconds, int or float
health_check:            # optional
  type: ssh
  user: agent
  password: agent        # or a key file
  timeout: 30            # per attempt (default 30)
  retries: 5             # default 3
  retry_delay: 10        # default 5
"#;

    #[test]
    fn the_spec_example_loads() {
        let s = load(SPEC_EXAMPLE).expect("loads");
        assert_eq!(s.boot_wait, Duration::from_secs(30));
        assert_eq!(s.steps.len(), 9);
        let Action::Click(c) = &s.steps[2].action else { panic!("click") };
        assert_eq!((c.index, c.offset), (-1, Offset { x: 50, y: 0 }));
        assert_eq!(c.target.patterns, vec![Pattern::Phrase("Agree".into())]);
        let Action::Hotkey(h) = &s.steps[7].action else { panic!("hotkey") };
        assert_eq!(h.chord.modifiers, vec![rfb::Key::SUPER, rfb::Key::SHIFT]);
        assert_eq!(h.chord.key, rfb::Key::ENTER);
        let Action::Delay(d) = s.steps[8].action else { panic!("delay") };
        assert_eq!(d, Duration::from_millis(500));
        let hc = s.health_check.expect("health check");
        assert_eq!((hc.retries, hc.timeout, hc.retry_delay), (5, Duration::from_secs(30), Duration::from_secs(10)));
        assert_eq!(hc.password.as_ref().map(Secret::expose), Some("agent"));
        assert_eq!(s.steps[0].pos, Pos { line: 4, column: 5 });
    }

    #[test]
    fn defaults_and_legacy_offsets() {
        let s = load("boot_commands:\n  - click: {text: Agree, xoffset: -5, yoffset: 7}\n  - wait: {text: Hi}\n")
            .expect("loads");
        assert_eq!(s.boot_wait, DEFAULT_BOOT_WAIT);
        let Action::Click(c) = &s.steps[0].action else { panic!("click") };
        assert_eq!(c.offset, Offset { x: -5, y: 7 });
        let Action::Wait(w) = &s.steps[1].action else { panic!("wait") };
        assert_eq!(w.timeout, DEFAULT_WAIT_TIMEOUT);
    }

    #[test]
    fn extensions_load() {
        let s = load(
            "boot_commands:\n  - wait: {text: ['Set Up Later', '/skip( for now)?/'], region: {x: 0, y: 0, width: 10, height: 20}, min_confidence: 0.5}\n    description: second screen\n  - type: {text: 's3cr3t', secret: true, char_delay: 0.05}\n  - click: {text: Next, timeout: 3}\n  - key: ctrl+alt+delete\n",
        )
        .expect("loads");
        assert_eq!(s.steps[0].description.as_deref(), Some("second screen"));
        let Action::Wait(w) = &s.steps[0].action else { panic!("wait") };
        assert_eq!(w.target.patterns.len(), 2);
        assert!(matches!(&w.target.patterns[1], Pattern::Regex(r) if r.is_match("SKIP FOR NOW")));
        assert_eq!(w.target.region, Some(Region { x: 0, y: 0, width: 10, height: 20 }));
        let Action::Type(t) = &s.steps[1].action else { panic!("type") };
        assert!(t.secret);
        assert_eq!(t.char_delay, Some(Duration::from_millis(50)));
        assert_eq!(s.steps[1].to_string(), "type <secret>");
        let Action::Click(c) = &s.steps[2].action else { panic!("click") };
        assert_eq!(c.timeout, Some(Duration::from_secs(3)));
    }

    #[test]
    fn typing_the_health_check_password_is_secret() {
        let s = load(
            "boot_commands:\n  - type: hunter2\n  - type: agent\nhealth_check: {user: agent, password: hunter2}\n",
        )
        .expect("loads");
        let secret: Vec<bool> = s.steps.iter().map(|st| matches!(&st.action, Action::Type(t) if t.secret)).collect();
        assert_eq!(secret, vec![true, false]);
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn all_errors_are_reported_not_just_the_first() {
        let errs = errors("boot_wait: soon\nboot_commands:\n  - clik: OK\n  - key: entr\n  - delay: -1\n");
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs[0].starts_with("t.yaml:1:12: error: boot_wait: expected a number of seconds"), "{}", errs[0]);
        assert!(errs[1].contains("3:5") && errs[1].contains("did you mean `click`"), "{}", errs[1]);
        assert!(errs[2].contains("4:10") && errs[2].contains("did you mean `enter`"), "{}", errs[2]);
        assert!(errs[3].contains("5:12"), "{}", errs[3]);
    }

    #[test]
    fn options_beside_a_step_are_explained() {
        let errs = errors("boot_commands:\n  - wait:\n    text: Welcome\n    timeout: 5\n");
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(errs[0].contains("3:5") && errs[0].contains("indent them under `wait:`"), "{}", errs[0]);
    }
}
