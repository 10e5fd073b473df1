//! Captures a VNC server's screen to a PPM file and reports how long it took — the vmkit side of the capture
//! benchmark in BENCHMARKS.md.
//!
//! ```text
//! cargo run --release -p rfb --example capture -- ADDR OUT.ppm [--repeat N] [--encodings raw,copyrect,zrle]
//!     [--password-file F]
//! ```
//! One run connects, waits for the first complete frame and writes it (what a one-shot `capture` command does).
//! With `--repeat N` it then asks N times for a full update over the same connection and prints the time of
//! each (the kept-connection figure), and the cost of a snapshot of the current screen (what a consumer on a
//! kept connection normally takes: the background reader keeps it current).

use std::time::Instant;

use rfb::{Client, ConnectOptions, Encoding};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut addr, mut out, mut repeat, mut opts) = (None, None, 0u32, ConnectOptions::default());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--repeat" => repeat = args.next().ok_or("--repeat needs a number")?.parse()?,
            "--password-file" => {
                let path = args.next().ok_or("--password-file needs a path")?;
                opts.password = Some(std::fs::read_to_string(path)?.trim_end_matches(['\r', '\n']).to_owned());
            }
            "--encodings" => {
                let mut list = Vec::new();
                for name in args.next().ok_or("--encodings needs a list")?.split(',') {
                    list.push(match name {
                        "raw" => Encoding::Raw,
                        "copyrect" => Encoding::CopyRect,
                        "zrle" => Encoding::Zrle,
                        other => return Err(format!("unknown encoding {other:?} (raw, copyrect, zrle)").into()),
                    });
                }
                list.extend(Encoding::PSEUDO);
                opts.encodings = Some(list);
            }
            _ if addr.is_none() => addr = Some(arg),
            _ if out.is_none() => out = Some(arg),
            other => return Err(format!("unexpected argument {other:?}").into()),
        }
    }
    let (Some(addr), Some(out)) = (addr, out) else {
        return Err("usage: capture ADDR OUT.ppm [--repeat N] [--encodings LIST] [--password-file F]".into());
    };
    let t0 = Instant::now();
    let vnc = Client::connect(&addr, opts).await?;
    let frame = vnc.frame();
    let connected = t0.elapsed();
    std::fs::write(&out, frame.to_ppm())?;
    // Holding a snapshot makes the next update copy the pixels (copy on write); the loop below holds none.
    let (width, height) = (frame.width(), frame.height());
    drop(frame);
    eprintln!(
        "connect+capture {width}x{height}: {:.1} ms (server {:?}, encodings {:?})",
        connected.as_secs_f64() * 1e3,
        vnc.server_name(),
        vnc.encodings().iter().filter(|e| !e.is_pseudo()).collect::<Vec<_>>()
    );
    if repeat > 0 {
        let mut times = Vec::with_capacity(repeat as usize);
        for _ in 0..repeat {
            let t = Instant::now();
            vnc.refresh().await?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        eprintln!(
            "kept connection, {repeat} full updates: mean {mean:.1} ms, median {:.1} ms, min {:.1} ms, max {:.1} ms",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1]
        );
        // What a consumer that keeps the connection usually does instead: the background reader keeps the
        // framebuffer current, so taking the screen needs no request at all.
        let t = Instant::now();
        let frames: Vec<_> = (0..1000).map(|_| vnc.frame()).collect();
        let per = t.elapsed().as_secs_f64() * 1e6 / frames.len() as f64;
        eprintln!("kept connection, frame() snapshot of the current screen: {per:.2} µs");
    }
    Ok(())
}
