//! Writing a recorded script: steps of the typed model ([`crate::script::Action`]) rendered to YAML through
//! serde (serde-saphyr's serializer), never assembled from strings, so any text the screen or the person
//! produced — quotes, colons, `#`, leading dashes, newlines — is quoted as YAML needs it. Notes for the reader
//! (a click with no text under the pointer, input that is not scripted) become a YAML comment above their step.
//!
//! The rendered text is loaded back with [`crate::load_str`] before it is written: a recording that would not
//! pass `vmkit automate check` is an error, not a file.

use serde::Serialize;
use serde_saphyr::{Commented, FlowMap};

use crate::script::{Action, Offset};

/// One step to write, with the notes shown above it.
#[derive(Debug, Clone)]
pub struct OutStep {
    /// What the step does.
    pub action: Action,
    /// Comment lines above the step (may be empty).
    pub notes: Vec<String>,
}

/// Why a script could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The action has no recorded form (the recorder makes only waits, clicks, typing and keys).
    #[error("a {0} step cannot be written by the recorder")]
    Unsupported(&'static str),
    /// The serializer failed.
    #[error("rendering the script: {0}")]
    Yaml(String),
    /// The text does not load back: a defect of the recorder, reported rather than written.
    #[error("the recorded script does not load back: {0}")]
    Invalid(String),
}

#[derive(Serialize)]
struct Document {
    boot_wait: u32,
    boot_commands: Vec<Commented<StepOut>>,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum StepOut {
    Wait(String),
    Click(ClickOut),
    ClickAt(FlowMap<ClickAtOut>),
    Type(String),
    Key(String),
    Hotkey(FlowMap<HotkeyOut>),
}

#[derive(Serialize)]
#[serde(untagged)]
enum ClickOut {
    Text(String),
    Full(FlowMap<ClickFull>),
}

#[derive(Serialize)]
struct ClickFull {
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<OffsetOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expect_change: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    button: Option<&'static str>,
}

#[derive(Serialize)]
struct OffsetOut {
    x: i32,
    y: i32,
}

#[derive(Serialize)]
struct ClickAtOut {
    x: u32,
    y: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    expect_change: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    button: Option<&'static str>,
}

#[derive(Serialize)]
struct HotkeyOut {
    modifiers: Vec<String>,
    key: String,
}

/// The single phrase of a recorded target.
fn phrase(target: &crate::script::Target) -> Result<String, RenderError> {
    match target.patterns.as_slice() {
        [crate::script::Pattern::Phrase(p)] => Ok(p.clone()),
        _ => Err(RenderError::Unsupported("regex or multi-text")),
    }
}

/// `button: …` is written only for a button other than the left one.
fn button_out(button: crate::script::MouseButton) -> Option<&'static str> {
    (button != crate::script::MouseButton::Left).then_some(button.name())
}

fn step_out(action: &Action) -> Result<StepOut, RenderError> {
    Ok(match action {
        Action::Wait(w) => StepOut::Wait(phrase(&w.target)?),
        Action::Click(c) => {
            let text = phrase(&c.target)?;
            let index = (c.index != 0).then_some(c.index);
            let offset = (c.offset != Offset::default()).then_some(OffsetOut { x: c.offset.x, y: c.offset.y });
            let expect_change = c.check.expect_change;
            let button = button_out(c.check.button);
            if index.is_none() && offset.is_none() && expect_change.is_none() && button.is_none() {
                StepOut::Click(ClickOut::Text(text))
            } else {
                StepOut::Click(ClickOut::Full(FlowMap(ClickFull { text, index, offset, expect_change, button })))
            }
        }
        Action::ClickAt(c) => StepOut::ClickAt(FlowMap(ClickAtOut {
            x: c.point.x,
            y: c.point.y,
            expect_change: c.check.expect_change,
            button: button_out(c.check.button),
        })),
        Action::Type(t) => StepOut::Type(t.text.clone()),
        Action::Key(k) if k.chord.modifiers.is_empty() => StepOut::Key(k.chord.key.name()),
        Action::Key(k) | Action::Hotkey(k) => {
            let shifted = k.chord.modifiers.contains(&rfb::Key::SHIFT);
            let mut key = k.chord.key.name();
            if shifted && key.chars().count() == 1 {
                // `shift` is listed, so the letter's own case adds nothing.
                key = key.to_lowercase();
            }
            StepOut::Hotkey(FlowMap(HotkeyOut {
                modifiers: k.chord.modifiers.iter().map(rfb::Key::name).collect(),
                key,
            }))
        }
        other => return Err(RenderError::Unsupported(other.keyword())),
    })
}

/// Renders `steps` as a script with `boot_wait: 0` (the recording starts on a screen that is already there),
/// `header` as a comment above the first step, and checks that the text loads back with the same steps.
pub fn render(steps: &[OutStep], header: &str) -> Result<String, RenderError> {
    // The serializer writes a comment as one line: several notes are joined.
    let comment = |lines: &[String]| lines.iter().map(|l| one_line(l)).collect::<Vec<_>>().join("; ");
    let doc = Document {
        boot_wait: 0,
        boot_commands: steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut notes = s.notes.clone();
                if i == 0 {
                    notes.insert(0, header.to_owned());
                }
                Ok(Commented(step_out(&s.action)?, comment(&notes)))
            })
            .collect::<Result<_, RenderError>>()?,
    };
    let options = serde_saphyr::ser_options! {
        comment_position: serde_saphyr::CommentPosition::Above,
    };
    let text = serde_saphyr::to_string_with_options(&doc, options).map_err(|e| RenderError::Yaml(e.to_string()))?;
    let loaded = crate::load_str(&text, std::path::Path::new("recorded.yml"))
        .map_err(|e| RenderError::Invalid(e.diagnostics().join("; ")))?;
    let same = loaded.steps.len() == steps.len()
        && loaded.steps.iter().zip(steps).all(|(l, s)| l.action.keyword() == s.action.keyword());
    if !same {
        return Err(RenderError::Invalid("the steps read back differ from the steps written".into()));
    }
    Ok(text)
}

/// A comment is one line: control characters (a newline would end the comment) become spaces.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{Click, ClickAt, ClickCheck, Point, Target, TypeText, Wait};

    fn target(text: &str) -> Target {
        Target {
            patterns: vec![crate::script::Pattern::phrase(text)],
            region: None,
            min_confidence: None,
            lookalikes: None,
        }
    }

    fn step(action: Action, notes: &[&str]) -> OutStep {
        OutStep { action, notes: notes.iter().map(|s| (*s).to_owned()).collect() }
    }

    #[test]
    fn every_recorded_step_renders_and_loads_back() {
        let hostile = "Don't: #1 - \"quoted\" [x] {y}";
        let steps = vec![
            step(
                Action::Wait(Wait {
                    target: target(hostile),
                    timeout: crate::script::DEFAULT_WAIT_TIMEOUT,
                    still: None,
                }),
                &[],
            ),
            step(
                Action::Click(Click {
                    target: target(hostile),
                    index: 1,
                    offset: Offset { x: -7, y: 2 },
                    timeout: None,
                    check: ClickCheck { expect_change: Some(false), ..ClickCheck::default() },
                }),
                &[],
            ),
            step(
                Action::Click(Click {
                    target: target("OK"),
                    index: 0,
                    offset: Offset::default(),
                    timeout: None,
                    check: ClickCheck::default(),
                }),
                &[],
            ),
            step(
                Action::ClickAt(ClickAt { point: Point { x: 5, y: 6 }, check: ClickCheck::default() }),
                &["no text under the pointer at (5, 6)", "second\nline"],
            ),
            step(Action::Type(TypeText { text: "- yes: no #".into(), secret: false, char_delay: None }), &[]),
            step(Action::Key(crate::keys::parse_key("enter").expect("key")), &[]),
            step(
                Action::Hotkey(crate::keys::parse_hotkey(&["ctrl".into(), "shift".into()], "A").expect("hotkey")),
                &[],
            ),
            step(Action::Key(crate::keys::parse_key("f5").expect("key")), &[]),
        ];
        let text = render(&steps, "recorded by vmkit").expect("renders");
        let script = crate::load_str(&text, std::path::Path::new("t.yml")).expect("loads");
        let Action::Click(c) = &script.steps[1].action else { panic!("a click: {text}") };
        assert_eq!((c.index, c.offset, c.check.expect_change), (1, Offset { x: -7, y: 2 }, Some(false)));
        assert_eq!(crate::script::show_pattern(&c.target.patterns[0]), crate::yaml::quote(hostile));
        let Action::Type(t) = &script.steps[4].action else { panic!("type") };
        assert_eq!(t.text, "- yes: no #");
        let Action::Hotkey(h) = &script.steps[6].action else { panic!("hotkey") };
        assert_eq!(h.chord, steps[6].action_chord());
        assert!(text.contains("# no text under the pointer at (5, 6)"), "{text}");
        assert!(text.contains("click: OK"), "{text}");
        assert!(text.contains("# recorded by vmkit\n"), "{text}");
        assert!(text.contains("# no text under the pointer at (5, 6); second line\n"), "{text}");
        assert_eq!(script.boot_wait, std::time::Duration::ZERO);
    }

    impl OutStep {
        fn action_chord(&self) -> rfb::Chord {
            match &self.action {
                Action::Key(k) | Action::Hotkey(k) => k.chord.clone(),
                _ => panic!("not a key"),
            }
        }
    }
}
