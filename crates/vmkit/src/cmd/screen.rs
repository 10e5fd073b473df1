//! `vmkit screen` — the screen tools a script author uses by hand: capture, read, find, click, type, press keys.
//!
//! Each invocation connects to the VNC server, does one thing and disconnects, so the commands compose in a
//! shell and show exactly what the automation engine would see and do. The `--json` forms are a stable,
//! documented interface (see `docs/screen.md`); text forms are for people.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};
use serde::Serialize;

use ocr::matching::MatchOptions;

use crate::exit::{self, BadInput};
use crate::output::outln;

/// `vmkit screen` arguments.
#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    conn: Connection,

    #[command(subcommand)]
    command: Command,
}

/// Where the screen is.
#[derive(Debug, ClapArgs)]
struct Connection {
    /// The VNC server, HOST:PORT with a TCP port (e.g. 127.0.0.1:5901).
    #[arg(long, global = true, value_name = "HOST:PORT", env = "VMKIT_VNC")]
    vnc: Option<String>,

    /// A file whose first line is the VNC password (as for `vmkit automate run`).
    #[arg(long, global = true, value_name = "FILE")]
    password_file: Option<PathBuf>,

    /// Seconds to wait for the server (connect, first frame) and, for `find`/`click`, for the text to appear.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Save the screen as a PNG.
    Capture {
        /// Output file.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Read the text on the screen (one line of text per screen line, or every word and line as JSON).
    Ocr {
        /// Print JSON: {"width","height","texts":[{text,confidence,bbox}],"lines":[{text,confidence,bbox,words}]}.
        #[arg(long)]
        json: bool,
    },
    /// Find text on the screen: every match top to bottom with its click point; exit 1 if there is none.
    Find {
        /// A phrase (case-insensitive, whole words before substrings) or /regex/.
        text: String,
        /// Print JSON: {"pattern","matches":[{text,kind,confidence,bbox,point}]}.
        #[arg(long)]
        json: bool,
        /// Wait up to --timeout for the text to appear instead of reading the screen once.
        #[arg(long)]
        wait: bool,
        /// Also try the lookalike tier (characters OCR confuses folded together: -/:/~, 7/?, l/1/|, ...), as a
        /// script step with `lookalikes: true` does.
        #[arg(long)]
        lookalikes: bool,
    },
    /// Click text found on the screen, or a point.
    Click {
        /// A phrase or /regex/ to click (waits up to --timeout for it).
        #[arg(required_unless_present = "at", conflicts_with = "at")]
        text: Option<String>,
        /// Which match: 0 is the first from the top, -1 the last.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        index: i64,
        /// Click this point instead: X,Y in framebuffer pixels.
        #[arg(long, value_name = "X,Y", value_parser = parse_point)]
        at: Option<(u32, u32)>,
        /// Mouse button: left, middle or right.
        #[arg(long, default_value = "left", value_parser = parse_button)]
        button: rfb::Button,
        /// Also try the lookalike tier, as a script step with `lookalikes: true` does.
        #[arg(long)]
        lookalikes: bool,
    },
    /// Type text (every character as a key press, Shift where needed).
    Type {
        /// The text.
        text: String,
        /// Pause after every key event, in milliseconds. Default: paced for QEMU's VNC server when the server is
        /// QEMU (so no key is dropped), none for other servers.
        #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=1000))]
        key_delay_ms: Option<u64>,
    },
    /// Press keys or chords, in order: enter, tab, esc, f1…f20, up, a, ctrl+alt+delete, …
    Key {
        /// Key names or chords.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// Runs `vmkit screen`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Validate everything that needs no server before connecting.
    let pattern = match &args.command {
        Command::Find { text, .. } | Command::Click { text: Some(text), .. } => Some(parse_pattern(text)?),
        _ => None,
    };
    let chords = match &args.command {
        Command::Key { names } => names
            .iter()
            .map(|n| n.parse::<rfb::Chord>().map_err(|e| BadInput(format!("key {n:?}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    let timeout = seconds(args.conn.timeout)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let vnc = connect(&args.conn, timeout).await?;
        match args.command {
            Command::Capture { output } => capture(&vnc, &output),
            Command::Ocr { json } => ocr_screen(&vnc, json).await,
            Command::Find { json, wait, lookalikes, .. } => {
                let pattern = pattern.context("pattern")?;
                let opts = MatchOptions { lookalikes, ..MatchOptions::default() };
                let found = find(&vnc, &pattern, if wait { timeout } else { Duration::ZERO }, &opts).await?;
                print_matches(&pattern, &found, json)?;
                Ok(ExitCode::from(if found.is_empty() { exit::FAILED } else { exit::OK }))
            }
            Command::Click { at: Some((x, y)), button, .. } => {
                check_inside(&vnc, x, y)?;
                vnc.click(x, y, button).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Click { index, button, lookalikes, .. } => {
                let pattern = pattern.context("pattern")?;
                let opts = MatchOptions { lookalikes, ..MatchOptions::default() };
                click_text(&vnc, &pattern, index, button, timeout, &opts).await
            }
            Command::Type { text, key_delay_ms } => {
                let opts = type_options(&vnc, key_delay_ms);
                vnc.type_text(&text, &opts).await.context("typing")?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Key { names } => {
                for (chord, name) in chords.iter().zip(&names) {
                    vnc.press_chord(chord).await.with_context(|| format!("pressing {name}"))?;
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// Connects and waits for the first full frame.
async fn connect(conn: &Connection, timeout: Duration) -> anyhow::Result<rfb::Client> {
    let addr = conn.vnc.as_deref().ok_or_else(|| BadInput("--vnc HOST:PORT is required".into()))?;
    validate_addr(addr)?;
    let password = match &conn.password_file {
        Some(path) => Some(crate::script::read_password_file(path).map_err(BadInput)?.expose().to_owned()),
        None => None,
    };
    let opts = rfb::ConnectOptions { password, timeout, ..rfb::ConnectOptions::default() };
    match rfb::Client::connect(addr, opts).await {
        Ok(vnc) => Ok(vnc),
        // Wrong or missing credentials are the caller's input (exit 2), as in `vmkit automate run`.
        Err(e) if e.is_auth_failure() => Err(BadInput(format!("VNC server at {addr}: {e}")).into()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("connecting to the VNC server at {addr}"))),
    }
}

/// `HOST:PORT` with a numeric TCP port (not a VNC display number).
fn validate_addr(addr: &str) -> Result<(), BadInput> {
    let bad = || BadInput(format!("--vnc {addr:?}: expected HOST:PORT with a TCP port, e.g. 127.0.0.1:5901"));
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(bad());
    }
    Ok(())
}

fn seconds(value: f64) -> Result<Duration, BadInput> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| *d <= exit::MAX_WAIT)
        .ok_or_else(|| BadInput(format!("--timeout {value}: expected seconds from 0 to {}", exit::MAX_WAIT.as_secs())))
}

fn parse_point(s: &str) -> Result<(u32, u32), String> {
    let (x, y) = s.split_once(',').ok_or_else(|| format!("expected X,Y, got {s:?}"))?;
    let num = |v: &str| v.trim().parse::<u32>().map_err(|_| format!("expected X,Y in pixels, got {s:?}"));
    Ok((num(x)?, num(y)?))
}

fn parse_button(s: &str) -> Result<rfb::Button, String> {
    match s.to_ascii_lowercase().as_str() {
        "left" | "1" => Ok(rfb::Button::Left),
        "middle" | "2" => Ok(rfb::Button::Middle),
        "right" | "3" => Ok(rfb::Button::Right),
        _ => Err(format!("expected left, middle or right, got {s:?}")),
    }
}

/// A phrase, or `/regex/` (case-insensitive) as in automation scripts.
fn parse_pattern(text: &str) -> Result<ocr::matching::Pattern, BadInput> {
    ocr::matching::Pattern::parse(text).map_err(|e| BadInput(e.to_string()))
}

fn check_inside(vnc: &rfb::Client, x: u32, y: u32) -> Result<(), BadInput> {
    let (w, h) = vnc.size();
    if x >= w || y >= h {
        return Err(BadInput(format!("--at {x},{y} is outside the {w}x{h} screen")));
    }
    Ok(())
}

fn type_options(vnc: &rfb::Client, key_delay_ms: Option<u64>) -> rfb::TypeOptions {
    match key_delay_ms {
        Some(ms) => rfb::TypeOptions { key_delay: Duration::from_millis(ms), ..rfb::TypeOptions::fast() },
        None if vnc.server_name().starts_with("QEMU") => rfb::TypeOptions::default(),
        None => rfb::TypeOptions::fast(),
    }
}

fn capture(vnc: &rfb::Client, output: &std::path::Path) -> anyhow::Result<ExitCode> {
    let frame = vnc.frame();
    let (w, h) = (frame.width(), frame.height());
    let image = image::RgbaImage::from_raw(w, h, frame.into_rgba()).context("framebuffer size")?;
    crate::output::write_atomically(output, |file| {
        image::DynamicImage::ImageRgba8(image).to_rgb8().write_to(file, image::ImageFormat::Png)?;
        Ok(())
    })
    .with_context(|| format!("writing {}", output.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// Reads the current frame (OCR runs on a blocking thread; the engine loads once per process).
async fn read_screen(frame: rfb::Frame) -> anyhow::Result<ocr::ScreenText> {
    tokio::task::spawn_blocking(move || {
        let mut engine = engine()?;
        let pixels = ocr::Frame::packed(frame.rgba(), frame.width(), frame.height(), ocr::PixelLayout::Rgbx)?;
        Ok(engine.read(&pixels)?)
    })
    .await?
}

fn engine() -> anyhow::Result<std::sync::MutexGuard<'static, ocr::Engine>> {
    use std::sync::{Mutex, OnceLock};
    static ENGINE: OnceLock<Mutex<ocr::Engine>> = OnceLock::new();
    if ENGINE.get().is_none() {
        let engine = ocr::Engine::new().context("starting the OCR engine")?;
        let _ = ENGINE.set(Mutex::new(engine));
    }
    let lock = ENGINE.get().context("OCR engine")?;
    Ok(lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
}

async fn ocr_screen(vnc: &rfb::Client, json: bool) -> anyhow::Result<ExitCode> {
    let text = read_screen(vnc.frame()).await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&text)?);
    } else {
        for line in &text.lines {
            outln!("{}", line.text);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the screen until `pattern` is found or `wait` passes (zero: read once); returns every match (empty when
/// the text did not appear).
async fn find(
    vnc: &rfb::Client,
    pattern: &ocr::matching::Pattern,
    wait: Duration,
    opts: &MatchOptions,
) -> anyhow::Result<Vec<ocr::matching::Match>> {
    let text = wait_for_text(vnc, pattern, wait, opts).await?;
    Ok(ocr::matching::find(&text, pattern, opts))
}

/// Reads the screen until `pattern` is on it or `wait` passes (zero: read once), and returns the last read.
/// Between reads it sleeps until the screen changes: an unchanged screen is not read again.
pub async fn wait_for_text(
    vnc: &rfb::Client,
    pattern: &ocr::matching::Pattern,
    wait: Duration,
    opts: &MatchOptions,
) -> anyhow::Result<ocr::ScreenText> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        vnc.take_damage();
        let text = read_screen(vnc.frame()).await?;
        let found = !ocr::matching::find(&text, pattern, opts).is_empty();
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if found || left.is_zero() {
            return Ok(text);
        }
        vnc.wait_for_damage(left).await.context("waiting for the screen to change")?;
    }
}

/// `find --json` output.
#[derive(Serialize)]
struct FindJson<'a> {
    pattern: String,
    matches: Vec<MatchJson<'a>>,
}

/// One match as `--json` prints it.
#[derive(Serialize)]
struct MatchJson<'a> {
    text: &'a str,
    kind: ocr::matching::MatchKind,
    confidence: f32,
    bbox: ocr::Rect,
    point: ocr::Point,
}

fn print_matches(pattern: &ocr::matching::Pattern, found: &[ocr::matching::Match], json: bool) -> anyhow::Result<()> {
    if json {
        let matches: Vec<_> = found
            .iter()
            .map(|m| MatchJson { text: &m.text, kind: m.kind, confidence: m.confidence, bbox: m.bbox, point: m.point })
            .collect();
        let out = FindJson { pattern: pattern.describe(), matches };
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else if found.is_empty() {
        eprintln!("vmkit: {:?} is not on the screen", pattern.describe());
    } else {
        for m in found {
            let b = m.bbox;
            outln!(
                "{},{}\t{}x{}+{}+{}\t{:.0}%\t{}\t{}",
                m.point.x,
                m.point.y,
                b.width,
                b.height,
                b.x,
                b.y,
                m.confidence,
                m.kind.name(),
                m.text
            );
        }
    }
    Ok(())
}

async fn click_text(
    vnc: &rfb::Client,
    pattern: &ocr::matching::Pattern,
    index: i64,
    button: rfb::Button,
    timeout: Duration,
    opts: &MatchOptions,
) -> anyhow::Result<ExitCode> {
    let found = find(vnc, pattern, timeout, opts).await?;
    let Some(target) = ocr::matching::pick(&found, index) else {
        if found.is_empty() {
            eprintln!("vmkit: {:?} did not appear on the screen within {timeout:?}", pattern.describe());
        } else {
            eprintln!("vmkit: {:?} matched {} time(s); there is no index {index}", pattern.describe(), found.len());
        }
        return Ok(ExitCode::from(exit::FAILED));
    };
    vnc.click(target.point.x, target.point.y, button).await.context("clicking")?;
    outln!("{},{}\t{}", target.point.x, target.point.y, target.text);
    Ok(ExitCode::SUCCESS)
}
