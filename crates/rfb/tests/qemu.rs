//! End-to-end tests against QEMU's own VNC server: a busybox guest (Debian kernel) with a shell on its VGA
//! console. What vmkit types there must come out exactly on the guest's serial port. Named `e2e_*`: they boot
//! guests, and CI runs them one at a time in its second tier.

mod common;

use std::time::Duration;

use common::console::{check_lines, type_lines_through_serial};
use common::{all_printable_ascii, random_ascii, seed};
use rfb::{Client, ConnectOptions, TypeOptions};
use testbed_guests::{Guest, GuestOptions};

const LONG: Duration = Duration::from_secs(180);

fn opts() -> ConnectOptions {
    ConnectOptions { timeout: Duration::from_secs(60), ..ConnectOptions::default() }
}

/// QEMU as users start it (default `key-delay-ms`, 10 ms) and the client's default pacing: a command typed on
/// the VGA console runs, and every printable ASCII character arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_qemu_typing_with_default_pacing() -> anyhow::Result<()> {
    let guest = Guest::boot().await?;
    let vnc = Client::connect(&guest.vnc_addr(), opts()).await?;
    assert!(vnc.supports_extended_keys(), "QEMU acknowledges QEMU Extended Key Events");
    let typing = TypeOptions::default();
    vnc.type_text("echo vmkit-rfb-$((6 * 7))-typed > /dev/ttyS0\n", &typing).await?;
    guest.wait_for_serial("vmkit-rfb-42-typed", LONG).await?;

    let lines = vec![all_printable_ascii()];
    let typed = type_lines_through_serial(&guest, &vnc, &lines, &typing, LONG).await?;
    check_lines(&lines, &typed.got)?;
    anyhow::ensure!(typed.complete, "the end marker was lost");
    Ok(())
}

/// 1,000 random printable characters at the pacing vmkit uses when it starts QEMU itself (`key-delay-ms=2`):
/// nothing lost or garbled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_qemu_typing_1000_random_characters() -> anyhow::Result<()> {
    let guest = Guest::boot_with(GuestOptions { key_delay_ms: Some(2), ..GuestOptions::default() }).await?;
    let vnc = Client::connect(&guest.vnc_addr(), opts()).await?;
    let text = random_ascii(seed(), 1000);
    let lines: Vec<String> = text.as_bytes().chunks(100).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    let typed = type_lines_through_serial(&guest, &vnc, &lines, &TypeOptions::for_qemu_key_delay(2), LONG).await?;
    check_lines(&lines, &typed.got)?;
    anyhow::ensure!(typed.complete, "the end marker was lost");
    Ok(())
}
