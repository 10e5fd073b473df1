//! Changes first, on a real Xvnc desktop full of text: the text that was on the screen before the runner looked
//! is read by the background reader (the first look recognises nothing in the foreground), text found there
//! passes a `wait`, and a click on the first of two equal labels waits for the part of the screen that could
//! hold the earlier one instead of taking the later one that appeared first.

use std::time::Duration;

use automate::result::Outcome;
use automate::screen::{ReconnectPolicy, Screen, Wake};
use testbed::{Daemon, Display};

/// A Tk text view filling the screen with numbered lines of prose; the last line carries a marker.
const DENSE: &str = r#"
import sys, tkinter as tk
w, h = int(sys.argv[1]), int(sys.argv[2])
r = tk.Tk(); r.title('vmkit-dense'); r.geometry(f'{w}x{h}+0+0')
t = tk.Text(r, font=('DejaVu Sans Mono', 11), wrap='none', background='white', borderwidth=0)
words = 'the licence grants every recipient permission to copy modify and share the program freely'.split()
lines = [f'{n:03} ' + ' '.join(words[(n + k) % len(words)] for k in range(14)) for n in range(1, 200)]
rows = h // 18 - 2
lines[rows - 1] = 'closing marker Zephyr Quokka'
t.insert('1.0', '\n'.join(lines[:rows]))
t.configure(state='disabled', insertwidth=0, insertofftime=0)
t.pack(fill='both', expand=True)
r.mainloop()
"#;

/// A window with one button labelled `Apply` at a given position; a press prints the window's name.
const APPLY: &str = r#"
import sys, tkinter as tk
name, x, y, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
r = tk.Tk(); r.title('vmkit-' + name); r.geometry(f'+{x}+{y}')
r.withdraw()
def act():
    print(f'pressed {name}', flush=True)
tk.Button(r, text='Apply', font=('DejaVu Sans', 16), command=act).pack(padx=30, pady=15)
r.after(int(delay * 1000), r.deiconify)
r.mainloop()
"#;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn dense(display: &Display, w: u32, h: u32) -> Daemon {
    let mut cmd = display.command("python3");
    cmd.args(["-u", "-c", DENSE, &w.to_string(), &h.to_string()]);
    let win = display.spawn("dense", cmd).expect("python3-tk");
    display.wait_for_window("vmkit-dense", Duration::from_secs(30)).expect("the text window appears");
    // Let Tk finish drawing before anyone looks.
    std::thread::sleep(Duration::from_millis(700));
    win
}

/// Runs a script of `steps` (live, changes first as by default) against `display` and asserts that it passes.
fn run_passes(display: &Display, steps: &str) {
    let scratch = testbed::scratch_dir("changes-first").expect("scratch");
    let path = scratch.path().join("script.yaml");
    std::fs::write(&path, format!("boot_wait: 0\nboot_commands:\n{steps}")).expect("write script");
    let script = automate::load_file(&path).expect("script");
    let opts = automate::RunOptions::new(display.vnc_addr());
    let mut lines = Vec::new();
    let result = runtime().block_on(automate::run(&script, &opts, &mut |l| lines.push(l.to_owned())));
    assert_eq!(result.outcome, Outcome::Passed, "{}", lines.join("\n"));
}

#[test]
fn text_already_on_a_dense_screen_is_read_in_the_background_and_found() {
    let (w, h) = (1024, 640);
    let display = Display::xvnc(w, h).expect("Xvnc");
    let _doc = dense(&display, w, h);
    runtime().block_on(async {
        let engine = tokio::task::block_in_place(ocr::Engine::new).expect("OCR engine");
        let mut screen = Screen::connect(
            &display.vnc_addr(),
            None,
            Duration::from_secs(10),
            ReconnectPolicy::default(),
            engine,
            &mut |_| {},
        )
        .await
        .expect("connect")
        .changes_first(true);
        let (text, _) = screen.text().expect("first look");
        // The first look hands the whole screen to the background reader and recognises nothing itself.
        assert!(text.words.is_empty(), "the foreground read {} words", text.words.len());
        assert_eq!(screen.stats().tesseract_calls, 0);
        assert!(screen.reading());
        let until = std::time::Instant::now() + Duration::from_secs(120);
        while screen.reading() {
            assert!(std::time::Instant::now() < until, "the background reader did not finish");
            match screen.wait_change_or_text(Duration::from_secs(5)).await.expect("wait") {
                Wake::Text | Wake::Changed(_) | Wake::Timeout => {}
            }
            screen.text().expect("merge");
        }
        let (text, frame) = screen.text().expect("text");
        let all = text.text();
        // Every band arrived: the first line, the last line, and lines in between.
        for want in ["001", "closing marker Zephyr Quokka", "recipient"] {
            assert!(all.contains(want), "{want:?} missing from the background read:\n{all}");
        }
        // Nothing changed in between, so the screen counts as read in full.
        assert!(screen.read_in_full(frame.serial()));
    });

    // And a script's wait finds text that was there from the start.
    run_passes(&display, "  - wait: {text: 'marker Zephyr Quokka', timeout: 120}\n");
}

#[test]
fn a_click_on_the_first_of_two_labels_waits_for_the_unread_part_above() {
    // Four bands of 270 rows; the earlier label lies in the third, the later one in the fourth.
    let (w, h) = (1024, 1080);
    let display = Display::xvnc(w, h).expect("Xvnc");
    let _doc = dense(&display, w, h);
    // The earlier `Apply` is on the screen from the start (read by the background reader); the later one appears
    // lower down right after the run starts, so it is read first, as a change.
    let apply = |name: &str, x: u32, y: u32, delay: f64| {
        let mut cmd = display.command("python3");
        cmd.args(["-u", "-c", APPLY, name, &x.to_string(), &y.to_string(), &delay.to_string()]);
        display.spawn(name, cmd).expect("python3-tk")
    };
    let upper = apply("upper", 600, 600, 0.0);
    display.wait_for_window("vmkit-upper", Duration::from_secs(30)).expect("upper window");
    std::thread::sleep(Duration::from_millis(500));
    let lower = apply("lower", 300, 900, 1.0);
    run_passes(&display, "  - click: {text: Apply, timeout: 120}\n");
    std::thread::sleep(Duration::from_millis(300));
    assert!(upper.log().contains("pressed upper"), "upper: {:?}; lower: {:?}", upper.log(), lower.log());
    assert!(!lower.log().contains("pressed"), "the later label was clicked: {}", lower.log());
}
