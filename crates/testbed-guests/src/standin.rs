//! Parts the install stand-ins share (the Windows Setup stand-in, `windows_standin` with feature `windows`, and the
//! macOS installer stand-in, [`crate::macos_standin`]): an SSH server for the guest and the kernel modules every
//! stand-in loads.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::guest::GuestFile;
use testbed::process::run;

/// dropbear from `dropbear-bin`.
pub const DROPBEAR: &str = "/usr/sbin/dropbear";

/// dropbear and every shared library it loads (from `ldd`), at their paths.
pub fn dropbear_files() -> anyhow::Result<Vec<GuestFile>> {
    if !Path::new(DROPBEAR).is_file() {
        bail!("{DROPBEAR} missing: install the Debian package dropbear-bin");
    }
    let mut files = vec![GuestFile { path: DROPBEAR.to_owned(), mode: 0o755, data: std::fs::read(DROPBEAR)? }];
    for line in run(Command::new("ldd").arg(DROPBEAR))?.lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next().filter(|p| p.starts_with('/')),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else { continue };
        let data = std::fs::read(path).with_context(|| format!("reading {path}"))?;
        files.push(GuestFile { path: path.to_owned(), mode: 0o755, data });
    }
    Ok(files)
}
