//! The installer-like test application (`assets/installer.py`, Tk) started on a test display.
//!
//! It shows a welcome screen, a licence with "I Agree" and "I Disagree", an optional sign-in screen with
//! "Set Up Later", a "Create a Computer Account" form, a progress screen and a final screen, and records what it
//! received as JSON, so automation tests can drive a realistic multi-screen flow over VNC and assert every value.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::process::Daemon;
use crate::x11::Display;

/// The application's source, in this crate.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/installer.py");

/// A running installer app; killed when dropped.
#[derive(Debug)]
pub struct Installer {
    process: Daemon,
    record: PathBuf,
}

impl Installer {
    /// Starts the app on `display`, recording into `record` (JSON), with a progress screen of
    /// `progress_seconds`; returns once its window is mapped.
    pub fn start(display: &Display, record: &Path, progress_seconds: f64) -> anyhow::Result<Self> {
        let mut cmd = display.command("python3");
        cmd.arg(SCRIPT).arg("--record").arg(record).arg("--progress-seconds").arg(progress_seconds.to_string());
        let mut process = display.spawn("installer", cmd)?;
        if let Err(e) = display.wait_for_window("vmkit test installer", Duration::from_secs(30)) {
            process.ensure_running()?;
            return Err(e);
        }
        Ok(Self { process, record: record.to_owned() })
    }

    /// What the app recorded so far (JSON text).
    pub fn record(&self) -> anyhow::Result<String> {
        std::fs::read_to_string(&self.record).with_context(|| format!("reading {}", self.record.display()))
    }

    /// Waits for the app to exit and returns its exit code.
    pub fn wait(&mut self, timeout: Duration) -> anyhow::Result<Option<i32>> {
        Ok(self.process.wait_timeout(timeout)?.code())
    }

    /// What the app printed (Tk errors show here).
    pub fn log(&self) -> String {
        self.process.log()
    }
}
