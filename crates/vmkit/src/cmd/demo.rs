//! `vmkit demo` — the whole screen loop on a throwaway guest, offline.
//!
//! It builds a tiny guest from Debian packages (Debian's kernel and a busybox initramfs, cached after the first
//! run), boots it under QEMU (KVM when the probe shows KVM works, TCG otherwise) with VNC on 127.0.0.1, types a
//! command into the guest's VGA console over VNC, waits until the screen shows its answer, and prints the text it
//! reads from the screen. The console is read exactly, by matching glyphs cell by cell (see `ocr::console`), so
//! the command line must come back character for character. Nothing is downloaded but the two Debian packages, through the host's apt.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::output::outln;
use anyhow::Context;
use clap::Args as ClapArgs;
use debguest::initramfs::{BusyboxGuest, GuestSpec, Launch, busybox};
use qemu::{Qemu, SerialLog, StartOptions, StopPlan, Vnc};

/// `vmkit demo` arguments.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Keep the guest running after the demo (until Ctrl-C), to try `vmkit screen` commands on it.
    #[arg(long)]
    keep: bool,

    /// Accelerator: auto (probe KVM, fall back to TCG), kvm or tcg.
    #[arg(long, default_value = "auto", value_parser = ["auto", "kvm", "tcg"])]
    accel: String,

    /// Where built guests and the KVM probe's verdict are cached (default: $VMKIT_CACHE_DIR or ~/.cache/vmkit).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// Seconds the guest may take to boot to its shell.
    #[arg(long, value_name = "SECONDS", default_value_t = 240, value_parser = clap::value_parser!(u64).range(1..=86400))]
    boot_timeout: u64,
}

/// The command typed into the guest, and what its answer looks like on the screen.
const COMMAND: &str = "echo vmkit demo: $((6*7)) from $(uname -sr)";
const ANSWER: &str = "/demo: 42 from/";
/// QEMU's pause between key events it plays to the guest; vmkit paces its typing to match (see rfb's
/// `TypeOptions`), which types about 200 characters a second without losing any.
const KEY_DELAY_MS: u32 = 1;

/// Runs `vmkit demo`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(demo(args))
}

async fn demo(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let cache = images::cache_root(args.cache_dir.as_deref()).context("finding the cache directory")?;

    step("building the guest from Debian packages (cached after the first run)");
    let guest = {
        let cache = cache.clone();
        tokio::task::spawn_blocking(move || BusyboxGuest::build(&GuestSpec::default(), &cache)).await??
    };
    note(&format!(
        "kernel {} and busybox {}{}",
        guest.manifest.kernel_package.pinned(),
        guest.manifest.busybox_package.pinned(),
        if guest.cache_hit { " (cached)" } else { "" }
    ));

    let (accel, reason) = match args.accel.as_str() {
        "kvm" => (qemu::Accel::Kvm, "--accel kvm".to_owned()),
        "tcg" => (qemu::Accel::Tcg, "--accel tcg".to_owned()),
        _ => {
            let probe = qemu::KvmProbe::with_cache_dir(Some(cache.join("kvm-probe")));
            let choice = probe.choose().await.context("probing KVM")?;
            (choice.accel, choice.reason)
        }
    };
    step(&format!("booting it under {accel} ({reason})"));
    let dir = tempfile::Builder::new().prefix("vmkit-demo-").tempdir().context("creating a scratch directory")?;
    let (serial_socket, serial_log, qmp_socket) =
        (dir.path().join("serial.sock"), dir.path().join("serial.log"), dir.path().join("qmp.sock"));
    let mut cmd = guest.qemu_command(&Launch {
        accel,
        memory_mib: 256,
        vnc: Vnc { key_delay_ms: Some(KEY_DELAY_MS), ..Vnc::localhost(0) },
        id: Some("demo"),
        serial_socket: &serial_socket,
        serial_log: &serial_log,
        qmp_socket: &qmp_socket,
        name: "vmkit-demo".into(),
    });
    let qemu = qemu::start_with_port_retry(&mut cmd, StartOptions::default(), 8, qemu::pick_vnc_display)
        .await
        .context("starting QEMU")?;
    let port = cmd.vnc.as_ref().and_then(Vnc::port).context("QEMU has no VNC port")?;
    let addr = format!("127.0.0.1:{port}");

    let result = drive(&qemu, &serial_log, &addr, Duration::from_secs(args.boot_timeout), args.keep).await;
    step("powering the guest off");
    let plan = StopPlan { guest: None, powerdown: Some(Duration::from_secs(30)), quit: Some(Duration::from_secs(5)) };
    if let Err(e) = qemu.stop(plan).await {
        tracing::warn!("stopping QEMU: {e}");
    }
    let code = result?;
    note(&format!("done in {:.1} s", started.elapsed().as_secs_f64()));
    Ok(code)
}

/// Waits for the guest's shell, types the command over VNC and prints what OCR reads once the answer shows.
async fn drive(
    qemu: &Qemu,
    serial_log: &std::path::Path,
    addr: &str,
    boot: Duration,
    keep: bool,
) -> anyhow::Result<ExitCode> {
    let boot_started = Instant::now();
    SerialLog::new(serial_log)
        .wait_for(&qemu::Pattern::from(busybox::TTY1_READY), boot, Some(qemu))
        .await
        .context("waiting for the guest's shell")?;
    note(&format!("shell up after {:.1} s; VNC at {addr}", boot_started.elapsed().as_secs_f64()));

    let vnc = rfb::Client::connect(addr, rfb::ConnectOptions::default()).await.context("connecting to QEMU's VNC")?;
    step(&format!("typing `{COMMAND}` into the guest's screen"));
    vnc.type_text(&format!("{COMMAND}\n"), &rfb::TypeOptions::for_qemu_key_delay(KEY_DELAY_MS))
        .await
        .context("typing")?;

    step("reading the screen until the answer appears");
    let answer = ocr::matching::Pattern::parse(ANSWER).context("the demo's answer pattern")?;
    let text = super::screen::wait_for_text(&vnc, &answer, Duration::from_secs(30), &Default::default()).await?;
    outln!("{}", text.text());
    let seen = !ocr::matching::find(&text, &answer, &ocr::matching::MatchOptions::default()).is_empty();
    if !seen {
        eprintln!("vmkit demo: the guest's answer did not appear on the screen within 30 s");
        return Ok(ExitCode::from(crate::exit::FAILED));
    }
    // The console is read by matching its glyphs, not by OCR: the typed command comes back character for character.
    if text.lines.iter().any(|l| l.text.contains(COMMAND)) {
        note("the typed command reads back exactly (the VGA console is read glyph by glyph)");
    } else {
        eprintln!("vmkit demo: the typed command `{COMMAND}` did not read back exactly");
        return Ok(ExitCode::from(crate::exit::FAILED));
    }
    if keep {
        note(&format!("the guest keeps running: try `vmkit screen ocr --vnc {addr}`; Ctrl-C stops it"));
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            exit = qemu.exited() => note(&format!("QEMU exited: {exit}")),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn step(what: &str) {
    eprintln!("vmkit demo: {what}");
}

fn note(what: &str) {
    eprintln!("           {what}");
}
