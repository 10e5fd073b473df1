//! Clicks that take effect, checked from outside: Tk buttons on Xvnc and x11vnc that act on release and log
//! their activation to stdout; a click on a dead area, reported as having no effect after bounded retries; and
//! QEMU guests under TCG with a busy loop, with a USB tablet and with only a PS/2 mouse, where a program in the
//! guest logs the press and release positions it received (`testbed_guests::input_log`).

use std::time::Duration;

use automate::result::{Outcome, RunResult};
use testbed::x11::DisplayOptions;
use testbed::{Daemon, Display, DisplayKind};
use testbed_guests::input_log::{InputGuest, Pointer};

/// A Tk button that, like GTK's, acts on release: each activation prints `activated N` and relabels the window.
const TK_BUTTON: &str = r#"
import tkinter as tk
r = tk.Tk(); r.title('vmkit-button'); r.geometry('+40+40')
n = [0]
status = tk.Label(r, text='Nothing yet', font=('DejaVu Sans', 16))
def act():
    n[0] += 1
    print(f'activated {n[0]}', flush=True)
    status.configure(text=f'Activated {n[0]} times')
tk.Button(r, text='Install now', font=('DejaVu Sans', 16), command=act).pack(padx=40, pady=20)
status.pack(padx=40, pady=20)
r.mainloop()
"#;

/// A label with a context menu: a right click opens it (`context N`), a left click only prints `left`.
const TK_CONTEXT: &str = r#"
import tkinter as tk
r = tk.Tk(); r.title('vmkit-context'); r.geometry('+40+40')
n = [0]
status = tk.Label(r, text='Nothing yet', font=('DejaVu Sans', 16))
def context(_):
    n[0] += 1
    print(f'context {n[0]}', flush=True)
    status.configure(text='Context menu open')
target = tk.Label(r, text='Options', font=('DejaVu Sans', 16), relief='raised', padx=20, pady=10)
target.bind('<Button-3>', context)
target.bind('<Button-1>', lambda _: print('left', flush=True))
target.pack(padx=40, pady=20)
status.pack(padx=40, pady=20)
r.mainloop()
"#;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn button_window(display: &Display) -> Daemon {
    let mut cmd = display.command("python3");
    cmd.args(["-u", "-c", TK_BUTTON]);
    let win = display.spawn("tk-button", cmd).expect("python3-tk");
    display.wait_for_window("vmkit-button", Duration::from_secs(30)).expect("the Tk window appears");
    win
}

/// Runs `yaml` against `vnc` with `opts` adjusted by `adjust`; returns the result, the progress lines and the
/// debug directory's report.
fn run(vnc: &str, yaml: &str, adjust: impl FnOnce(&mut automate::RunOptions)) -> (RunResult, Vec<String>, String) {
    let scratch = testbed::scratch_dir("clicks").expect("scratch");
    let path = scratch.path().join("clicks.yaml");
    std::fs::write(&path, yaml).expect("write script");
    let script = automate::load_file(&path).expect("script loads");
    let mut opts = automate::RunOptions::new(vnc);
    let debug = scratch.path().join("debug");
    opts.debug = Some(Some(debug.clone()));
    adjust(&mut opts);
    let mut lines = Vec::new();
    let result = runtime().block_on(automate::run(&script, &opts, &mut |l| lines.push(l.to_owned())));
    let report = std::fs::read_to_string(debug.join("report.html")).unwrap_or_default();
    (result, lines, report)
}

const BUTTON_SCRIPT: &str = "boot_wait: 0
boot_commands:
  - click: {text: 'Install now', timeout: 60}
  - wait: {text: 'Activated 1 times', timeout: 20}
";

fn button_acts_once(display: &Display) {
    let win = button_window(display);
    let (result, lines, report) = run(&display.vnc_addr(), BUTTON_SCRIPT, |_| {});
    let json = serde_json::to_string(&result).expect("json");
    assert_eq!(result.outcome, Outcome::Passed, "{json}\n{}", lines.join("\n"));
    let click = result.steps[0].click.as_ref().expect("the click's report");
    assert_eq!((click.attempts, click.checked, click.took_effect), (1, true, Some(true)), "{json}");
    assert!(json.contains(r#""took_effect":true"#), "{json}");
    assert!(report.contains("took effect"), "report.html says nothing about the click");
    // The button acted exactly once: a retried click would have activated it twice.
    std::thread::sleep(Duration::from_millis(500));
    let log = win.log();
    assert_eq!(log.matches("activated").count(), 1, "{log}");
}

#[test]
fn a_button_acting_on_release_is_activated_once_on_xvnc() {
    let display = Display::xvnc(800, 600).expect("Xvnc");
    button_acts_once(&display);
}

#[test]
fn a_button_acting_on_release_is_activated_once_on_x11vnc_which_paints_the_pointer() {
    // testbed's x11vnc runs with -nocursor: the pointer is in the image, so the runner parks it after the click.
    let display =
        Display::start(DisplayOptions { kind: DisplayKind::X11vnc, width: 800, height: 600, ..Default::default() })
            .expect("x11vnc");
    button_acts_once(&display);
}

#[test]
fn a_click_on_a_dead_area_is_reported_as_having_no_effect_after_bounded_retries() {
    let display = Display::xvnc(800, 600).expect("Xvnc");
    let _win = button_window(&display);
    let yaml = "boot_wait: 0
boot_commands:
  - wait: {text: 'Install now', timeout: 60}
  - click_at: {x: 700, y: 550, retries: 2}
";
    let (result, lines, report) = run(&display.vnc_addr(), yaml, |o| o.clicks.confirm = Duration::from_millis(700));
    let json = serde_json::to_string(&result).expect("json");
    assert_eq!(result.outcome, Outcome::Failed, "{json}");
    let step = &result.steps[1];
    assert_eq!(step.outcome, Outcome::Failed, "{json}");
    let click = step.click.as_ref().expect("the click's report");
    assert_eq!((click.attempts, click.took_effect), (3, Some(false)), "{json}");
    let message = &step.failure.as_ref().expect("failure").message;
    assert!(message.contains("no visible effect") && message.contains("expect_change: false"), "{message}");
    assert_eq!(lines.iter().filter(|l| l.contains("no visible change")).count(), 2, "{}", lines.join("\n"));
    assert!(report.contains("no visible effect"), "report.html does not say the click had no effect");

    // The same click, declared as changing nothing, passes without being repeated.
    let yaml = yaml.replace("retries: 2", "expect_change: false");
    let (result, lines, _) = run(&display.vnc_addr(), &yaml, |_| {});
    assert_eq!(result.outcome, Outcome::Passed, "{}", lines.join("\n"));
    let click = result.steps[1].click.as_ref().expect("the click's report");
    assert_eq!((click.attempts, click.checked, click.took_effect), (1, false, None));
}

/// Clicks on the guest's console at spots spread over the screen, each confirmed by the console's reaction (the
/// logger prints each press and release on it), then checks where the guest saw the buttons.
fn guest_clicks_land(pointer: Pointer) {
    let rt = runtime();
    let mut guest = rt.block_on(InputGuest::boot(pointer, true, 720, 400)).expect("guest boots");
    let targets = [(120u32, 60u32), (600, 330), (360, 200)];
    let mut yaml = String::from("boot_wait: 0\nboot_commands:\n");
    for (x, y) in targets {
        yaml.push_str(&format!("  - click_at: {{x: {x}, y: {y}}}\n"));
    }
    let (result, lines, _) = run(&guest.guest.vnc_addr(), &yaml, |o| o.clicks.confirm = Duration::from_secs(10));
    let json = serde_json::to_string(&result).expect("json");
    assert_eq!(result.outcome, Outcome::Passed, "{json}\n{}", lines.join("\n"));
    let want_mode = if pointer == Pointer::UsbTablet { "absolute" } else { "relative" };
    for step in &result.steps {
        let click = step.click.as_ref().expect("click report");
        assert_eq!((click.took_effect, click.pointer), (Some(true), want_mode), "{json}");
    }
    if pointer == Pointer::Ps2Mouse {
        assert!(lines.iter().any(|l| l.contains("usb-tablet")), "no word on relative pointers:\n{}", lines.join("\n"));
    }
    let events = rt.block_on(guest.events(2 * targets.len(), Duration::from_secs(60))).expect("log");
    // One press and one release per click: a retried click would show twice.
    assert_eq!(events.len(), 2 * targets.len(), "{events:?}\n{}", lines.join("\n"));
    for (pair, (x, y)) in events.chunks(2).zip(targets) {
        for (e, down) in pair.iter().zip([true, false]) {
            assert_eq!(e.down, down, "{events:?}");
            assert!(
                (e.x - i64::from(x)).abs() <= 1 && (e.y - i64::from(y)).abs() <= 1,
                "aimed at ({x}, {y}); the guest saw {e:?}"
            );
        }
    }
}

#[test]
fn e2e_runner_clicks_land_on_a_usb_tablet_guest_under_load() {
    guest_clicks_land(Pointer::UsbTablet);
}

#[test]
fn e2e_runner_clicks_land_on_a_ps2_mouse_guest_under_load() {
    guest_clicks_land(Pointer::Ps2Mouse);
}

/// `button: right` presses the right button: the label's context binding fires once, its left binding never; the
/// same step without `button` presses the left one, which changes nothing on the screen and is reported as such.
#[test]
fn a_right_click_opens_a_context_menu_that_a_left_click_does_not() {
    let display = Display::xvnc(800, 600).expect("Xvnc");
    let mut cmd = display.command("python3");
    cmd.args(["-u", "-c", TK_CONTEXT]);
    let win = display.spawn("tk-context", cmd).expect("python3-tk");
    display.wait_for_window("vmkit-context", Duration::from_secs(30)).expect("the Tk window appears");

    let left = "boot_wait: 0\nboot_commands:\n  - click: {text: Options, timeout: 60, retries: 0}\n";
    let (result, lines, _) = run(&display.vnc_addr(), left, |o| o.clicks.confirm = Duration::from_millis(700));
    assert_eq!(result.outcome, Outcome::Failed, "{}", lines.join("\n"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!((win.log().matches("left").count(), win.log().matches("context").count()), (1, 0), "{}", win.log());

    let right = "boot_wait: 0
boot_commands:
  - click: {text: Options, button: right, timeout: 60}
  - wait: {text: Context menu open, timeout: 20}
";
    let (result, lines, _) = run(&display.vnc_addr(), right, |_| {});
    let json = serde_json::to_string(&result).expect("json");
    assert_eq!(result.outcome, Outcome::Passed, "{json}\n{}", lines.join("\n"));
    let click = result.steps[0].click.as_ref().expect("the click's report");
    assert_eq!((click.attempts, click.took_effect), (1, Some(true)), "{json}");
    assert!(lines.iter().any(|l| l.contains("right-clicked")), "{}", lines.join("\n"));
    std::thread::sleep(Duration::from_millis(300));
    let log = win.log();
    assert_eq!((log.matches("left").count(), log.matches("context").count()), (1, 1), "{log}");
}
