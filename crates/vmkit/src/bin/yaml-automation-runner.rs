//! `yaml-automation-runner`: the original runner's command line, kept working as an alias of
//! `vmkit automate run`.
//!
//! Flags and defaults are the original's — `--config F`, `--vnc-host` (default 127.0.0.1), `--vnc-port`
//! (default 5900), `--vm-ip` (SSH host, default the VNC host), `--debug` (a flag; a directory may follow) —
//! plus vmkit's additions: `--password-file`, `--ssh-port`, `--json`, `--var`, `--var-file`. It is a separate binary rather than an
//! `argv[0]` switch so that `cargo install` and packagers get it without creating a symlink; it maps its flags
//! onto the same options and calls the same code as the vmkit command, so both behave identically.
//! Exit codes: 0 success, 1 a step or the health check failed, 2 bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

// The vmkit binary's own modules, compiled into the alias too: the same script runner, the same exit codes.
// (The alias uses only part of them.)
#[allow(dead_code)]
#[path = "../exit.rs"]
mod exit;
#[allow(dead_code, unused_imports, unused_macros)]
#[path = "../output.rs"]
mod output;
#[allow(dead_code)]
#[path = "../script.rs"]
mod script;

/// Run a YAML automation script against a VNC server (alias of `vmkit automate run`).
#[derive(Debug, Parser)]
#[command(name = "yaml-automation-runner", version, max_term_width = 110)]
struct Args {
    /// Path to the YAML script.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// VNC server host name or address.
    #[arg(long, default_value = "127.0.0.1")]
    vnc_host: String,
    /// VNC server TCP port.
    #[arg(long, default_value_t = 5900, value_parser = clap::value_parser!(u16).range(1..))]
    vnc_port: u16,
    /// The machine's address for the SSH health check (default: the VNC host).
    #[arg(long, value_name = "IP")]
    vm_ip: Option<String>,
    /// Save screenshots, OCR JSON, automation.log and report.html (into DIR, or a fresh directory under the
    /// temp dir).
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    debug: Option<Option<PathBuf>>,
    /// A file whose first line is the VNC password.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// SSH port for the health check (default: the script's `port`, else 22).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    ssh_port: Option<u16>,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// A value for a variable the script declares (`${NAME}`); repeatable; not for secret variables.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// A variable's value read from FILE (without the trailing line ending); repeatable; for secrets.
    #[arg(long = "var-file", value_name = "NAME=FILE")]
    var_files: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();

    let host = if args.vnc_host.contains(':') { format!("[{}]", args.vnc_host) } else { args.vnc_host.clone() };
    let mut opts = automate::RunOptions::new(format!("{host}:{}", args.vnc_port));
    if let Some(f) = &args.password_file {
        match crate::script::read_password_file(f) {
            Ok(pw) => opts.vnc_password = Some(pw),
            Err(e) => {
                eprintln!("yaml-automation-runner: {e}");
                return ExitCode::from(exit::BAD_INPUT);
            }
        }
    }
    opts.ssh_host = args.vm_ip.clone();
    opts.ssh_port = args.ssh_port;
    opts.debug = args.debug.clone();
    let vars = match crate::script::Vars::from_args(&args.vars, &args.var_files) {
        Ok(vars) => vars,
        Err(e) => {
            eprintln!("yaml-automation-runner: {e}");
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    ExitCode::from(crate::script::run_command(&args.config, &vars, &opts, args.json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_a_flag_and_may_take_a_directory() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["yaml-automation-runner", "--config", "s.yaml"];
            argv.extend_from_slice(extra);
            Args::try_parse_from(argv).map(|a| a.debug).map_err(|e| e.to_string())
        };
        assert_eq!(parse(&[]), Ok(None));
        assert_eq!(parse(&["--debug"]), Ok(Some(None)), "the original runner's bare flag");
        assert_eq!(parse(&["--debug", "--json"]), Ok(Some(None)));
        assert_eq!(parse(&["--debug", "out"]), Ok(Some(Some(PathBuf::from("out")))));
    }
}
