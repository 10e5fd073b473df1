//! Tuning lab for the OCR preprocessing: captures the test scenes as PNGs, reads PNGs with the engine (or plain
//! Tesseract) printing lines, confidences, timings and CPU time, and shows what the engine sends to Tesseract.
//!
//! ```text
//! cargo run --release -p ocr --example ocr_lab -- capture DIR
//! cargo run --release -p ocr --example ocr_lab -- read [--plain] [--words] [--psm sparse|block|auto] [--workers N]
//!                                                     [--omp-untouched] FILE...
//! cargo run --release -p ocr --example ocr_lab -- debug FILE OUTDIR     # pieces.png (boxes) + canvas-N.png
//! cargo run --release -p ocr --example ocr_lab -- reread BEFORE AFTER X Y W H [--empty-previous] [--many] [--show]
//! cargo run --release -p ocr --example ocr_lab -- crop FILE X Y W H SCALE OUT
//! cargo run --release -p ocr --example ocr_lab -- xwd2png IN.xwd OUT.png
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use ocr::{Engine, EngineOptions, Frame, PageMode};
use testbed::{Display, Screenshot, scenes};

fn save(shot: &Screenshot, path: &Path) -> anyhow::Result<()> {
    let img = image::RgbImage::from_raw(shot.width, shot.height, shot.rgb.clone()).context("screenshot size")?;
    img.save(path).with_context(|| format!("saving {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn capture(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let d = Display::xvnc(1920, 1080)?;
    {
        let _w = scenes::welcome_dialog(&d, 740, 420)?;
        save(&scenes::settle(&d)?, &dir.join("dialog.png"))?;
    }
    {
        let _w = scenes::gtk_list_with_selection(&d, 700, 300)?;
        save(&scenes::settle(&d)?, &dir.join("gtk-list.png"))?;
    }
    {
        let _w = scenes::tk_menu(&d, 600, 400)?;
        save(&scenes::settle(&d)?, &dir.join("tk-menu.png"))?;
    }
    {
        let _t = scenes::terminal(&d, 1920, 1080)?;
        save(&scenes::settle(&d)?, &dir.join("terminal.png"))?;
        let _w = scenes::welcome_dialog(&d, 740, 420)?;
        save(&scenes::settle(&d)?, &dir.join("terminal-dialog.png"))?;
    }
    let scratch = testbed::scratch_dir("vga")?;
    save(&scenes::vga_console(scratch.path())?, &dir.join("vga.png"))?;
    Ok(())
}

/// CPU time of this process (all threads, dead ones included), from /proc/self/stat, in milliseconds.
fn cpu_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the command name: state, ppid, ..., utime is the 12th field and stime the 13th (clock ticks of 10 ms).
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (n(11) + n(12)) * 10
}

fn read(args: &[String]) -> anyhow::Result<()> {
    let plain = args.iter().any(|a| a == "--plain");
    let show_words = args.iter().any(|a| a == "--words");
    let mut opts = EngineOptions::default();
    if let Some(i) = args.iter().position(|a| a == "--psm") {
        opts.page_mode = match args.get(i + 1).map(String::as_str) {
            Some("block") => PageMode::Block,
            Some("auto") => PageMode::Auto,
            _ => PageMode::Sparse,
        };
    }
    if args.iter().any(|a| a == "--omp-untouched") {
        opts.openmp = ocr::OpenMp::Untouched;
    }
    if let Some(i) = args.iter().position(|a| a == "--workers") {
        opts.workers = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(2);
    }
    let files: Vec<PathBuf> =
        args.iter().filter(|a| !a.starts_with("--") && a.contains('.')).map(PathBuf::from).collect();
    let t = Instant::now();
    let mut engine = Engine::with_options(opts)?;
    println!("engine loaded in {:?}", t.elapsed());
    for f in files {
        let img = image::open(&f).with_context(|| format!("opening {}", f.display()))?.to_rgb8();
        let frame = Frame::from(&img);
        let mut times = Vec::new();
        let mut result = None;
        let cpu0 = cpu_ms();
        for _ in 0..3 {
            engine.clear_cache();
            let t = Instant::now();
            let r = if plain { engine.read_plain(&frame)? } else { engine.read(&frame)? };
            times.push(t.elapsed());
            result = Some(r);
        }
        let r = result.context("no read")?;
        let stats = engine.last_stats();
        let cpu = (cpu_ms() - cpu0) / 3;
        let threads = std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0);
        println!(
            "== {} : cpu {cpu} ms/read {:?}  threads now {threads}, omp {:?}  {:?}",
            f.display(),
            times,
            ocr::omp::current_thread_settings(),
            stats
        );
        for line in &r.lines {
            println!("  {:>5.1} {:?} {:?}", line.confidence, line.bbox, line.text);
            if show_words {
                for w in r.line_words(line) {
                    println!("        {:>5.1} {:?} {:?}", w.confidence, w.bbox, w.text);
                }
            }
        }
        let t = Instant::now();
        let again = engine.read(&frame)?;
        println!("  cached re-read: {:?} ({} words) {:?}", t.elapsed(), again.words.len(), engine.last_stats());
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("capture") => capture(Path::new(args.get(1).map_or("target/ocr-lab", String::as_str))),
        Some("read") => read(&args[1..]),
        Some("debug") => {
            let img = image::open(args.get(1).context("input")?)?.to_rgb8();
            let out = PathBuf::from(args.get(2).context("output dir")?);
            std::fs::create_dir_all(&out)?;
            let engine = Engine::new()?;
            let (pieces, canvases) = engine.debug_canvases(&Frame::from(&img));
            let mut marked = img.clone();
            for p in &pieces {
                for x in p.x..p.right() {
                    marked.put_pixel(x, p.y, image::Rgb([255, 0, 0]));
                    marked.put_pixel(x, p.bottom() - 1, image::Rgb([255, 0, 0]));
                }
                for y in p.y..p.bottom() {
                    marked.put_pixel(p.x, y, image::Rgb([255, 0, 0]));
                    marked.put_pixel(p.right() - 1, y, image::Rgb([255, 0, 0]));
                }
            }
            marked.save(out.join("pieces.png"))?;
            for (i, c) in canvases.iter().enumerate() {
                c.save(out.join(format!("canvas-{i}.png")))?;
            }
            println!("{} pieces, {} canvases", pieces.len(), canvases.len());
            Ok(())
        }
        Some("reread") => {
            // reread BEFORE.png AFTER.png X Y W H: a full read of BEFORE, then AFTER with that damage.
            let a = image::open(args.get(1).context("before")?)?.to_rgb8();
            let b = image::open(args.get(2).context("after")?)?.to_rgb8();
            let n = |i: usize| -> anyhow::Result<u32> { Ok(args.get(i).context("x y w h")?.parse()?) };
            let damage = ocr::Rect::new(n(3)?, n(4)?, n(5)?, n(6)?);
            let mut engine = Engine::new()?;
            let t = Instant::now();
            let before = if args.iter().any(|a| a == "--empty-previous") {
                ocr::ScreenText::empty(a.width(), a.height())
            } else {
                engine.read(&Frame::from(&a))?
            };
            println!("full read of before: {:?} {:?}", t.elapsed(), engine.last_stats());
            let n = if args.iter().any(|a| a == "--many") { 30 } else { 3 };
            for _ in 0..n {
                let t = Instant::now();
                let after = engine.reread(&Frame::from(&b), &before, &[damage])?;
                println!("reread: {:?} {:?}", t.elapsed(), engine.last_stats());
                if args.iter().any(|a| a == "--show") {
                    for l in &after.lines {
                        println!("  {:>5.1} {:?} {:?}", l.confidence, l.bbox, l.text);
                    }
                }
                engine.clear_cache();
            }
            let t = Instant::now();
            let full = engine.read(&Frame::from(&b))?;
            println!("full read of after: {:?} {:?} ({} words)", t.elapsed(), engine.last_stats(), full.words.len());
            Ok(())
        }
        Some("crop") => {
            let img = image::open(args.get(1).context("input")?)?.to_rgb8();
            let n = |i: usize| -> anyhow::Result<u32> { Ok(args.get(i).context("crop x y w h scale out")?.parse()?) };
            let (x, y, w, h, s) = (n(2)?, n(3)?, n(4)?, n(5)?, n(6)?);
            let c = image::imageops::crop_imm(&img, x, y, w, h).to_image();
            let c = image::imageops::resize(&c, w * s, h * s, image::imageops::FilterType::Nearest);
            c.save(args.get(7).context("output")?)?;
            Ok(())
        }
        Some("xwd2png") => {
            let shot = Screenshot::from_xwd(&std::fs::read(args.get(1).context("input")?)?)?;
            save(&shot, Path::new(args.get(2).context("output")?))
        }
        _ => anyhow::bail!("usage: ocr_lab capture DIR | read [--plain] [--words] [--psm MODE] FILE..."),
    }
}
