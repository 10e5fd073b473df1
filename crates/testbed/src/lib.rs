//! Real servers for vmkit's integration tests.
//!
//! vmkit's acceptance tests run against the real thing — TigerVNC `Xvnc`, `x11vnc` in front of `Xvfb`, GTK
//! windows, QEMU guests, `sshd`, `libvirtd` — never against mocks. This crate starts those programs on loopback,
//! waits until they answer, and stops them when the handle is dropped, so a failing test never leaks a server.
//!
//! Everything here is for tests only: errors are `anyhow` with the command line that failed, and helpers skip
//! nothing silently (a missing program is an error that names the Debian package to install).

pub mod browser;
pub mod efi;
pub mod guest;
pub mod http;
pub mod input_log;
pub mod installer;
pub mod libvirt;
pub mod macos_standin;
pub mod net;
pub mod process;
pub mod recovery;
pub mod scenes;
pub mod screenshot;
pub mod sshd;
pub mod standin;
pub mod udif;
pub mod windows_standin;
pub mod x11;

pub use guest::{Guest, GuestFile, GuestOptions};
pub use http::HttpServer;
pub use installer::Installer;
pub use net::{free_port, wait_for_port};
pub use process::Daemon;
pub use recovery::RecoveryServer;
pub use screenshot::Screenshot;
pub use sshd::Sshd;
pub use x11::{Display, DisplayKind};

/// A directory that lives as long as the test needs it, under the system temp dir.
///
/// With `VMKIT_TEST_KEEP=1` in the environment the directory is left behind (and its path printed), so a failed
/// test's debug output, logs and screenshots can be looked at afterwards.
pub fn scratch_dir(prefix: &str) -> anyhow::Result<tempfile::TempDir> {
    let mut dir = tempfile::Builder::new().prefix(&format!("vmkit-{prefix}-")).tempdir()?;
    if std::env::var_os("VMKIT_TEST_KEEP").is_some_and(|v| v == "1") {
        eprintln!("keeping {}", dir.path().display());
        dir.disable_cleanup(true);
    }
    Ok(dir)
}

/// Writes a new file only its owner can read (mode 0600), as vmkit expects of password and key files.
pub fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
