//! Acceptance tests against real VNC servers: TigerVNC's Xvnc (QEMU Extended Key Events, ExtendedDesktopSize)
//! and x11vnc (keysyms only), showing real Tk windows.

mod common;

use std::time::Duration;

use common::{WAIT, all_printable_ascii, entry_window, image_window, random_ascii, seed, test_image};
use rfb::{Button, Client, ConnectOptions, Encoding, Error, TypeOptions, Version};
use testbed::x11::DisplayOptions;
use testbed::{Display, DisplayKind};

fn opts() -> ConnectOptions {
    ConnectOptions { timeout: WAIT, ..ConnectOptions::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xvnc_security_none() -> anyhow::Result<()> {
    let display = Display::xvnc(800, 600)?;
    let vnc = Client::connect(&display.vnc_addr(), opts()).await?;
    assert_eq!(vnc.size(), (800, 600));
    assert_eq!(vnc.version(), Version::V3_8);
    assert!(!vnc.server_name().is_empty());
    let frame = vnc.frame();
    assert_eq!((frame.width(), frame.height(), frame.rgba().len()), (800, 600, 800 * 600 * 4));
    assert!(vnc.supports_extended_keys(), "Xvnc acknowledges QEMU Extended Key Events with the first update");
    vnc.status()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xvnc_vnc_auth_right_and_wrong_password() -> anyhow::Result<()> {
    let display = Display::start(DisplayOptions {
        kind: DisplayKind::Xvnc,
        width: 640,
        height: 480,
        password: Some("s3cret!x".to_owned()),
        ..DisplayOptions::default()
    })?;
    let addr = display.vnc_addr();
    let vnc = Client::connect(&addr, ConnectOptions { password: Some("s3cret!x".to_owned()), ..opts() }).await?;
    assert_eq!(vnc.size(), (640, 480));
    drop(vnc);

    let err =
        Client::connect(&addr, ConnectOptions { password: Some("wrong".to_owned()), ..opts() }).await.unwrap_err();
    assert!(matches!(err, Error::AuthFailed { .. }), "{err:?}");
    assert!(err.is_auth_failure() && !err.is_connection_lost());
    eprintln!("wrong password: {err}");

    let err = Client::connect(&addr, opts()).await.unwrap_err();
    assert!(matches!(err, Error::PasswordRequired), "{err:?}");
    Ok(())
}

/// RFB 3.3 (Xvnc's `-Protocol3.3`): the server picks the security type, and a failed VNC Authentication has no
/// reason string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xvnc_protocol_3_3_with_vnc_auth() -> anyhow::Result<()> {
    let xvnc = Display::start(DisplayOptions {
        width: 320,
        height: 200,
        password: Some("pw33".to_owned()),
        extra_args: vec!["-Protocol3.3".to_owned()],
        ..DisplayOptions::default()
    })?;
    let vnc = Client::connect(&xvnc.vnc_addr(), ConnectOptions { password: Some("pw33".to_owned()), ..opts() }).await?;
    assert_eq!(vnc.version(), Version::V3_3);
    assert_eq!(vnc.size(), (320, 200));
    drop(vnc);
    let err = Client::connect(&xvnc.vnc_addr(), ConnectOptions { password: Some("nope".to_owned()), ..opts() })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AuthFailed { .. }), "{err:?}");
    Ok(())
}

/// Shows a known image and compares every pixel of the capture, over Raw and over ZRLE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pixels_are_exact_with_raw_and_zrle() -> anyhow::Result<()> {
    let display = Display::xvnc(640, 400)?;
    let (w, h) = (600, 360);
    let (ppm, pixels) = test_image(w, h, 7);
    let _window = image_window(&display, &ppm, "rfb-pixels")?;
    for encoding in [Encoding::Raw, Encoding::Zrle] {
        let mut encodings = vec![encoding];
        encodings.extend(Encoding::PSEUDO);
        let vnc = Client::connect(&display.vnc_addr(), ConnectOptions { encodings: Some(encodings), ..opts() }).await?;
        let frame = vnc.refresh().await?;
        let mut wrong = 0;
        for y in 0..h {
            for x in 0..w {
                let want = pixels[(y * w + x) as usize];
                let got = frame.pixel(x, y).unwrap();
                if got[..3] != want {
                    if wrong < 5 {
                        eprintln!("{encoding:?}: pixel ({x},{y}) is {got:?}, want {want:?}");
                    }
                    wrong += 1;
                }
            }
        }
        assert_eq!(wrong, 0, "{encoding:?}: {wrong} pixels differ");
    }
    Ok(())
}

/// The consumer is woken by a screen change, without polling, and sees the new pixels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_wakes_the_waiter() -> anyhow::Result<()> {
    let display = Display::xvnc(320, 240)?;
    let vnc = Client::connect(&display.vnc_addr(), opts()).await?;
    vnc.take_damage();
    assert_eq!(vnc.wait_for_damage(Duration::from_millis(300)).await?, None, "a quiet screen has no damage");
    let status = display.command("xsetroot").args(["-solid", "#ff8000"]).status()?;
    assert!(status.success());
    let damage = vnc.wait_for_damage(WAIT).await?.expect("damage after xsetroot");
    assert!(!damage.is_empty());
    let frame = vnc.frame();
    assert_eq!(frame.pixel(10, 10), Some([255, 128, 0, 255]));
    assert_eq!(frame.pixel(319, 239), Some([255, 128, 0, 255]));
    Ok(())
}

/// `xrandr --fb` changes Xvnc's screen size mid-session: the client reallocates and reports a full damage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_resizes_mid_session() -> anyhow::Result<()> {
    let display = Display::xvnc(1024, 768)?;
    // Both ways a server announces a new size: ExtendedDesktopSize (preferred by Xvnc) and plain DesktopSize.
    for extended in [true, false] {
        let mut encodings = vec![Encoding::Raw, Encoding::DesktopSize, Encoding::LastRect];
        if extended {
            encodings.push(Encoding::ExtendedDesktopSize);
        }
        let vnc = Client::connect(&display.vnc_addr(), ConnectOptions { encodings: Some(encodings), ..opts() }).await?;
        // `xrandr --fb` cannot shrink the screen below the output's mode (1024x768), so each round grows it.
        let (w0, h0) = vnc.size();
        let (w, h) = (w0 + 160, h0 + 120);
        vnc.take_damage();
        display.resize(w, h)?;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let damage = vnc.wait_for_damage(left).await?;
            let damage = damage.unwrap_or_else(|| panic!("no resize to {w}x{h} (extended: {extended})"));
            if vnc.size() == (w, h) {
                assert!(damage.contains(&rfb::Rect::new(0, 0, w, h)), "a resize damages the whole screen: {damage:?}");
                break;
            }
        }
        let frame = vnc.frame();
        assert_eq!((frame.width(), frame.height(), frame.rgba().len()), (w, h, (w * h * 4) as usize));
        // After a resize the client asks for a full update; the screen stays usable.
        let frame = vnc.refresh().await?;
        assert_eq!((frame.width(), frame.height()), (w, h));
        vnc.click(w - 1, h - 1, Button::Left).await?;
    }
    Ok(())
}

/// Where the typing goes: Xvnc typing scancodes (`-RawKeyboard`), or x11vnc typing keysyms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    XvncScancodes,
    X11vncKeysyms,
}

async fn type_into_entry(target: Target, text: &str, title: &str) -> anyhow::Result<()> {
    let display = match target {
        // Xvnc maps keysyms to its own keymap unless told to type the scancodes of QEMU Extended Key Events,
        // which would leave the scancode path untested.
        Target::XvncScancodes => {
            Display::start(DisplayOptions { extra_args: vec!["-RawKeyboard".to_owned()], ..DisplayOptions::default() })?
        }
        Target::X11vncKeysyms => Display::x11vnc(1024, 768)?,
    };
    let (mut window, out) = entry_window(&display, title)?;
    let addr = display.vnc_addr();
    let vnc = Client::connect(&addr, opts()).await?;
    assert_eq!(vnc.supports_extended_keys(), target == Target::XvncScancodes);
    // No window manager: keyboard focus follows the pointer.
    vnc.click(400, 30, Button::Left).await?;
    vnc.type_text(text, &TypeOptions::fast()).await?;
    vnc.press(rfb::Key::ENTER).await?;
    let status = tokio::task::block_in_place(|| window.wait_timeout(WAIT))?;
    assert!(status.success(), "entry window: {status}\n{}", window.log());
    let typed = std::fs::read_to_string(&out)?;
    if typed != text {
        let at = typed.chars().zip(text.chars()).take_while(|(a, b)| a == b).count();
        panic!("typed text differs from character {at} on ({target:?}):\n got: {typed:?}\nwant: {text:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_every_printable_ascii_with_extended_keys_xvnc() -> anyhow::Result<()> {
    type_into_entry(Target::XvncScancodes, &all_printable_ascii(), "rfb-type-ascii-xvnc").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_every_printable_ascii_with_keysyms_x11vnc() -> anyhow::Result<()> {
    type_into_entry(Target::X11vncKeysyms, &all_printable_ascii(), "rfb-type-ascii-x11vnc").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_1000_random_characters_xvnc() -> anyhow::Result<()> {
    type_into_entry(Target::XvncScancodes, &random_ascii(seed(), 1000), "rfb-type-random-xvnc").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_1000_random_characters_x11vnc() -> anyhow::Result<()> {
    type_into_entry(Target::X11vncKeysyms, &random_ascii(seed(), 1000), "rfb-type-random-x11vnc").await
}

/// The server going away surfaces as a lost connection, to waiters and to senders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_exit_is_a_lost_connection() -> anyhow::Result<()> {
    let mut display = Display::x11vnc(320, 240)?;
    let vnc = Client::connect(&display.vnc_addr(), opts()).await?;
    tokio::task::block_in_place(|| display.stop_vnc());
    let err = loop {
        match vnc.wait_for_damage(WAIT).await {
            Err(e) => break e,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error within {WAIT:?} after the server exited"),
        }
    };
    assert!(err.is_connection_lost(), "{err:?}");
    assert!(!err.is_protocol_violation());
    let again = vnc.pointer(1, 1, 0).await.unwrap_err();
    assert!(again.is_connection_lost(), "{again:?}");
    Ok(())
}
