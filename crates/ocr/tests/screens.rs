//! Acceptance tests of the OCR layer: real Tesseract reading real screens drawn by real programs.
//!
//! Each test starts an Xvnc display (1920×1080, like a VM console at full HD), shows a real GTK or Tk window,
//! takes a screenshot from the X server itself (`xwd`), and reads it with the engine. Boxes are checked against
//! the window geometry the X server reports, so a wrong box mapping (the crops are upscaled and packed) fails.

use ocr::matching::{self, MatchKind, MatchOptions, Pattern};
use ocr::{Engine, EngineOptions, Frame, OcrError, PixelLayout, Rect, ScreenText};
use testbed::{Display, Screenshot, scenes};

fn frame(shot: &Screenshot) -> Frame<'_> {
    Frame::packed(&shot.rgb, shot.width, shot.height, PixelLayout::Rgb).expect("a screenshot fits its size")
}

fn explain(text: &ScreenText) -> String {
    text.lines.iter().map(|l| format!("{:?} {:?}", l.bbox, l.text)).collect::<Vec<_>>().join("\n")
}

fn find_one(text: &ScreenText, phrase: &str) -> matching::Match {
    let found = matching::find(text, &Pattern::phrase(phrase), &MatchOptions::default());
    assert_eq!(found.len(), 1, "{phrase:?} should be found exactly once in:\n{}", explain(text));
    assert_eq!(found[0].kind, MatchKind::Exact, "{phrase:?} in:\n{}", explain(text));
    found.into_iter().next().expect("checked")
}

fn assert_inside(b: &Rect, win: &scenes::Window, what: &str) {
    assert!(
        win.contains(b.x, b.y) && win.contains(b.right() - 1, b.bottom() - 1),
        "{what} at {b:?} is not inside the window at ({}, {}) {}x{}",
        win.x,
        win.y,
        win.width,
        win.height
    );
}

#[test]
fn welcome_dialog_and_continue_button_are_found_inside_the_window() {
    let d = Display::xvnc(1920, 1080).expect("Xvnc");
    let win = scenes::welcome_dialog(&d, 740, 420).expect("zenity dialog");
    let shot = scenes::settle(&d).expect("screenshot");
    let mut engine = Engine::new().expect("engine");
    let text = engine.read(&frame(&shot)).expect("read");

    let welcome = find_one(&text, "Welcome to Setup");
    let cont = find_one(&text, "Continue");
    assert_inside(&welcome.bbox, &win, "\"Welcome to Setup\"");
    assert_inside(&cont.bbox, &win, "\"Continue\"");
    // Real glyph boxes: a line of 14 px UI text, three words wide; a one-word button label.
    for (m, min_w) in [(&welcome, 90), (&cont, 45)] {
        assert!((8..=30).contains(&m.bbox.height), "implausible height {:?}", m.bbox);
        assert!(m.bbox.width >= min_w && m.bbox.width <= 3 * min_w, "implausible width {:?}", m.bbox);
    }
    // The button sits below the message, in the window's lower right quarter (GTK's dialog layout).
    assert!(cont.bbox.y > welcome.bbox.bottom(), "Continue {:?} should be below {:?}", cont.bbox, welcome.bbox);
    assert!(cont.point.x > (win.x + win.width as i32 / 2) as u32, "Continue {:?} not on the right", cont.bbox);
    // The box is tight: the label's pixels differ from the button face inside it, and its centre is on the
    // button (the click point lands on the button, not on the background around it).
    let bg = shot.pixel(win.x as u32 + 5, win.y as u32 + 5).expect("in frame");
    let inked = (cont.bbox.y..cont.bbox.bottom())
        .flat_map(|y| (cont.bbox.x..cont.bbox.right()).map(move |x| (x, y)))
        .filter(|&(x, y)| shot.pixel(x, y).is_some_and(|p| p.iter().zip(bg).any(|(a, b)| a.abs_diff(b) > 80)))
        .count();
    assert!(inked > 40, "only {inked} text pixels inside {:?}", cont.bbox);
}

/// Whether most pixels just around `b` (inside its vertical extent, left and right of the text) are `colour`-ish:
/// the text sits on a bar of that colour.
fn sits_on_bar(shot: &Screenshot, b: &Rect, is_bar: impl Fn([u8; 3]) -> bool) -> bool {
    let y = b.y + b.height / 2;
    let probes: Vec<[u8; 3]> =
        [b.x.saturating_sub(3), b.right() + 3, b.right() + 20].iter().filter_map(|&x| shot.pixel(x, y)).collect();
    probes.iter().filter(|&&p| is_bar(p)).count() >= 2
}

#[test]
fn highlighted_row_of_a_gtk_list_is_read() {
    let d = Display::xvnc(1920, 1080).expect("Xvnc");
    let win = scenes::gtk_list_with_selection(&d, 700, 300).expect("zenity list");
    let shot = scenes::settle(&d).expect("screenshot");
    let mut engine = Engine::new().expect("engine");
    let text = engine.read(&frame(&shot)).expect("read");

    // GTK's selection bar is saturated blue behind white text.
    let blue = |p: [u8; 3]| p[2] > 180 && p[0] < 120 && p[2] > p[0] + 80;
    let selected = find_one(&text, "Nederlands");
    assert_inside(&selected.bbox, &win, "the selected row");
    assert!(sits_on_bar(&shot, &selected.bbox, blue), "{:?} is not on the selection bar", selected.bbox);
    // The other rows (dark on white) are read too, in order, left-aligned with the selected one.
    let mut last_y = 0;
    for row in scenes::GTK_LIST_ROWS {
        let m = find_one(&text, row);
        assert_inside(&m.bbox, &win, row);
        assert!(m.bbox.y > last_y, "{row} out of order");
        assert!(m.bbox.x.abs_diff(selected.bbox.x) <= 3, "{row} at {:?} vs {:?}", m.bbox, selected.bbox);
        last_y = m.bbox.y;
        if row != "Nederlands" {
            assert!(!sits_on_bar(&shot, &m.bbox, blue), "{row} should not be selected");
        }
    }
}

#[test]
fn highlighted_entry_of_an_installer_style_menu_is_read() {
    let d = Display::xvnc(1920, 1080).expect("Xvnc");
    let win = scenes::tk_menu(&d, 600, 400).expect("tk menu");
    let shot = scenes::settle(&d).expect("screenshot");
    let mut engine = Engine::new().expect("engine");
    let text = engine.read(&frame(&shot)).expect("read");

    let dark_blue = |p: [u8; 3]| p[2] > 120 && p[0] < 60 && p[1] < 110;
    let selected = find_one(&text, "Graphical install");
    assert_inside(&selected.bbox, &win, "the highlighted entry");
    assert!(sits_on_bar(&shot, &selected.bbox, dark_blue), "{:?} is not on the highlight", selected.bbox);
    for row in scenes::TK_MENU_ROWS {
        let found = matching::find(&text, &Pattern::phrase(row), &MatchOptions::default());
        assert!(found.iter().any(|m| m.kind == MatchKind::Exact), "{row:?} not read exactly in:\n{}", explain(&text));
    }
    // "Install" exactly: the first row, not the substring inside "Graphical install" or "installer".
    let install = matching::find(&text, &Pattern::phrase("Install"), &MatchOptions::default());
    assert!(install.iter().all(|m| m.kind == MatchKind::Exact));
    assert_eq!(install[0].text, "Install", "{install:?}");
}

#[test]
fn e2e_vga_console_text_reads() {
    let dir = testbed::scratch_dir("vga").expect("scratch dir");
    let shot = scenes::vga_console(dir.path()).expect("QEMU VGA console");
    assert_eq!((shot.width, shot.height), (720, 400), "a VGA text mode screen");
    let mut engine = Engine::new().expect("engine");
    let text = engine.read(&frame(&shot)).expect("read");
    // Read as a console (glyph matching against the VGA BIOS font), not by Tesseract.
    let stats = engine.last_stats();
    assert!(stats.console && stats.tesseract_calls == 0, "{stats:?}\n{}", explain(&text));
    let console = engine.read_console(&frame(&shot)).expect("a console");
    assert_eq!((console.grid.cell_width, console.grid.cell_height, console.columns, console.rows), (9, 16, 80, 25));
    for phrase in ["Booting from Hard Disk...", "No bootable device.", "Booting from Floppy..."] {
        find_one(&text, phrase);
    }
    let failed = matching::find(&text, &Pattern::phrase("could not read the boot disk"), &MatchOptions::default());
    assert_eq!(failed.len(), 2, "two failed boot attempts in:\n{}", explain(&text));
    assert!(failed[0].bbox.y < failed[1].bbox.y);
    let version = regex::Regex::new(r"SeaBIOS \(version [0-9.]+").expect("regex");
    assert_eq!(matching::find(&text, &Pattern::from(version), &MatchOptions::default()).len(), 1, "{}", explain(&text));
}

#[test]
fn damage_driven_reread_reads_only_what_changed() {
    let d = Display::xvnc(1920, 1080).expect("Xvnc");
    let menu = scenes::tk_menu(&d, 100, 100).expect("tk menu");
    let before_shot = scenes::settle(&d).expect("screenshot");
    let mut engine = Engine::new().expect("engine");
    let before = engine.read(&frame(&before_shot)).expect("read");
    find_one(&before, "Graphical install");

    // Unchanged screen: no damage costs nothing; a plain read hits the cache for every piece.
    let same = engine.reread(&frame(&before_shot), &before, &[]).expect("reread");
    assert_eq!(same, before);
    assert_eq!(engine.last_stats().tesseract_calls, 0);
    let again = engine.read(&frame(&before_shot)).expect("read");
    assert_eq!(engine.last_stats().tesseract_calls, 0, "{:?}", engine.last_stats());
    assert_eq!(again.words, before.words);

    // A dialog appears elsewhere: only its pieces are recognised; the menu's words are kept.
    let win = scenes::welcome_dialog(&d, 900, 500).expect("dialog");
    let after_shot = scenes::settle(&d).expect("screenshot");
    let damage = Rect::new(win.x as u32, win.y as u32, win.width, win.height);
    let after = engine.reread(&frame(&after_shot), &before, &[damage]).expect("reread");
    let stats = engine.last_stats();
    assert!(stats.recognised >= 2 && stats.recognised <= 6, "{stats:?}");
    assert!(stats.kept + stats.cached >= 4, "{stats:?}");
    let cont = find_one(&after, "Continue");
    assert_inside(&cont.bbox, &win, "Continue");
    find_one(&after, "Welcome to Setup");
    for row in scenes::TK_MENU_ROWS {
        // "Install" also matches the word "install" of "Graphical install": look for the row itself.
        let found = matching::find(&after, &Pattern::phrase(row), &MatchOptions::default());
        let m = found.iter().find(|m| m.text == row).unwrap_or_else(|| panic!("{row:?} in:\n{}", explain(&after)));
        assert_inside(&m.bbox, &menu, row);
    }
    // The same as a full read of the new screen.
    let mut fresh = Engine::new().expect("engine");
    let full = fresh.read(&frame(&after_shot)).expect("read");
    let words = |t: &ScreenText| {
        let mut v: Vec<String> = t.words.iter().filter(|w| w.confidence > 50.0).map(|w| w.text.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(words(&after), words(&full));
}

#[test]
fn a_second_look_rereads_a_misread_piece_and_keeps_the_rest() {
    let d = Display::xvnc(1920, 1080).expect("Xvnc");
    let win = scenes::welcome_dialog(&d, 740, 420).expect("zenity dialog");
    let shot = scenes::settle(&d).expect("screenshot");
    let mut engine = Engine::new().expect("engine");
    let text = engine.read(&frame(&shot)).expect("read");
    let cont = find_one(&text, "Continue");

    // What a bad first reading looks like: the button's label misread, everything else right.
    let mut misread = text.clone();
    for w in misread.words.iter_mut().filter(|w| w.text == "Continue") {
        w.text = "Lontinue".to_owned();
    }
    let misread = ScreenText::from_words(misread.width, misread.height, misread.words);
    assert!(matching::find(&misread, &Pattern::phrase("Continue"), &MatchOptions::default()).is_empty());

    let looked = engine.second_look(&frame(&shot), &misread, &[cont.bbox]).expect("second look");
    let stats = engine.last_stats();
    assert!(stats.tesseract_calls >= 1 && stats.recognised <= 3, "only the label's piece is read again: {stats:?}");
    let again = find_one(&looked, "Continue");
    assert_inside(&again.bbox, &win, "Continue after a second look");
    find_one(&looked, "Welcome to Setup");
    assert!(looked.words.iter().all(|w| w.text != "Lontinue"), "{}", explain(&looked));
    // The cache learnt the second reading: a full read of the same frame agrees without calling Tesseract.
    let cached = engine.read(&frame(&shot)).expect("read");
    assert_eq!(engine.last_stats().tesseract_calls, 0, "{:?}", engine.last_stats());
    find_one(&cached, "Continue");
}

#[test]
fn a_32_bit_framebuffer_reads_like_rgb() {
    let d = Display::xvnc(1920, 1080).expect("Xvnc");
    let _win = scenes::welcome_dialog(&d, 300, 200).expect("dialog");
    let shot = scenes::settle(&d).expect("screenshot");
    // The byte order of a little-endian 0x00RRGGBB framebuffer, with a stride wider than a row.
    let stride = shot.width as usize * 4 + 64;
    let mut bgrx = vec![0u8; stride * shot.height as usize];
    for (y, row) in shot.rgb.chunks_exact(shot.width as usize * 3).enumerate() {
        for (x, p) in row.chunks_exact(3).enumerate() {
            bgrx[y * stride + x * 4..y * stride + x * 4 + 3].copy_from_slice(&[p[2], p[1], p[0]]);
        }
    }
    let fb = Frame::new(&bgrx, shot.width, shot.height, stride, PixelLayout::Bgrx).expect("frame");
    let mut engine = Engine::new().expect("engine");
    let a = engine.read(&fb).expect("read BGRX");
    let b = engine.read(&frame(&shot)).expect("read RGB");
    assert_eq!(a.words, b.words);
    find_one(&a, "Continue");
    let json = serde_json::to_value(&a).expect("json");
    assert!(json["texts"].as_array().is_some_and(|t| t.iter().any(|w| w["text"] == "Continue")));
    assert!(json["texts"][0]["bbox"]["width"].as_u64().is_some_and(|w| w > 0));
    assert!(json["lines"].as_array().is_some_and(|l| !l.is_empty()));
}

#[test]
fn missing_language_data_names_the_debian_package() {
    let empty = testbed::scratch_dir("tessdata").expect("dir");
    let opts =
        EngineOptions { datapath: Some(empty.path().display().to_string()), workers: 1, ..EngineOptions::default() };
    let err = Engine::with_options(opts).expect_err("no traineddata there");
    assert!(matches!(err, OcrError::TessdataMissing { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("tesseract-ocr-eng") && msg.contains(&empty.path().display().to_string()), "{msg}");
}

#[test]
fn bad_frames_are_errors_not_panics() {
    assert!(matches!(Frame::packed(&[0; 10], 4, 4, PixelLayout::Rgb), Err(OcrError::FrameSize { .. })));
    assert!(matches!(Frame::packed(&[], 100_000, 1, PixelLayout::Gray), Err(OcrError::FrameTooLarge { .. })));
    let mut engine = Engine::with_options(EngineOptions { workers: 1, ..EngineOptions::default() }).expect("engine");
    // Degenerate but valid frames read as empty.
    let empty = engine.read(&Frame::packed(&[], 0, 0, PixelLayout::Rgb).expect("0x0")).expect("read");
    assert!(empty.words.is_empty());
    let flat = vec![200u8; 64 * 48 * 4];
    let text = engine.read(&Frame::packed(&flat, 64, 48, PixelLayout::Bgrx).expect("frame")).expect("read");
    assert!(text.words.is_empty());
    // A previous result of another size is not trusted: the frame is read in full.
    let again = engine
        .reread(&Frame::packed(&flat, 64, 48, PixelLayout::Bgrx).expect("frame"), &ScreenText::default(), &[])
        .expect("reread");
    assert_eq!((again.width, again.height), (64, 48));
}
