//! A `type` step cut by the VNC server going away: the runner reconnects, types the text again in full and says
//! so in the log, because RFB cannot tell which of the keys sent before the drop reached the screen.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn a_type_step_cut_by_a_vnc_restart_is_typed_again_with_a_warning() {
    let mut display = testbed::Display::x11vnc(640, 480).expect("Xvfb + x11vnc");
    // 150 characters 20 ms apart: about 3 s of typing, so the restart lands in the middle of it.
    let text = "a".repeat(150);
    let yaml = format!("boot_wait: 0\nboot_commands:\n  - type: {{text: {text}, char_delay: 0.02}}\n");
    let script = automate::load_str(&yaml, Path::new("typing.yaml")).expect("script loads");
    let mut opts = automate::RunOptions::new(display.vnc_addr());
    opts.typing = rfb::TypeOptions::fast();

    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&lines);
    let runner = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        runtime.block_on(automate::run(&script, &opts, &mut |l| sink.lock().expect("lock").push(l.to_owned())))
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !lines.lock().expect("lock").iter().any(|l| l.contains("[1/1] type")) {
        assert!(std::time::Instant::now() < deadline, "the type step never started: {:?}", lines.lock());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(800));
    assert!(!runner.is_finished(), "typing ended before the restart");
    display.restart_vnc(Duration::from_millis(500)).expect("restart x11vnc");

    let result = runner.join().expect("runner thread");
    let log = lines.lock().expect("lock").join("\n");
    assert_eq!(result.verdict, automate::result::Verdict::Passed, "{log}");
    assert!(result.steps[0].reconnects >= 1, "{log}");
    assert!(log.contains("dropped while typing") && log.contains("typed again in full"), "{log}");
}
