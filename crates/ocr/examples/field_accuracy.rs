//! Read accuracy of typed text in entry fields: real GTK (zenity) and Tk entries in several fonts and sizes on an
//! Xvnc display; known strings (letters, digits, punctuation) are typed with xdotool (real X key events), the
//! screen is taken from the X server and read with the engine, and each string is looked for as a script would.
//!
//! ```text
//! cargo run -p ocr --example field_accuracy [-- --plain]
//! ```
//!
//! For each toolkit and font it prints how many strings were read exactly (a line holding exactly the typed
//! text), how many a script finds with the default tiers (exact, substring, spaceless, near) and how many with
//! `lookalikes: true`, and the characters read right (typed length minus the edit distance of the closest
//! reading). `--plain` reads without the field preprocessing (the "before" column of BENCHMARKS.md).

use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use ocr::matching::{self, MatchOptions, Pattern};
use ocr::prep::SegParams;
use ocr::{Engine, EngineOptions, Frame, PixelLayout};
use testbed::{Display, scenes};

/// What is typed: host names, user names, passwords and paths as installers ask for them.
const STRINGS: [&str; 10] = [
    "name-word7",
    "vmkit-host01",
    "Passw0rd!x",
    "user_42",
    "node-3.example.org",
    "HostName-99",
    "c0ffee:7b",
    "tmp/build~1",
    "Il1|O0o",
    "db-server-2",
];

/// (toolkit, font family, size, weight)
const FONTS: [(&str, &str, u32, &str); 8] = [
    ("gtk", "DejaVu Sans", 11, "Book"),
    ("gtk", "DejaVu Sans", 13, "Bold"),
    ("gtk", "DejaVu Serif", 12, "Book"),
    ("gtk", "DejaVu Sans Mono", 11, "Book"),
    ("tk", "DejaVu Sans", 11, "normal"),
    ("tk", "DejaVu Sans", 14, "bold"),
    ("tk", "DejaVu Serif", 12, "normal"),
    ("tk", "DejaVu Sans Mono", 12, "normal"),
];

const TK_ENTRY: &str = r#"
import sys, tkinter as tk
family, size, weight = sys.argv[1], int(sys.argv[2]), sys.argv[3]
r = tk.Tk(); r.title('vmkit-field'); r.geometry('520x120')
tk.Label(r, text='Host name:', font=(family, size)).pack(pady=6)
e = tk.Entry(r, font=(family, size, weight), width=30)
e.pack(padx=12)
e.focus_set()
r.mainloop()
"#;

fn run(mut cmd: Command) -> anyhow::Result<()> {
    let status = cmd.status().context("running a tool")?;
    anyhow::ensure!(status.success(), "{cmd:?} failed");
    Ok(())
}

fn xdotool(d: &Display, args: &[&str]) -> anyhow::Result<()> {
    let mut cmd = d.command("xdotool");
    cmd.args(args);
    run(cmd)
}

fn distance(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[derive(Default)]
struct Tally {
    exact: usize,
    found: usize,
    lookalike: usize,
    chars_right: usize,
    chars: usize,
}

fn main() -> anyhow::Result<()> {
    let plain = std::env::args().any(|a| a == "--plain");
    let d = Display::xvnc(1280, 800)?;
    let segmentation = if plain { SegParams { fields: false, ..SegParams::default() } } else { SegParams::default() };
    let mut engine = Engine::with_options(EngineOptions { segmentation, ..EngineOptions::default() })?;
    let gtk_home = tempfile_dir(&d, "gtk")?;
    println!("| toolkit | font | read exactly | found (default tiers) | found with lookalikes | characters right |");
    println!("|---|---|---|---|---|---|");
    let mut total = Tally::default();
    for (toolkit, family, size, weight) in FONTS {
        let mut cmd;
        if toolkit == "gtk" {
            let conf = gtk_home.join(format!("{family}-{size}-{weight}"));
            std::fs::create_dir_all(conf.join("gtk-3.0"))?;
            std::fs::write(
                conf.join("gtk-3.0/settings.ini"),
                format!("[Settings]\ngtk-font-name = {family} {weight} {size}\ngtk-cursor-blink = false\n"),
            )?;
            cmd = d.command("zenity");
            cmd.env("XDG_CONFIG_HOME", &conf).args(["--entry", "--title", "vmkit-field", "--text", "Host name:"]);
            cmd.args(["--width", "520"]);
        } else {
            cmd = d.command("python3");
            cmd.args(["-c", TK_ENTRY, family, &size.to_string(), weight]);
        }
        let process = d.spawn("field", cmd)?;
        let id = d.wait_for_window("vmkit-field", scenes::WINDOW_TIMEOUT)?;
        xdotool(&d, &["windowmove", "--sync", &id.to_string(), "300", "200"])?;
        let (wx, wy, ww, wh) = d.window_geometry(id)?;
        // No window manager: the keyboard focus follows the pointer.
        xdotool(&d, &["mousemove", "--sync", &(wx + ww as i32 / 2).to_string(), &(wy + wh as i32 / 2).to_string()])?;
        let mut t = Tally::default();
        for s in STRINGS {
            xdotool(&d, &["key", "End"])?;
            xdotool(&d, &["key", "--repeat", "40", "BackSpace"])?;
            xdotool(&d, &["type", "--delay", "20", s])?;
            std::thread::sleep(Duration::from_millis(300));
            let shot = scenes::settle(&d)?;
            let frame = Frame::packed(&shot.rgb, shot.width, shot.height, PixelLayout::Rgb)?;
            let text = engine.read(&frame)?;
            let p = Pattern::phrase(s);
            let want: Vec<char> = s.chars().collect();
            let best = text.lines.iter().map(|l| distance(&l.text.chars().collect::<Vec<_>>(), &want)).min();
            let best_line = text
                .lines
                .iter()
                .min_by_key(|l| distance(&l.text.chars().collect::<Vec<_>>(), &want))
                .map_or(String::new(), |l| l.text.clone());
            let exact = text.lines.iter().any(|l| l.text.split(' ').any(|w| w == s));
            let found = !matching::find(&text, &p, &MatchOptions::default()).is_empty();
            let lookalike = matching::find(&text, &p, &MatchOptions { lookalikes: true, ..MatchOptions::default() });
            t.exact += usize::from(exact);
            t.found += usize::from(found);
            t.lookalike += usize::from(!lookalike.is_empty());
            t.chars += want.len();
            t.chars_right += want.len().saturating_sub(best.unwrap_or(want.len()));
            if std::env::var_os("FIELD_VERBOSE").is_some() {
                let kind = lookalike.first().map_or("none", |m| m.kind.name());
                eprintln!("{toolkit} {family} {size} {weight}: {s:?} read {best_line:?} ({kind})");
            }
        }
        drop(process);
        std::thread::sleep(Duration::from_millis(300));
        let n = STRINGS.len();
        println!(
            "| {toolkit} | {family} {size} {weight} | {}/{n} | {}/{n} | {}/{n} | {:.1}% |",
            t.exact,
            t.found,
            t.lookalike,
            t.chars_right as f64 * 100.0 / t.chars as f64
        );
        total.exact += t.exact;
        total.found += t.found;
        total.lookalike += t.lookalike;
        total.chars += t.chars;
        total.chars_right += t.chars_right;
    }
    let n = STRINGS.len() * FONTS.len();
    println!(
        "| all | | {}/{n} | {}/{n} | {}/{n} | {:.1}% |",
        total.exact,
        total.found,
        total.lookalike,
        total.chars_right as f64 * 100.0 / total.chars as f64
    );
    Ok(())
}

/// A scratch directory for GTK settings, inside the display's own directory.
fn tempfile_dir(d: &Display, name: &str) -> anyhow::Result<std::path::PathBuf> {
    let dir = d.dir().join(name);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
