//! Where command output goes: stdout through [`out!`]/[`outln!`], and files written so that an interrupted or
//! failed write never leaves a half-written file behind.
//!
//! `println!` panics (exit 101 with a backtrace hint) when stdout is a pipe whose reader went away, as in
//! `vmkit desktop xml FILE | head -c 10`. Command output therefore goes through [`stdout`], which turns a closed
//! pipe into [`StdoutClosed`]; the command returns it like any error, its clean-up runs on the way out, and
//! [`crate::exit::report`] ends the process quietly with exit 0 (as ripgrep does).

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;

/// `print!` for command output; a closed stdout returns [`StdoutClosed`] from the calling function (`?`).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::stdout(format_args!($($arg)*))?
    };
}

/// `println!` for command output; a closed stdout returns [`StdoutClosed`] from the calling function (`?`).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

pub(crate) use {out, outln};

/// The reader of stdout went away (a closed pipe): not a failure, the command just has no one to talk to.
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed")]
pub struct StdoutClosed;

/// Writes `args` to stdout and flushes; a closed pipe is [`StdoutClosed`], any other failure an error.
pub fn stdout(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_fmt(args).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
    }
}

/// Writes `path` through `fill` into a temporary file beside it, then renames it into place. On error the
/// temporary file is removed and `path` is untouched.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&mut std::fs::File>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    // `fill`'s own error is kept whole (the I/O error handed to the writer only stops it).
    let mut failed = None;
    let written = store::write_atomic_with(path, 0o600, |file| {
        let mut out = BufWriter::new(file);
        match fill(&mut out) {
            Ok(()) => out.flush(),
            Err(e) => {
                failed = Some(e);
                Err(std::io::Error::other("not written"))
            }
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    written.with_context(|| format!("writing {}", path.display()))
}
