//! `vmkit automate`: check and run YAML automation scripts.
//!
//! The command line only maps arguments onto the `automate` crate; loading, checking and running live there so
//! that the `yaml-automation-runner` alias binary and library users get the same behaviour.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::exit;

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
        Sub::Check(check) => Ok(run_check(&check)),
    }
}

fn run_check(args: &CheckArgs) -> ExitCode {
    let mut bad = 0usize;
    for file in &args.files {
        match automate::load_file(file) {
            Ok(script) => println!("{}: ok ({} steps)", file.display(), script.steps.len()),
            Err(err) => {
                bad += 1;
                for line in err.diagnostics() {
                    eprintln!("{line}");
                }
            }
        }
    }
    if bad == 0 {
        ExitCode::from(exit::OK)
    } else {
        eprintln!("vmkit: {bad} of {} scripts have errors", args.files.len());
        ExitCode::from(exit::BAD_INPUT)
    }
}
