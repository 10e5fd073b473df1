//! `vmkit automate record` end to end, with real parts: an Xvnc display with a Tk window whose button acts on
//! release and whose entry field logs what it receives; a "person" played by vmkit's own RFB client that
//! connects THROUGH the recorder and clicks, types and presses keys. Checked from outside: the window's own log
//! shows the input arrived; the written script is anchored on the button's label and types the text; it loads
//! (what `vmkit automate check` does); it replays against its own recording; a reworded copy does not.

use std::time::Duration;

use automate::record::{RecordOptions, record};
use automate::result::Outcome;
use automate::script::Action;
use testbed::{Daemon, Display};

/// A window with a label, an entry field that logs its text on Enter, a button that acts on release and a
/// Ctrl+S binding, each logging to stdout.
const WINDOW: &str = r#"
import tkinter as tk
r = tk.Tk(); r.title('vmkit-record'); r.geometry('+40+40')
font = ('DejaVu Sans', 16)
status = tk.Label(r, text='Nothing done yet', font=font)
n = [0]
def apply():
    n[0] += 1
    print(f'applied {n[0]}', flush=True)
    status.configure(text=f'Done {n[0]} times')
row = tk.Frame(r)
tk.Label(row, text='Hostname', font=font).pack(side='left', padx=10)
entry = tk.Entry(row, font=font, width=20)
entry.pack(side='left', padx=10)
row.pack(padx=40, pady=20)
def entered(_):
    print(f'entered {entry.get()}', flush=True)
    status.configure(text='Name set')
entry.bind('<Return>', entered)
r.bind_all('<Control-s>', lambda _: (print('saved', flush=True), status.configure(text='Saved')))
tk.Button(r, text='Apply', font=font, command=apply).pack(padx=40, pady=20)
status.pack(padx=40, pady=20)
r.mainloop()
"#;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn window(display: &Display) -> Daemon {
    let mut cmd = display.command("python3");
    cmd.args(["-u", "-c", WINDOW]);
    let win = display.spawn("tk-record", cmd).expect("python3-tk");
    display.wait_for_window("vmkit-record", Duration::from_secs(30)).expect("the Tk window appears");
    win
}

/// Waits until the window's log holds `what`.
fn logged(win: &Daemon, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !win.log().contains(what) {
        assert!(std::time::Instant::now() < deadline, "the window never logged {what:?}: {}", win.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where `phrase` is on the person's screen (OCR, as a person's eyes).
fn locate(engine: &mut ocr::Engine, frame: &rfb::Frame, phrase: &str) -> ocr::Rect {
    let pixels =
        ocr::Frame::packed(frame.rgba(), frame.width(), frame.height(), ocr::PixelLayout::Rgbx).expect("frame");
    let text = engine.read(&pixels).expect("ocr");
    let found = ocr::matching::find(&text, &ocr::matching::Pattern::phrase(phrase), &Default::default());
    found.first().unwrap_or_else(|| panic!("{phrase:?} not on the screen: {}", text.text())).bbox
}

/// The person: connects through the recorder, clicks "Apply" off its centre, clicks into the entry, types,
/// presses Enter and Ctrl+S, then leaves.
async fn person(listen: std::net::SocketAddr, win: &Daemon) {
    let opts = rfb::ConnectOptions { timeout: Duration::from_secs(20), ..Default::default() };
    let mut viewer = None;
    for _ in 0..100 {
        match rfb::Client::connect(&listen.to_string(), opts.clone()).await {
            Ok(c) => {
                viewer = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let viewer = viewer.expect("the person's viewer connects through the recorder");
    let mut engine = ocr::Engine::new().expect("tesseract");
    let frame = viewer.frame();
    let apply = locate(&mut engine, &frame, "Apply");
    let host = locate(&mut engine, &frame, "Hostname");
    // A person does not hit the centre: 5 px left of it.
    viewer.click(apply.x + apply.width / 2 - 5, apply.y + apply.height / 2, rfb::Button::Left).await.expect("click");
    logged(win, "applied 1");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Into the entry, right of its label: no text there.
    viewer.click(host.x + host.width + 120, host.y + host.height / 2, rfb::Button::Left).await.expect("click");
    tokio::time::sleep(Duration::from_millis(500)).await;
    viewer.type_text("web-01 ok", &rfb::TypeOptions::default()).await.expect("type");
    viewer.press_chord(&"enter".parse().expect("chord")).await.expect("enter");
    logged(win, "entered web-01 ok");
    viewer.press_chord(&"ctrl+s".parse().expect("chord")).await.expect("ctrl+s");
    logged(win, "saved");
    tokio::time::sleep(Duration::from_millis(800)).await;
    drop(viewer);
}

#[test]
fn a_session_through_the_recorder_becomes_a_script_that_replays() {
    let display = Display::xvnc(800, 600).expect("Xvnc");
    let win = window(&display);
    let scratch = testbed::scratch_dir("record").expect("scratch");
    let output = scratch.path().join("recorded.yml");
    let frames = scratch.path().join("recorded.frames");
    let listen: std::net::SocketAddr =
        format!("127.0.0.1:{}", testbed::net::free_port().expect("port")).parse().expect("addr");
    let opts = RecordOptions {
        vnc: display.vnc_addr(),
        password: None,
        listen,
        output: output.clone(),
        frames: frames.clone(),
        force: false,
        type_text: true,
        timeout: Duration::from_secs(20),
    };
    let rt = runtime();
    let mut lines = Vec::new();
    // The person runs on a thread of its own; when it ends (or fails), the recording is stopped.
    let (done, stopped) = tokio::sync::oneshot::channel::<()>();
    let summary = std::thread::scope(|s| {
        let person = s.spawn(|| {
            let _done = done;
            runtime().block_on(person(listen, &win));
            // Leave the recorder time to see the viewer go before the stop.
            std::thread::sleep(Duration::from_secs(1));
        });
        let stop = async {
            let _ = stopped.await;
        };
        let summary = rt.block_on(record(&opts, stop, &mut |l| lines.push(l)));
        person.join().expect("the person did everything");
        summary
    });
    let summary = summary.unwrap_or_else(|e| panic!("recording failed: {e}\n{}", lines.join("\n")));
    assert_eq!(summary.ended, "the viewer disconnected");

    // The real window got every input exactly once.
    let log = win.log();
    assert_eq!(log.matches("applied").count(), 1, "{log}");
    assert!(log.contains("entered web-01 ok") && log.contains("saved"), "{log}");

    // The script: wait + click on the label, click_at into the field, the text, Enter, Ctrl+S.
    let text = std::fs::read_to_string(&output).expect("script written");
    let script = automate::load_file(&output).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let kinds: Vec<&str> = script.steps.iter().map(|s| s.action.keyword()).collect();
    assert_eq!(kinds, ["wait", "click", "click_at", "type", "key", "hotkey"], "{text}");
    let (Action::Wait(w), Action::Click(c)) = (&script.steps[0].action, &script.steps[1].action) else {
        panic!("{text}")
    };
    assert_eq!(w.target.to_string(), "\"Apply\"", "{text}");
    assert_eq!(c.target.to_string(), "\"Apply\"", "{text}");
    assert!((-7..=-3).contains(&c.offset.x), "the press was 5 px left of the centre: {text}");
    assert!(text.contains("# no text was under the pointer"), "{text}");
    let Action::Type(t) = &script.steps[3].action else { panic!("{text}") };
    assert_eq!(t.text, "web-01 ok");
    assert!(text.contains("key: enter"), "{text}");
    let Action::Hotkey(h) = &script.steps[5].action else { panic!("{text}") };
    assert_eq!(h.chord.to_string(), "ctrl+s");

    // It replays against its own recording...
    let replay = |script: &automate::Script| {
        let opts = automate::ReplayOptions::new(frames.clone());
        let mut out = Vec::new();
        let result = runtime().block_on(automate::replay(script, &opts, &mut |l| out.push(l.to_owned())));
        (result, out.join("\n"))
    };
    let (result, out) = replay(&script);
    assert_eq!(result.outcome, Outcome::Passed, "{out}\n{text}");

    // ...and a reworded script does not.
    let reworded_path = scratch.path().join("reworded.yml");
    std::fs::write(&reworded_path, text.replace("Apply", "Discard")).expect("write");
    let reworded = automate::load_file(&reworded_path).expect("loads");
    let (result, out) = replay(&reworded);
    assert_eq!(result.outcome, Outcome::Failed, "{out}");
    assert!(out.contains("\"Discard\" not found"), "{out}");

    // The recorder never overwrites: a second recording into the same files is refused before it starts.
    let again = rt.block_on(record(&opts, std::future::pending(), &mut |_| {}));
    assert!(again.is_err_and(|e| e.is_bad_input()));
}
