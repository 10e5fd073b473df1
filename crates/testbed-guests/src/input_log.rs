//! A test guest that logs the pointer buttons it receives, with the position the guest saw them at.
//!
//! Whether a click took effect is decided in the guest: QEMU's USB tablet queues pointer events until the guest
//! polls it and merges motions into queued events, and a relative mouse puts the pointer wherever the guest's
//! sums say. So the proof that a press and a release landed on a target is a program in the guest
//! (`assets/input_log.c`, compiled statically here) that reads `/dev/input/event*` and prints each left-button
//! press and release with its position: to the serial log, which the test reads, and to the VGA console, so the
//! screen reacts as an application's would.
//!
//! [`InputGuest::boot`] boots the busybox guest with a USB tablet ([`Pointer::UsbTablet`]) or with only QEMU's
//! default PS/2 mouse ([`Pointer::Ps2Mouse`]), optionally with a busy loop in the guest (`load`), the way an
//! installer keeps an emulated CPU busy, and starts the logger.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::guest::{Guest, GuestFile, GuestOptions};

/// The logger's source.
pub const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/input_log.c");

/// The guest's pointer device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pointer {
    /// `-device qemu-xhci -device usb-tablet`: absolute, polled by the guest over USB.
    UsbTablet,
    /// QEMU's default PS/2 mouse only: relative.
    Ps2Mouse,
}

/// A button change the guest saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ButtonEvent {
    /// Pressed (true) or released.
    pub down: bool,
    /// Where the guest had the pointer, in screen pixels.
    pub x: i64,
    /// Where the guest had the pointer, in screen pixels.
    pub y: i64,
    /// From an absolute device.
    pub absolute: bool,
}

/// A booted guest running the logger.
#[derive(Debug)]
pub struct InputGuest {
    /// The guest.
    pub guest: Guest,
    /// How many serial-log bytes [`InputGuest::events`] has already returned.
    seen: usize,
}

/// Compiles the logger statically into `dir` and returns the binary.
pub fn program(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let out = dir.join("input_log");
    let status = std::process::Command::new("cc")
        .args(["-static", "-Os", "-o"])
        .arg(&out)
        .arg(SOURCE)
        .status()
        .context("running cc (Debian packages gcc, libc6-dev)")?;
    anyhow::ensure!(status.success(), "cc failed (Debian packages gcc, libc6-dev)");
    Ok(std::fs::read(out)?)
}

impl InputGuest {
    /// Boots the guest with `pointer`, starts a busy loop in it when `load` is set, and starts the logger for
    /// a `width`×`height` screen (the VGA console's framebuffer: 720×400).
    pub async fn boot(pointer: Pointer, load: bool, width: u32, height: u32) -> anyhow::Result<Self> {
        let scratch = testbed::scratch_dir("input-log")?;
        let binary = program(scratch.path())?;
        let mut opts = GuestOptions {
            extra_files: vec![GuestFile { path: "/bin/input_log".to_owned(), mode: 0o755, data: binary }],
            ..GuestOptions::default()
        };
        match pointer {
            Pointer::UsbTablet => {
                opts.devices = vec![qemu::Device::new("qemu-xhci"), qemu::Device::new("usb-tablet")];
                opts.spec.modules.extend(["xhci_pci", "usbhid", "hid_generic"].map(str::to_owned));
            }
            Pointer::Ps2Mouse => opts.spec.modules.push("psmouse".to_owned()),
        }
        let guest = Guest::boot_with(opts).await?;
        let wait = Duration::from_secs(120);
        // The USB tablet appears once the guest has enumerated the bus: wait for its event device.
        let want = match pointer {
            Pointer::UsbTablet => "QEMU",
            Pointer::Ps2Mouse => "PS/2",
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let names = guest.serial_command("cat /sys/class/input/event*/device/name", wait).await?;
            if names.contains(want) {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the guest has no {want} input device; it has: {names}");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if load {
            guest.serial_command("( (while :; do :; done) >/dev/null 2>&1 & )", wait).await?;
        }
        guest.serial_command(&format!("(input_log {width} {height} > /dev/ttyS0 2>&1 &)"), wait).await?;
        guest.wait_for_serial("input_log: ready", wait).await.context("the logger did not start")?;
        Ok(Self { guest, seen: 0 })
    }

    /// The button events logged since the last call, waiting until at least `count` have come (or `timeout`).
    pub async fn events(&mut self, count: usize, timeout: Duration) -> anyhow::Result<Vec<ButtonEvent>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let log = std::fs::read(self.guest.serial_log_path())?;
            let text = String::from_utf8_lossy(log.get(self.seen..).unwrap_or_default()).into_owned();
            // Only complete lines.
            let complete = text.rfind('\n').map_or(0, |i| i + 1);
            let events = parse(&text[..complete]);
            if events.len() >= count || tokio::time::Instant::now() >= deadline {
                self.seen += complete;
                return Ok(events);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The button events in a piece of the logger's output.
pub fn parse(text: &str) -> Vec<ButtonEvent> {
    text.lines()
        .filter_map(|line| {
            let rest = &line[line.find("input_log: ")? + "input_log: ".len()..];
            let mut f = rest.split_whitespace();
            let down = match f.next()? {
                "press" => true,
                "release" => false,
                _ => return None,
            };
            let x = f.next()?.parse().ok()?;
            let y = f.next()?.parse().ok()?;
            let absolute = f.next()? == "abs";
            Some(ButtonEvent { down, x, y, absolute })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_loggers_lines() {
        let log = "junk\r\ninput_log: ready 2\r\ninput_log: press 10 20 abs\r\n\x1b[0minput_log: release 11 21 rel\n";
        assert_eq!(
            parse(log),
            [
                ButtonEvent { down: true, x: 10, y: 20, absolute: true },
                ButtonEvent { down: false, x: 11, y: 21, absolute: false }
            ]
        );
    }
}
