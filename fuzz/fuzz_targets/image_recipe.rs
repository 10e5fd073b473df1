//! Fuzzes the image-recipe loader (TOML → checked recipe): arbitrary text as a recipe file.
//!
//! Properties beyond "no panic, no hang, no huge allocation": a rejected recipe has at least one error, and every
//! diagnostic points into the text (a 1-based line no further than one past the last line, a 1-based column) and
//! says something.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lines = text.lines().count() + 1;
    match images::recipe::Recipe::parse(text, Path::new("/fuzz/recipe.toml")) {
        Ok(_) => {}
        Err(images::recipe::RecipeError::Invalid(rejected)) => {
            assert!(rejected.errors().next().is_some(), "rejected without an error");
            for d in &rejected.0 {
                assert!(d.line >= 1 && d.line <= lines, "line {} of {lines}: {}", d.line, d.message);
                assert!(d.col >= 1, "{}", d.message);
                assert!(!d.message.is_empty());
            }
        }
        Err(other) => panic!("parsing text cannot fail to read: {other}"),
    }
});
