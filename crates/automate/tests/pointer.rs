//! Whether the runner must move the pointer off what it clicked (parking), measured on real servers.
//!
//! A script clicks a text and reads the same text again with the pointer still on it. With a server that sends
//! the pointer's shape separately (Xvnc; x11vnc with its pointer shapes on), the runner leaves the pointer where
//! it clicked, and the screen it reads after the click is, in the text's box, pixel for pixel the screen before
//! it: nothing of the pointer is there to hide letters from OCR. With a server that sends no shape (x11vnc
//! started with `-nocursor`), the runner parks the pointer as before. (The label does nothing when clicked, so
//! the click says `expect_change: false`.)

use std::time::Duration;

use automate::result::Outcome;
use testbed::x11::DisplayOptions;
use testbed::{Display, DisplayKind};

const SCRIPT: &str = "boot_wait: 0
boot_commands:
  - wait: {text: 'Welcome to Setup', timeout: 60}
  - click: {text: 'Welcome to Setup', expect_change: false}
  - wait: {text: 'Welcome to Setup', timeout: 10}
";

/// Runs the script against `display` and returns the progress lines; checks that the text's box reads the same
/// before and after the click.
fn click_and_reread(display: &Display) -> Vec<String> {
    // X's root window shows no pointer until one is set; toolkits' windows inherit it.
    let status = display.command("xsetroot").args(["-cursor_name", "left_ptr"]).status().expect("xsetroot");
    assert!(status.success());
    // A plain Tk label: no hover effect, no text caret, nothing that changes when it is clicked.
    let mut cmd = display.command("python3");
    cmd.args([
        "-c",
        "import tkinter as tk; r = tk.Tk(); r.title('vmkit-pointer'); \
         tk.Label(r, text='Welcome to Setup', font=('DejaVu Sans', 20)).pack(padx=60, pady=60); r.mainloop()",
    ]);
    let _win = display.spawn("tk-label", cmd).expect("python3-tk");
    display.wait_for_window("vmkit-pointer", Duration::from_secs(30)).expect("the Tk window appears");
    let scratch = testbed::scratch_dir("pointer").expect("scratch");
    let path = scratch.path().join("click.yaml");
    std::fs::write(&path, SCRIPT).expect("write script");
    let script = automate::load_file(&path).expect("script loads");
    let debug = scratch.path().join("debug");
    let mut opts = automate::RunOptions::new(display.vnc_addr());
    opts.debug = Some(Some(debug.clone()));
    let mut lines = Vec::new();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let result = runtime.block_on(automate::run(&script, &opts, &mut |l| lines.push(l.to_owned())));
    let json = serde_json::to_string(&result).expect("json");
    assert_eq!(result.outcome, Outcome::Passed, "{json}\n{}", lines.join("\n"));

    let matched = result.steps[2].matched.as_ref().expect("the second wait matched");
    let clicked = result.steps[1].point.expect("the click's point");
    let b = &matched.bbox;
    assert!(
        i64::from(b.x) <= clicked.x
            && clicked.x < i64::from(b.x + b.width)
            && i64::from(b.y) <= clicked.y
            && clicked.y < i64::from(b.y + b.height),
        "the click at {clicked:?} is not inside the text's box {b:?}"
    );
    let before = image::open(debug.join("001-wait-Welcome_to_Setup.png")).expect("first screen").to_rgb8();
    let after = image::open(debug.join("003-wait-Welcome_to_Setup.png")).expect("third screen").to_rgb8();
    let mut differing = 0;
    for y in b.y..b.y + b.height {
        for x in b.x..b.x + b.width {
            if before.get_pixel(x, y) != after.get_pixel(x, y) {
                differing += 1;
            }
        }
    }
    assert_eq!(differing, 0, "{differing} pixels of the text's box changed after the click\n{}", lines.join("\n"));
    lines
}

fn parked(lines: &[String]) -> bool {
    lines.iter().any(|l| l.contains("pointer parked"))
}

#[test]
fn xvnc_sends_the_pointer_shape_and_the_pointer_stays_where_it_clicked() {
    let display = Display::xvnc(800, 600).expect("Xvnc");
    let lines = click_and_reread(&display);
    assert!(!parked(&lines), "parked although Xvnc keeps the pointer out of the screen:\n{}", lines.join("\n"));
}

#[test]
fn x11vnc_with_pointer_shapes_needs_no_parking_either() {
    let display = Display::start(DisplayOptions {
        kind: DisplayKind::X11vnc,
        width: 800,
        height: 600,
        extra_args: vec!["-cursor".to_owned(), "most".to_owned()],
        ..DisplayOptions::default()
    })
    .expect("x11vnc");
    let lines = click_and_reread(&display);
    assert!(!parked(&lines), "parked although x11vnc keeps the pointer out of the screen:\n{}", lines.join("\n"));
}

#[test]
fn a_server_without_pointer_shapes_gets_the_pointer_parked() {
    // testbed's x11vnc runs with -nocursor: it sends no shape, so the client cannot know where it stands.
    let display = Display::x11vnc(800, 600).expect("x11vnc");
    let lines = click_and_reread(&display);
    assert!(parked(&lines), "no parking on a server that sends no pointer shape:\n{}", lines.join("\n"));
}
