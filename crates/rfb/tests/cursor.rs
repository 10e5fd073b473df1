//! The pointer shape pseudo-encodings against real servers: with them the pointer stays out of the framebuffer
//! (where it would hide text from OCR) and its shape arrives separately; without them Xvnc and x11vnc paint it
//! into the screen image. Each test compares two clients on one screen, one announcing the encodings and one
//! not, after moving the pointer over a known, uniform area. QEMU never paints a guest's hardware cursor into
//! the framebuffer; with the encodings the shape the guest defined arrives, and before a guest defines one (or
//! when it draws its own pointer, as on standard VGA) no shape comes, so the client reports that the pointer
//! may be in the image.

mod common;

use std::time::Duration;

use common::{WAIT, support};
use rfb::{Client, ConnectOptions, Encoding, Frame};
use testbed::x11::DisplayOptions;
use testbed::{Display, DisplayKind};
use testbed_guests::guest::Vga;
use testbed_guests::{Guest, GuestFile, GuestOptions};

/// Every encoding this client implements except the pointer shape ones: a client as vmkit's was before it had
/// them.
fn without_cursor_encodings() -> Vec<Encoding> {
    let mut e = vec![Encoding::Raw, Encoding::CopyRect];
    e.extend(
        Encoding::PSEUDO
            .into_iter()
            .filter(|e| !matches!(e, Encoding::Cursor | Encoding::XCursor | Encoding::PointerPos)),
    );
    e
}

fn opts() -> ConnectOptions {
    ConnectOptions { timeout: WAIT, ..ConnectOptions::default() }
}

/// The pixels of an RGBA image `width` pixels wide that differ from `colour`, as (x, y).
fn off_colour(rgba: &[u8], width: u32, colour: [u8; 3]) -> Vec<(u32, u32)> {
    let width = width.max(1) as usize;
    rgba.chunks_exact(4)
        .enumerate()
        .filter(|(_, p)| p[..3] != colour)
        .map(|(i, _)| ((i % width) as u32, (i / width) as u32))
        .collect()
}

/// Waits until `vnc`'s screen has had no update for a moment, then returns a full refresh.
async fn settled(vnc: &Client) -> anyhow::Result<Frame> {
    vnc.take_damage();
    while vnc.wait_for_damage(Duration::from_millis(400)).await?.is_some() {}
    Ok(vnc.refresh().await?)
}

/// Moves the pointer with `mover` to the middle of a uniformly coloured screen, then checks both clients: the
/// one with the pointer shape encodings sees only the background and has the shape; the other sees the
/// pointer painted into the framebuffer exactly where the shape, painted at the pointer's position, puts it.
async fn pointer_stays_out_of_the_framebuffer(display: &Display) -> anyhow::Result<()> {
    let background = [0x20, 0x40, 0x80];
    // X's root window has no visible pointer until someone sets one (as window managers and toolkits do).
    let status = display.command("xsetroot").args(["-solid", "#204080", "-cursor_name", "left_ptr"]).status()?;
    anyhow::ensure!(status.success(), "xsetroot failed");
    let with = Client::connect(&display.vnc_addr(), opts()).await?;
    let without =
        Client::connect(&display.vnc_addr(), ConnectOptions { encodings: Some(without_cursor_encodings()), ..opts() })
            .await?;
    let (w, h) = with.size();
    // Before this client has moved the pointer, what it reports must match what it sees (Xvnc paints the
    // pointer until then; x11vnc never does for a client that takes pointer shapes).
    let before = settled(&with).await?;
    let painted_before = !off_colour(before.rgba(), w, background).is_empty();
    assert_eq!(with.pointer_out_of_framebuffer(), !painted_before, "{:?}", with.cursor());

    // Not the middle of the screen, where X puts the pointer at start: the move must be one.
    let (x, y) = (w / 3, h / 3);
    with.move_to(x, y).await?;

    let clean = settled(&with).await?;
    let painted = settled(&without).await?;
    assert_eq!(
        off_colour(clean.rgba(), w, background),
        [],
        "the pointer is in the framebuffer despite the Cursor encoding"
    );
    let cursor = with.cursor().expect("the server sent the pointer's shape");
    assert!(!cursor.is_hidden(), "{cursor:?}");
    assert!(with.pointer_out_of_framebuffer() && !without.pointer_out_of_framebuffer());
    assert_eq!(with.pointer_position(), (x, y));

    // Without the encodings the pointer is in the image, where the shape drawn at the pointer's position puts
    // it: every pixel of the shape is painted, and nothing outside its box. (Not pixel for pixel: servers
    // blend shapes with an alpha channel, of which the Cursor encoding keeps only a bitmask.)
    let drawn = off_colour(painted.rgba(), w, background);
    assert!(!drawn.is_empty(), "the server did not paint the pointer for a client without the Cursor encoding");
    let (hx, hy) = cursor.hotspot();
    let (left, top) = (i64::from(x) - i64::from(hx), i64::from(y) - i64::from(hy));
    let inside = |(px, py): (u32, u32)| {
        let (dx, dy) = (i64::from(px) - left, i64::from(py) - top);
        dx >= 0 && dy >= 0 && dx < i64::from(cursor.width()) && dy < i64::from(cursor.height())
    };
    let outside: Vec<_> = drawn.iter().copied().filter(|&p| !inside(p)).collect();
    assert_eq!(outside, [], "painted outside {cursor:?} at ({x},{y})");
    let mut shape = clean.rgba().to_vec();
    cursor.paint(&mut shape, w, h, x, y);
    let missing: Vec<_> = off_colour(&shape, w, background).into_iter().filter(|p| !drawn.contains(p)).collect();
    assert_eq!(missing, [], "pixels of {cursor:?} at ({x},{y}) that the server did not paint");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xvnc_keeps_the_pointer_out_of_the_framebuffer() -> anyhow::Result<()> {
    let display = Display::xvnc(320, 240)?;
    pointer_stays_out_of_the_framebuffer(&display).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x11vnc_keeps_the_pointer_out_of_the_framebuffer() -> anyhow::Result<()> {
    // testbed starts x11vnc with -nocursor; ask for its default pointer handling instead.
    let display = Display::start(DisplayOptions {
        kind: DisplayKind::X11vnc,
        width: 320,
        height: 240,
        extra_args: vec!["-cursor".to_owned(), "most".to_owned()],
        ..DisplayOptions::default()
    })?;
    pointer_stays_out_of_the_framebuffer(&display).await
}

/// The crop of an RGBA image `width` pixels wide.
fn crop(rgba: &[u8], width: u32, x: u32, y: u32, w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for row in y..y + h {
        let at = (row as usize * width as usize + x as usize) * 4;
        out.extend_from_slice(&rgba[at..at + w as usize * 4]);
    }
    out
}

/// Compiles `tests/support/drm_cursor.c` into a static binary for the guest.
fn drm_cursor_program(dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let out = dir.join("drm_cursor");
    let status = std::process::Command::new("cc")
        .args(["-static", "-Os", "-o"])
        .arg(&out)
        .arg(support("drm_cursor.c"))
        .status()?;
    anyhow::ensure!(status.success(), "cc failed (Debian packages gcc, libc6-dev)");
    Ok(std::fs::read(out)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_qemu_sends_a_guests_hardware_cursor_and_never_paints_it() -> anyhow::Result<()> {
    let scratch = testbed::scratch_dir("drm-cursor")?;
    let program = drm_cursor_program(scratch.path())?;
    let mut opts = GuestOptions {
        vga: Some(Vga::Virtio),
        extra_files: vec![GuestFile { path: "/bin/drm_cursor".to_owned(), mode: 0o755, data: program }],
        ..GuestOptions::default()
    };
    opts.spec.modules.push("virtio_gpu".to_owned());
    let guest = Guest::boot_with(opts).await?;
    let long = ConnectOptions { timeout: Duration::from_secs(60), ..ConnectOptions::default() };
    let with = Client::connect(&guest.vnc_addr(), long.clone()).await?;
    let without =
        Client::connect(&guest.vnc_addr(), ConnectOptions { encodings: Some(without_cursor_encodings()), ..long })
            .await?;
    // No hardware cursor yet: no shape, so the pointer may be in the image as far as the client knows.
    assert!(with.cursor().is_none() && !with.pointer_out_of_framebuffer());

    let (w, h) = with.size();
    let (x, y) = (w - 100, h - 100);
    // (Not `settled`: the console's text cursor blinks. The pointer's spot is far from the text.)
    let before = with.refresh().await?;
    guest.serial_command(&format!("(drm_cursor {x} {y} > /dev/ttyS0 2>&1 &)"), Duration::from_secs(60)).await?;
    guest.wait_for_serial("drm_cursor: set", Duration::from_secs(60)).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !with.pointer_out_of_framebuffer() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "QEMU sent no pointer shape: {:?}", with.cursor());
        with.wait_for_damage(Duration::from_millis(200)).await?;
    }
    let cursor = with.cursor().expect("shape");
    assert_eq!((cursor.width(), cursor.height(), cursor.hotspot()), (64, 64, (0, 0)));
    for (i, px) in cursor.rgba().chunks(4).enumerate() {
        let (cx, cy) = (i % 64, i / 64);
        let want: [u8; 4] = if cx < 16 && cy < 24 { [255, 0, 0, 255] } else { [0, 0, 0, 0] };
        assert_eq!(px, want, "shape pixel ({cx},{cy})");
    }
    assert!(without.cursor().is_none());

    // Where the guest put its pointer, both clients' framebuffers show what was there before.
    for vnc in [&with, &without] {
        let after = vnc.refresh().await?;
        assert_eq!(
            crop(after.rgba(), w, x, y, 64, 64),
            crop(before.rgba(), w, x, y, 64, 64),
            "the hardware cursor was painted into the framebuffer"
        );
    }
    Ok(())
}
