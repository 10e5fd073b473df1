//! The OpenMP guard: a process started without `OMP_THREAD_LIMIT` must not let Tesseract spawn OpenMP threads.
//!
//! The test runs itself again as a child process with `OMP_THREAD_LIMIT` removed from the environment (the
//! situation of a user who never heard of it), reads an image there, and counts the process's threads before
//! and after. libgomp keeps the threads of a parallel team alive after the region ends, so a read that used
//! OpenMP leaves extra threads behind. The control run, with the engine's guard switched off, must leave such
//! threads, or the probe would prove nothing.

use std::process::Command;

use ab_glyph::{FontVec, PxScale};
use ocr::{Engine, EngineOptions, Frame, OpenMp};

const PROBE: &str = "VMKIT_OCR_OPENMP_PROBE";
const TEST: &str = "openmp_stays_on_the_calling_thread_without_omp_thread_limit";

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// An image with a few lines of text (DejaVu Sans, from the Debian package fonts-dejavu-core).
fn page() -> image::RgbImage {
    let font_path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    let bytes = std::fs::read(font_path).expect("DejaVu Sans (Debian package fonts-dejavu-core)");
    let font = FontVec::try_from_vec(bytes).expect("a TrueType font");
    let mut img = image::RgbImage::from_pixel(900, 200, image::Rgb([255, 255, 255]));
    for (i, line) in
        ["Welcome to Setup", "Select Your Country or Region", "Create a Computer Account"].iter().enumerate()
    {
        let y = 20 + 55 * i as i32;
        imageproc::drawing::draw_text_mut(&mut img, image::Rgb([20, 20, 20]), 30, y, PxScale::from(30.0), &font, line);
    }
    img
}

/// The child's side: read once, report threads and OpenMP settings on stdout.
fn probe(mode: &str) {
    let openmp = if mode == "untouched" { OpenMp::Untouched } else { OpenMp::Limit };
    let mut engine =
        Engine::with_options(EngineOptions { workers: 1, openmp, ..EngineOptions::default() }).expect("engine");
    let img = page();
    let before = threads();
    let text = engine.read(&Frame::from(&img)).expect("read");
    let after = threads();
    let settings = ocr::omp::current_thread_settings();
    println!(
        "PROBE before={before} after={after} words={} max_threads={} env={}",
        text.words.len(),
        settings.map_or(-1, |s| s.max_threads),
        std::env::var("OMP_THREAD_LIMIT").unwrap_or_else(|_| "unset".into())
    );
}

fn run_child(mode: &str) -> (usize, usize, usize, String) {
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(PROBE, mode)
        .env_remove("OMP_THREAD_LIMIT")
        .output()
        .expect("running the probe");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "probe {mode} failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // libtest prints "test NAME ... " before the test's own output, on the same line.
    let line = stdout
        .lines()
        .find_map(|l| l.find("PROBE ").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no probe line in {stdout}"));
    let field = |k: &str| -> usize {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {line}"))
    };
    (field("before"), field("after"), field("words"), line.to_owned())
}

#[test]
fn openmp_stays_on_the_calling_thread_without_omp_thread_limit() {
    if let Ok(mode) = std::env::var(PROBE) {
        probe(&mode);
        return;
    }
    let (before, after, words, line) = run_child("limit");
    assert!(words >= 8, "the probe read too little to exercise the recogniser: {line}");
    assert!(line.contains("env=unset"), "{line}");
    assert_eq!(after, before, "Tesseract started OpenMP threads although the engine limits them: {line}");

    let (before, after, _, line) = run_child("untouched");
    assert!(after > before, "control: without the guard, OpenMP should have left pool threads: {line}");
}
