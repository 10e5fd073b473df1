//! Acceptance: `examples/automate/installer.yaml` drives the installer-like Tk application (testbed) from its
//! welcome screen to the end, over a real VNC server, and the application received exactly what the script
//! typed — including a password with symbols, which never appears in the log, the report or the JSON result.
//! A second run does the same through x11vnc while the VNC server is killed and restarted mid-run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use automate::result::Outcome;

const PASSWORD: &str = r#"p@ss W0rd!#$%^&*()_+-={}[]|\:;"'<>,.?/~`"#;

fn script() -> automate::Script {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/automate/installer.yaml");
    automate::load_file(&path).expect("the example script loads")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn assert_record(record: &str) {
    let v: serde_json::Value = serde_json::from_str(record).expect("record is JSON");
    assert_eq!(v["screens"], serde_json::json!(["welcome", "licence", "sign_in", "account", "progress", "final"]));
    assert_eq!(v["licence"], "agreed", "the script must hit I Agree, not I Disagree");
    assert_eq!(v["sign_in"], "later");
    assert_eq!(v["account"]["full_name"], "Ada Lovelace");
    assert_eq!(v["account"]["account_name"], "ada");
    assert_eq!(v["account"]["password"], PASSWORD);
    assert_eq!(v["account"]["verify_password"], PASSWORD);
    assert_eq!(v["finished"], true);
}

fn assert_no_secret_in(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("debug dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "log" || e == "html" || e == "json") {
            let text = std::fs::read_to_string(&path).expect("read");
            assert!(!text.contains("W0rd"), "{} contains the password", path.display());
        }
    }
}

fn debug_dir(scratch: &Path) -> PathBuf {
    scratch.join("debug")
}

#[test]
fn installer_script_runs_end_to_end_on_xvnc() {
    let display = testbed::Display::xvnc(1280, 800).expect("Xvnc");
    let scratch = testbed::scratch_dir("installer").expect("scratch");
    let record = scratch.path().join("record.json");
    let mut app = testbed::Installer::start(&display, &record, 3.0).expect("installer app");

    let mut opts = automate::RunOptions::new(display.vnc_addr());
    opts.debug = Some(Some(debug_dir(scratch.path())));
    opts.typing = rfb::TypeOptions::fast();
    let result = runtime().block_on(automate::run(&script(), &opts, &mut |l| eprintln!("{l}")));

    let json = serde_json::to_string(&result).expect("json");
    assert_eq!(result.verdict, automate::result::Verdict::Passed, "run failed: {json}\napp log:\n{}", app.log());
    assert_eq!(result.outcome, Outcome::Passed);
    assert!(result.steps.iter().all(|s| s.outcome == Outcome::Passed));
    assert_eq!(app.wait(Duration::from_secs(20)).expect("app exits"), Some(0));
    assert_record(&app.record().expect("record"));
    assert!(!json.contains("W0rd"), "the password leaked into the JSON result");

    let dir = debug_dir(scratch.path());
    for name in ["report.html", "automation.log", "002-click-Continue.png", "002-click-Continue-annotated.png"] {
        assert!(dir.join(name).is_file(), "{name} missing from the debug output");
    }
    let ocr: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("001-wait-Welcome_to_the_Installer-ocr.json")).expect("ocr json"),
    )
    .expect("parse");
    let words: Vec<&str> = ocr["texts"].as_array().expect("texts").iter().filter_map(|t| t["text"].as_str()).collect();
    assert!(words.contains(&"Welcome"), "{words:?}");
    assert_no_secret_in(&dir);
}

#[test]
fn installer_script_survives_an_x11vnc_restart_mid_run() {
    let mut display = testbed::Display::x11vnc(1280, 800).expect("Xvfb + x11vnc");
    let scratch = testbed::scratch_dir("installer-restart").expect("scratch");
    let record = scratch.path().join("record.json");
    // A long progress screen: the VNC server goes down while the script waits for it to finish.
    let mut app = testbed::Installer::start(&display, &record, 10.0).expect("installer app");

    let mut opts = automate::RunOptions::new(display.vnc_addr());
    opts.debug = Some(Some(debug_dir(scratch.path())));
    opts.typing = rfb::TypeOptions::fast();
    let script = script();
    let runner =
        std::thread::spawn(move || runtime().block_on(automate::run(&script, &opts, &mut |l| eprintln!("{l}"))));

    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if app.record().is_ok_and(|r| r.contains("\"progress\"")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the script never reached the progress screen");
        assert!(!runner.is_finished(), "the run ended before the progress screen");
        std::thread::sleep(Duration::from_millis(50));
    }
    display.restart_vnc(Duration::from_secs(2)).expect("restart x11vnc");

    let result = runner.join().expect("runner thread");
    let json = serde_json::to_string(&result).expect("json");
    assert_eq!(result.verdict, automate::result::Verdict::Passed, "run failed: {json}\napp log:\n{}", app.log());
    assert!(result.reconnects >= 1, "no reconnect was recorded: {json}");
    let step = result.steps.iter().find(|s| s.reconnects > 0).expect("a step records the reconnect");
    // The restart comes as soon as the click on "Continue" has taken effect: during that click's tail (the pointer
    // parked 300 ms after the release) or the wait after it. Either way no step ran twice: a click is never repeated
    // once it was made.
    assert!(
        step.action == "wait" || step.action == "click",
        "the restart happened during a wait or a click's tail: {json}"
    );
    assert_eq!(step.outcome, automate::result::Outcome::Passed, "{json}");
    assert_eq!(app.wait(Duration::from_secs(20)).expect("app exits"), Some(0));
    assert_record(&app.record().expect("record"));
    assert_no_secret_in(&debug_dir(scratch.path()));
}
