//! QEMU dies with the process that started it, even when that process is killed with SIGKILL and no destructor
//! runs (a `vmkit image test` killed by a CI timeout must not leave a QEMU at full CPU behind).
//!
//! The test runs itself a second time as the parent: that child starts a real QEMU (no guest: `-S`, stopped before
//! the first instruction), writes QEMU's pid into a file and waits; the test kills it with SIGKILL and watches QEMU.

use std::path::Path;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "VMKIT_TEST_PARENT_DEATH_DIR";
const NAME: &str = "qemu_dies_when_the_process_that_started_it_is_killed";

fn alive(pid: u32) -> bool {
    // Dead once gone or a zombie (no command line).
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

async fn child(dir: &Path) {
    let mut cmd = qemu::QemuCommand::new(qemu::Accel::Tcg);
    cmd.no_defaults = true;
    cmd.display = Some(qemu::Display::None);
    cmd.qmp = Some(dir.join("qmp.sock"));
    cmd.extra.push("-S".into());
    let q = qemu::Qemu::start(&cmd).await.expect("QEMU starts");
    std::fs::write(dir.join("pid.tmp"), q.pid().to_string()).expect("write pid");
    std::fs::rename(dir.join("pid.tmp"), dir.join("pid")).expect("publish pid");
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[test]
fn qemu_dies_when_the_process_that_started_it_is_killed() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(child(Path::new(&dir)));
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let mut parent = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", NAME, "--nocapture"])
        .env(CHILD_ENV, dir.path())
        .spawn()
        .expect("run the parent");
    let deadline = Instant::now() + Duration::from_secs(60);
    let pid = loop {
        if let Ok(text) = std::fs::read_to_string(dir.path().join("pid")) {
            break text.trim().parse::<u32>().expect("pid");
        }
        assert!(parent.try_wait().expect("wait").is_none(), "the parent ended before starting QEMU");
        assert!(Instant::now() < deadline, "QEMU did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(alive(pid));
    parent.kill().expect("SIGKILL the parent");
    parent.wait().expect("reap the parent");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(pid), "QEMU {pid} outlived its parent");
}
