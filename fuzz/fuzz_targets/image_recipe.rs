//! Fuzzes the image-recipe loader (TOML → checked recipe): arbitrary text as a recipe file.
//!
//! Properties beyond "no panic, no hang, no huge allocation": an error points into the text (a 1-based line no
//! further than one past the last line, a 1-based column) and says something.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lines = text.lines().count() + 1;
    if let Err(e) = images::recipe::Recipe::parse(text, Path::new("/fuzz/recipe.toml")) {
        assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}: {}", e.line, e.message);
        assert!(e.column >= 1, "{}", e.message);
        assert!(!e.message.is_empty());
    }
});
