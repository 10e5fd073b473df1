//! Key names, chords and text as key strokes — shared by `vmkit screen key`, `vmkit screen type` and the
//! automation engine so that a name means the same key everywhere.
//!
//! A [`Key`] carries the X11 keysym and, when the key exists on a US PC keyboard, its PC scancode (XT set 1;
//! keys with an `E0` prefix are written `0x80 | code`, the encoding of QEMU's Extended Key Event). Servers that
//! accept that extension (QEMU, TigerVNC) get the scancode, so symbols come out right whatever keymap the guest
//! uses for a US keyboard; others (x11vnc) get the keysym alone.
//!
//! Text is typed as the US layout would type it: each printable ASCII character is one key, with Shift held for
//! the shifted ones. Other characters become Unicode keysyms (`0x01000000 + code point`, Latin-1 as itself) with
//! no scancode — X servers type them; a PC guest behind QEMU has no key for them.

use std::fmt;
use std::str::FromStr;

/// A key: the keysym it produces and, if it has one, its PC scancode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// The X11 keysym.
    pub keysym: u32,
    /// The PC (XT) scancode, `0x80 | code` for `E0`-prefixed keys; `None` when no US PC key produces it.
    pub scancode: Option<u32>,
}

impl Key {
    /// A key with a keysym and a scancode.
    pub const fn new(keysym: u32, scancode: u32) -> Self {
        Self { keysym, scancode: Some(scancode) }
    }

    /// A key known only by its keysym.
    pub const fn from_keysym(keysym: u32) -> Self {
        Self { keysym, scancode: None }
    }

    /// Enter / Return.
    pub const ENTER: Key = Key::new(0xff0d, 0x1c);
    /// Tab.
    pub const TAB: Key = Key::new(0xff09, 0x0f);
    /// Space bar.
    pub const SPACE: Key = Key::new(0x20, 0x39);
    /// Backspace.
    pub const BACKSPACE: Key = Key::new(0xff08, 0x0e);
    /// Delete.
    pub const DELETE: Key = Key::new(0xffff, 0xd3);
    /// Escape.
    pub const ESCAPE: Key = Key::new(0xff1b, 0x01);
    /// Left Shift.
    pub const SHIFT: Key = Key::new(0xffe1, 0x2a);
    /// Left Control.
    pub const CTRL: Key = Key::new(0xffe3, 0x1d);
    /// Left Alt (Option on a Mac).
    pub const ALT: Key = Key::new(0xffe9, 0x38);
    /// Left Super (Windows key, Command on a Mac).
    pub const SUPER: Key = Key::new(0xffeb, 0xdb);

    /// The key's name as scripts write it (`enter`, `ctrl`, `f5`, `a`, `A`), or `keysym 0x…` for a key with
    /// none: for messages and logs that name keys to people.
    pub fn name(&self) -> String {
        let table = MODIFIERS.iter().chain(NAMED);
        if let Some((names, _)) = table.into_iter().find(|(_, k)| k.keysym == self.keysym) {
            return names.first().copied().unwrap_or_default().to_owned();
        }
        if (0xffbe..=0xffd1).contains(&self.keysym) {
            return format!("f{}", self.keysym - 0xffbe + 1);
        }
        match char::from_u32(self.keysym).filter(|c| c.is_ascii_graphic()) {
            Some(c) => c.to_string(),
            None => format!("keysym {:#06x}", self.keysym),
        }
    }

    /// A key by name (case-insensitive: `enter`, `f5`, `pgdn`, `ctrl`, ...) or a single character (typed as on a
    /// US keyboard; a shifted character like `A` needs Shift, see [`Chord::parse`]).
    pub fn from_name(name: &str) -> Result<Key, KeyError> {
        if let Some(key) = named(name) {
            return Ok(key);
        }
        let mut chars = name.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(char_stroke(c)?.key),
            _ => Err(KeyError::Unknown { name: name.to_owned() }),
        }
    }
}

/// Key names accepted by [`Key::from_name`] and [`Chord::parse`], for help texts and error messages.
pub const ACCEPTED_NAMES: &str = "enter/return, tab, space, backspace/bsp, delete/del, esc/escape, up, down, left, \
     right, home, end, pgup/pageup, pgdn/pagedown, insert/ins, menu, capslock, print/printscreen, f1..f20, shift, \
     ctrl/control, alt/option, cmd/command/super/win/meta, plus, or a single character; a chord joins modifiers \
     (shift, ctrl, alt, cmd) and a key with '+', e.g. ctrl+alt+delete";

/// A key name or chord that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No key has this name.
    #[error("unknown key {name:?}; accepted: {ACCEPTED_NAMES}")]
    Unknown {
        /// The name as given.
        name: String,
    },
    /// A chord names a non-modifier before its last key.
    #[error(
        "{name:?} is not a modifier (shift, ctrl/control, alt/option, cmd/command/super/win/meta) in chord {chord:?}"
    )]
    NotAModifier {
        /// The offending part.
        name: String,
        /// The whole chord.
        chord: String,
    },
    /// An empty key name or chord.
    #[error("empty key name; accepted: {ACCEPTED_NAMES}")]
    Empty,
    /// A character that cannot be typed (a control character other than newline and tab).
    #[error("cannot type the control character {0:?}")]
    Untypeable(char),
}

const MODIFIERS: &[(&[&str], Key)] = &[
    (&["cmd", "command", "super", "win", "meta"], Key::SUPER),
    (&["ctrl", "control"], Key::CTRL),
    (&["alt", "option"], Key::ALT),
    (&["shift"], Key::SHIFT),
];

/// The function keys' names.
const FUNCTION_KEYS: [&str; 20] = [
    "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "f11", "f12", "f13", "f14", "f15", "f16", "f17",
    "f18", "f19", "f20",
];

/// Every key name [`Key::from_name`] accepts besides modifiers and single characters (for suggestions).
pub fn key_names() -> impl Iterator<Item = &'static str> {
    NAMED.iter().flat_map(|(names, _)| names.iter().copied()).chain(FUNCTION_KEYS)
}

/// Every modifier spelling a chord accepts: cmd and its aliases, ctrl, alt, shift.
pub fn modifier_names() -> impl Iterator<Item = &'static str> {
    MODIFIERS.iter().flat_map(|(names, _)| names.iter().copied())
}

const NAMED: &[(&[&str], Key)] = &[
    (&["enter", "return"], Key::ENTER),
    (&["tab"], Key::TAB),
    (&["space", "spacebar"], Key::SPACE),
    (&["backspace", "bsp"], Key::BACKSPACE),
    (&["delete", "del"], Key::DELETE),
    (&["esc", "escape"], Key::ESCAPE),
    (&["up"], Key::new(0xff52, 0xc8)),
    (&["down"], Key::new(0xff54, 0xd0)),
    (&["left"], Key::new(0xff51, 0xcb)),
    (&["right"], Key::new(0xff53, 0xcd)),
    (&["home"], Key::new(0xff50, 0xc7)),
    (&["end"], Key::new(0xff57, 0xcf)),
    (&["pgup", "pageup"], Key::new(0xff55, 0xc9)),
    (&["pgdn", "pagedown"], Key::new(0xff56, 0xd1)),
    (&["insert", "ins"], Key::new(0xff63, 0xd2)),
    (&["menu"], Key::new(0xff67, 0xdd)),
    (&["capslock"], Key::new(0xffe5, 0x3a)),
    (&["print", "printscreen"], Key::new(0xff61, 0xb7)),
    (&["plus"], Key::new(0x2b, 0x0d)),
];

/// US layout: scancode, unshifted character, shifted character.
const US: &[(u32, u8, u8)] = &[
    (0x02, b'1', b'!'),
    (0x03, b'2', b'@'),
    (0x04, b'3', b'#'),
    (0x05, b'4', b'$'),
    (0x06, b'5', b'%'),
    (0x07, b'6', b'^'),
    (0x08, b'7', b'&'),
    (0x09, b'8', b'*'),
    (0x0a, b'9', b'('),
    (0x0b, b'0', b')'),
    (0x0c, b'-', b'_'),
    (0x0d, b'=', b'+'),
    (0x10, b'q', b'Q'),
    (0x11, b'w', b'W'),
    (0x12, b'e', b'E'),
    (0x13, b'r', b'R'),
    (0x14, b't', b'T'),
    (0x15, b'y', b'Y'),
    (0x16, b'u', b'U'),
    (0x17, b'i', b'I'),
    (0x18, b'o', b'O'),
    (0x19, b'p', b'P'),
    (0x1a, b'[', b'{'),
    (0x1b, b']', b'}'),
    (0x1e, b'a', b'A'),
    (0x1f, b's', b'S'),
    (0x20, b'd', b'D'),
    (0x21, b'f', b'F'),
    (0x22, b'g', b'G'),
    (0x23, b'h', b'H'),
    (0x24, b'j', b'J'),
    (0x25, b'k', b'K'),
    (0x26, b'l', b'L'),
    (0x27, b';', b':'),
    (0x28, b'\'', b'"'),
    (0x29, b'`', b'~'),
    (0x2b, b'\\', b'|'),
    (0x2c, b'z', b'Z'),
    (0x2d, b'x', b'X'),
    (0x2e, b'c', b'C'),
    (0x2f, b'v', b'V'),
    (0x30, b'b', b'B'),
    (0x31, b'n', b'N'),
    (0x32, b'm', b'M'),
    (0x33, b',', b'<'),
    (0x34, b'.', b'>'),
    (0x35, b'/', b'?'),
    (0x39, b' ', b' '),
];

fn lookup(table: &[(&[&str], Key)], name: &str) -> Option<Key> {
    table.iter().find(|(names, _)| names.iter().any(|n| n.eq_ignore_ascii_case(name))).map(|&(_, k)| k)
}

fn modifier(name: &str) -> Option<Key> {
    lookup(MODIFIERS, name)
}

/// A named (non-character) key or modifier.
fn named(name: &str) -> Option<Key> {
    if let Some(k) = lookup(NAMED, name).or_else(|| modifier(name)) {
        return Some(k);
    }
    let n: u32 = name.strip_prefix(['f', 'F'])?.parse().ok().filter(|n| (1..=20).contains(n))?;
    let keysym = 0xffbe + n - 1;
    Some(match n {
        1..=10 => Key::new(keysym, 0x3b + n - 1),
        11 => Key::new(keysym, 0x57),
        12 => Key::new(keysym, 0x58),
        _ => Key::from_keysym(keysym),
    })
}

/// One typed character: the key and whether Shift must be held (US layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stroke {
    /// The key; its keysym is the character's.
    pub key: Key,
    /// True when the US layout needs Shift for it.
    pub shift: bool,
}

/// The keysym of a character: Latin-1 characters are their own keysym, others `0x01000000 + code point`.
pub fn unicode_keysym(c: char) -> u32 {
    let cp = u32::from(c);
    if (0x20..=0x7e).contains(&cp) || (0xa0..=0xff).contains(&cp) { cp } else { 0x0100_0000 + cp }
}

/// How to type one character. Newline and carriage return are Enter, tab is Tab; other control characters
/// cannot be typed.
pub fn char_stroke(c: char) -> Result<Stroke, KeyError> {
    match c {
        '\n' | '\r' => return Ok(Stroke { key: Key::ENTER, shift: false }),
        '\t' => return Ok(Stroke { key: Key::TAB, shift: false }),
        c if c.is_control() => return Err(KeyError::Untypeable(c)),
        _ => {}
    }
    let keysym = unicode_keysym(c);
    if let Ok(b) = u8::try_from(c) {
        for &(scancode, plain, shifted) in US {
            if b == plain {
                return Ok(Stroke { key: Key::new(keysym, scancode), shift: false });
            }
            if b == shifted {
                return Ok(Stroke { key: Key::new(keysym, scancode), shift: true });
            }
        }
    }
    Ok(Stroke { key: Key::from_keysym(keysym), shift: false })
}

/// The strokes that type `text` (a CR LF pair is one Enter). Fails before anything is sent if a character
/// cannot be typed.
pub fn text_strokes(text: &str) -> Result<Vec<Stroke>, KeyError> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() == Some(&'\n') {
            continue;
        }
        out.push(char_stroke(c)?);
    }
    Ok(out)
}

/// Modifiers held while a key is pressed, e.g. `ctrl+alt+delete`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Chord {
    /// Pressed in this order before the key, released in reverse order after it.
    pub modifiers: Vec<Key>,
    /// The key.
    pub key: Key,
}

impl Chord {
    /// Parses `enter`, `A`, `ctrl+c`, `ctrl+alt+delete`, `cmd+shift+enter`, `ctrl++`.
    ///
    /// Names are case-insensitive. A lone shifted character (`A`, `!`) implies Shift. With modifiers, a letter
    /// means its key whatever its case (`ctrl+C` is `ctrl+c`; say `ctrl+shift+c` for Shift), and a shifted
    /// symbol (`ctrl+!`) adds Shift.
    pub fn parse(spec: &str) -> Result<Chord, KeyError> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(KeyError::Empty);
        }
        let (mods, key): (Vec<&str>, &str) = if spec == "+" {
            (vec![], "+")
        } else if let Some(rest) = spec.strip_suffix("++") {
            (rest.split('+').collect(), "+")
        } else {
            let mut parts: Vec<&str> = spec.split('+').collect();
            let key = parts.pop().unwrap_or_default();
            (parts, key)
        };
        Chord::build(&mods, key, spec)
    }

    /// A chord from separate modifier names and key name (the automation script's `hotkey` form).
    pub fn from_parts<S: AsRef<str>>(modifiers: &[S], key: &str) -> Result<Chord, KeyError> {
        let mods: Vec<&str> = modifiers.iter().map(AsRef::as_ref).collect();
        let whole = mods.iter().copied().chain([key]).collect::<Vec<_>>().join("+");
        Chord::build(&mods, key.trim(), &whole)
    }

    fn build(mods: &[&str], key: &str, whole: &str) -> Result<Chord, KeyError> {
        let mut modifiers = Vec::with_capacity(mods.len() + 1);
        for m in mods {
            let m = m.trim();
            let k = modifier(m).ok_or_else(|| {
                if m.is_empty() || named(m).is_some() || m.chars().count() == 1 {
                    KeyError::NotAModifier { name: m.to_owned(), chord: whole.to_owned() }
                } else {
                    KeyError::Unknown { name: m.to_owned() }
                }
            })?;
            if !modifiers.contains(&k) {
                modifiers.push(k);
            }
        }
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if let Some(k) = named(key) {
            return Ok(Chord { modifiers, key: k });
        }
        let mut chars = key.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return Err(KeyError::Unknown { name: key.to_owned() });
        };
        let key = if !modifiers.is_empty() && c.is_ascii_alphabetic() {
            let shifted = modifiers.contains(&Key::SHIFT);
            let c = if shifted { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            char_stroke(c)?.key
        } else {
            let stroke = char_stroke(c)?;
            if stroke.shift && !modifiers.contains(&Key::SHIFT) {
                modifiers.push(Key::SHIFT);
            }
            stroke.key
        };
        Ok(Chord { modifiers, key })
    }

    /// The key events in order: modifiers down, key down, key up, modifiers up in reverse.
    pub fn events(&self) -> Vec<(Key, bool)> {
        let mut ev: Vec<(Key, bool)> = self.modifiers.iter().map(|&k| (k, true)).collect();
        ev.push((self.key, true));
        ev.push((self.key, false));
        ev.extend(self.modifiers.iter().rev().map(|&k| (k, false)));
        ev
    }
}

/// `ctrl+alt+delete`: the modifiers and the key by name ([`Key::name`]), joined with `+`.
impl fmt::Display for Chord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.modifiers {
            write!(f, "{}+", m.name())?;
        }
        f.write_str(&self.key.name())
    }
}

impl FromStr for Chord {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Chord::parse(s)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scancode {
            Some(sc) => write!(f, "keysym {:#06x} (scancode {sc:#04x})", self.keysym),
            None => write!(f, "keysym {:#06x}", self.keysym),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printable_ascii_has_a_us_key() {
        for b in 0x20u8..=0x7e {
            let s = char_stroke(char::from(b)).unwrap();
            assert_eq!(s.key.keysym, u32::from(b));
            assert!(s.key.scancode.is_some(), "{:?}", char::from(b));
            assert_eq!(s.shift, b.is_ascii_uppercase() || br#"~!@#$%^&*()_+{}|:"<>?"#.contains(&b), "{b}");
        }
        // No two characters share a key and a shift state.
        let mut seen = std::collections::HashSet::new();
        for b in 0x21u8..=0x7e {
            let s = char_stroke(char::from(b)).unwrap();
            assert!(seen.insert((s.key.scancode, s.shift)), "{}", char::from(b));
        }
    }

    #[test]
    fn chords_name_their_keys() {
        for (spec, shown) in [
            ("ctrl+alt+delete", "ctrl+alt+delete"),
            ("Return", "enter"),
            ("A", "shift+A"),
            ("ctrl++", "ctrl+shift+plus"),
            ("f12", "f12"),
            ("cmd+shift+enter", "cmd+shift+enter"),
            ("space", "space"),
        ] {
            assert_eq!(Chord::parse(spec).unwrap().to_string(), shown, "{spec}");
        }
        assert_eq!(Key::from_keysym(0x01000101).name(), "keysym 0x1000101");
    }

    #[test]
    fn named_keys_and_aliases() {
        assert_eq!(Key::from_name("Return").unwrap(), Key::ENTER);
        assert_eq!(Key::from_name("bsp").unwrap(), Key::BACKSPACE);
        assert_eq!(Key::from_name("PGDN").unwrap(), Key::from_name("pagedown").unwrap());
        assert_eq!(Key::from_name("f1").unwrap(), Key::new(0xffbe, 0x3b));
        assert_eq!(Key::from_name("F12").unwrap(), Key::new(0xffc9, 0x58));
        assert_eq!(Key::from_name("f20").unwrap(), Key::from_keysym(0xffd1));
        assert_eq!(Key::from_name("win").unwrap(), Key::SUPER);
        assert_eq!(Key::from_name("x").unwrap(), Key::new(u32::from('x'), 0x2d));
        let err = Key::from_name("f21").unwrap_err().to_string();
        assert!(err.contains("unknown key \"f21\"") && err.contains("pgup/pageup"), "{err}");
    }

    #[test]
    fn chords() {
        let c = Chord::parse("ctrl+alt+delete").unwrap();
        assert_eq!(c.modifiers, [Key::CTRL, Key::ALT]);
        assert_eq!(c.key, Key::DELETE);
        assert_eq!(
            c.events(),
            [
                (Key::CTRL, true),
                (Key::ALT, true),
                (Key::DELETE, true),
                (Key::DELETE, false),
                (Key::ALT, false),
                (Key::CTRL, false)
            ]
        );
        assert_eq!(Chord::parse("A").unwrap().modifiers, [Key::SHIFT]);
        assert_eq!(Chord::parse("a").unwrap().modifiers, []);
        let c = Chord::parse("Control+C").unwrap();
        assert_eq!((c.modifiers.as_slice(), c.key.keysym), ([Key::CTRL].as_slice(), u32::from('c')));
        let c = Chord::parse("ctrl+shift+c").unwrap();
        assert_eq!(c.key.keysym, u32::from('C'));
        assert_eq!(Chord::parse("ctrl+!").unwrap().modifiers, [Key::CTRL, Key::SHIFT]);
        assert_eq!(Chord::parse("ctrl++").unwrap().key.keysym, u32::from('+'));
        assert_eq!(Chord::parse("+").unwrap().key.keysym, u32::from('+'));
        assert_eq!(
            Chord::parse("cmd+shift+enter").unwrap(),
            Chord::from_parts(&["command", "shift"], "enter").unwrap()
        );
        assert!(matches!(Chord::parse("enter+a"), Err(KeyError::NotAModifier { .. })));
        assert!(matches!(Chord::parse("ctrl+"), Err(KeyError::NotAModifier { .. }) | Err(KeyError::Empty)));
        assert!(matches!(Chord::parse("hyper+a"), Err(KeyError::Unknown { .. })));
        assert!(matches!(Chord::parse("  "), Err(KeyError::Empty)));
    }

    #[test]
    fn text_to_strokes() {
        let s = text_strokes("a\r\nB\té").unwrap();
        assert_eq!(s.len(), 5);
        assert_eq!(s[1].key, Key::ENTER);
        assert!(s[2].shift);
        assert_eq!(s[3].key, Key::TAB);
        assert_eq!(s[4].key, Key::from_keysym(0xe9));
        assert_eq!(text_strokes("€").unwrap()[0].key, Key::from_keysym(0x0100_20ac));
        assert_eq!(text_strokes("a\u{7}"), Err(KeyError::Untypeable('\u{7}')));
    }
}
