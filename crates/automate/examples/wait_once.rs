//! One runner of the concurrent wait benchmark (`crates/automate/benches/concurrent_wait.sh` starts several at
//! once): a fresh process that runs a one-step script — `wait` for PHRASE — against a VNC server and prints the
//! wall-clock time the step passed, as `PASSED <seconds since the epoch>`, and the OCR work it did.
//!
//! Usage: wait_once VNC_ADDR PHRASE [--full-first]
//!
//! `--full-first` turns changes first off ([`automate::RunOptions::changes_first`]): the first look reads the
//! whole screen before anything else, as every run did before.

use std::time::{SystemTime, UNIX_EPOCH};

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 || args.len() > 4 || (args.len() == 4 && args[3] != "--full-first") {
        eprintln!("usage: wait_once VNC_ADDR PHRASE [--full-first]");
        std::process::exit(2);
    }
    let (vnc, phrase) = (&args[1], &args[2]);
    let yaml = format!("boot_wait: 0\nboot_commands:\n  - wait: {{text: '{phrase}', timeout: 300}}\n");
    let script = automate::load_str(&yaml, std::path::Path::new("wait-once.yaml")).expect("script");
    let mut opts = automate::RunOptions::new(vnc.clone());
    opts.changes_first = args.len() == 3;
    let mut passed_at = None;
    let mut progress = |line: &str| {
        if line.starts_with("[1/1] passed") {
            passed_at = Some(now_secs());
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let result = rt.block_on(automate::run(&script, &opts, &mut progress));
    let step = result.steps.first();
    match passed_at {
        Some(t) if result.exit_code == 0 => println!(
            "PASSED {t:.6} ocr_passes={} tesseract_calls={}",
            step.map_or(0, |s| s.ocr_passes),
            step.map_or(0, |s| s.tesseract_calls)
        ),
        _ => {
            println!("FAILED {:?}", result.error);
            std::process::exit(1);
        }
    }
}
