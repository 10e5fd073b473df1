//! `vmkit demo`, the README's offline demo: a real guest from Debian packages, typed into over QEMU's VNC, read
//! back with OCR.

use std::time::Duration;

use assert_cmd::Command;

#[test]
fn e2e_demo_types_into_the_guest_and_reads_its_answer() {
    let cache = testbed_guests::guest::cache_dir();
    let out = Command::cargo_bin("vmkit")
        .expect("vmkit")
        .args(["demo", "--cache-dir"])
        .arg(&cache)
        .timeout(Duration::from_secs(600))
        .output()
        .expect("run vmkit demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // The guest's shell computed 42 and printed the kernel release: both came back through VNC and OCR.
    assert!(stdout.lines().any(|l| l.contains("demo: 42 from Linux")), "{stdout}");
    // The console is read glyph by glyph: the typed command comes back exactly, `$((6*7))` and all.
    assert!(stdout.lines().any(|l| l.ends_with("# echo vmkit demo: $((6*7)) from $(uname -sr)")), "{stdout}");
    assert!(stderr.contains("reads back exactly"), "{stderr}");
    assert!(stderr.contains("booting it under"), "{stderr}");
}
