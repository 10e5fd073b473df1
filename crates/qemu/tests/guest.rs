//! End-to-end tests of the qemu crate against a real guest (Debian kernel + busybox initramfs): start-up, the
//! serial log and console, QMP, the stop ladder, and noticing a QEMU that dies.

use std::time::{Duration, Instant};

use images::initramfs::busybox::{BANNER, POWER_BUTTON, POWERING_OFF};
use qemu::{RunState, StopStep};
use testbed::Guest;

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

    let stopped = guest.shutdown().await.unwrap();
    assert_eq!(stopped.by, StopStep::Powerdown, "{:?}", stopped.exit);
    assert!(stopped.exit.success(), "{}", stopped.exit);
    let log = guest.serial_log().contents().unwrap();
    assert!(log.contains(POWER_BUTTON), "{log}");
    assert!(log.contains(POWERING_OFF), "{log}");
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
    assert!(noticed < Duration::from_secs(5), "noticed only after {noticed:?}");
    assert!(guest.qemu().try_exit().is_some());
}
