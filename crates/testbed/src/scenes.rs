//! Real screens for the OCR tests, the benchmark and the tuning lab: GTK and Tk windows on an Xvnc display, and
//! the VGA text console of a real QEMU machine.
//!
//! Shared by the OCR acceptance tests, the OCR benchmark and tuning lab, and the `vmkit screen` CLI tests, so the
//! benchmark measures exactly the screens the acceptance tests check. Every window is a real program (zenity, python3-tk) drawn by a
//! real X server; screenshots come from the X server itself (`xwd`), not from vmkit's RFB client.
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::run;
use crate::{Daemon, Display, Screenshot};
use anyhow::bail;

/// Generous: the machine may be busy compiling while tests run.
pub const WINDOW_TIMEOUT: Duration = Duration::from_secs(60);

/// A window on screen: the program and its X geometry.
pub struct Window {
    /// The program that shows it; dropping it closes the window.
    pub process: Daemon,
    /// The X window id.
    pub id: u64,
    /// Left edge in screen pixels.
    pub x: i32,
    /// Top edge in screen pixels.
    pub y: i32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Window {
    /// Whether the point lies inside the window.
    pub fn contains(&self, x: u32, y: u32) -> bool {
        let (x, y) = (i64::from(x), i64::from(y));
        x >= i64::from(self.x)
            && y >= i64::from(self.y)
            && x < i64::from(self.x) + i64::from(self.width)
            && y < i64::from(self.y) + i64::from(self.height)
    }
}

/// Waits for the window titled `title`, moves it so its top-left corner is at (`x`, `y`), and waits until the
/// screen stops changing.
fn place(d: &Display, process: Daemon, title: &str, x: i32, y: i32) -> anyhow::Result<Window> {
    let id = d.wait_for_window(title, WINDOW_TIMEOUT)?;
    let mut cmd = d.command("xdotool");
    cmd.args(["windowmove", "--sync", &id.to_string(), &x.to_string(), &y.to_string()]);
    run(&mut cmd)?;
    settle(d)?;
    let (x, y, width, height) = d.window_geometry(id)?;
    Ok(Window { process, id, x, y, width, height })
}

/// Screenshots until two in a row are identical (GTK draws a window in several passes after mapping it).
pub fn settle(d: &Display) -> anyhow::Result<Screenshot> {
    let deadline = Instant::now() + WINDOW_TIMEOUT;
    let mut last = d.screenshot()?;
    loop {
        std::thread::sleep(Duration::from_millis(150));
        let now = d.screenshot()?;
        if now == last {
            return Ok(now);
        }
        if Instant::now() > deadline {
            bail!("the screen of {} kept changing for {WINDOW_TIMEOUT:?}", d.name());
        }
        last = now;
    }
}

/// The dialog of the acceptance test: a GTK (zenity) window saying "Welcome to Setup" with a "Continue" button,
/// its top-left corner at (`x`, `y`).
pub fn welcome_dialog(d: &Display, x: i32, y: i32) -> anyhow::Result<Window> {
    let title = "vmkit-welcome";
    let mut cmd = d.command("zenity");
    cmd.args(["--info", "--title", title, "--text", "Welcome to Setup", "--ok-label", "Continue", "--width", "420"]);
    let process = d.spawn("zenity-welcome", cmd)?;
    place(d, process, title, x, y)
}

/// A GTK (zenity) text entry dialog titled "vmkit-entry" at (`x`, `y`). When it is confirmed (Enter or OK), the
/// program prints the entry's text on stdout (see [`Daemon::log`]) and exits 0.
pub fn entry_dialog(d: &Display, x: i32, y: i32) -> anyhow::Result<Window> {
    let title = "vmkit-entry";
    let mut cmd = d.command("zenity");
    cmd.args(["--entry", "--title", title, "--text", "Type here", "--width", "700"]);
    let process = d.spawn("zenity-entry", cmd)?;
    place(d, process, title, x, y)
}

/// Rows of the GTK list: an installer's language choice.
pub const GTK_LIST_ROWS: [&str; 5] = ["English", "Deutsch", "Nederlands", "Svenska", "Italiano"];

/// A GTK (zenity) list whose third row, "Nederlands", is selected: white text on the theme's blue bar.
pub fn gtk_list_with_selection(d: &Display, x: i32, y: i32) -> anyhow::Result<Window> {
    let title = "vmkit-language";
    let mut cmd = d.command("zenity");
    cmd.args(["--list", "--title", title, "--text", "Choose the language of the installation"])
        .args(["--column", "Language", "--width", "460", "--height", "340"])
        .args(GTK_LIST_ROWS);
    let process = d.spawn("zenity-list", cmd)?;
    let win = place(d, process, title, x, y)?;
    // No window manager: keyboard focus follows the pointer. Put it over the window, then Home (first row) and
    // Down twice. (`xdotool key --window` would send synthetic events, which GTK ignores.)
    let (cx, cy) = (win.x + win.width as i32 / 2, win.y + 20);
    let mut cmd = d.command("xdotool");
    cmd.args(["mousemove", "--sync", &cx.to_string(), &cy.to_string()]);
    run(&mut cmd)?;
    for key in ["Home", "Down", "Down"] {
        let mut cmd = d.command("xdotool");
        cmd.args(["key", key]);
        run(&mut cmd)?;
        std::thread::sleep(Duration::from_millis(100));
    }
    // The pointer would hover a row and tint it; move it away.
    let mut cmd = d.command("xdotool");
    cmd.args(["mousemove", "--sync", "1", "1"]);
    run(&mut cmd)?;
    settle(d)?;
    Ok(win)
}

/// Rows of the Tk menu, like a Debian installer's boot menu; the selected one is "Graphical install".
pub const TK_MENU_ROWS: [&str; 5] =
    ["Install", "Graphical install", "Advanced options", "Accessible dark contrast installer menu", "Help"];

const TK_MENU: &str = r#"
import sys, tkinter as tk
rows = sys.argv[1:]
r = tk.Tk(); r.title('vmkit-menu'); r.geometry('520x240')
r.configure(bg='#202020')
lb = tk.Listbox(r, font=('DejaVu Sans', 13), bg='#f2f2f2', fg='#202020', selectbackground='#1c4f9c',
                selectforeground='#ffffff', activestyle='none', exportselection=False, highlightthickness=0)
for s in rows: lb.insert('end', s)
lb.selection_set(1)
lb.pack(fill='both', expand=True, padx=12, pady=12)
r.mainloop()
"#;

/// A Tk list shaped like an installer's boot menu, with "Graphical install" highlighted (white on dark blue).
pub fn tk_menu(d: &Display, x: i32, y: i32) -> anyhow::Result<Window> {
    let mut cmd = d.command("python3");
    cmd.args(["-c", TK_MENU]).args(TK_MENU_ROWS);
    let process = d.spawn("tk-menu", cmd)?;
    place(d, process, "vmkit-menu", x, y)
}

const TK_TERMINAL: &str = r#"
import sys, tkinter as tk
w, h = int(sys.argv[1]), int(sys.argv[2])
r = tk.Tk(); r.title('vmkit-terminal'); r.geometry(f'{w}x{h}+0+0')
t = tk.Text(r, font=('DejaVu Sans Mono', 11), bg='#101010', fg='#d0d0d0', bd=0, highlightthickness=0,
            insertwidth=0, wrap='none')
words = ('kernel usb device driver network interface address memory module firmware loaded service started '
         'mounted filesystem checking volume partition journal recovery complete systemd udev probe link').split()
seed = 12345
for i in range(200):
    seed = (seed * 1103515245 + 12345) % 2**31
    n = 12 + seed % 14
    line = f'[{i * 0.731:10.6f}] '
    for k in range(n):
        seed = (seed * 1103515245 + 12345) % 2**31
        line += words[seed % len(words)] + ' '
    t.insert('end', line + '\n')
t.configure(state='disabled')
t.pack(fill='both', expand=True)
r.mainloop()
"#;

/// A terminal-like window filling the screen with log text (light grey on near-black, monospace).
pub fn terminal(d: &Display, width: u32, height: u32) -> anyhow::Result<Window> {
    let mut cmd = d.command("python3");
    cmd.args(["-c", TK_TERMINAL, &width.to_string(), &height.to_string()]);
    let process = d.spawn("tk-terminal", cmd)?;
    place(d, process, "vmkit-terminal", 0, 0)
}

/// The VGA text console of a real QEMU PC without a boot device: SeaBIOS's grey-on-black messages, 720×400,
/// captured with QMP `screendump`. Waits until "No bootable device." is drawn (the screen then stays as it is).
pub fn vga_console(dir: &std::path::Path) -> anyhow::Result<Screenshot> {
    let sock = dir.join("qmp.sock");
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-machine", "pc", "-accel", "tcg", "-m", "64", "-display", "none", "-vga", "std", "-nic", "none"])
        .args(["-no-reboot", "-qmp"])
        .arg(format!("unix:{},server=on,wait=off", sock.display()));
    let mut qemu = Daemon::spawn("qemu", cmd, &dir.join("qemu.log"))?;
    let deadline = Instant::now() + WINDOW_TIMEOUT;
    let stream = loop {
        qemu.ensure_running()?;
        if let Ok(s) = UnixStream::connect(&sock) {
            break s;
        }
        if Instant::now() > deadline {
            bail!("QEMU's QMP socket did not appear");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line)?; // greeting
    let mut command = |json: String| -> anyhow::Result<()> {
        writer.write_all(json.as_bytes())?;
        writer.write_all(b"\n")?;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                bail!("QMP closed");
            }
            let v: serde_json::Value = serde_json::from_str(&line)?;
            if v.get("return").is_some() {
                return Ok(());
            }
            if let Some(e) = v.get("error") {
                bail!("QMP error: {e}");
            }
        }
    };
    command(r#"{"execute":"qmp_capabilities"}"#.to_owned())?;
    let ppm = dir.join("vga.ppm");
    // SeaBIOS prints "No bootable device." about 2-3 s after power-on under TCG; its row is the 6th or later text row.
    // The text cursor blinks, so "settled" means: the rows holding text (sampled mid-cell, away from the
    // cursor's scanlines) stopped changing.
    let mut previous: Option<Vec<u32>> = None;
    loop {
        let args = serde_json::json!({"execute": "screendump", "arguments": {"filename": ppm.display().to_string()}});
        command(args.to_string())?;
        let shot = Screenshot::from_ppm(&std::fs::read(&ppm)?)?;
        let lit: Vec<u32> = (0..shot.height / 16)
            .filter(|r| (0..shot.width).any(|x| shot.pixel(x, r * 16 + 8).is_some_and(|p| p[0] > 100)))
            .collect();
        if lit.len() >= 4 && previous.as_ref() == Some(&lit) {
            return Ok(shot);
        }
        if Instant::now() > deadline {
            bail!("the VGA console never settled with text on it");
        }
        previous = Some(lit);
        std::thread::sleep(Duration::from_millis(700));
    }
}
