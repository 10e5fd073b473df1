//! Fuzzes the automation-script loader (YAML → checked script): arbitrary text as a script file.
//!
//! Properties beyond "no panic, no hang, no huge allocation": every diagnostic points into the text (a 1-based line
//! no further than one past the last line as YAML counts lines, a 1-based column) and says something.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Lines as YAML counts them (and editors show them): `\r\n`, a lone `\r` and `\n` each end one.
    let lines = text.replace("\r\n", "\n").bytes().filter(|&b| b == b'\n' || b == b'\r').count() + 2;
    if let Err(automate::ScriptError::Invalid { diagnostics }) = automate::load_str(text, Path::new("fuzz.yaml")) {
        assert!(!diagnostics.is_empty());
        for d in diagnostics {
            assert!(d.line >= 1 && d.line <= lines, "line {} of {lines}: {}", d.line, d.message);
            assert!(d.col >= 1, "{}", d.message);
            assert!(!d.message.is_empty());
        }
    }
});
