//! Exit codes and how errors reach the user.
//!
//! Commands return `anyhow::Result<ExitCode>`: `Ok` carries 0 or 1 for outcomes that are not errors (e.g. `find`
//! with no match). An error is printed with its whole context chain and exits 1, unless somewhere in the chain
//! it is a [`BadInput`], which exits 2. A closed stdout ([`crate::output::StdoutClosed`]) ends the command quietly
//! with 0.

use std::process::ExitCode;

/// Success.
pub const OK: u8 = 0;
/// The operation ran and failed: a step, a check, nothing matched.
pub const FAILED: u8 = 1;
/// Bad input: arguments, config files, values.
pub const BAD_INPUT: u8 = 2;

/// Marks an error as the user's input's fault (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Prints an error (if any) and turns the result into the process exit code.
pub fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        // The reader of stdout went away (`vmkit … | head`): end quietly, as ripgrep does.
        Err(err) if err.chain().any(|e| e.is::<crate::output::StdoutClosed>()) => ExitCode::from(OK),
        Err(err) => {
            eprintln!("vmkit: error: {err:#}");
            let bad_input = err.chain().any(|e| e.is::<BadInput>());
            ExitCode::from(if bad_input { BAD_INPUT } else { FAILED })
        }
    }
}
