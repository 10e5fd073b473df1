//! Typing throughput into QEMU's VNC server — the benchmark behind BENCHMARKS.md's typing figures.
//!
//! Boots vmkit's busybox test guest (Debian kernel, busybox initramfs; TCG where KVM is unusable), runs
//! `cat > /dev/ttyS0` on its VGA console, types random printable ASCII lines through VNC and compares what comes
//! out on the serial port. Prints characters per second and how many lines arrived wrong.
//!
//! ```text
//! cargo run --release -p rfb --example qemu_typing -- [--key-delay-ms N] [--client-delay-us U | --fast]
//!     [--chars 1000] [--runs 1]
//! ```
//! `--key-delay-ms` is QEMU's `-vnc ...,key-delay-ms=` (default: QEMU's own, 10 ms). The client's pause per key
//! event defaults to [`rfb::TypeOptions::for_qemu_key_delay`] of it (or [`rfb::TypeOptions::default`]).

#[path = "../tests/common/console.rs"]
mod console;

use std::time::Duration;

use rfb::{Client, ConnectOptions, TypeOptions};
use testbed_guests::{Guest, GuestOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut key_delay_ms, mut typing, mut chars, mut runs) = (None, None, 1000usize, 1u32);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| anyhow::anyhow!("{arg} needs a value"));
        match arg.as_str() {
            "--key-delay-ms" => key_delay_ms = Some(value()?.parse::<u32>()?),
            "--client-delay-us" => {
                typing =
                    Some(TypeOptions { key_delay: Duration::from_micros(value()?.parse()?), ..TypeOptions::fast() })
            }
            "--fast" => typing = Some(TypeOptions::fast()),
            "--chars" => chars = value()?.parse()?,
            "--runs" => runs = value()?.parse()?,
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    let typing =
        typing.unwrap_or_else(|| key_delay_ms.map_or_else(TypeOptions::default, TypeOptions::for_qemu_key_delay));
    let guest = Guest::boot_with(GuestOptions { key_delay_ms, ..GuestOptions::default() }).await?;
    let vnc =
        Client::connect(&guest.vnc_addr(), ConnectOptions { timeout: Duration::from_secs(60), ..Default::default() })
            .await?;
    println!(
        "QEMU key-delay-ms {}, client key delay {:?}, accel {}, extended keys {}",
        key_delay_ms.map_or_else(|| "default (10)".to_owned(), |n| n.to_string()),
        typing.key_delay,
        guest.accel(),
        vnc.supports_extended_keys()
    );
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64;
    for run in 0..runs {
        let mut rng = seed.wrapping_add(u64::from(run)).max(1);
        let text: String = (0..chars)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                char::from(0x20 + (rng % 95) as u8)
            })
            .collect();
        let lines: Vec<String> = text.as_bytes().chunks(100).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        // Long enough for QEMU to play every event at its key delay, with margin for a busy machine.
        let wait =
            Duration::from_secs(30) + Duration::from_millis(4 * chars as u64 * u64::from(key_delay_ms.unwrap_or(10)));
        let console::Typed { got, chars: typed, elapsed, complete } =
            console::type_lines_through_serial(&guest, &vnc, &lines, &typing, wait).await?;
        let wrong = lines.iter().zip(&got).filter(|(w, g)| w != g).count() + lines.len().abs_diff(got.len());
        let received: usize = got.iter().map(String::len).sum();
        println!(
            "run {run}: {typed} characters in {:.2} s = {:.0} chars/s; {wrong} of {} lines wrong; {received} of {} \
             characters came out{}",
            elapsed.as_secs_f64(),
            typed as f64 / elapsed.as_secs_f64(),
            lines.len(),
            text.len(),
            if complete { "" } else { "; the end marker was lost (rate meaningless)" }
        );
        if let (true, Err(e)) = (wrong > 0, console::check_lines(&lines, &got)) {
            println!("  first difference: {e}");
        }
    }
    Ok(())
}
