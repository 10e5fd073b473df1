//! `vmkit automate`: check, run and replay YAML automation scripts.
//!
//! The command line only maps arguments onto the `automate` crate; loading, checking and running live there so
//! that the `yaml-automation-runner` alias binary and library users get the same behaviour.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::exit;
use crate::output::outln;

/// Drive a VM's screen from YAML scripts: wait for text, click, type, press keys, verify over SSH.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Check scripts without connecting anywhere: every problem of every file is listed as FILE:LINE:COL.
    /// Exit 0 when all are valid, 2 otherwise.
    Check(CheckArgs),
    /// Run a script against a VNC server, then its SSH health check. Progress goes to stderr; exit 0 when every
    /// step and the health check passed, 1 when one failed, 2 for bad input (script, arguments, credentials).
    Run(Box<RunArgs>),
    /// Run a script offline against the screens an earlier `run --debug` recorded (its debug directory): waits
    /// advance through the recorded frames, each click, key and typed text is checked against what the recording
    /// did. No VM, no VNC, no SSH (the health check is not run); the same result every time. Exit 0 when every
    /// step passed, 1 when one failed, 2 for bad input (script, arguments, a recording that cannot be read).
    Replay(Box<ReplayArgs>),
}

/// `vmkit automate replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The YAML script.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The recording: the debug directory of a `vmkit automate run --debug DIR` (or its `frames` directory).
    #[arg(long, value_name = "DIR")]
    frames: PathBuf,
    /// How far a click may land from the recorded one, in pixels along each axis.
    #[arg(long, value_name = "PX", default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=100))]
    tolerance: u32,
    /// Write screenshots, OCR JSON, automation.log and report.html of the replay into DIR (not the recording's
    /// directory), or a fresh unattended-YYYYMMDD-HHMMSS directory under the temp dir.
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    debug: Option<Option<PathBuf>>,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    steps: StepArgs,
}

/// `vmkit automate run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The YAML script.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The VNC server, e.g. 127.0.0.1:5901 (a TCP port, not a display number).
    #[arg(long, value_name = "HOST:PORT")]
    vnc: String,
    /// A file whose first line is the VNC password.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Where the SSH health check connects (default: the script's `host`, else the VNC host; port 22).
    #[arg(long, value_name = "HOST[:PORT]")]
    ssh: Option<String>,
    /// The machine's address for the health check (the original runner's flag; `--ssh` wins).
    #[arg(long, value_name = "IP")]
    vm_ip: Option<String>,
    /// SSH port for the health check (default: from `--ssh`, else the script's `port`, else 22).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    ssh_port: Option<u16>,
    /// Write screenshots, OCR JSON, automation.log and report.html; into DIR, or a fresh
    /// unattended-YYYYMMDD-HHMMSS directory under the temp dir.
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    debug: Option<Option<PathBuf>>,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Seconds to keep trying to reach the VNC server (at the start and after it drops) before failing.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    reconnect_timeout: f64,
    /// Pause after each key event when typing, in milliseconds, 0 to 1000 (the default suits QEMU; X servers
    /// take 0).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=1000))]
    key_delay_ms: Option<u64>,
    #[command(flatten)]
    steps: StepArgs,
}

/// The step timing flags `run` and `replay` share.
#[derive(Debug, clap::Args)]
struct StepArgs {
    /// Seconds a `click` waits for its text when the step does not say.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    click_timeout: f64,
    /// Replace the script's boot_wait (seconds).
    #[arg(long, value_name = "SECS")]
    boot_wait: Option<f64>,
    /// Seconds a click's target must have been unchanged before the click (a step's `still` wins).
    #[arg(long, value_name = "SECS", default_value_t = 0.3)]
    still: f64,
    /// Seconds to watch for a click's visible effect before clicking again (0: do not watch).
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    click_confirm: f64,
    /// How many times a click with no visible effect is made again (a step's `retries` wins).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=10))]
    click_retries: u32,
    /// Seconds the button is held down in a click.
    #[arg(long, value_name = "SECS", default_value_t = 0.1)]
    click_hold: f64,
    /// Least seconds between a click's release and moving the pointer away (slowly polled USB tablets).
    #[arg(long, value_name = "SECS", default_value_t = 0.3)]
    park_delay: f64,
}

impl RunArgs {
    /// Maps the flags onto the runner's options.
    pub fn options(&self) -> anyhow::Result<automate::RunOptions> {
        let bad = |m: String| exit::BadInput(m);
        let mut opts = automate::RunOptions::new(self.vnc.clone());
        let (host, port) = crate::script::split_host_port(&self.vnc).map_err(|e| bad(format!("--vnc {e}")))?;
        if port.is_none() {
            return Err(bad(format!("--vnc {host:?}: give HOST:PORT (a TCP port, e.g. 127.0.0.1:5900)")).into());
        }
        if let Some(f) = &self.password_file {
            opts.vnc_password = Some(crate::script::read_password_file(f).map_err(bad)?);
        }
        if let Some(vm_ip) = &self.vm_ip {
            opts.ssh_host = Some(vm_ip.clone());
        }
        if let Some(ssh) = &self.ssh {
            let (host, port) = crate::script::split_host_port(ssh).map_err(|e| bad(format!("--ssh {e}")))?;
            opts.ssh_host = Some(host);
            opts.ssh_port = port;
        }
        if self.ssh_port.is_some() {
            opts.ssh_port = self.ssh_port;
        }
        opts.debug = self.debug.clone();
        opts.reconnect.budget = seconds(self.reconnect_timeout, "--reconnect-timeout")?;
        if let Some(ms) = self.key_delay_ms {
            opts.typing.key_delay = Duration::from_millis(ms);
        }
        self.steps.apply(&mut opts)?;
        Ok(opts)
    }
}

impl StepArgs {
    fn apply(&self, opts: &mut automate::RunOptions) -> anyhow::Result<()> {
        opts.click_timeout = seconds(self.click_timeout, "--click-timeout")?;
        opts.boot_wait = self.boot_wait.map(|s| seconds(s, "--boot-wait")).transpose()?;
        opts.clicks.still = seconds(self.still, "--still")?;
        opts.clicks.confirm = seconds(self.click_confirm, "--click-confirm")?;
        opts.clicks.retries = self.click_retries;
        opts.clicks.timing.hold = seconds(self.click_hold, "--click-hold")?;
        opts.clicks.park_delay = seconds(self.park_delay, "--park-delay")?;
        Ok(())
    }
}

impl ReplayArgs {
    /// Maps the flags onto the replay's options.
    pub fn options(&self) -> anyhow::Result<automate::ReplayOptions> {
        let mut opts = automate::ReplayOptions::new(self.frames.clone());
        opts.tolerance = self.tolerance;
        opts.run.debug = self.debug.clone();
        self.steps.apply(&mut opts.run)?;
        Ok(opts)
    }
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).ok().filter(|d| *d <= exit::MAX_WAIT).ok_or_else(|| {
        exit::BadInput(format!("{flag} {value}: expected seconds from 0 to {}", exit::MAX_WAIT.as_secs())).into()
    })
}

/// Runs a script with already-mapped options (shared with the `yaml-automation-runner` alias).
pub fn run_script(config: &std::path::Path, opts: &automate::RunOptions, json: bool) -> ExitCode {
    ExitCode::from(crate::script::run_command(config, opts, json))
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// Script files.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// Runs `vmkit automate …`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Sub::Check(check) => run_check(&check),
        Sub::Run(run) => {
            let opts = run.options().context("bad arguments")?;
            Ok(run_script(&run.config, &opts, run.json))
        }
        Sub::Replay(replay) => {
            let opts = replay.options().context("bad arguments")?;
            Ok(ExitCode::from(crate::script::replay_command(&replay.config, &opts, replay.json)))
        }
    }
}

fn run_check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let mut bad = 0usize;
    for file in &args.files {
        match automate::load_file(file) {
            Ok(script) => outln!("{}: ok ({} steps)", file.display(), script.steps.len()),
            Err(err) => {
                bad += 1;
                for line in err.diagnostics() {
                    eprintln!("{line}");
                }
            }
        }
    }
    if bad == 0 {
        Ok(ExitCode::from(exit::OK))
    } else {
        eprintln!("vmkit: {bad} of {} scripts have errors", args.files.len());
        Ok(ExitCode::from(exit::BAD_INPUT))
    }
}
