//! The console reader on real QEMU guests: a VGA text console (and the Linux framebuffer console on a virtio GPU)
//! filled with every printable ASCII character, read back exactly.
//!
//! The guest writes a file of known text to its console (`tty1`, what VNC and QMP's `screendump` show); the test
//! takes the screen with `screendump` and compares every cell the engine reads with what was written. It also
//! prints how many of those characters Tesseract reads right on the same screen (the figure in BENCHMARKS.md).

use std::time::{Duration, Instant};

use ocr::{Engine, EngineOptions, Frame, PixelLayout};
use testbed::Screenshot;
use testbed_guests::guest::{Guest, GuestFile, GuestOptions, Vga};

/// Printable ASCII, space included.
fn printable() -> Vec<char> {
    (' '..='~').collect()
}

/// `rows` lines of `width` characters cycling through printable ASCII, each row starting 7 characters further on,
/// so every character appears in many columns and next to many others.
fn sample(rows: usize, width: usize) -> Vec<String> {
    let all = printable();
    (0..rows).map(|r| (0..width).map(|c| all[(r * 7 + c) % all.len()]).collect()).collect()
}

/// Shows `lines` on the guest's console and returns its screen once it stops changing.
async fn show(guest: &Guest, lines: &[String]) -> anyhow::Result<Screenshot> {
    guest
        .serial_command("printf '\\033[H\\033[2J' > /dev/tty1; cat /sample.txt > /dev/tty1", Duration::from_secs(60))
        .await?;
    let path = guest.dir().join("console.ppm");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut previous: Option<Vec<u8>> = None;
    loop {
        guest.qmp().screendump(&path, qemu::ScreendumpFormat::Ppm).await?;
        let shot = Screenshot::from_ppm(&std::fs::read(&path)?)?;
        // The text cursor blinks: compare the screen without its last text row (the cursor sits below the text).
        let text_rows = (lines.len() as u32 * 16).min(shot.height);
        let top = shot.rgb[..(text_rows * shot.width * 3) as usize].to_vec();
        if previous.as_ref() == Some(&top) {
            return Ok(shot);
        }
        anyhow::ensure!(Instant::now() < deadline, "the console never settled");
        previous = Some(top);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Characters of `want` read right by Tesseract on `shot`: per line, the length minus the edit distance of the
/// line it read best.
fn tesseract_correct(shot: &Screenshot, want: &[String]) -> usize {
    let mut plain = Engine::with_options(EngineOptions { console: false, ..EngineOptions::default() }).expect("engine");
    let frame = Frame::packed(&shot.rgb, shot.width, shot.height, PixelLayout::Rgb).expect("frame");
    let text = plain.read(&frame).expect("read");
    want.iter()
        .map(|w| {
            let w: Vec<char> = w.trim().chars().collect();
            let best = text.lines.iter().map(|l| distance(&l.text.chars().collect::<Vec<_>>(), &w)).min();
            w.len().saturating_sub(best.unwrap_or(w.len()))
        })
        .sum()
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

/// Boots a guest showing `lines` on its console, reads it, and checks every cell.
async fn read_back(vga: Option<Vga>, lines: &[String]) -> anyhow::Result<()> {
    let text = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    let mut opts = GuestOptions {
        vga,
        extra_files: vec![GuestFile { path: "/sample.txt".into(), mode: 0o644, data: text.into_bytes() }],
        ..GuestOptions::default()
    };
    if vga == Some(Vga::Virtio) {
        opts.spec.modules.push("virtio_gpu".to_owned());
    }
    let guest = Guest::boot_with(opts).await?;
    let shot = show(&guest, lines).await?;
    let _ = guest.shutdown().await;
    let frame = Frame::packed(&shot.rgb, shot.width, shot.height, PixelLayout::Rgb)?;
    let mut engine = Engine::new()?;
    let started = Instant::now();
    let console = engine.read_console(&frame).ok_or_else(|| anyhow::anyhow!("not read as a console"))?;
    let took = started.elapsed();
    let mut right = 0;
    for (r, want) in lines.iter().enumerate() {
        let got: String = console.row(r as u32).chars().take(want.chars().count()).collect();
        assert_eq!(&got, want, "row {r} ({}x{} screen, font {})", shot.width, shot.height, console.font);
        right += want.chars().count();
    }
    // The engine's ordinary read takes the same path.
    let words = engine.read(&frame)?;
    assert!(engine.last_stats().console && engine.last_stats().tesseract_calls == 0);
    assert!(words.lines.iter().any(|l| l.text == lines[0].trim()), "{}", words.text());
    let ocr_right = tesseract_correct(&shot, lines);
    eprintln!(
        "{}x{} console, font {}, {}x{} cells: glyph matching {right}/{right} characters right ({:.1} ms); \
         Tesseract {ocr_right}/{right} ({:.1}%)",
        shot.width,
        shot.height,
        console.font,
        console.grid.cell_width,
        console.grid.cell_height,
        took.as_secs_f64() * 1000.0,
        ocr_right as f64 * 100.0 / right as f64
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_vga_text_console_reads_every_printable_ascii_character_exactly() -> anyhow::Result<()> {
    // 24 rows of 79 characters (an 80th would wrap the line), leaving the last row for the cursor.
    read_back(None, &sample(24, 79)).await
}
