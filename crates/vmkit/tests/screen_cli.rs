//! Acceptance tests of `vmkit screen` against real VNC servers: TigerVNC's Xvnc (with QEMU's extended key events),
//! x11vnc (keysyms only) and QEMU's own VNC server, showing real GTK windows and a real guest console.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;
use testbed::scenes::{self, Window};
use testbed::{Display, DisplayKind, x11::DisplayOptions};

/// Runs `vmkit screen ARGS --vnc ADDR`.
fn screen(addr: &str, args: &[&str]) -> Output {
    let mut cmd = Command::cargo_bin("vmkit").expect("the vmkit binary");
    cmd.arg("screen").args(args).args(["--vnc", addr, "--timeout", "30"]);
    cmd.timeout(Duration::from_secs(120));
    cmd.output().expect("running vmkit")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "vmkit failed: {}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

/// The box of a match or word as (x, y, width, height).
fn bbox(v: &Value) -> (i64, i64, i64, i64) {
    let b = &v["bbox"];
    let n = |k: &str| b[k].as_i64().unwrap_or_else(|| panic!("bbox.{k} missing in {v}"));
    (n("x"), n("y"), n("width"), n("height"))
}

fn assert_inside(v: &Value, win: &Window) {
    let (x, y, w, h) = bbox(v);
    assert!(w > 0 && h > 0, "empty box {v}");
    assert!(
        x >= i64::from(win.x)
            && y >= i64::from(win.y)
            && x + w <= i64::from(win.x) + i64::from(win.width)
            && y + h <= i64::from(win.y) + i64::from(win.height),
        "{v} is not inside the window at ({}, {}) {}x{}",
        win.x,
        win.y,
        win.width,
        win.height
    );
}

#[test]
fn find_reports_welcome_and_continue_and_click_closes_the_dialog() {
    let d = Display::xvnc(1920, 1080).expect("Xvnc");
    let mut win = scenes::welcome_dialog(&d, 600, 300).expect("zenity dialog");
    let addr = d.vnc_addr();

    let welcome = json(&screen(&addr, &["find", "Welcome to Setup", "--json"]));
    assert_eq!(welcome["pattern"], "Welcome to Setup");
    let matches = welcome["matches"].as_array().expect("matches");
    assert_eq!(matches.len(), 1, "{welcome}");
    assert_eq!(matches[0]["text"], "Welcome to Setup");
    assert_eq!(matches[0]["kind"], "exact");
    assert_inside(&matches[0], &win);

    let cont = json(&screen(&addr, &["find", "continue", "--json"]));
    let m = &cont["matches"][0];
    assert_eq!(m["text"], "Continue", "{cont}");
    assert_inside(m, &win);
    // The click point is the centre of the box.
    let (x, y, w, h) = bbox(m);
    assert_eq!((m["point"]["x"].as_i64(), m["point"]["y"].as_i64()), (Some(x + w / 2), Some(y + h / 2)));
    // Below the message, as GTK lays dialogs out.
    assert!(y > bbox(&matches[0]).1, "Continue {m} should be below {}", matches[0]);

    // The text form: one line per match, click point first.
    let text = screen(&addr, &["find", "Continue"]);
    assert_eq!(text.status.code(), Some(0));
    assert!(stdout(&text).starts_with(&format!("{},{}\t", x + w / 2, y + h / 2)), "{}", stdout(&text));

    let click = screen(&addr, &["click", "Continue"]);
    assert_eq!(click.status.code(), Some(0), "{}", stderr(&click));
    let status = win.process.wait_timeout(Duration::from_secs(30)).expect("zenity closes after the click");
    assert!(status.success(), "zenity exited with {status}");
}

#[test]
fn find_without_a_match_exits_1() {
    let d = Display::xvnc(1024, 768).expect("Xvnc");
    let _win = scenes::welcome_dialog(&d, 200, 200).expect("zenity dialog");
    let out = screen(&d.vnc_addr(), &["find", "Nothing Like This", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON even without a match");
    assert_eq!(v["matches"].as_array().map(Vec::len), Some(0));
    // `/regex/` patterns work too, case-insensitively.
    let out = json(&screen(&d.vnc_addr(), &["find", "/WELCOME TO \\w+/", "--json"]));
    assert_eq!(out["matches"][0]["kind"], "regex");
    assert_eq!(out["matches"][0]["text"], "Welcome to Setup");
    // The tiers for OCR slips, as the automation engine has them: spacing ignored, then a near match of a long
    // phrase; each reports its kind.
    let out = json(&screen(&d.vnc_addr(), &["find", "Welcometo Setup", "--json"]));
    assert_eq!(
        (&out["matches"][0]["kind"], &out["matches"][0]["text"]),
        (&"spaceless".into(), &"Welcome to Setup".into())
    );
    let out = json(&screen(&d.vnc_addr(), &["find", "Welcome to Setvp", "--json"]));
    assert_eq!((&out["matches"][0]["kind"], &out["matches"][0]["text"]), (&"near".into(), &"Welcome to Setup".into()));
    // A short phrase never matches approximately.
    let out = screen(&d.vnc_addr(), &["find", "Setvp"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
}

#[test]
fn highlighted_list_row_is_found() {
    let d = Display::xvnc(1920, 1080).expect("Xvnc");
    let win = scenes::gtk_list_with_selection(&d, 700, 300).expect("zenity list");
    let out = json(&screen(&d.vnc_addr(), &["find", "Nederlands", "--json"]));
    let m = &out["matches"][0];
    assert_eq!(m["text"], "Nederlands", "{out}");
    assert_inside(m, &win);
    // The row is white on the selection bar: the pixel left of the text is the bar's colour, not the list's white.
    let shot = d.screenshot().expect("screenshot");
    let (x, y, _, h) = bbox(m);
    let px = shot.pixel((x - 3) as u32, (y + h / 2) as u32).expect("in frame");
    assert!(px.iter().any(|&c| c < 200), "the row at {m} is not on a dark selection bar: {px:?}");
}

#[test]
fn ocr_json_lists_words_and_lines() {
    let d = Display::xvnc(1280, 800).expect("Xvnc");
    let win = scenes::welcome_dialog(&d, 300, 200).expect("zenity dialog");
    let v = json(&screen(&d.vnc_addr(), &["ocr", "--json"]));
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(1280), Some(800)));
    let words = v["texts"].as_array().expect("texts");
    let lines = v["lines"].as_array().expect("lines");
    let line = lines.iter().find(|l| l["text"] == "Welcome to Setup").unwrap_or_else(|| panic!("no line in {v}"));
    assert_inside(line, &win);
    let idx: Vec<usize> =
        line["words"].as_array().expect("words").iter().filter_map(|i| i.as_u64()).map(|i| i as usize).collect();
    let texts: Vec<&str> = idx.iter().filter_map(|&i| words[i]["text"].as_str()).collect();
    assert_eq!(texts, ["Welcome", "to", "Setup"]);
    for &i in &idx {
        let c = words[i]["confidence"].as_f64().expect("confidence");
        assert!((0.0..=100.0).contains(&c), "{}", words[i]);
    }
    // The plain form prints the line.
    let plain = screen(&d.vnc_addr(), &["ocr"]);
    assert!(stdout(&plain).lines().any(|l| l == "Welcome to Setup"), "{}", stdout(&plain));
}

/// Types every printable US-ASCII character into a real GTK entry and presses Enter; the dialog prints what it got.
fn typing_round_trip(kind: DisplayKind) {
    let d = Display::start(DisplayOptions { kind, width: 1280, height: 800, ..DisplayOptions::default() })
        .expect("display");
    let mut win = scenes::entry_dialog(&d, 200, 200).expect("zenity entry");
    let addr = d.vnc_addr();
    let text: String = (0x20u8..0x7f).map(char::from).collect();
    // No window manager: keyboard focus follows the pointer, so click into the window first.
    let at = format!("{},{}", win.x + win.width as i32 / 2, win.y + win.height as i32 / 2);
    assert_eq!(screen(&addr, &["click", "--at", &at]).status.code(), Some(0));
    let typed = screen(&addr, &["type", &text]);
    assert_eq!(typed.status.code(), Some(0), "{}", stderr(&typed));
    let enter = screen(&addr, &["key", "enter"]);
    assert_eq!(enter.status.code(), Some(0), "{}", stderr(&enter));
    let status = win.process.wait_timeout(Duration::from_secs(30)).expect("the dialog closes on Enter");
    assert!(status.success());
    let log = win.process.log();
    assert!(log.lines().any(|l| l == text), "the entry received something else:\n{log}");
}

#[test]
fn typing_every_printable_ascii_character_with_scancodes_xvnc() {
    typing_round_trip(DisplayKind::Xvnc);
}

#[test]
fn typing_every_printable_ascii_character_with_keysyms_only_x11vnc() {
    typing_round_trip(DisplayKind::X11vnc);
}

#[test]
fn vnc_authentication_right_wrong_and_missing_password() {
    let d = Display::start(DisplayOptions {
        kind: DisplayKind::Xvnc,
        width: 800,
        height: 600,
        password: Some("pa55word".into()),
        ..DisplayOptions::default()
    })
    .expect("Xvnc with a password");
    let _win = scenes::welcome_dialog(&d, 100, 100).expect("zenity dialog");
    let addr = d.vnc_addr();
    let right = d.plain_password_file().expect("password file");
    let right = right.to_str().expect("utf-8 path");
    let ok = screen(&addr, &["find", "Welcome to Setup", "--password-file", right]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));

    let wrong_file = d.dir().join("wrong.txt");
    std::fs::write(&wrong_file, "not-it\n").expect("write");
    let wrong = screen(&addr, &["ocr", "--password-file", wrong_file.to_str().expect("utf-8")]);
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr(&wrong));
    assert!(stderr(&wrong).contains("authentication failed"), "{}", stderr(&wrong));

    let missing = screen(&addr, &["ocr"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("requires a password"), "{}", stderr(&missing));
}

#[test]
fn capture_writes_a_png_of_the_current_size() {
    let d = Display::xvnc(1024, 768).expect("Xvnc");
    let out = d.dir().join("shot.png");
    let path = out.to_str().expect("utf-8");
    assert_eq!(screen(&d.vnc_addr(), &["capture", "-o", path]).status.code(), Some(0));
    assert_eq!(image::image_dimensions(&out).expect("a PNG"), (1024, 768));
    d.resize(1280, 1024).expect("xrandr");
    assert_eq!(screen(&d.vnc_addr(), &["capture", "-o", path]).status.code(), Some(0));
    assert_eq!(image::image_dimensions(&out).expect("a PNG"), (1280, 1024));
}

#[test]
fn bad_input_exits_2_before_connecting() {
    // Nothing listens on port 1, so these would fail with 1 if vmkit tried to connect first.
    let addr = "127.0.0.1:1";
    for args in [
        &["key", "nosuchkey"][..],
        &["key", "ctrl+"],
        &["find", "/(unclosed/"],
        &["find", "  "],
        &["click", "--at", "12"],
        &["click"],
        &["capture"],
    ] {
        let out = screen(addr, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let mut cmd = Command::cargo_bin("vmkit").expect("vmkit");
    let out = cmd.args(["screen", "ocr", "--vnc", "5901"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("HOST:PORT"), "{}", stderr(&out));
    // A server that is not there is a failure (1), not bad input.
    let out = screen(addr, &["ocr"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn a_point_outside_the_screen_is_bad_input() {
    let d = Display::xvnc(640, 480).expect("Xvnc");
    let out = screen(&d.vnc_addr(), &["click", "--at", "640,10"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("outside the 640x480 screen"), "{}", stderr(&out));
}

/// QEMU's own VNC server: vmkit types a command on the guest's VGA console, its effect shows on the serial log,
/// and OCR reads the console.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_qemu_console_typed_into_and_read() {
    let guest = testbed_guests::guest::Guest::boot().await.expect("busybox guest");
    let addr = guest.vnc_addr();
    let run = |args: Vec<String>| {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            screen(&addr, &args)
        })
    };
    // The answer is computed by the guest's shell, so the serial log shows it only if the command ran.
    let typed = run(vec!["type".into(), "echo vmkit-typed-$((6*7)) > /dev/ttyS0".into()]).await.expect("join");
    assert_eq!(typed.status.code(), Some(0), "{}", stderr(&typed));
    let enter = run(vec!["key".into(), "enter".into()]).await.expect("join");
    assert_eq!(enter.status.code(), Some(0), "{}", stderr(&enter));
    guest.wait_for_serial("vmkit-typed-42", Duration::from_secs(60)).await.expect("the typed command ran");

    let ocr = run(vec!["find".into(), "/typed/".into(), "--wait".into()]).await.expect("join");
    assert_eq!(ocr.status.code(), Some(0), "the typed command line is not on the screen: {}", stderr(&ocr));
    let text = run(vec!["ocr".into()]).await.expect("join");
    assert!(stdout(&text).contains("test guest"), "the banner is not read:\n{}", stdout(&text));
    let _ = guest.shutdown().await;
    assert!(Path::new(guest.serial_log_path()).exists());
}

/// The server changes the screen size in the middle of a session: the framebuffer, captures and OCR follow it,
/// and text drawn where the old screen ended is found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_and_ocr_follow_a_resize_mid_session() {
    let d = Display::xvnc(1024, 768).expect("Xvnc");
    let vnc = rfb::Client::connect(&d.vnc_addr(), rfb::ConnectOptions::default()).await.expect("connect");
    assert_eq!(vnc.size(), (1024, 768));
    d.resize(1600, 1000).expect("xrandr");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while vnc.size() != (1600, 1000) {
        assert!(tokio::time::Instant::now() < deadline, "the client still sees {:?}", vnc.size());
        vnc.wait_for_damage(Duration::from_secs(1)).await.expect("session survives the resize");
    }
    let frame = vnc.frame();
    assert_eq!((frame.width(), frame.height()), (1600, 1000));
    assert_eq!(frame.rgba().len(), 1600 * 1000 * 4);

    // A window beyond the old right and bottom edges.
    let _win = tokio::task::spawn_blocking(move || {
        let win = scenes::welcome_dialog(&d, 1100, 800).expect("zenity dialog");
        (d, win)
    })
    .await
    .expect("join");
    let mut engine = ocr::Engine::new().expect("OCR engine");
    let pattern = ocr::matching::Pattern::phrase("Welcome to Setup");
    loop {
        let frame = vnc.frame();
        let pixels =
            ocr::Frame::packed(frame.rgba(), frame.width(), frame.height(), ocr::PixelLayout::Rgbx).expect("frame");
        let text = engine.read(&pixels).expect("read");
        assert_eq!((text.width, text.height), (1600, 1000));
        if let Some(m) = ocr::matching::find(&text, &pattern, &ocr::matching::MatchOptions::default()).first() {
            assert!(m.bbox.x >= 1100 && m.bbox.y >= 800, "found at {:?}, not in the window", m.bbox);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline + Duration::from_secs(30), "never read: {}", text.text());
        vnc.wait_for_damage(Duration::from_secs(2)).await.expect("session");
    }
}
