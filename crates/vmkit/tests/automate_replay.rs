//! `vmkit automate replay` as a user runs it: a real run of `examples/automate/installer.yaml` against the
//! installer-like Tk application on Xvnc, recorded with `--debug`, then replayed with no screen at all — as it
//! is (passes, the same result twice), with the expected text reworded (fails, naming the closest texts on the
//! recorded screen), with a click moved and a key changed (fail, naming what the script sent and what the
//! recording did), and against damaged recordings (exit 2, naming the file and what is wrong).

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vmkit() -> Command {
    Command::cargo_bin("vmkit").expect("vmkit binary")
}

fn example() -> PathBuf {
    root().join("examples/automate/installer.yaml")
}

/// Replays `script` against `frames`: (exit code, JSON result, stderr).
fn replay(script: &Path, frames: &Path) -> (Option<i32>, serde_json::Value, String) {
    let out = vmkit()
        .args(["automate", "replay", "--json", "--config"])
        .arg(script)
        .arg("--frames")
        .arg(frames)
        .timeout(Duration::from_secs(300))
        .output()
        .expect("replay");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), json, stderr)
}

/// The example with `from` replaced by `to` (exactly once).
fn variant(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(example()).expect("example");
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once in the example");
    let path = dir.join(name);
    std::fs::write(&path, text.replace(from, to)).expect("write variant");
    path
}

fn failed_step(v: &serde_json::Value) -> &serde_json::Value {
    v["steps"].as_array().and_then(|s| s.iter().find(|s| s["outcome"] == "failed")).expect("a failed step")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// The JSON result without what differs between two replays by nature (the wall-clock start).
fn comparable(mut v: serde_json::Value) -> serde_json::Value {
    v["started_at"] = serde_json::Value::Null;
    v
}

#[test]
fn a_recorded_run_replays_and_replay_catches_changed_scripts_and_damaged_recordings() {
    let display = testbed::Display::xvnc(1280, 800).expect("Xvnc");
    let scratch = testbed::scratch_dir("replay").expect("scratch");
    let record = scratch.path().join("record.json");
    let mut app = testbed::Installer::start(&display, &record, 2.0).expect("installer app");
    let debug = scratch.path().join("debug");

    // The real run, recorded.
    let out = vmkit()
        .args(["automate", "run", "--key-delay-ms", "0", "--config"])
        .arg(example())
        .args(["--vnc", &display.vnc_addr(), "--debug"])
        .arg(&debug)
        .timeout(Duration::from_secs(300))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}\napp log:\n{}", app.log());
    assert_eq!(app.wait(Duration::from_secs(20)).expect("app exits"), Some(0));
    let frames = debug.join("frames");
    let index = std::fs::read_to_string(frames.join("index.jsonl")).expect("the run recorded an index");
    let pngs = std::fs::read_dir(&frames)
        .expect("frames")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "png")))
        .count();
    assert!(pngs >= 5, "{pngs} frames recorded");
    assert_eq!(index.lines().filter(|l| l.contains(r#""kind":"frame""#)).count(), pngs, "{index}");
    assert!(index.contains(r#""kind":"button""#) && index.contains(r#""text":"Ada Lovelace""#), "{index}");
    assert!(index.contains(r#""chord":"tab""#), "{index}");
    assert!(!index.contains("W0rd") && index.contains("<redacted>"), "the typed password reached the recording");

    // As recorded: passes, twice with the same result.
    let (code, first, stderr) = replay(&example(), &debug);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(first["outcome"], "passed");
    assert_eq!(first["vnc"], display.vnc_addr());
    assert_eq!(first["frames"], debug.display().to_string());
    assert!(first["health_check"].is_null());
    assert!(first["steps"].as_array().expect("steps").iter().all(|s| s["outcome"] == "passed"), "{first:#}");
    let (code, second, _) = replay(&example(), &frames);
    assert_eq!(code, Some(0));
    let mut second = second;
    second["frames"] = first["frames"].clone();
    assert_eq!(comparable(first), comparable(second), "two replays of one recording differ");

    // The first screen reworded: the wait fails and names what the recorded screen said.
    let reworded = variant(
        scratch.path(),
        "reworded.yaml",
        "wait: {text: 'Welcome to the Installer', timeout: 60}",
        "wait: {text: 'Welcome to the Setup Assistant', timeout: 60}",
    );
    let (code, v, stderr) = replay(&reworded, &debug);
    assert_eq!(code, Some(1), "{stderr}");
    let step = failed_step(&v);
    assert_eq!(step["number"], 1);
    let candidates: Vec<&str> = step["failure"]["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect();
    assert!(candidates.first().is_some_and(|c| c.contains("Welcome to the")), "{candidates:?}");
    assert!(stderr.contains("closest texts on the screen"), "{stderr}");

    // A click moved: the step fails, naming both places.
    let moved = variant(
        scratch.path(),
        "moved.yaml",
        "click: {text: 'Full Name', offset: {x: 250, y: 0}}",
        "click: {text: 'Full Name', offset: {x: 320, y: 0}}",
    );
    let (code, v, stderr) = replay(&moved, &debug);
    assert_eq!(code, Some(1), "{stderr}");
    let message = failed_step(&v)["failure"]["message"].as_str().expect("message").to_owned();
    assert_eq!(failed_step(&v)["action"], "click", "{message}");
    assert!(
        message.contains("the script sends a left-button press at (")
            && message.contains("where the recording sent a left-button press at ("),
        "{message}"
    );

    // Another key: fails, naming both keys.
    let key = variant(scratch.path(), "key.yaml", "- key: tab", "- key: enter");
    let (code, v, stderr) = replay(&key, &debug);
    assert_eq!(code, Some(1), "{stderr}");
    let message = failed_step(&v)["failure"]["message"].as_str().expect("message").to_owned();
    assert!(message.contains("sends key enter where the recording sent key tab"), "{message}");

    // Damaged recordings: exit 2 with the file and what is wrong, before any step runs.
    let damaged = |name: &str, damage: &dyn Fn(&Path)| {
        let dir = scratch.path().join(name);
        copy_dir(&frames, &dir);
        damage(&dir);
        let (code, v, stderr) = replay(&example(), &dir);
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert_eq!(v["exit_code"], 2, "{name}");
        assert!(v["steps"].as_array().expect("steps").iter().all(|s| s["outcome"] == "not_run"), "{name}");
        stderr
    };
    let stderr = damaged("no-index", &|d| std::fs::remove_file(d.join("index.jsonl")).expect("rm"));
    assert!(stderr.contains(&format!("{}", scratch.path().join("no-index/index.jsonl").display())), "{stderr}");
    let stderr = damaged("garbage-frame", &|d| std::fs::write(d.join("000002.png"), b"\x89PNG broken").expect("w"));
    assert!(stderr.contains("000002.png: not a PNG"), "{stderr}");
    let stderr = damaged("wrong-size", &|d| {
        image::RgbaImage::new(640, 400).save(d.join("000003.png")).expect("png");
    });
    assert!(stderr.contains("000003.png: the image is 640x400, the index says 1280x800"), "{stderr}");
    let stderr = damaged("bad-line", &|d| {
        let text = std::fs::read_to_string(d.join("index.jsonl")).expect("index");
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[3] = lines[3].replacen("\"t_ms\":", "\"t_ms\":\"soon\",\"x\":", 1);
        std::fs::write(d.join("index.jsonl"), lines.join("\n")).expect("w");
    });
    assert!(stderr.contains("index.jsonl:4:"), "{stderr}");

    // The replay's own debug output may not go into the recording.
    let out = vmkit()
        .args(["automate", "replay", "--config"])
        .arg(example())
        .arg("--frames")
        .arg(&debug)
        .arg("--debug")
        .arg(&debug)
        .output()
        .expect("replay");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("would write into the recording"));
}
