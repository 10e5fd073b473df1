//! Key names as scripts write them, and the X11 keysyms they stand for.
//!
//! The names are the script format's compatibility surface: `enter`/`return`, `bsp`, `pgdn`, `cmd`/`win`/`option`
//! and the rest of the aliases the original runner accepted must keep working. The table lives here, next to the
//! script model, so that `vmkit automate check` can reject an unknown key name without connecting anywhere; the
//! RFB client only ever sees keysyms.

use std::fmt;

/// A modifier key, as `hotkey.modifiers` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Modifier {
    /// `cmd`, `command`, `super`, `win`, `meta`: Command on macOS, the Windows key elsewhere (keysym `Super_L`).
    Super,
    /// `ctrl`, `control`.
    Ctrl,
    /// `alt`, `option`.
    Alt,
    /// `shift`.
    Shift,
}

impl Modifier {
    /// Every spelling a script may use, with what it means.
    pub const NAMES: &[(&'static str, Modifier)] = &[
        ("cmd", Modifier::Super),
        ("command", Modifier::Super),
        ("super", Modifier::Super),
        ("win", Modifier::Super),
        ("meta", Modifier::Super),
        ("ctrl", Modifier::Ctrl),
        ("control", Modifier::Ctrl),
        ("alt", Modifier::Alt),
        ("option", Modifier::Alt),
        ("shift", Modifier::Shift),
    ];

    /// Looks a modifier up by name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        let lower = name.trim().to_ascii_lowercase();
        Self::NAMES.iter().find(|(n, _)| *n == lower).map(|(_, m)| *m)
    }

    /// The X11 keysym of the left-hand key.
    pub fn keysym(self) -> u32 {
        match self {
            Modifier::Super => 0xffeb, // Super_L
            Modifier::Ctrl => 0xffe3,  // Control_L
            Modifier::Alt => 0xffe9,   // Alt_L
            Modifier::Shift => 0xffe1, // Shift_L
        }
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Modifier::Super => "super",
            Modifier::Ctrl => "ctrl",
            Modifier::Alt => "alt",
            Modifier::Shift => "shift",
        }
    }
}

/// A non-character key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NamedKey {
    /// Return / Enter.
    Enter,
    /// Tab.
    Tab,
    /// Space bar.
    Space,
    /// BackSpace.
    Backspace,
    /// Delete.
    Delete,
    /// Escape.
    Escape,
    /// Cursor up.
    Up,
    /// Cursor down.
    Down,
    /// Cursor left.
    Left,
    /// Cursor right.
    Right,
    /// Home.
    Home,
    /// End.
    End,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Insert.
    Insert,
    /// Menu (context menu key).
    Menu,
    /// Caps Lock.
    CapsLock,
    /// Print Screen.
    Print,
    /// Function key F1…F24.
    F(u8),
}

/// The highest function key a script may name.
pub const MAX_FUNCTION_KEY: u8 = 24;

const NAMED: &[(&str, NamedKey)] = &[
    ("enter", NamedKey::Enter),
    ("return", NamedKey::Enter),
    ("tab", NamedKey::Tab),
    ("space", NamedKey::Space),
    ("backspace", NamedKey::Backspace),
    ("bsp", NamedKey::Backspace),
    ("delete", NamedKey::Delete),
    ("del", NamedKey::Delete),
    ("esc", NamedKey::Escape),
    ("escape", NamedKey::Escape),
    ("up", NamedKey::Up),
    ("down", NamedKey::Down),
    ("left", NamedKey::Left),
    ("right", NamedKey::Right),
    ("home", NamedKey::Home),
    ("end", NamedKey::End),
    ("pgup", NamedKey::PageUp),
    ("pageup", NamedKey::PageUp),
    ("page_up", NamedKey::PageUp),
    ("pgdn", NamedKey::PageDown),
    ("pagedown", NamedKey::PageDown),
    ("page_down", NamedKey::PageDown),
    ("insert", NamedKey::Insert),
    ("ins", NamedKey::Insert),
    ("menu", NamedKey::Menu),
    ("capslock", NamedKey::CapsLock),
    ("caps_lock", NamedKey::CapsLock),
    ("print", NamedKey::Print),
];

impl NamedKey {
    /// The X11 keysym.
    pub fn keysym(self) -> u32 {
        match self {
            NamedKey::Enter => 0xff0d,
            NamedKey::Tab => 0xff09,
            NamedKey::Space => 0x0020,
            NamedKey::Backspace => 0xff08,
            NamedKey::Delete => 0xffff,
            NamedKey::Escape => 0xff1b,
            NamedKey::Up => 0xff52,
            NamedKey::Down => 0xff54,
            NamedKey::Left => 0xff51,
            NamedKey::Right => 0xff53,
            NamedKey::Home => 0xff50,
            NamedKey::End => 0xff57,
            NamedKey::PageUp => 0xff55,
            NamedKey::PageDown => 0xff56,
            NamedKey::Insert => 0xff63,
            NamedKey::Menu => 0xff67,
            NamedKey::CapsLock => 0xffe5,
            NamedKey::Print => 0xff61,
            // F1 is 0xffbe and the F keys are consecutive.
            NamedKey::F(n) => 0xffbe + u32::from(n.clamp(1, MAX_FUNCTION_KEY)) - 1,
        }
    }

    /// The canonical name.
    pub fn name(self) -> String {
        match self {
            NamedKey::F(n) => format!("f{n}"),
            other => NAMED.iter().find(|(_, k)| *k == other).map_or_else(String::new, |(n, _)| (*n).to_owned()),
        }
    }
}

/// One key: named, a modifier pressed on its own (e.g. `win` opens the Start menu), or a character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// A named key.
    Named(NamedKey),
    /// A modifier key on its own.
    Modifier(Modifier),
    /// A character, typed as it is (an upper-case letter is typed with Shift).
    Char(char),
}

impl Key {
    /// Parses a key name (case-insensitive) or a single character (case kept).
    pub fn from_name(name: &str) -> Result<Self, KeyNameError> {
        let mut chars = name.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            if c.is_control() {
                return Err(KeyNameError::new(name));
            }
            return Ok(Key::Char(c));
        }
        let lower = name.trim().to_ascii_lowercase();
        if let Some((_, key)) = NAMED.iter().find(|(n, _)| *n == lower) {
            return Ok(Key::Named(*key));
        }
        if let Some(n) = lower.strip_prefix('f').and_then(|n| n.parse::<u8>().ok())
            && (1..=MAX_FUNCTION_KEY).contains(&n)
            && !lower[1..].starts_with('0')
        {
            return Ok(Key::Named(NamedKey::F(n)));
        }
        if let Some(m) = Modifier::from_name(&lower) {
            return Ok(Key::Modifier(m));
        }
        Err(KeyNameError::new(name))
    }

    /// The X11 keysym.
    pub fn keysym(self) -> u32 {
        match self {
            Key::Named(k) => k.keysym(),
            Key::Modifier(m) => m.keysym(),
            Key::Char(c) => char_keysym(c),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Named(k) => f.write_str(&k.name()),
            Key::Modifier(m) => f.write_str(m.name()),
            Key::Char(c) => write!(f, "{c}"),
        }
    }
}

/// The keysym of a character: Latin-1 characters are their own keysym, others use the Unicode keysym range.
pub fn char_keysym(c: char) -> u32 {
    let cp = u32::from(c);
    match cp {
        0x20..=0x7e | 0xa0..=0xff => cp,
        _ => 0x0100_0000 | cp,
    }
}

/// Modifiers held while a key is pressed, e.g. `ctrl+alt+delete`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chord {
    /// Pressed in this order, released in reverse.
    pub modifiers: Vec<Modifier>,
    /// The key pressed and released while the modifiers are held.
    pub key: Key,
}

impl Chord {
    /// Parses `key` or `mod+mod+key` (e.g. `ctrl+alt+delete`, `shift+tab`, `ctrl++`).
    pub fn parse(text: &str) -> Result<Self, KeyNameError> {
        let (prefix, last) = if text.chars().count() > 1 && text.ends_with("++") {
            (Some(&text[..text.len() - 2]), "+")
        } else if text.chars().count() > 1 && text.contains('+') {
            match text.rsplit_once('+') {
                Some((p, k)) => (Some(p), k),
                None => (None, text),
            }
        } else {
            (None, text)
        };
        let key = Key::from_name(last).map_err(|_| KeyNameError::new(text))?;
        let mut modifiers = Vec::new();
        if let Some(prefix) = prefix {
            for part in prefix.split('+') {
                modifiers.push(Modifier::from_name(part).ok_or_else(|| KeyNameError::modifier(text, part))?);
            }
        }
        Ok(Self { modifiers, key })
    }
}

impl fmt::Display for Chord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.modifiers {
            write!(f, "{}+", m.name())?;
        }
        write!(f, "{}", self.key)
    }
}

/// A key or modifier name that is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct KeyNameError {
    /// What was wrong, with the accepted names.
    pub message: String,
}

impl KeyNameError {
    fn new(name: &str) -> Self {
        let suggestion = crate::load::suggest(&name.to_ascii_lowercase(), all_key_names().iter().map(String::as_str))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        Self {
            message: format!(
                "unknown key {}{suggestion}; expected a single character, a key name ({}, f1…f{MAX_FUNCTION_KEY}) \
                 or a modifier ({})",
                crate::yaml::quote(name),
                NAMED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
                Modifier::NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
            ),
        }
    }

    fn modifier(chord: &str, part: &str) -> Self {
        Self {
            message: format!(
                "unknown modifier {} in {}; expected one of: {}",
                crate::yaml::quote(part),
                crate::yaml::quote(chord),
                Modifier::NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
            ),
        }
    }

    /// The error for a name that is not a modifier.
    pub fn not_a_modifier(name: &str) -> Self {
        let suggestion = crate::load::suggest(&name.to_ascii_lowercase(), Modifier::NAMES.iter().map(|(n, _)| *n))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        Self {
            message: format!(
                "unknown modifier {}{suggestion}; expected one of: {}",
                crate::yaml::quote(name),
                Modifier::NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
            ),
        }
    }
}

fn all_key_names() -> Vec<String> {
    let mut names: Vec<String> = NAMED.iter().map(|(n, _)| (*n).to_owned()).collect();
    names.extend((1..=MAX_FUNCTION_KEY).map(|n| format!("f{n}")));
    names.extend(Modifier::NAMES.iter().map(|(n, _)| (*n).to_owned()));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alias_of_the_script_format_resolves() {
        let pairs: &[(&str, u32)] = &[
            ("enter", 0xff0d),
            ("return", 0xff0d),
            ("tab", 0xff09),
            ("space", 0x20),
            ("backspace", 0xff08),
            ("bsp", 0xff08),
            ("delete", 0xffff),
            ("del", 0xffff),
            ("esc", 0xff1b),
            ("escape", 0xff1b),
            ("up", 0xff52),
            ("down", 0xff54),
            ("left", 0xff51),
            ("right", 0xff53),
            ("home", 0xff50),
            ("end", 0xff57),
            ("pgup", 0xff55),
            ("pgdn", 0xff56),
            ("f1", 0xffbe),
            ("f12", 0xffc9),
            ("f20", 0xffd1),
            ("F5", 0xffc2),
            ("ENTER", 0xff0d),
            ("a", 0x61),
            ("A", 0x41),
            ("/", 0x2f),
            ("é", 0xe9),
            ("€", 0x0100_20ac),
        ];
        for (name, sym) in pairs {
            assert_eq!(Key::from_name(name).map(Key::keysym), Ok(*sym), "{name}");
        }
    }

    #[test]
    fn every_modifier_alias_resolves() {
        for name in ["cmd", "command", "super", "win", "meta"] {
            assert_eq!(Modifier::from_name(name), Some(Modifier::Super), "{name}");
        }
        assert_eq!(Modifier::from_name("control"), Some(Modifier::Ctrl));
        assert_eq!(Modifier::from_name("Ctrl"), Some(Modifier::Ctrl));
        assert_eq!(Modifier::from_name("option"), Some(Modifier::Alt));
        assert_eq!(Modifier::from_name("shift"), Some(Modifier::Shift));
        assert_eq!(Modifier::from_name("hyper"), None);
    }

    #[test]
    fn bad_names_are_rejected_with_a_suggestion() {
        let err = Key::from_name("entr").expect_err("unknown");
        assert!(err.message.contains("did you mean `enter`"), "{}", err.message);
        assert!(Key::from_name("f0").is_err());
        assert!(Key::from_name("f25").is_err());
        assert!(Key::from_name("f01").is_err());
        assert!(Key::from_name("").is_err());
        assert!(Key::from_name("\n").is_err());
    }

    #[test]
    fn chords_parse() {
        let c = Chord::parse("ctrl+alt+delete").expect("chord");
        assert_eq!(c.modifiers, vec![Modifier::Ctrl, Modifier::Alt]);
        assert_eq!(c.key, Key::Named(NamedKey::Delete));
        assert_eq!(Chord::parse("ctrl++").expect("plus").key, Key::Char('+'));
        assert_eq!(Chord::parse("+").expect("plus alone").key, Key::Char('+'));
        assert!(Chord::parse("hyper+x").is_err());
        assert_eq!(Chord::parse("shift+tab").expect("chord").to_string(), "shift+tab");
    }
}
