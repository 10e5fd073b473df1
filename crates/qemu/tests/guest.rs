//! End-to-end tests of the qemu crate against a real guest (Debian kernel + busybox initramfs): start-up, the
//! serial log and console, QMP, the stop ladder, and noticing a QEMU that dies.

use std::time::{Duration, Instant};

use debguest::initramfs::busybox::{BANNER, POWER_BUTTON, POWERING_OFF};
use qemu::{RunState, StopStep};
use testbed_guests::Guest;

const LONG: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_guest_boots_runs_serial_commands_and_powers_off() {
    let guest = Guest::boot().await.unwrap();
    let banner = guest.wait_for_serial(BANNER, LONG).await.unwrap();
    assert!(banner.text.contains(BANNER));
    guest.wait_for_serial(format!("id: {}", guest.id()).as_str(), LONG).await.unwrap();

    let status = guest.qmp().query_status().await.unwrap();
    assert_eq!(status.status, RunState::Running);
    assert!(status.running);

    // A command typed on the serial console runs in the guest and its output comes back through the log.
    let out = guest.serial_command("echo $((6 * 7)) > /tmp/answer; cat /tmp/answer; uname -r", LONG).await.unwrap();
    assert_eq!(out.trim(), format!("42\n{}", guest.image().manifest.kernel_release));

    // Keys pressed through QMP land in the VGA console's shell (tty1), whose command writes to the serial port.
    let mut log = guest.serial_log();
    log.skip_to_end().unwrap();
    for keys in qcodes("echo key$((40+2)) > /dev/ttyS0\n") {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        guest.qmp().send_keys(&keys).await.unwrap();
    }
    let m = log.wait_for(&qemu::Pattern::regex(r"\bkey42\b").unwrap(), LONG, Some(guest.qemu())).await.unwrap();
    assert_eq!(m.text, "key42");

    // A screendump of the VGA text console: a PNG of 720x400 pixels.
    let shot = guest.dir().join("screen.png");
    guest.qmp().screendump(&shot, qemu::ScreendumpFormat::Png).await.unwrap();
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (720, 400));

    let stopped = guest.shutdown().await.unwrap();
    assert_eq!(stopped.by, StopStep::Powerdown, "{:?}", stopped.exit);
    assert!(stopped.exit.success(), "{}", stopped.exit);
    let log = guest.serial_log().contents().unwrap();
    assert!(log.contains(POWER_BUTTON), "{log}");
    assert!(log.contains(POWERING_OFF), "{log}");
}

/// QEMU key codes for typing `text` on a US keyboard: one chord per character.
fn qcodes(text: &str) -> Vec<Vec<String>> {
    text.chars()
        .map(|c| {
            let (shift, code) = match c {
                'a'..='z' | '0'..='9' => (false, c.to_string()),
                ' ' => (false, "spc".to_owned()),
                '\n' => (false, "ret".to_owned()),
                '-' => (false, "minus".to_owned()),
                '/' => (false, "slash".to_owned()),
                '.' => (false, "dot".to_owned()),
                '>' => (true, "dot".to_owned()),
                '$' => (true, "4".to_owned()),
                '(' => (true, "9".to_owned()),
                ')' => (true, "0".to_owned()),
                '+' => (true, "equal".to_owned()),
                'A'..='Z' => (true, c.to_ascii_lowercase().to_string()),
                other => panic!("no key for {other:?}"),
            };
            if shift { vec!["shift".to_owned(), code] } else { vec![code] }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_killed_qemu_is_noticed_at_once() {
    let guest = Guest::boot().await.unwrap();
    let pid = guest.qemu().pid();
    // Wait for something that will never come, and kill QEMU meanwhile: the wait must end at once, not in 10 min.
    let waiting = guest.wait_for_serial("this text never appears", Duration::from_secs(600));
    let kill = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let status = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
        assert!(status.success());
        Instant::now()
    };
    let (result, killed_at) = tokio::join!(waiting, kill);
    let noticed = killed_at.elapsed();
    let err = result.unwrap_err().to_string();
    assert!(err.contains("QEMU exited"), "{err}");
    assert!(err.contains("signal 9"), "{err}");
    // "At once" against a 600 s wait; the bound is loose so a loaded machine does not fail it.
    assert!(noticed < Duration::from_secs(60), "noticed only after {noticed:?}");
    assert!(guest.qemu().try_exit().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_the_stop_ladder_tries_the_guest_first() {
    let guest = Guest::boot().await.unwrap();
    let mut console = guest.serial_console().await.unwrap();
    let poweroff = async move {
        console.send_line("poweroff").await.unwrap();
        // Keep the connection open while the guest shuts down.
        tokio::time::sleep(Duration::from_secs(3600)).await;
    };
    let plan = qemu::StopPlan::default().with_guest(poweroff, LONG);
    let stopped = guest.qemu().stop(plan).await.unwrap();
    assert_eq!(stopped.by, StopStep::Guest, "{}", stopped.exit);
    assert!(stopped.exit.success(), "{}", stopped.exit);
    assert!(guest.serial_log().contents().unwrap().contains(POWERING_OFF));
}
