//! Typing into the busybox test guest's VGA console over QEMU's VNC server, checked on its serial log.
//! Shared by the `e2e_qemu_*` tests and the `qemu_typing` benchmark example.

use std::time::{Duration, Instant};

use anyhow::Context;
use rfb::{Chord, Client, TypeOptions};
use testbed_guests::Guest;

static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// What came out of [`type_lines_through_serial`].
pub struct Typed {
    /// The lines that came out on the serial port.
    pub got: Vec<String>,
    /// Characters typed: the lines, their Enters, and the end marker line.
    pub chars: usize,
    /// From the first key sent until the end marker came out (or the wait for it gave up).
    pub elapsed: Duration,
    /// False when the end marker never came out (keys were lost); `got` then holds whatever did.
    pub complete: bool,
}

/// Runs `cat > /dev/ttyS0` on the VGA console, types `lines` into it (each followed by Enter) and an end marker
/// line, and reports what came out on the serial port.
pub async fn type_lines_through_serial(
    guest: &Guest,
    vnc: &Client,
    lines: &[String],
    opts: &TypeOptions,
    timeout: Duration,
) -> anyhow::Result<Typed> {
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (start, end) = (format!("vmkit-rfb-start-{n}"), format!("vmkit-rfb-end-{n}"));
    // The markers are split with "" in what is typed, so only the command's output contains them whole.
    let command = format!("echo vmkit-rfb-\"\"start-{n} > /dev/ttyS0; cat > /dev/ttyS0\n");
    vnc.type_text(&command, opts).await?;
    guest.wait_for_serial(start.as_str(), timeout).await.context("the cat command did not start")?;
    // cat starts right after echo; give it a moment to set up before the first line.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    for line in lines {
        vnc.type_text(line, opts).await?;
        vnc.type_text("\n", opts).await?;
    }
    vnc.type_text(&format!("{end}\n"), opts).await?;
    let complete = guest.wait_for_serial(format!("{end}\r\n").as_str(), timeout).await.is_ok();
    let elapsed = t0.elapsed();
    let chars = lines.iter().map(|l| l.chars().count() + 1).sum::<usize>() + end.len() + 1;
    vnc.press_chord(&Chord::parse("ctrl+d")?).await?;
    let log = guest.serial_log().contents()?;
    let from = log.rfind(&format!("{start}\r\n")).context("start marker")? + start.len() + 2;
    let to = log[from..].find(&format!("{end}\r\n")).map_or(log.len(), |i| i + from);
    let got = log[from..to].split("\r\n").filter(|l| !l.is_empty()).map(str::to_owned).collect();
    Ok(Typed { got, chars, elapsed, complete })
}

/// Compares typed and received lines; on a difference, says where.
pub fn check_lines(want: &[String], got: &[String]) -> anyhow::Result<()> {
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        if w != g {
            let at = w.chars().zip(g.chars()).take_while(|(a, b)| a == b).count();
            anyhow::bail!("line {i} differs from character {at}:\n got: {g:?}\nwant: {w:?}");
        }
    }
    anyhow::ensure!(want.len() == got.len(), "{} lines typed, {} came out: {got:?}", want.len(), got.len());
    Ok(())
}
