//! `vmkit` — run and build virtual machines on Linux/KVM.
//!
//! The binary is deliberately thin: it parses the command line, sets up logging and maps outcomes to exit codes.
//! Everything else lives in the library crates (`rfb`, `ocr`, `qemu`, `automate`, `images`, `desktop`), which are
//! usable on their own. Each command group is one module under `cmd/`.
//!
//! Exit codes (documented in the README): 0 success; 1 the operation ran and failed (a step, a check, no match);
//! 2 bad input or arguments (unreadable config, invalid value, usage error).

mod cmd;
mod exit;
mod output;
mod script;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run and build virtual machines on Linux/KVM: drive VM screens, build unattended images, manage desktop VMs.
#[derive(Debug, Parser)]
#[command(name = "vmkit", version, propagate_version = true, max_term_width = 110)]
struct Cli {
    /// More log output (repeat for more); logs go to stderr. `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run and check YAML automation scripts (VNC + OCR).
    Automate(cmd::automate::Args),
    /// Boot a throwaway guest built from Debian packages, type into its screen over VNC and print what OCR reads.
    Demo(cmd::demo::Args),
    /// Look at and drive a VNC screen: capture, OCR, find, click, type, keys.
    Screen(cmd::screen::Args),
    /// Download a file with a required SHA-256 into the content-addressed cache.
    Fetch(cmd::fetch::Args),
    /// Make cloud-init NoCloud seeds (user-data, meta-data; ISO or vfat).
    CloudInit(cmd::cloud_init::Args),
    /// Build unattended Linux VM images from TOML recipes, and boot-test them.
    Image(cmd::image::Args),
    /// Declarative desktop VMs on libvirt: plan, apply, XML, host settings, launchers.
    Desktop(cmd::desktop::Args),
    /// Start, stop and reach one desktop VM: vmkit vm NAME start|stop|status|view|console|memstats|setmem|ssh.
    Vm(cmd::vm::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Automate(args) => cmd::automate::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Screen(args) => cmd::screen::run(args),
        Command::Fetch(args) => cmd::fetch::run(args),
        Command::CloudInit(args) => cmd::cloud_init::run(args),
        Command::Image(args) => cmd::image::run(args),
        Command::Desktop(args) => cmd::desktop::run(args),
        Command::Vm(args) => cmd::vm::run(args),
    };
    exit::report(result)
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info,vmkit=debug",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}
