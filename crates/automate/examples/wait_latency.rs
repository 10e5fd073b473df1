//! The vmkit side of the wait-latency benchmark (`crates/automate/benches/wait_latency.sh` runs it).
//!
//! One script of `1 + TRIALS` `wait` steps runs against the given VNC server; when step k starts, a helper
//! window with phrase k is scheduled to appear 1–3 s later at a varying position; when step k passes, the time
//! is taken and the window is closed. Latency = step k passed − window k mapped (the helper records its X Map
//! event). Step 0 warms up and is not counted. Afterwards the screen is watched unchanged for 10 s to show that
//! an idle screen costs no OCR.
//!
//! Usage: wait_latency VNC_ADDR X_DISPLAY TRIALS WORKDIR [--debug]
//!
//! `--debug` runs with debug output (screenshots, report, the replay recording) into `WORKDIR/debug`, to measure
//! what recording costs a wait.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Phrase and position of trial k, from the helper module the baseline uses too.
fn phrase(bench: &Path, k: usize) -> (String, String, String) {
    let out = Command::new("python3").arg(bench.join("phrases.py")).arg(k.to_string()).output().expect("phrases.py");
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let mut parts = line.split('\t').map(str::to_owned);
    (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default())
}

/// A small xorshift generator: delays only need to vary, not to be unpredictable.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let debug = args.len() == 6 && args[5] == "--debug";
    if args.len() != 5 && !debug {
        eprintln!("usage: wait_latency VNC_ADDR X_DISPLAY TRIALS WORKDIR [--debug]");
        std::process::exit(2);
    }
    let (vnc, display, trials, work) =
        (&args[1], &args[2], args[3].parse::<usize>().expect("TRIALS"), PathBuf::from(&args[4]));
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches");
    let phrases: Vec<(String, String, String)> = (0..=trials).map(|k| phrase(&bench, k)).collect();

    let mut yaml = String::from("boot_wait: 0\nboot_commands:\n");
    for (p, _, _) in &phrases {
        yaml.push_str(&format!("  - wait: {{text: '{p}', timeout: 60}}\n"));
    }
    let script_path = work.join("wait-latency.yaml");
    std::fs::write(&script_path, yaml).expect("write script");
    let script = automate::load_file(&script_path).expect("script");

    let mut rng = Rng(SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1);
    let mut helpers: Vec<Option<Child>> = (0..=trials).map(|_| None).collect();
    let mut passed_at = vec![0.0f64; trials + 1];
    let total = trials + 1;
    let mut progress = |line: &str| {
        let Some(rest) = line.strip_prefix('[') else { return };
        let Some((num, tail)) = rest.split_once('/') else { return };
        let Ok(step) = num.parse::<usize>() else { return };
        let k = step - 1;
        if tail.starts_with(&format!("{total}] wait")) {
            let (p, x, y) = &phrases[k];
            let delay = 1.0 + 2.0 * rng.next_f64();
            let child = Command::new("python3")
                .arg(bench.join("phrase_window.py"))
                .args([p.as_str(), &format!("{delay:.3}"), x, y])
                .arg(work.join(format!("vmkit-map-{k}")))
                .env("DISPLAY", display)
                .spawn()
                .expect("phrase window");
            helpers[k] = Some(child);
        } else if tail.starts_with(&format!("{total}] passed")) {
            passed_at[k] = now_secs();
            if let Some(mut c) = helpers[k].take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut opts = automate::RunOptions::new(vnc.clone());
    if debug {
        opts.debug = Some(Some(work.join("debug")));
    }
    let result = rt.block_on(automate::run(&script, &opts, &mut progress));
    for c in helpers.iter_mut().flatten() {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert_eq!(result.exit_code, 0, "the run failed: {:?}", result.error);

    let mut latencies = Vec::new();
    for (k, passed) in passed_at.iter().enumerate().skip(1) {
        let mapped: f64 = std::fs::read_to_string(work.join(format!("vmkit-map-{k}")))
            .expect("map time")
            .trim()
            .parse()
            .expect("map time");
        let ms = (passed - mapped) * 1000.0;
        let step = &result.steps[k];
        println!(
            "trial {k}: {ms:.0} ms (step waited {:.2} s; OCR passes {}, tesseract calls {})",
            step.duration_ms / 1000.0,
            step.ocr_passes,
            step.tesseract_calls
        );
        latencies.push(ms);
    }
    latencies.sort_by(f64::total_cmp);
    let median = latencies[latencies.len() / 2];
    let p90 = latencies[(latencies.len() * 9 / 10).saturating_sub(1)];
    let passes: Vec<u64> = result.steps[1..].iter().map(|s| s.ocr_passes).collect();
    let waited: f64 = result.steps[1..].iter().map(|s| s.duration_ms).sum::<f64>() / 1000.0;

    // Idle: the screen does not change for 10 s; count OCR work.
    let idle = rt.block_on(async {
        let engine = tokio::task::block_in_place(ocr::Engine::new).expect("engine");
        let mut screen = automate::screen::Screen::connect(
            vnc,
            None,
            Duration::from_secs(10),
            automate::screen::ReconnectPolicy::default(),
            engine,
            &mut |_| {},
        )
        .await
        .expect("connect");
        screen.text().expect("first read");
        let before = screen.stats();
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < until {
            if screen.wait_change(until - std::time::Instant::now()).await.expect("wait").is_some() {
                screen.text().expect("read");
            }
        }
        let after = screen.stats();
        (after.ocr_passes - before.ocr_passes, after.tesseract_calls - before.tesseract_calls)
    });
    println!(
        "SUMMARY {{\"trials\": {trials}, \"median_ms\": {median:.1}, \"p90_ms\": {p90:.1}, \"min_ms\": {:.1}, \
         \"max_ms\": {:.1}, \"total_wait_s\": {waited:.1}, \"ocr_passes_per_wait\": {passes:?}, \
         \"idle_10s_ocr_passes\": {}, \"idle_10s_tesseract_calls\": {}}}",
        latencies[0],
        latencies[latencies.len() - 1],
        idle.0,
        idle.1
    );
}
