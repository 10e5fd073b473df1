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
    /// Record a script by demonstration: a VNC proxy on a loopback address; use the machine through it with any
    /// VNC viewer, and each click becomes `wait` + `click` on the text under the pointer (or `click_at`), typing
    /// becomes `type`, keys `key`/`hotkey`. Disconnecting the viewer or Ctrl-C writes the script and, in
    /// `--frames`, the recording that `replay` checks it against. Exit 0 when written, 1 when the session
    /// failed, 2 for bad input (arguments, files in the way).
    Record(Box<RecordArgs>),
}

/// `vmkit automate record`.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The VNC server to record, e.g. 127.0.0.1:5901 (a TCP port, not a display number).
    #[arg(long, value_name = "HOST:PORT")]
    vnc: String,
    /// A file whose first line is the VNC password, for the recorder's own connection (the viewer
    /// authenticates to the server itself).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Where the viewer connects: a loopback address and port (another address needs --allow-remote-viewer).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:5999")]
    listen: std::net::SocketAddr,
    /// Accept a viewer from another machine (with --listen on a non-loopback address). Such a viewer must
    /// authenticate to the VNC server (VNC Authentication; a server without a password is refused) — and VNC
    /// Authentication is weak (DES, 8 characters, no encryption of the session): use it on a trusted network.
    #[arg(long)]
    allow_remote_viewer: bool,
    /// The script to write.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    /// Where the recording goes (index.jsonl and NNNNNN.png); default: `<script name>.frames` beside the
    /// script.
    #[arg(long, value_name = "DIR")]
    frames: Option<PathBuf>,
    /// Replace an existing script and recording.
    #[arg(long)]
    force: bool,
    /// Leave typed characters out of the script and the recording (a comment says how many were typed where);
    /// for sessions that type passwords.
    #[arg(long)]
    no_type_text: bool,
    /// Seconds to wait for the server while connecting and during the handshake.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    timeout: f64,
}

impl RecordArgs {
    /// Maps the flags onto the recorder's options.
    pub fn options(&self) -> anyhow::Result<automate::record::RecordOptions> {
        let bad = |m: String| exit::BadInput(m);
        let (host, port) = crate::script::split_host_port(&self.vnc).map_err(|e| bad(format!("--vnc {e}")))?;
        if port.is_none() {
            return Err(bad(format!("--vnc {host:?}: give HOST:PORT (a TCP port, e.g. 127.0.0.1:5900)")).into());
        }
        let password = match &self.password_file {
            Some(f) => Some(crate::script::read_password_file(f).map_err(bad)?),
            None => None,
        };
        let frames = self.frames.clone().unwrap_or_else(|| {
            let mut name = self.output.file_stem().unwrap_or_default().to_os_string();
            name.push(".frames");
            self.output.with_file_name(name)
        });
        Ok(automate::record::RecordOptions {
            vnc: self.vnc.clone(),
            password,
            listen: self.listen,
            allow_remote: self.allow_remote_viewer,
            output: self.output.clone(),
            frames,
            force: self.force,
            type_text: !self.no_type_text,
            timeout: seconds(self.timeout, "--timeout")?,
        })
    }
}

fn run_record(args: &RecordArgs) -> anyhow::Result<ExitCode> {
    let opts = args.options().context("bad arguments")?;
    if let Err(e) = automate::record::check_options(&opts) {
        return Err(exit::BadInput(e.to_string()).into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let result = runtime.block_on(automate::record::record(&opts, stop, &mut |line| eprintln!("{line}")));
    match result {
        Ok(summary) => {
            let c = summary.counts;
            eprintln!(
                "{}: wrote {} steps ({} clicks on text, {} by position, {} typed texts, {} keys; {} notes) to {}",
                summary.ended,
                summary.steps,
                c.clicks,
                c.clicks_at,
                c.typed,
                c.keys,
                c.notes,
                summary.output.display()
            );
            outln!("{}", summary.output.display());
            eprintln!(
                "recording in {}; check the script with: vmkit automate replay --config {} --frames {}",
                summary.frames.display(),
                summary.output.display(),
                summary.frames.display()
            );
            Ok(ExitCode::from(exit::OK))
        }
        Err(e) if e.is_bad_input() => Err(exit::BadInput(e.to_string()).into()),
        Err(e) => {
            eprintln!("vmkit: {e}");
            Ok(ExitCode::from(exit::FAILED))
        }
    }
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
    vars: VarArgs,
    #[command(flatten)]
    steps: StepArgs,
}

/// The script-variable flags `run` and `replay` share.
#[derive(Debug, clap::Args)]
struct VarArgs {
    /// A value for a variable the script declares (`variables:`, typed as `${NAME}`); repeatable. Not for secret
    /// variables: a command line is visible to every local user — use --var-file.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    values: Vec<String>,
    /// A variable's value read from FILE (its text without the trailing line ending); repeatable. The way to
    /// give a secret variable (a password).
    #[arg(long = "var-file", value_name = "NAME=FILE")]
    files: Vec<String>,
}

impl VarArgs {
    fn read(&self) -> anyhow::Result<crate::script::Vars> {
        crate::script::Vars::from_args(&self.values, &self.files).map_err(|e| exit::BadInput(e).into())
    }
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
    vars: VarArgs,
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
            let vars = run.vars.read().context("bad arguments")?;
            Ok(ExitCode::from(crate::script::run_command(&run.config, &vars, &opts, run.json)))
        }
        Sub::Replay(replay) => {
            let opts = replay.options().context("bad arguments")?;
            let vars = replay.vars.read().context("bad arguments")?;
            Ok(ExitCode::from(crate::script::replay_command(&replay.config, &vars, &opts, replay.json)))
        }
        Sub::Record(record) => run_record(&record),
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
