//! Key names in scripts: `key: enter`, `key: ctrl+alt+delete`, `hotkey: {modifiers: [cmd, shift], key: enter}`.
//!
//! The names and what they press (keysym, PC scancode, Shift for shifted characters) are the RFB client's
//! ([`rfb::keys`]), so that a name means the same key in a script and in `vmkit screen key`. This module adds
//! what a script author needs on top: the script's modifier spellings checked one by one (so an error points at
//! the bad list item), and "did you mean" suggestions for mistyped names.

use std::fmt;

use crate::yaml::quote;

/// A key press as the script wrote it, resolved to the chord the client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPress {
    /// The chord: modifiers held, key pressed and released.
    pub chord: rfb::Chord,
    /// How the script wrote it (`enter`, `ctrl+alt+delete`, `cmd+shift+enter` for a hotkey), for logs.
    pub spec: String,
}

impl fmt::Display for KeyPress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

/// True if `name` is one of the script format's modifier spellings (case-insensitive).
pub fn is_modifier(name: &str) -> bool {
    rfb::keys::modifier_names().any(|m| m.eq_ignore_ascii_case(name.trim()))
}

/// Parses `key:`'s value: a key name, a single character, or a chord joined with `+`.
pub fn parse_key(text: &str) -> Result<KeyPress, String> {
    rfb::Chord::parse(text).map(|chord| KeyPress { chord, spec: text.trim().to_owned() }).map_err(|e| explain(&e))
}

/// Builds `hotkey:`'s chord from its modifier names (already checked with [`is_modifier`]) and key name.
pub fn parse_hotkey(modifiers: &[String], key: &str) -> Result<KeyPress, String> {
    let spec = modifiers.iter().map(|m| m.trim()).chain([key.trim()]).collect::<Vec<_>>().join("+");
    rfb::Chord::from_parts(modifiers, key).map(|chord| KeyPress { chord, spec }).map_err(|e| explain(&e))
}

/// The message for an unknown modifier, with a suggestion.
pub fn unknown_modifier(name: &str) -> String {
    let hint =
        diag::suggest(name, rfb::keys::modifier_names()).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
    let expected = rfb::keys::modifier_names().collect::<Vec<_>>().join(", ");
    format!("unknown modifier {}{hint}; expected one of: {expected}", quote(name))
}

fn explain(err: &rfb::KeyError) -> String {
    match err {
        rfb::KeyError::Unknown { name } => {
            let hint = diag::suggest(name, rfb::keys::key_names().chain(rfb::keys::modifier_names()))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            format!("unknown key {}{hint}; accepted: {}", quote(name), rfb::keys::ACCEPTED_NAMES)
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keysym(text: &str) -> u32 {
        parse_key(text).expect(text).chord.key.keysym
    }

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
            ("/", 0x2f),
            ("é", 0xe9),
        ];
        for (name, sym) in pairs {
            assert_eq!(keysym(name), *sym, "{name}");
        }
        // A shifted character implies Shift.
        let a = parse_key("A").expect("A");
        assert_eq!((a.chord.key.keysym, a.chord.modifiers.len()), (0x41, 1));
    }

    #[test]
    fn every_modifier_alias_resolves() {
        let sup = parse_hotkey(&["cmd".into()], "space").expect("cmd").chord.modifiers;
        for name in ["command", "super", "win", "meta", "CMD"] {
            assert!(is_modifier(name), "{name}");
            assert_eq!(parse_hotkey(&[name.into()], "space").expect(name).chord.modifiers, sup, "{name}");
        }
        for (a, b) in [("ctrl", "control"), ("alt", "option")] {
            assert_eq!(parse_hotkey(&[a.into()], "x").expect(a).chord, parse_hotkey(&[b.into()], "x").expect(b).chord);
        }
        assert!(is_modifier("shift"));
        assert!(!is_modifier("hyper"));
    }

    #[test]
    fn bad_names_are_rejected_with_a_suggestion() {
        let err = parse_key("entr").expect_err("unknown");
        assert!(err.contains("did you mean `enter`"), "{err}");
        assert!(parse_key("f0").is_err());
        assert!(parse_key("f21").is_err());
        assert!(parse_key("").is_err());
        assert!(unknown_modifier("shfit").contains("did you mean `shift`"));
    }

    #[test]
    fn chords_parse() {
        let c = parse_key("ctrl+alt+delete").expect("chord");
        assert_eq!(c.chord.modifiers.len(), 2);
        assert_eq!(c.chord.key.keysym, 0xffff);
        assert_eq!(c.to_string(), "ctrl+alt+delete");
        assert_eq!(parse_key("ctrl++").expect("plus").chord.key.keysym, u32::from('+'));
        assert!(parse_key("hyper+x").is_err());
        assert_eq!(parse_hotkey(&["cmd".into(), "shift".into()], "enter").expect("hotkey").spec, "cmd+shift+enter");
    }
}
