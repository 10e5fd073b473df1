//! Fuzzes the replay recording's index reader (`frames/index.jsonl` → checked index): arbitrary text as an
//! index file.
//!
//! Properties beyond "no panic, no hang, no huge allocation": an error names a line inside the text and a column
//! from 1; an accepted index starts with a start line of the known version, has a frame, keeps times finite,
//! non-negative and in order, and names frames by plain file names only (never a path out of its directory).

#![no_main]

use std::path::Path;

use automate::recording::{Line, RecordingError, VERSION, parse_index};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lines = text.split('\n').count();
    match parse_index(text, Path::new("index.jsonl")) {
        Err(RecordingError::Index { line, column, message, .. }) => {
            assert!(line >= 1 && line <= lines, "line {line} of {lines}: {message}");
            assert!(column >= 1, "{message}");
            assert!(!message.is_empty());
        }
        Err(other) => panic!("parse_index reads no files, yet: {other}"),
        Ok(index) => {
            assert_eq!(index.start.version, VERSION);
            let mut last = 0.0f64;
            let mut frames = 0;
            for (number, line) in &index.lines {
                assert!(*number >= 1 && *number <= lines);
                let t = line.t_ms();
                assert!(t.is_finite() && t >= last, "{t} after {last}");
                last = t;
                assert!(!matches!(line, Line::Start(_)));
                if let Line::Frame(f) = line {
                    frames += 1;
                    assert!(!f.file.contains('/') && !f.file.contains('\\') && !f.file.starts_with('.'), "{}", f.file);
                }
            }
            assert!(frames > 0);
        }
    }
});
