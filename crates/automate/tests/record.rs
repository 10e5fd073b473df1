//! `vmkit automate record` end to end, with real parts: an Xvnc display with a Tk window whose button acts on
//! release and whose entry field logs what it receives; a "person" played by vmkit's own RFB client that
//! connects THROUGH the recorder and clicks, types and presses keys. Checked from outside: the window's own log
//! shows the input arrived; the written script is anchored on the button's label and types the text; it loads
//! (what `vmkit automate check` does); it replays against its own recording; a reworded copy does not. The same
//! through TigerVNC's viewer and through x11vnc with a password; and a QEMU guest's own VNC server (extended key
//! events, a USB tablet), where the guest logs the buttons it received and the written script, run against the
//! guest, presses them again at the same places.

use std::time::Duration;

use automate::record::{RecordOptions, record};
use automate::result::Outcome;
use automate::script::Action;
use testbed::x11::DisplayOptions;
use testbed::{Daemon, Display, DisplayKind};
use testbed_guests::input_log::{InputGuest, Pointer};

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
fn block_on_log(win: &Daemon, what: &str) {
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

/// The person's viewer, connected through the recorder once it listens (tried for up to about 10 s).
async fn connect_through(listen: std::net::SocketAddr, opts: rfb::ConnectOptions) -> rfb::Client {
    for _ in 0..100 {
        match rfb::Client::connect(&listen.to_string(), opts.clone()).await {
            Ok(c) => return c,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("the person's viewer does not connect through the recorder at {listen}")
}

/// The person: connects through the recorder, clicks "Apply" off its centre, clicks into the entry, types,
/// presses Enter and Ctrl+S, then leaves.
async fn person(listen: std::net::SocketAddr, win: &Daemon, password: Option<&str>) {
    let opts = rfb::ConnectOptions {
        timeout: Duration::from_secs(20),
        password: password.map(str::to_owned),
        ..Default::default()
    };
    let viewer = connect_through(listen, opts).await;
    let mut engine = ocr::Engine::new().expect("tesseract");
    let frame = viewer.frame();
    let apply = locate(&mut engine, &frame, "Apply");
    let host = locate(&mut engine, &frame, "Hostname");
    // A person does not hit the centre: 5 px left of it.
    viewer.click(apply.x + apply.width / 2 - 5, apply.y + apply.height / 2, rfb::Button::Left).await.expect("click");
    block_on_log(win, "applied 1");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Into the entry, right of its label: no text there.
    viewer.click(host.x + host.width + 120, host.y + host.height / 2, rfb::Button::Left).await.expect("click");
    tokio::time::sleep(Duration::from_millis(500)).await;
    viewer.type_text("web-01 ok", &rfb::TypeOptions::default()).await.expect("type");
    viewer.press_chord(&"enter".parse().expect("chord")).await.expect("enter");
    block_on_log(win, "entered web-01 ok");
    viewer.press_chord(&"ctrl+s".parse().expect("chord")).await.expect("ctrl+s");
    block_on_log(win, "saved");
    tokio::time::sleep(Duration::from_millis(800)).await;
    drop(viewer);
}

/// A recording session: the machine's display, the window on it, the recorder's files.
struct Session {
    scratch: tempfile::TempDir,
    opts: RecordOptions,
}

impl Session {
    fn new(display: &Display) -> Self {
        Self::with_password(display, None)
    }

    fn with_password(display: &Display, password: Option<&str>) -> Self {
        Self::at(display.vnc_addr(), password)
    }

    /// A session recording the VNC server at `vnc`.
    fn at(vnc: String, password: Option<&str>) -> Self {
        let scratch = testbed::scratch_dir("record").expect("scratch");
        let listen: std::net::SocketAddr =
            format!("127.0.0.1:{}", testbed::net::free_port().expect("port")).parse().expect("addr");
        let opts = RecordOptions {
            vnc,
            password: password.map(automate::script::Secret::new),
            listen,
            allow_remote: false,
            output: scratch.path().join("recorded.yml"),
            frames: scratch.path().join("recorded.frames"),
            force: false,
            type_text: true,
            timeout: Duration::from_secs(20),
        };
        Self { scratch, opts }
    }

    /// Records while `person` (on a thread of its own) uses the machine through the recorder; when the person
    /// is done (or fails), the recording is stopped.
    fn record(&self, person: impl FnOnce(std::net::SocketAddr) + Send) -> automate::record::Summary {
        let mut lines = Vec::new();
        let (done, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, listening) = std::sync::mpsc::channel::<()>();
        let listen = self.opts.listen;
        let summary = std::thread::scope(|s| {
            let person = s.spawn(move || {
                let _done = done;
                listening.recv_timeout(Duration::from_secs(30)).expect("the recorder listens");
                person(listen);
                // Leave the recorder time to see the viewer go before the stop.
                std::thread::sleep(Duration::from_secs(1));
            });
            let stop = async {
                let _ = stopped.await;
            };
            let mut log = |l: String| {
                if l.contains("point a VNC viewer at") {
                    let _ = ready.send(());
                }
                lines.push(l);
            };
            let summary = runtime().block_on(record(&self.opts, stop, &mut log));
            person.join().expect("the person did everything");
            summary
        });
        let summary = summary.unwrap_or_else(|e| panic!("recording failed: {e}\n{}", lines.join("\n")));
        assert_eq!(summary.ended, "the viewer disconnected", "{}", lines.join("\n"));
        summary
    }

    /// Checks what the person did on the window: the button once, the text and Enter, Ctrl+S.
    fn window_got_it(win: &Daemon) {
        let log = win.log();
        assert_eq!(log.matches("applied").count(), 1, "{log}");
        assert!(log.contains("entered web-01 ok") && log.contains("saved"), "{log}");
    }

    /// Checks the written script: wait + click on the label (`offset_x` from its centre, give or take 2 px),
    /// click_at into the field, the text, Enter, Ctrl+S; it loads, replays against its recording, and a
    /// reworded copy does not.
    fn script_replays(&self, offset_x: i32) {
        let output = &self.opts.output;
        let text = std::fs::read_to_string(output).expect("script written");
        let script = automate::load_file(output).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let kinds: Vec<&str> = script.steps.iter().map(|s| s.action.keyword()).collect();
        assert_eq!(kinds, ["wait", "click", "click_at", "type", "key", "hotkey"], "{text}");
        let (Action::Wait(w), Action::Click(c)) = (&script.steps[0].action, &script.steps[1].action) else {
            panic!("{text}")
        };
        assert_eq!(w.target.to_string(), "\"Apply\"", "{text}");
        assert_eq!(c.target.to_string(), "\"Apply\"", "{text}");
        assert!(
            (offset_x - 2..=offset_x + 2).contains(&c.offset.x),
            "the press was {offset_x} px from the centre: {text}"
        );
        assert!(text.contains("# no text was under the pointer"), "{text}");
        let Action::Type(t) = &script.steps[3].action else { panic!("{text}") };
        assert_eq!(t.text, "web-01 ok");
        assert!(text.contains("key: enter"), "{text}");
        let Action::Hotkey(h) = &script.steps[5].action else { panic!("{text}") };
        assert_eq!(h.chord.to_string(), "ctrl+s");

        // It replays against its own recording...
        let replay = |script: &automate::Script| {
            let opts = automate::ReplayOptions::new(self.opts.frames.clone());
            let mut out = Vec::new();
            let result = runtime().block_on(automate::replay(script, &opts, &mut |l| out.push(l.to_owned())));
            (result, out.join("\n"))
        };
        let (result, out) = replay(&script);
        assert_eq!(result.outcome, Outcome::Passed, "{out}\n{text}");

        // ...and a reworded script does not.
        let reworded_path = self.scratch.path().join("reworded.yml");
        std::fs::write(&reworded_path, text.replace("Apply", "Discard")).expect("write");
        let reworded = automate::load_file(&reworded_path).expect("loads");
        let (result, out) = replay(&reworded);
        assert_eq!(result.outcome, Outcome::Failed, "{out}");
        assert!(out.contains("\"Discard\" not found"), "{out}");
    }
}

#[test]
fn a_session_through_the_recorder_becomes_a_script_that_replays() {
    let display = Display::xvnc(800, 600).expect("Xvnc");
    let win = window(&display);
    let session = Session::new(&display);
    session.record(|listen| runtime().block_on(person(listen, &win, None)));
    Session::window_got_it(&win);
    session.script_replays(-5);

    // The recorder never overwrites: a second recording into the same files is refused before it starts.
    let again = runtime().block_on(record(&session.opts, std::future::pending(), &mut |_| {}));
    assert!(again.is_err_and(|e| e.is_bad_input()));
}

/// The same session made by a person at TigerVNC's viewer (a third-party viewer: Tight encoding, fences,
/// continuous updates, asking for an exclusive session), driven with xdotool on a display of its own.
#[test]
fn a_tigervnc_viewer_through_the_recorder_is_recorded() {
    let machine = Display::xvnc(800, 600).expect("Xvnc");
    let win = window(&machine);
    let desk = Display::xvnc(1024, 768).expect("the person's display");
    let session = Session::new(&machine);
    session.record(|listen| {
        let mut viewer = desk.command("xtigervncviewer");
        viewer.args(["-Shared=0", "-geometry", "800x600+0+0", &format!("127.0.0.1::{}", listen.port())]);
        let mut viewer = desk.spawn("tigervnc", viewer).expect("tigervnc-viewer");
        let wid = desk.wait_for_window("TigerVNC", Duration::from_secs(30)).expect("the viewer's window").to_string();
        // The person's eyes: the person's own screen, through its own VNC server.
        let rt = runtime();
        let eyes = rt.block_on(rfb::Client::connect(&desk.vnc_addr(), Default::default())).expect("eyes");
        let mut engine = ocr::Engine::new().expect("tesseract");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let (apply, host) = loop {
            let frame = eyes.frame();
            let pixels =
                ocr::Frame::packed(frame.rgba(), frame.width(), frame.height(), ocr::PixelLayout::Rgbx).expect("frame");
            let text = engine.read(&pixels).expect("ocr");
            let find = |p: &str| {
                ocr::matching::find(&text, &ocr::matching::Pattern::phrase(p), &Default::default())
                    .first()
                    .map(|m| m.bbox)
            };
            if let (Some(a), Some(h)) = (find("Apply"), find("Hostname")) {
                break (a, h);
            }
            assert!(std::time::Instant::now() < deadline, "the viewer never showed the window: {}", text.text());
            std::thread::sleep(Duration::from_millis(200));
        };
        let xdotool = |args: &[&str]| {
            let out = desk.command("xdotool").args(args).output().expect("xdotool");
            assert!(out.status.success(), "xdotool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let at = |x: u32, y: u32| [x.to_string(), y.to_string()];
        let [x, y] = at(apply.x + apply.width / 2 + 6, apply.y + apply.height / 2);
        xdotool(&["mousemove", &x, &y, "click", "1"]);
        block_on_log(&win, "applied 1");
        std::thread::sleep(Duration::from_millis(500));
        let [x, y] = at(host.x + host.width + 120, host.y + host.height / 2);
        xdotool(&["mousemove", &x, &y, "click", "1"]);
        std::thread::sleep(Duration::from_millis(500));
        // No window manager: give the viewer the keyboard as one would by clicking on its title bar.
        xdotool(&["windowfocus", "--sync", &wid]);
        xdotool(&["type", "--delay", "40", "web-01 ok"]);
        xdotool(&["key", "Return"]);
        block_on_log(&win, "entered web-01 ok");
        xdotool(&["key", "ctrl+s"]);
        block_on_log(&win, "saved");
        std::thread::sleep(Duration::from_millis(800));
        viewer.stop();
    });
    Session::window_got_it(&win);
    session.script_replays(6);
}

/// VNC Authentication passes through the recorder (here to x11vnc, which takes keysyms only): a viewer with a
/// wrong password is refused by the server and nothing is written; with the right one the session is recorded.
/// The recorder's own connection uses its password; the password appears in no file it writes.
#[test]
fn vnc_authentication_passes_through_to_x11vnc() {
    const PASSWORD: &str = "pw-rec42";
    let machine = Display::start(DisplayOptions {
        kind: DisplayKind::X11vnc,
        width: 800,
        height: 600,
        password: Some(PASSWORD.into()),
        ..DisplayOptions::default()
    })
    .expect("x11vnc");
    let win = window(&machine);

    // The recorder's own password wrong: bad input, before anyone connects.
    let rt = runtime();
    let wrong_own = Session::with_password(&machine, Some("wrong"));
    let e = rt.block_on(record(&wrong_own.opts, std::future::pending(), &mut |_| {})).expect_err("refused");
    assert!(e.is_bad_input(), "{e}");

    let refused = Session::with_password(&machine, Some(PASSWORD));
    let listen = refused.opts.listen;
    let wrong = rfb::ConnectOptions { password: Some("wrong".into()), ..Default::default() };
    let (recording, viewer) = rt.block_on(async {
        let mut quiet = |_| {};
        let recording = record(&refused.opts, std::future::pending(), &mut quiet);
        let viewer = async {
            for _ in 0..200 {
                match rfb::Client::connect(&listen.to_string(), wrong.clone()).await {
                    Err(e) if e.is_connection_lost() => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    other => return other.map(|_| ()),
                }
            }
            panic!("never reached the recorder")
        };
        tokio::join!(recording, viewer)
    });
    let e = viewer.expect_err("a wrong password is refused");
    assert!(matches!(e, rfb::Error::AuthFailed { .. }), "{e}");
    let e = recording.expect_err("the session failed");
    assert!(e.to_string().contains("refused"), "{e}");
    assert!(!refused.opts.output.exists() && !refused.opts.frames.exists(), "nothing written");

    let session = Session::with_password(&machine, Some(PASSWORD));
    session.record(|listen| runtime().block_on(person(listen, &win, Some(PASSWORD))));
    Session::window_got_it(&win);
    session.script_replays(-5);
    for entry in std::fs::read_dir(&session.opts.frames).expect("frames").flatten() {
        let bytes = std::fs::read(entry.path()).expect("read");
        assert!(!String::from_utf8_lossy(&bytes).contains(PASSWORD), "{}", entry.path().display());
    }
    let script = std::fs::read_to_string(&session.opts.output).expect("script");
    assert!(!script.contains(PASSWORD));
}

/// A person at a QEMU guest's own VNC server, through the recorder: QEMU's extended key events and a USB tablet
/// the guest polls, under TCG. The presses land where the person aimed (the guest's own log of the buttons it
/// received says so); the written script has a `click_at` for each (no text is under them) and the key; and
/// running that script against the guest presses the buttons there again, each click confirmed by the screen's
/// reaction and by the guest's log.
#[test]
fn e2e_a_qemu_guest_session_through_the_recorder_becomes_a_script_that_clicks_the_guest_again() {
    let rt = runtime();
    let mut guest = rt.block_on(InputGuest::boot(Pointer::UsbTablet, false, 720, 400)).expect("guest boots");
    // An empty console: the logger's lines start at the top, far from the presses at the bottom right.
    rt.block_on(guest.guest.serial_command("printf '\\033[2J\\033[H' > /dev/tty1", Duration::from_secs(60)))
        .expect("clear the console");
    let targets = [(600u32, 330u32), (660, 370)];
    let session = Session::at(guest.guest.vnc_addr(), guest.guest.vnc_password());
    session.record(|listen| {
        runtime().block_on(async {
            let opts = rfb::ConnectOptions { timeout: Duration::from_secs(30), ..Default::default() };
            let viewer = connect_through(listen, opts).await;
            for (x, y) in targets {
                viewer.click(x, y, rfb::Button::Left).await.expect("click");
                // The guest polls its tablet and prints on its console: give it time, as a person would.
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            viewer.press_chord(&"end".parse().expect("chord")).await.expect("key");
            tokio::time::sleep(Duration::from_secs(1)).await;
        });
    });

    let landed = |events: &[testbed_guests::input_log::ButtonEvent], what: &str| {
        assert_eq!(events.len(), 2 * targets.len(), "{what}: {events:?}");
        for (pair, (x, y)) in events.chunks(2).zip(targets) {
            for (e, down) in pair.iter().zip([true, false]) {
                assert_eq!(e.down, down, "{what}: {events:?}");
                assert!(
                    (e.x - i64::from(x)).abs() <= 1 && (e.y - i64::from(y)).abs() <= 1,
                    "{what}: aimed at ({x}, {y}); the guest saw {e:?}"
                );
            }
        }
    };
    let events = rt.block_on(guest.events(2 * targets.len(), Duration::from_secs(60))).expect("log");
    landed(&events, "the person's clicks");

    let output = &session.opts.output;
    let text = std::fs::read_to_string(output).expect("script written");
    let script = automate::load_file(output).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let kinds: Vec<&str> = script.steps.iter().map(|s| s.action.keyword()).collect();
    assert_eq!(kinds, ["click_at", "click_at", "key"], "{text}");
    for (step, (x, y)) in script.steps.iter().zip(targets) {
        let Action::ClickAt(c) = &step.action else { panic!("{text}") };
        assert_eq!((c.point.x, c.point.y), (x, y), "{text}");
    }
    assert!(text.contains("key: end"), "{text}");

    // The written script, run against the guest, clicks there again.
    let mut opts = automate::RunOptions::new(guest.guest.vnc_addr());
    opts.clicks.confirm = Duration::from_secs(10);
    let mut lines = Vec::new();
    let result = rt.block_on(automate::run(&script, &opts, &mut |l| lines.push(l.to_owned())));
    assert_eq!(result.outcome, Outcome::Passed, "{}\n{text}", lines.join("\n"));
    for step in result.steps.iter().take(targets.len()) {
        let click = step.click.as_ref().expect("click report");
        assert_eq!(click.took_effect, Some(true), "{}", lines.join("\n"));
    }
    let events = rt.block_on(guest.events(2 * targets.len(), Duration::from_secs(60))).expect("log");
    landed(&events, "the recorded script's clicks");
}
