//! `automate::run` is a library call: it must work on whatever tokio runtime the caller has, including the
//! current-thread runtime of `#[tokio::test]` and small tools (where `block_in_place` panics).

use std::time::Duration;

#[test]
fn run_works_on_a_current_thread_runtime() {
    let script = automate::load_str("boot_wait: 0\nboot_commands:\n  - delay: 0\n", std::path::Path::new("s.yaml"))
        .expect("script");
    // Nothing listens on port 1: the run ends with a connection error — as a result, not a panic.
    let mut opts = automate::RunOptions::new("127.0.0.1:1".to_owned());
    opts.reconnect.budget = Duration::ZERO;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut lines = Vec::new();
    let result = runtime.block_on(automate::run(&script, &opts, &mut |l| lines.push(l.to_owned())));
    let error = result.error.unwrap_or_default();
    assert!(error.contains("127.0.0.1:1"), "{error}\n{}", lines.join("\n"));
}
