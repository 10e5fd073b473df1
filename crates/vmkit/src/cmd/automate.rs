//! `vmkit automate`: check and run YAML automation scripts.
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
    /// Seconds a `click` waits for its text when the step does not say.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    click_timeout: f64,
    /// Seconds to keep trying to reach the VNC server (at the start and after it drops) before failing.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    reconnect_timeout: f64,
    /// Pause after each key event when typing, in milliseconds (the default suits QEMU; X servers take 0).
    #[arg(long, value_name = "MS")]
    key_delay_ms: Option<u64>,
    /// Replace the script's boot_wait (seconds).
    #[arg(long, value_name = "SECS")]
    boot_wait: Option<f64>,
}

impl RunArgs {
    /// Maps the flags onto the runner's options.
    pub fn options(&self) -> anyhow::Result<automate::RunOptions> {
        let bad = |m: String| exit::BadInput(m);
        let mut opts = automate::RunOptions::new(self.vnc.clone());
        let (host, port) = automate::cli::split_host_port(&self.vnc).map_err(|e| bad(format!("--vnc {e}")))?;
        if port.is_none() {
            return Err(bad(format!("--vnc {host:?}: give HOST:PORT (a TCP port, e.g. 127.0.0.1:5900)")).into());
        }
        if let Some(f) = &self.password_file {
            opts.vnc_password = Some(automate::cli::read_password_file(f).map_err(bad)?);
        }
        if let Some(vm_ip) = &self.vm_ip {
            opts.ssh_host = Some(vm_ip.clone());
        }
        if let Some(ssh) = &self.ssh {
            let (host, port) = automate::cli::split_host_port(ssh).map_err(|e| bad(format!("--ssh {e}")))?;
            opts.ssh_host = Some(host);
            opts.ssh_port = port;
        }
        if self.ssh_port.is_some() {
            opts.ssh_port = self.ssh_port;
        }
        opts.debug = self.debug.clone();
        opts.click_timeout = seconds(self.click_timeout, "--click-timeout")?;
        opts.reconnect.budget = seconds(self.reconnect_timeout, "--reconnect-timeout")?;
        if let Some(ms) = self.key_delay_ms {
            opts.typing.key_delay = Duration::from_millis(ms);
        }
        opts.boot_wait = self.boot_wait.map(|s| seconds(s, "--boot-wait")).transpose()?;
        Ok(opts)
    }
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| exit::BadInput(format!("{flag} {value}: expected a number of seconds ≥ 0")).into())
}

/// Runs a script with already-mapped options (shared with the `yaml-automation-runner` alias).
pub fn run_script(config: &std::path::Path, opts: &automate::RunOptions, json: bool) -> ExitCode {
    ExitCode::from(automate::cli::run_command(config, opts, json))
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
