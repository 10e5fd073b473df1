//! Fuzzes the PSF font parser of the console reader (`ocr::console::Font::from_psf`) and the VGA ROM font finder.
//!
//! Properties checked beyond "no panic, no hang, no huge allocation": a parsed font has a size within the limits,
//! every glyph has exactly `height` rows, no row has bits beyond `width`, and the glyph count is what the header
//! allows (256 or 512 for PSF1, at most 65 536 for PSF2); the fonts found in a ROM are 8 pixels wide with 256
//! glyphs.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ocr::console::{Font, MAX_HEIGHT, MAX_WIDTH};

fn check(font: &Font) {
    assert!(font.width >= 1 && font.width <= MAX_WIDTH);
    assert!(font.height >= 1 && font.height <= MAX_HEIGHT);
    assert!(!font.glyphs.is_empty() && font.glyphs.len() <= 65_536);
    let mask = if font.width == 32 { u32::MAX } else { (1u32 << font.width) - 1 };
    for g in &font.glyphs {
        assert_eq!(g.rows.len(), font.height as usize);
        assert!(g.rows.iter().all(|r| r & !mask == 0));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(font) = Font::from_psf(data, "fuzz") {
        check(&font);
        if data.starts_with(&[0x36, 0x04]) {
            assert!(font.glyphs.len() == 256 || font.glyphs.len() == 512);
        }
    }
    if let Ok(fonts) = Font::from_vga_rom(data, "fuzz") {
        for f in &fonts {
            check(f);
            assert_eq!((f.width, f.glyphs.len()), (8, 256));
        }
    }
});
