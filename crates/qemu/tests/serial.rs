//! Waiting on a serial log (unit level, a file written by the test; the guest tests use QEMU's own log).

use std::io::Write;
use std::time::{Duration, Instant};

use qemu::{Pattern, SerialError, SerialLog};

fn append(path: &std::path::Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[tokio::test]
async fn waits_for_text_written_later_and_moves_past_each_match() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serial.log");
    let mut log = SerialLog::new(&path);
    let writer = {
        let path = path.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            append(&path, "booting...\nlogin: ");
            tokio::time::sleep(Duration::from_millis(100)).await;
            append(&path, "\nready 1\nready 2\n");
        })
    };
    let m = log.wait_for(&Pattern::text("login:"), Duration::from_secs(10), None).await.unwrap();
    assert_eq!(m.text, "login:");
    let re = Pattern::regex(r"ready (\d)").unwrap();
    let first = log.wait_for(&re, Duration::from_secs(10), None).await.unwrap();
    let second = log.wait_for(&re, Duration::from_secs(10), None).await.unwrap();
    assert_eq!(first.groups, vec![Some("1".to_owned())]);
    assert_eq!(second.groups, vec![Some("2".to_owned())]);
    assert!(second.end > first.end);
    writer.await.unwrap();
}

#[tokio::test]
async fn skip_to_end_ignores_earlier_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serial.log");
    append(&path, "old marker\n");
    let mut log = SerialLog::new(&path);
    log.skip_to_end().unwrap();
    let err = log.wait_for(&Pattern::text("old marker"), Duration::from_millis(200), None).await.unwrap_err();
    assert!(matches!(err, SerialError::Timeout { .. }));
    append(&path, "new marker\n");
    log.wait_for(&Pattern::text("new marker"), Duration::from_secs(5), None).await.unwrap();
}

#[tokio::test]
async fn a_timeout_names_the_pattern_and_shows_the_log_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serial.log");
    append(&path, "Kernel panic - not syncing: VFS\n");
    let mut log = SerialLog::new(&path);
    let started = Instant::now();
    let err = log.wait_for(&Pattern::text("login:"), Duration::from_millis(300), None).await.unwrap_err().to_string();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(err.contains("\"login:\""), "{err}");
    assert!(err.contains("Kernel panic"), "{err}");
}

#[tokio::test]
async fn a_match_split_across_writes_and_binary_noise_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serial.log");
    let mut log = SerialLog::new(&path);
    append(&path, "\u{1b}[2J\u{0}\u{7f}vmkit-gu");
    let writer = {
        let path = path.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"est ready\xff\xfe\n").unwrap();
        })
    };
    // The literal spans two writes; control characters and invalid UTF-8 around it do not matter.
    let m = log.wait_for(&Pattern::text("vmkit-guest ready"), Duration::from_secs(5), None).await.unwrap();
    assert_eq!(m.text, "vmkit-guest ready");
    writer.await.unwrap();
}

#[tokio::test]
async fn the_search_window_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serial.log");
    // 3 MiB of noise, then the marker: found, while only the last MiB is kept in memory.
    let noise = "x".repeat(1 << 20);
    for _ in 0..3 {
        append(&path, &noise);
    }
    append(&path, "MARK");
    let mut log = SerialLog::new(&path);
    let m = log.wait_for(&Pattern::text("MARK"), Duration::from_secs(5), None).await.unwrap();
    assert_eq!(m.end, (3 << 20) + 4);
}

#[test]
fn a_bad_regex_is_an_error_naming_it() {
    let err = Pattern::regex("(unclosed").unwrap_err().to_string();
    assert!(err.contains("(unclosed"), "{err}");
}
