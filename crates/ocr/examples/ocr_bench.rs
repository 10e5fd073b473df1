//! OCR benchmark: the engine against plain Tesseract on real 1920×1080 screens, with and without OpenMP limits.
//!
//! ```text
//! cargo run --release -p ocr --example ocr_bench [-- --runs 20 --dense-runs 5 --out target/ocr-bench]
//! ```
//!
//! The parent starts Xvnc, draws the screens with real programs (a zenity dialog; a terminal-like Tk window full
//! of text; the dialog over that terminal) and saves them as PNG. Each measurement then runs in a fresh child
//! process, because `OMP_THREAD_LIMIT` only counts when it is in a process's environment from the start; the
//! children print one JSON line per measurement and the parent prints a Markdown table.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ocr::matching::{self, MatchOptions, Pattern};
use ocr::{Engine, EngineOptions, Frame, OpenMp, Rect, ScreenText};
use serde::{Deserialize, Serialize};
use testbed::{Display, Screenshot, scenes};

#[derive(Debug, Serialize, Deserialize)]
struct Measurement {
    name: String,
    runs: usize,
    median_ms: f64,
    p90_ms: f64,
    cpu_ms: f64,
    /// How many of the expected phrases the last read found, of how many.
    found: Option<(usize, usize)>,
    note: String,
}

fn save(shot: &Screenshot, path: &Path) -> anyhow::Result<()> {
    let img = image::RgbImage::from_raw(shot.width, shot.height, shot.rgb.clone()).context("screenshot size")?;
    img.save(path).with_context(|| format!("saving {}", path.display()))
}

/// Draws the screens and writes `dialog.png`, `terminal.png`, `terminal-dialog.png` and `damage.json`.
fn capture(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let d = Display::xvnc(1920, 1080)?;
    {
        let _w = scenes::welcome_dialog(&d, 740, 420)?;
        save(&scenes::settle(&d)?, &dir.join("dialog.png"))?;
    }
    let _t = scenes::terminal(&d, 1920, 1080)?;
    save(&scenes::settle(&d)?, &dir.join("terminal.png"))?;
    let w = scenes::welcome_dialog(&d, 740, 420)?;
    save(&scenes::settle(&d)?, &dir.join("terminal-dialog.png"))?;
    let damage = Rect::new(u32::try_from(w.x)?, u32::try_from(w.y)?, w.width, w.height);
    std::fs::write(dir.join("damage.json"), serde_json::to_string(&damage)?)?;
    Ok(())
}

/// CPU time of this process (all threads, ended ones included), in milliseconds.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command name: state, ppid, ...; utime and stime are the 12th and 13th, in 10 ms ticks.
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (n(11) + n(12)) * 10.0
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn found(text: &ScreenText, phrases: &[&str]) -> (usize, usize) {
    let n = phrases
        .iter()
        .filter(|p| !matching::find(text, &Pattern::phrase(**p), &MatchOptions::default()).is_empty())
        .count();
    (n, phrases.len())
}

/// Runs `f` `runs` times and summarises; `f` returns the text it read.
fn measure(
    name: &str,
    runs: usize,
    phrases: &[&str],
    note: &str,
    mut f: impl FnMut() -> anyhow::Result<ScreenText>,
) -> anyhow::Result<Measurement> {
    let mut times = Vec::with_capacity(runs);
    let mut last = ScreenText::default();
    let cpu0 = cpu_ms();
    for _ in 0..runs {
        let t = Instant::now();
        last = f()?;
        times.push(t.elapsed());
    }
    let cpu = (cpu_ms() - cpu0) / runs.max(1) as f64;
    times.sort();
    let m = Measurement {
        name: name.to_owned(),
        runs,
        median_ms: percentile(&times, 0.5),
        p90_ms: percentile(&times, 0.9),
        cpu_ms: cpu,
        found: (!phrases.is_empty()).then(|| found(&last, phrases)),
        note: note.to_owned(),
    };
    println!("{}", serde_json::to_string(&m)?);
    Ok(m)
}

const DIALOG_PHRASES: &[&str] = &["Welcome to Setup", "Continue"];

fn load(dir: &Path, name: &str) -> anyhow::Result<image::RgbImage> {
    Ok(image::open(dir.join(name)).with_context(|| format!("opening {name}"))?.to_rgb8())
}

/// One child's measurements. `mode`: `engine`, `engine-untouched`, `plain`, `plain-limited`.
fn child(mode: &str, dir: &Path, runs: usize, dense_runs: usize) -> anyhow::Result<()> {
    let env = std::env::var("OMP_THREAD_LIMIT").map_or("unset".to_owned(), |v| format!("={v}"));
    let dialog = load(dir, "dialog.png")?;
    let terminal = load(dir, "terminal.png")?;
    let over = load(dir, "terminal-dialog.png")?;
    let damage: Rect = serde_json::from_str(&std::fs::read_to_string(dir.join("damage.json"))?)?;
    let openmp = if mode.ends_with("untouched") || mode == "plain" { OpenMp::Untouched } else { OpenMp::Limit };
    let t = Instant::now();
    let mut engine = Engine::with_options(EngineOptions { openmp, ..EngineOptions::default() })?;
    let load_ms = t.elapsed().as_secs_f64() * 1000.0;
    let tag = format!("{mode}, OMP_THREAD_LIMIT {env}");
    match mode {
        "engine" | "engine-untouched" => {
            let workers = engine.options().workers;
            eprintln!("engine with {workers} workers loaded in {load_ms:.0} ms");
            let df = Frame::from(&dialog);
            measure("dialog: full read", runs, DIALOG_PHRASES, &tag, || {
                engine.clear_cache();
                Ok(engine.read(&df)?)
            })?;
            if mode == "engine-untouched" {
                return Ok(());
            }
            let base = engine.read(&df)?;
            measure("dialog: unchanged, read() via cache", runs, DIALOG_PHRASES, &tag, || Ok(engine.read(&df)?))?;
            measure("dialog: unchanged, reread() without damage", runs, DIALOG_PHRASES, &tag, || {
                Ok(engine.reread(&df, &base, &[])?)
            })?;
            let tf = Frame::from(&terminal);
            let of = Frame::from(&over);
            let mut full = ScreenText::default();
            measure("full-text screen: full read", dense_runs, &["systemd device interface"], &tag, || {
                engine.clear_cache();
                full = engine.read(&tf)?;
                Ok(full.clone())
            })?;
            measure("full-text screen: unchanged, read() via cache", runs, &[], &tag, || Ok(engine.read(&tf)?))?;
            let note = format!("{tag}; damage = the dialog's window");
            measure("full-text screen: dialog appears, reread() with damage", runs, DIALOG_PHRASES, &note, || {
                engine.clear_cache();
                Ok(engine.reread(&of, &full, &[damage])?)
            })?;
            let s = engine.last_stats();
            eprintln!("last reread: {s:?}");
            let empty = ScreenText::empty(over.width(), over.height());
            let note = format!("{tag}; damage = the dialog's window; nothing read before");
            measure(
                "full-text screen: dialog appears, reread() of the damage only",
                runs,
                DIALOG_PHRASES,
                &note,
                || {
                    engine.clear_cache();
                    Ok(engine.reread(&of, &empty, &[damage])?)
                },
            )?;
        }
        "plain" | "plain-limited" => {
            let df = Frame::from(&dialog);
            measure("dialog: plain Tesseract, full frame", runs, DIALOG_PHRASES, &tag, || Ok(engine.read_plain(&df)?))?;
            let tf = Frame::from(&terminal);
            measure(
                "full-text screen: plain Tesseract, full frame",
                dense_runs,
                &["systemd device interface"],
                &tag,
                || Ok(engine.read_plain(&tf)?),
            )?;
        }
        other => bail!("unknown mode {other}"),
    }
    Ok(())
}

fn run_child(
    mode: &str,
    omp_limit: Option<&str>,
    dir: &Path,
    runs: usize,
    dense: usize,
) -> anyhow::Result<Vec<Measurement>> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--child", mode, "--out"]).arg(dir);
    cmd.args(["--runs", &runs.to_string(), "--dense-runs", &dense.to_string()]);
    match omp_limit {
        Some(v) => cmd.env("OMP_THREAD_LIMIT", v),
        None => cmd.env_remove("OMP_THREAD_LIMIT"),
    };
    eprintln!("running {mode} (OMP_THREAD_LIMIT {})", omp_limit.unwrap_or("unset"));
    let out = cmd.output()?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("child {mode} failed");
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(arg(&args, "--out").unwrap_or_else(|| "target/ocr-bench".into()));
    let runs: usize = arg(&args, "--runs").map_or(Ok(20), |v| v.parse())?;
    let dense: usize = arg(&args, "--dense-runs").map_or(Ok(5), |v| v.parse())?;
    if let Some(mode) = arg(&args, "--child") {
        return child(&mode, &dir, runs, dense);
    }
    if !args.iter().any(|a| a == "--reuse") || !dir.join("damage.json").exists() {
        capture(&dir)?;
    }
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load_before = load();
    let mut all = Vec::new();
    all.extend(run_child("engine", None, &dir, runs, dense)?);
    all.extend(run_child("engine-untouched", None, &dir, runs, dense)?);
    all.extend(run_child("plain", None, &dir, runs, dense.min(3))?);
    all.extend(run_child("plain", Some("1"), &dir, runs, dense.min(3))?);
    all.extend(run_child("plain-limited", None, &dir, runs, dense.min(3))?);
    println!("load average before: {}  after: {}", load_before.trim(), load().trim());
    println!("| measurement | setup | runs | median ms | p90 ms | CPU ms/read | phrases found |");
    println!("|---|---|---:|---:|---:|---:|---|");
    for m in &all {
        let found = m.found.map_or("–".to_owned(), |(a, b)| format!("{a}/{b}"));
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.0} | {} |",
            m.name, m.note, m.runs, m.median_ms, m.p90_ms, m.cpu_ms, found
        );
    }
    Ok(())
}
