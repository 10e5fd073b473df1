//! Clicks as a QEMU guest receives them: a program in the guest logs where it sees the left button go down and
//! up (`testbed_guests::input_log`), under TCG with a busy loop in the guest, for a USB tablet (absolute, polled over
//! USB) and for QEMU's default PS/2 mouse (relative). Each click is followed by the pointer moving away, as the
//! runner parks it, so a release that arrived at the wrong place would show.

use std::time::Duration;

use rfb::{ClickTiming, Client, ConnectOptions, PointerMode};
use testbed_guests::input_log::{ButtonEvent, InputGuest, Pointer};

/// VGA text mode's framebuffer, which the logger is told.
const SCREEN: (u32, u32) = (720, 400);
/// Spread over the screen, edges included.
const TARGETS: [(u32, u32); 5] = [(100, 80), (619, 311), (360, 200), (3, 396), (715, 5)];
/// How far the guest may put a click from where it was aimed: the tablet's scale rounds (QEMU maps 720 pixels
/// onto 32768 units and back).
const SLACK: i64 = 1;
/// The pause the runner leaves between a release and moving the pointer on (its `park_delay`).
const BEFORE_PARK: Duration = Duration::from_millis(300);

async fn connect(guest: &InputGuest) -> anyhow::Result<Client> {
    let opts = ConnectOptions { timeout: Duration::from_secs(60), ..ConnectOptions::default() };
    let vnc = Client::connect(&guest.guest.vnc_addr(), opts).await?;
    anyhow::ensure!(vnc.size() == SCREEN, "the guest's screen is {:?}, not VGA text mode", vnc.size());
    Ok(vnc)
}

/// Waits (briefly) until the server has said what the guest's pointer is.
async fn mode(vnc: &Client, want: PointerMode) -> PointerMode {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while vnc.pointer_mode() != want && tokio::time::Instant::now() < deadline {
        let _ = vnc.wait_for_damage(Duration::from_millis(200)).await;
    }
    vnc.pointer_mode()
}

/// Clicks every target and moves the pointer away after each; returns what the guest logged.
async fn click_targets(guest: &mut InputGuest, vnc: &Client) -> anyhow::Result<Vec<ButtonEvent>> {
    for (x, y) in TARGETS {
        vnc.click_with(x, y, rfb::Button::Left, &ClickTiming::default()).await?;
        tokio::time::sleep(BEFORE_PARK).await;
        vnc.move_to(x, (y + 40) % SCREEN.1).await?;
    }
    guest.events(2 * TARGETS.len(), Duration::from_secs(60)).await
}

fn check(events: &[ButtonEvent], absolute: bool) {
    assert_eq!(events.len(), 2 * TARGETS.len(), "the guest saw {events:?}");
    for (pair, (x, y)) in events.chunks(2).zip(TARGETS) {
        let (x, y) = (i64::from(x), i64::from(y));
        for (e, down) in pair.iter().zip([true, false]) {
            assert_eq!((e.down, e.absolute), (down, absolute), "{pair:?}");
            assert!(
                (e.x - x).abs() <= SLACK && (e.y - y).abs() <= SLACK,
                "aimed at ({x}, {y}), the guest saw {} at ({}, {}): {events:?}",
                if down { "the press" } else { "the release" },
                e.x,
                e.y
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_usb_tablet_press_and_release_land_on_the_target_under_load() -> anyhow::Result<()> {
    let mut guest = InputGuest::boot(Pointer::UsbTablet, true, SCREEN.0, SCREEN.1).await?;
    let vnc = connect(&guest).await?;
    assert_eq!(mode(&vnc, PointerMode::Absolute).await, PointerMode::Absolute);
    let events = click_targets(&mut guest, &vnc).await?;
    check(&events, true);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_ps2_mouse_press_and_release_land_on_the_target_under_load() -> anyhow::Result<()> {
    let mut guest = InputGuest::boot(Pointer::Ps2Mouse, true, SCREEN.0, SCREEN.1).await?;
    let vnc = connect(&guest).await?;
    // QEMU says the pointer is relative (QEMU Pointer Motion Change), so the client walks it to each target.
    assert_eq!(mode(&vnc, PointerMode::Relative).await, PointerMode::Relative);
    let events = click_targets(&mut guest, &vnc).await?;
    check(&events, false);
    Ok(())
}
