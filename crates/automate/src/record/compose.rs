//! From a person's input to script steps and a recording.
//!
//! [`Composer`] takes the viewer's decoded input and the screens the recorder's own connection sees, as they
//! happen. It writes the recording at once (frames and input lines, through [`FrameRecorder`], in the format
//! `--debug` writes), and plans the steps; the OCR that anchors each click on text runs at the end
//! ([`Composer::finish`]), so reading a screen never delays the recording of what comes next.
//!
//! The input lines it records are the ones the script's steps will send — a run of typed characters as one
//! `type` line, a chord as one `key` line — so `vmkit automate replay` of the written script against this
//! recording checks each step against what the person did. What no step can do (other buttons, the wheel,
//! drags, pasting, keys without a name) is not recorded as input; the script says where it happened in a
//! comment.

use std::time::{Duration, Instant};

use ocr::ScreenText;

use crate::keys::KeyPress;
use crate::record::render::OutStep;
use crate::recording::{ButtonName, FrameRecorder, Line};
use crate::script::{Action, Click, ClickAt, ClickCheck, MouseButton, Offset, Pattern, Point, Target, TypeText, Wait};

/// How long after a click's release a change of the screen counts as its effect: the runner's default
/// `--click-confirm`. A click the screen did not answer within it is written with `expect_change: false`.
pub const CONFIRM: Duration = Duration::from_secs(2);
/// How far (pixels) a press may lie outside a word's box and still be a click on that word.
const WORD_MARGIN: u32 = 3;
/// Offsets this small (pixels, each axis) are left out: a replay allows a few pixels either way.
const OFFSET_SLACK: i64 = 1;
/// A release farther than this from its press (pixels, either axis) is a drag.
const DRAG: u32 = 4;

/// The viewer's input, as the recorder saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The pointer: buttons held (bit 0 left) and position.
    Pointer {
        /// Button mask.
        buttons: u8,
        /// Framebuffer pixels.
        x: u16,
        /// Framebuffer pixels.
        y: u16,
    },
    /// A key (X keysym).
    Key {
        /// Pressed or released.
        down: bool,
        /// X keysym (0: the viewer sent only a scancode).
        keysym: u32,
    },
    /// The viewer sent its clipboard (length only).
    Paste {
        /// Bytes.
        len: u32,
    },
}

#[derive(Debug, Default, Clone, Copy)]
struct Mods {
    shift: bool,
    ctrl: bool,
    alt: bool,
    super_: bool,
}

#[derive(Debug)]
enum Planned {
    Click { frame: rfb::Frame, x: u32, y: u32, button: MouseButton, changed: bool, notes: Vec<String> },
    Type(String, Vec<String>),
    Key(KeyPress, Vec<String>),
}

/// The live half of a recording: see the module docs.
#[derive(Debug)]
pub struct Composer {
    recorder: FrameRecorder,
    last: Option<rfb::Frame>,
    pointer: (rfb::PointerMode, bool),
    buttons: u8,
    mods: Mods,
    typing: String,
    hidden: usize,
    type_text: bool,
    plan: Vec<Planned>,
    /// Notes waiting for the next step.
    notes: Vec<String>,
    /// The last click and when it was released, while its effect may still show.
    watch: Option<(usize, Instant)>,
    press_at: Option<(usize, u32, u32)>,
}

/// What the recording held, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Clicks anchored on text.
    pub clicks: usize,
    /// Clicks written as `click_at`.
    pub clicks_at: usize,
    /// `type` steps.
    pub typed: usize,
    /// `key` and `hotkey` steps.
    pub keys: usize,
    /// Things noted but not scripted.
    pub notes: usize,
}

impl Composer {
    /// Starts with the screen as it is. `type_text: false` leaves typed characters out of the script and the
    /// recording (`--no-type-text`).
    pub fn new(
        recorder: FrameRecorder,
        first: &rfb::Frame,
        pointer: (rfb::PointerMode, bool),
        type_text: bool,
    ) -> Self {
        let mut c = Self {
            recorder,
            last: None,
            pointer,
            buttons: 0,
            mods: Mods::default(),
            typing: String::new(),
            hidden: 0,
            type_text,
            plan: Vec::new(),
            notes: Vec::new(),
            watch: None,
            press_at: None,
        };
        c.frame(first, pointer, Instant::now());
        c
    }

    /// A screen from the recorder's connection: recorded when its pixels differ from the last one recorded. A
    /// change within [`CONFIRM`] of a click's release is that click's effect.
    pub fn frame(&mut self, frame: &rfb::Frame, pointer: (rfb::PointerMode, bool), now: Instant) {
        let pointer_changed = self.pointer != pointer;
        self.pointer = pointer;
        let same = self
            .last
            .as_ref()
            .is_some_and(|l| (l.width(), l.height()) == (frame.width(), frame.height()) && l.rgba() == frame.rgba());
        if same {
            if pointer_changed {
                // The recorder writes the pointer's new state and keeps the unchanged screen out.
                self.recorder.frame(frame, pointer);
            }
            return;
        }
        self.recorder.frame(frame, pointer);
        self.last = Some(frame.clone());
        if let Some((i, released)) = self.watch
            && now.saturating_duration_since(released) <= CONFIRM
            && let Some(Planned::Click { changed, .. }) = self.plan.get_mut(i)
        {
            *changed = true;
        }
    }

    /// One input event; `frame` is the screen at that moment (used for a button press: the screen the person
    /// clicked on) and `pointer` the server's pointer state then.
    pub fn input(&mut self, input: Input, frame: &rfb::Frame, pointer: (rfb::PointerMode, bool), now: Instant) {
        match input {
            Input::Pointer { buttons, x, y } => {
                self.pointer_event(buttons, (u32::from(x), u32::from(y)), frame, pointer, now)
            }
            Input::Key { down, keysym } => self.key(down, keysym),
            Input::Paste { len } => {
                self.flush_typing();
                // Viewers send their clipboard on connecting and whenever it changes, not only to paste.
                self.notes.push(format!(
                    "the viewer sent its clipboard ({len} bytes) here; clipboard contents are not recorded (text \
                     pasted into the machine must be typed with `type:`)"
                ));
            }
        }
    }

    fn end_watch(&mut self) {
        self.watch = None;
    }

    fn pointer_event(
        &mut self,
        buttons: u8,
        (x, y): (u32, u32),
        frame: &rfb::Frame,
        pointer: (rfb::PointerMode, bool),
        now: Instant,
    ) {
        let (w, h) = (frame.width(), frame.height());
        let (x, y) = (x.min(w.saturating_sub(1)), y.min(h.saturating_sub(1)));
        let was = self.buttons;
        self.buttons = buttons;
        let pressed = buttons & !was;
        let released = was & !buttons;
        for (bit, button, name) in [
            (0u8, MouseButton::Left, ButtonName::Left),
            (1, MouseButton::Middle, ButtonName::Middle),
            (2, MouseButton::Right, ButtonName::Right),
        ] {
            if pressed & (1 << bit) != 0 {
                self.flush_typing();
                self.end_watch();
                // The screen the person clicked on is the last frame before the press.
                self.frame(frame, pointer, now);
                self.recorder.input(Line::Move { t_ms: 0.0, x, y });
                self.recorder.input(Line::Button { t_ms: 0.0, button: name, down: true, x, y });
                let notes = std::mem::take(&mut self.notes);
                self.plan.push(Planned::Click { frame: frame.clone(), x, y, button, changed: false, notes });
                self.press_at = Some((self.plan.len() - 1, x, y));
            }
            if released & (1 << bit) != 0 {
                self.recorder.input(Line::Button { t_ms: 0.0, button: name, down: false, x, y });
                if let Some((i, px, py)) = self.press_at.take() {
                    if px.abs_diff(x) > DRAG || py.abs_diff(y) > DRAG {
                        self.notes.push(format!(
                            "the click before this step was a drag from ({px}, {py}) to ({x}, {y}): scripts cannot \
                             drag, a replay of it fails at the release"
                        ));
                    }
                    self.watch = Some((i, now));
                }
            }
        }
        for (bit, name) in [(3u8, "wheel-up"), (4, "wheel-down")] {
            if pressed & (1 << bit) != 0 {
                self.flush_typing();
                self.notes.push(format!("a {name} at ({x}, {y}) is not recorded"));
            }
        }
    }

    fn key(&mut self, down: bool, keysym: u32) {
        match keysym {
            0xffe1 | 0xffe2 => self.mods.shift = down,
            0xffe3 | 0xffe4 => self.mods.ctrl = down,
            0xffe7..=0xffea => self.mods.alt = down,
            0xffeb | 0xffec => self.mods.super_ = down,
            // AltGr and Mode_switch pick characters, which arrive as their own keysyms.
            0xfe03 | 0xff7e => {}
            _ if !down => {}
            0 => {
                self.flush_typing();
                self.notes.push("a key the viewer sent without a keysym is not recorded".to_owned());
            }
            _ => self.key_down(keysym),
        }
    }

    fn key_down(&mut self, keysym: u32) {
        let chorded = self.mods.ctrl || self.mods.alt || self.mods.super_;
        let printable = printable(keysym);
        if let Some(c) = printable
            && !chorded
        {
            if self.type_text {
                self.typing.push(c);
            } else {
                self.hidden += 1;
            }
            return;
        }
        self.flush_typing();
        let name = match printable {
            Some(c) => c.to_lowercase().collect::<String>(),
            None => rfb::Key::from_keysym(keysym).name(),
        };
        if name.starts_with("keysym ") {
            self.notes.push(format!("a key with no name in scripts ({name}) is not recorded"));
            return;
        }
        let mut mods: Vec<String> = Vec::new();
        for (held, m) in
            [(self.mods.ctrl, "ctrl"), (self.mods.alt, "alt"), (self.mods.super_, "cmd"), (self.mods.shift, "shift")]
        {
            if held {
                mods.push(m.to_owned());
            }
        }
        let press =
            if mods.is_empty() { crate::keys::parse_key(&name) } else { crate::keys::parse_hotkey(&mods, &name) };
        match press {
            Ok(press) => {
                self.end_watch();
                self.recorder.input(Line::Key { t_ms: 0.0, chord: press.chord.to_string() });
                let notes = std::mem::take(&mut self.notes);
                self.plan.push(Planned::Key(press, notes));
            }
            Err(e) => self.notes.push(format!("a key vmkit cannot script ({e}) is not recorded")),
        }
    }

    fn flush_typing(&mut self) {
        if !self.typing.is_empty() {
            self.end_watch();
            let text = std::mem::take(&mut self.typing);
            self.recorder.input(Line::Type { t_ms: 0.0, text: text.clone() });
            let notes = std::mem::take(&mut self.notes);
            self.plan.push(Planned::Type(text, notes));
        }
        if self.hidden > 0 {
            self.notes.push(format!(
                "{} typed characters are not recorded here (--no-type-text)",
                std::mem::take(&mut self.hidden)
            ));
        }
    }

    /// Ends the recording (the last screen is `last`) and waits until it is on disk; returns the steps, each
    /// click anchored on the text under the press point, read by `read` (OCR) from the screen it was made on.
    pub fn finish(
        mut self,
        last: &rfb::Frame,
        mut read: impl FnMut(&rfb::Frame) -> Result<ScreenText, String>,
    ) -> Result<(Vec<OutStep>, Counts), String> {
        self.flush_typing();
        self.frame(last, self.pointer, Instant::now());
        self.recorder.finish();
        let mut steps = Vec::new();
        let mut counts = Counts::default();
        for planned in std::mem::take(&mut self.plan) {
            match planned {
                Planned::Click { frame, x, y, button, changed, notes } => {
                    let text = read(&frame)?;
                    let check =
                        ClickCheck { button, expect_change: (!changed).then_some(false), ..ClickCheck::default() };
                    let mut notes = notes;
                    if !changed {
                        notes.push(format!("the screen did not change within {} s of this click", CONFIRM.as_secs()));
                    }
                    match anchor(&text, x, y) {
                        Some(a) => {
                            counts.clicks += 1;
                            let target = Target {
                                patterns: vec![Pattern::phrase(a.phrase.clone())],
                                region: None,
                                min_confidence: None,
                                lookalikes: None,
                            };
                            steps.push(OutStep {
                                action: Action::Wait(Wait {
                                    target: target.clone(),
                                    timeout: crate::script::DEFAULT_WAIT_TIMEOUT,
                                    still: None,
                                }),
                                notes,
                            });
                            steps.push(OutStep {
                                action: Action::Click(Click {
                                    target,
                                    index: a.index,
                                    offset: a.offset,
                                    timeout: None,
                                    check,
                                }),
                                notes: Vec::new(),
                            });
                        }
                        None => {
                            counts.clicks_at += 1;
                            notes.push(format!("no text was under the pointer at ({x}, {y}): clicking by position"));
                            steps.push(OutStep {
                                action: Action::ClickAt(ClickAt { point: Point { x, y }, check }),
                                notes,
                            });
                        }
                    }
                }
                Planned::Type(text, notes) => {
                    counts.typed += 1;
                    steps.push(OutStep {
                        action: Action::Type(TypeText { text, secret: false, char_delay: None }),
                        notes,
                    });
                }
                Planned::Key(press, notes) => {
                    counts.keys += 1;
                    let action =
                        if press.chord.modifiers.is_empty() { Action::Key(press) } else { Action::Hotkey(press) };
                    steps.push(OutStep { action, notes });
                }
            }
        }
        counts.notes = self.notes.len() + steps.iter().map(|s| s.notes.len()).sum::<usize>();
        if !self.notes.is_empty() {
            match steps.last_mut() {
                Some(last) => last
                    .notes
                    .extend(std::mem::take(&mut self.notes).into_iter().map(|n| format!("after this step: {n}"))),
                None => return Err(format!("nothing to script: {}", self.notes.join("; "))),
            }
        }
        Ok((steps, counts))
    }

    /// How many steps are planned so far (clicks count once).
    pub fn planned(&self) -> usize {
        self.plan.len()
    }
}

/// The character a keysym types, when it types one (Latin-1 and Unicode keysyms; not control characters).
pub fn printable(keysym: u32) -> Option<char> {
    let c = match keysym {
        0x20..=0x7e | 0xa0..=0xff => char::from_u32(keysym)?,
        0x0100_0000..=0x0110_ffff => char::from_u32(keysym - 0x0100_0000)?,
        _ => return None,
    };
    (!c.is_control()).then_some(c)
}

/// The text a click is anchored on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The phrase, as the screen reads it.
    pub phrase: String,
    /// Which of its matches, top to bottom (0 unless the phrase is on the screen more than once).
    pub index: i64,
    /// From the match's centre to the press point (zero when within a pixel).
    pub offset: Offset,
}

/// The text under (`x`, `y`): the word whose box holds the point (within a few pixels), grown along its line
/// into the shortest phrase that matches only there, the way a script's `click` would find it (the same
/// matching rules). A word that is nowhere unique is used with `index`. `None` when no word is under the point.
pub fn anchor(text: &ScreenText, x: u32, y: u32) -> Option<Anchor> {
    let inside = |r: &ocr::Rect| {
        x + WORD_MARGIN >= r.x
            && x < r.x + r.width + WORD_MARGIN
            && y + WORD_MARGIN >= r.y
            && y < r.y + r.height + WORD_MARGIN
    };
    let word = text
        .words
        .iter()
        .enumerate()
        .filter(|(_, w)| inside(&w.bbox) && !ocr::matching::normalise(&w.text).is_empty())
        .min_by_key(|(_, w)| u64::from(w.bbox.width) * u64::from(w.bbox.height))
        .map(|(i, _)| i)?;
    let line = text.lines.iter().find(|l| l.words.contains(&word))?;
    let pos = line.words.iter().position(|&i| i == word)?;
    let mut fallback: Option<Anchor> = None;
    for len in 1..=line.words.len() {
        let first = pos.saturating_sub(len - 1);
        for start in first..=pos {
            let Some(span) = line.words.get(start..start + len) else { continue };
            let phrase =
                span.iter().filter_map(|&i| text.words.get(i)).map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ");
            // Only what a script reads back as this same phrase (not a `/regex/`).
            if !matches!(Pattern::parse(&phrase), Ok(Pattern::Phrase(_))) {
                continue;
            }
            let target = Target {
                patterns: vec![Pattern::phrase(phrase.clone())],
                region: None,
                min_confidence: None,
                lookalikes: None,
            };
            let found = crate::find::find(&target, text);
            let Some(mine) = found.iter().position(|m| m.words.contains(&word)) else { continue };
            let m = &found[mine];
            let cx = i64::from(m.bbox.x) + i64::from(m.bbox.width) / 2;
            let cy = i64::from(m.bbox.y) + i64::from(m.bbox.height) / 2;
            let (dx, dy) = (i64::from(x) - cx, i64::from(y) - cy);
            let offset = if dx.abs() <= OFFSET_SLACK && dy.abs() <= OFFSET_SLACK {
                Offset::default()
            } else {
                Offset { x: i32::try_from(dx).ok()?, y: i32::try_from(dy).ok()? }
            };
            let a = Anchor { phrase, index: mine as i64, offset };
            if found.len() == 1 {
                return Some(a);
            }
            fallback.get_or_insert(a);
        }
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocr::{Rect, Word};

    fn screen(words: &[(&str, u32, u32, u32)]) -> ScreenText {
        let words = words
            .iter()
            .map(|&(t, x, y, w)| Word { text: t.to_owned(), confidence: 90.0, bbox: Rect::new(x, y, w, 20) })
            .collect();
        ScreenText::from_words(1000, 800, words)
    }

    #[test]
    fn a_unique_word_is_its_own_anchor() {
        let s = screen(&[("Welcome", 10, 10, 100), ("Continue", 400, 500, 90), ("Cancel", 520, 500, 70)]);
        let a = anchor(&s, 445, 510).expect("anchored");
        assert_eq!(a, Anchor { phrase: "Continue".into(), index: 0, offset: Offset::default() });
        let a = anchor(&s, 402, 505).expect("anchored off centre");
        assert_eq!(a.offset, Offset { x: -43, y: -5 });
        assert_eq!(anchor(&s, 300, 300), None, "nothing there");
    }

    #[test]
    fn a_repeated_word_grows_into_a_unique_phrase_or_takes_an_index() {
        let s = screen(&[("Agree", 10, 10, 60), ("I", 300, 500, 10), ("Agree", 320, 500, 60), ("Agree", 10, 700, 60)]);
        // "Agree" is on the screen three times, and also inside "I Agree": "I Agree" is unique.
        let a = anchor(&s, 350, 510).expect("anchored");
        assert_eq!((a.phrase.as_str(), a.index), ("I Agree", 0));
        // The last "Agree" has no neighbours: the word itself, by index.
        let a = anchor(&s, 40, 710).expect("anchored");
        assert_eq!((a.phrase.as_str(), a.index), ("Agree", 2));
    }

    #[test]
    fn keysyms_that_type() {
        assert_eq!(printable(0x61), Some('a'));
        assert_eq!(printable(0xe9), Some('é'));
        assert_eq!(printable(0x0100_20ac), Some('€'));
        assert_eq!(printable(0xff0d), None);
        assert_eq!(printable(0x7f), None);
    }
}

#[cfg(test)]
mod session_tests {
    use super::*;
    use crate::recording::{Recording, start_line};
    use ocr::{Rect, Word};

    const POINTER: (rfb::PointerMode, bool) = (rfb::PointerMode::Absolute, true);

    fn frame(shade: u8, serial: u64) -> rfb::Frame {
        rfb::Frame::from_rgba(100, 50, vec![shade; 100 * 50 * 4], serial).expect("frame")
    }

    fn keys(c: &mut Composer, f: &rfb::Frame, syms: &[(bool, u32)]) {
        for &(down, keysym) in syms {
            c.input(Input::Key { down, keysym }, f, POINTER, Instant::now());
        }
    }

    fn click(c: &mut Composer, f: &rfb::Frame, x: u16, y: u16, button: u8) {
        c.input(Input::Pointer { buttons: button, x, y }, f, POINTER, Instant::now());
        c.input(Input::Pointer { buttons: 0, x, y }, f, POINTER, Instant::now());
    }

    /// One word, "OK", at (10, 10) 30x20.
    fn ok_screen(_: &rfb::Frame) -> Result<ScreenText, String> {
        let word = Word { text: "OK".into(), confidence: 90.0, bbox: Rect::new(10, 10, 30, 20) };
        Ok(ScreenText::from_words(100, 50, vec![word]))
    }

    fn session(type_text: bool) -> (Vec<OutStep>, Counts, Vec<String>) {
        let tmp = tempfile::tempdir().expect("tmp");
        let start = Instant::now();
        let rec = FrameRecorder::create(
            tmp.path(),
            start,
            crate::redact::Redactor::default(),
            start_line("h:1", "s", (100, 50)),
        )
        .expect("recorder");
        let pointer = (rfb::PointerMode::Absolute, true);
        let (a, b) = (frame(10, 1), frame(20, 2));
        let mut c = Composer::new(rec, &a, pointer, type_text);
        // A click on "OK" that changes the screen, a click on nothing that does not.
        click(&mut c, &a, 25, 20, 1);
        c.frame(&b, pointer, Instant::now());
        click(&mut c, &b, 80, 40, 1);
        // "Hi" with Shift, Enter, Shift+Tab, Ctrl+Shift+S, a right click on nothing, a paste, F5.
        keys(&mut c, &b, &[(true, 0xffe1), (true, 0x48), (false, 0x48), (false, 0xffe1), (true, 0x69), (false, 0x69)]);
        keys(&mut c, &b, &[(true, 0xff0d), (false, 0xff0d)]);
        keys(&mut c, &b, &[(true, 0xffe1), (true, 0xff09), (false, 0xff09), (false, 0xffe1)]);
        keys(
            &mut c,
            &b,
            &[(true, 0xffe3), (true, 0xffe1), (true, 0x53), (false, 0x53), (false, 0xffe1), (false, 0xffe3)],
        );
        click(&mut c, &b, 5, 5, 4);
        c.input(Input::Paste { len: 7 }, &b, POINTER, Instant::now());
        keys(&mut c, &b, &[(true, 0xffc2), (false, 0xffc2)]);
        let (steps, counts) = c.finish(&b, ok_screen).expect("finished");
        let recording = Recording::open(tmp.path()).expect("the recording opens");
        let lines =
            recording.index.lines.iter().filter(|(_, l)| l.is_checked_input()).map(|(_, l)| l.describe()).collect();
        (steps, counts, lines)
    }

    #[test]
    fn input_becomes_steps_and_the_lines_they_send() {
        let (steps, counts, lines) = session(true);
        let shown: Vec<&str> = steps.iter().map(|s| s.action.keyword()).collect();
        assert_eq!(shown, ["wait", "click", "click_at", "type", "key", "hotkey", "hotkey", "click_at", "key"]);
        let Action::Click(click) = &steps[1].action else { panic!("click") };
        assert_eq!(click.check.expect_change, None, "the screen changed after it");
        let Action::ClickAt(at) = &steps[2].action else { panic!("click_at") };
        assert_eq!((at.point, at.check.expect_change), (Point { x: 80, y: 40 }, Some(false)));
        assert!(
            steps[2].notes.iter().any(|n| n.contains("no text was under the pointer at (80, 40)")),
            "{:?}",
            steps[2].notes
        );
        let Action::Type(t) = &steps[3].action else { panic!("type") };
        assert_eq!(t.text, "Hi");
        let chords: Vec<String> = steps[4..]
            .iter()
            .filter_map(|s| match &s.action {
                Action::Key(k) | Action::Hotkey(k) => Some(k.chord.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(chords, ["enter", "shift+tab", "ctrl+shift+S", "f5"]);
        // The right click is a click with its button; the paste is a note on the step after it.
        let Action::ClickAt(right) = &steps[7].action else { panic!("right click") };
        assert_eq!((right.point, right.check.button), (Point { x: 5, y: 5 }, MouseButton::Right));
        assert!(steps[8].notes.iter().any(|n| n.contains("clipboard (7 bytes)")), "{:?}", steps[8].notes);
        assert_eq!((counts.clicks, counts.clicks_at, counts.typed, counts.keys), (1, 2, 1, 4));
        assert_eq!(
            lines,
            [
                "a left-button press at (25, 20)",
                "a left-button release at (25, 20)",
                "a left-button press at (80, 40)",
                "a left-button release at (80, 40)",
                "typing \"Hi\"",
                "key enter",
                "key shift+tab",
                "key ctrl+shift+S",
                "a right-button press at (5, 5)",
                "a right-button release at (5, 5)",
                "key f5",
            ]
        );
    }

    #[test]
    fn a_change_of_the_pointer_alone_is_recorded() {
        let tmp = tempfile::tempdir().expect("tmp");
        let header = start_line("h:1", "s", (100, 50));
        let rec = FrameRecorder::create(tmp.path(), Instant::now(), crate::redact::Redactor::default(), header)
            .expect("recorder");
        let a = frame(10, 1);
        let mut c = Composer::new(rec, &a, (rfb::PointerMode::Absolute, false), true);
        // The same screen, now with the pointer kept out of it (the cursor encoding arrived).
        c.frame(&frame(10, 2), POINTER, Instant::now());
        let (steps, _) = c.finish(&a, ok_screen).expect("finished");
        assert!(steps.is_empty());
        let recording = Recording::open(tmp.path()).expect("opens");
        let pointers: Vec<bool> = recording
            .index
            .lines
            .iter()
            .filter_map(|(_, l)| match l {
                Line::Pointer { out_of_framebuffer, .. } => Some(*out_of_framebuffer),
                _ => None,
            })
            .collect();
        assert_eq!(pointers, [false, true]);
    }

    #[test]
    fn no_type_text_keeps_typing_out_of_script_and_recording() {
        let (steps, _, lines) = session(false);
        assert!(!steps.iter().any(|s| matches!(s.action, Action::Type(_))));
        assert!(!lines.iter().any(|l| l.starts_with("typing")), "{lines:?}");
        assert!(
            steps[3].notes.iter().any(|n| n.contains("2 typed characters are not recorded")),
            "{:?}",
            steps[3].notes
        );
    }
}
