//! Where a QEMU guest sees clicks land, for a given click timing: the experiment behind [`rfb::ClickTiming`].
//!
//! Boots the busybox test guest (TCG unless KVM works) with a USB tablet or a PS/2 mouse and a busy loop, runs
//! the input logger in it (`testbed_guests::input_log`), clicks N points and moves the pointer away after each (as a
//! runner parks it), then counts presses and releases the guest saw more than a pixel off the target.
//!
//! ```text
//! cargo run -p rfb --example click_timing -- tablet old 20   # 30 ms pauses, the pointer moved at once
//! cargo run -p rfb --example click_timing -- tablet new 20   # ClickTiming::default, 300 ms before moving
//! cargo run -p rfb --example click_timing -- ps2 new 20
//! cargo run -p rfb --example click_timing -- tablet old 20 starve   # a loaded host, see below
//! ```
//!
//! With `starve`, the host is made to look loaded for QEMU: every QEMU thread is moved to CPU 0 at nice 19,
//! next to a busy loop at nice 0, so QEMU runs in short slices far apart — as on a host busy with other work.
//! (Linux only; `taskset` and `renice` from util-linux; the busy loop ends with the example.)

use std::time::Duration;

use rfb::{ClickTiming, Client, ConnectOptions};
use testbed_guests::input_log::{InputGuest, Pointer};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (pointer, old, n, starve) = match args.as_slice() {
        [p, t, n, rest @ ..] if rest.len() <= 1 => (
            if p == "ps2" { Pointer::Ps2Mouse } else { Pointer::UsbTablet },
            t == "old",
            n.parse::<u32>()?,
            rest.first().is_some_and(|s| s == "starve"),
        ),
        _ => anyhow::bail!("usage: click_timing tablet|ps2 old|new N [starve]"),
    };
    let (w, h) = (720u32, 400u32);
    let mut guest = InputGuest::boot(pointer, true, w, h).await?;
    let opts = ConnectOptions { timeout: Duration::from_secs(60), ..ConnectOptions::default() };
    let vnc = Client::connect(&guest.guest.vnc_addr(), opts).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _busy = if starve { Some(starve_qemu(guest.guest.qemu().pid())?) } else { None };
    let (timing, park_after) = if old {
        (ClickTiming { before_press: Duration::from_millis(30), hold: Duration::from_millis(30) }, Duration::ZERO)
    } else {
        (ClickTiming::default(), Duration::from_millis(300))
    };
    println!(
        "accel {}, pointer {:?} ({}), {timing:?}, park after {park_after:?}",
        guest.guest.accel(),
        pointer,
        vnc.pointer_mode().as_str()
    );
    let mut targets = Vec::new();
    for i in 0..n {
        let (x, y) = (40 + (i * 97) % (w - 80), 30 + (i * 53) % (h - 90));
        targets.push((x, y));
        vnc.click_with(x, y, rfb::Button::Left, &timing).await?;
        tokio::time::sleep(park_after).await;
        vnc.move_to(x, y + 40).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let events = guest.events(2 * n as usize, Duration::from_secs(30)).await?;
    let (mut press_off, mut release_off) = (0, 0);
    for (pair, (x, y)) in events.chunks(2).zip(&targets) {
        for e in pair {
            let off = (e.x - i64::from(*x)).abs() > 1 || (e.y - i64::from(*y)).abs() > 1;
            if off {
                println!("aimed at ({x}, {y}): {} at ({}, {})", if e.down { "press" } else { "release" }, e.x, e.y);
                if e.down {
                    press_off += 1;
                } else {
                    release_off += 1;
                }
            }
        }
    }
    println!(
        "{n} clicks, {} button events seen; presses off target: {press_off}; releases off target: {release_off}",
        events.len()
    );
    Ok(())
}

/// A busy loop killed when dropped.
struct Busy(std::process::Child);

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Puts every thread of process `pid` on CPU 0 at nice 19, next to a busy loop at nice 0.
fn starve_qemu(pid: u32) -> anyhow::Result<Busy> {
    let busy =
        Busy(std::process::Command::new("taskset").args(["-c", "0", "sh", "-c", "while :; do :; done"]).spawn()?);
    let ok = std::process::Command::new("taskset").args(["-a", "-p", "-c", "0", &pid.to_string()]).status()?;
    anyhow::ensure!(ok.success(), "taskset failed");
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let tid = task?.file_name().to_string_lossy().into_owned();
        let ok = std::process::Command::new("renice")
            .args(["-n", "19", "-p", &tid])
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(ok.success(), "renice failed");
    }
    Ok(busy)
}
