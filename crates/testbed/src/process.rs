//! Child processes that die with their handle.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A background program started for a test. Dropping the handle kills it (SIGTERM, then SIGKILL) and reaps it.
///
/// The program's stdout and stderr go to a log file, shown by [`Daemon::log`] when a test needs to explain a
/// failure.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with its output sent to `log`. `name` is used in error messages.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Self> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child =
            cmd.spawn().with_context(|| format!("starting {name}: {cmd:?} (is its Debian package installed?)"))?;
        Ok(Self { name: name.to_owned(), child: Some(child), log: log.to_owned() })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// What the program printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails if the program already exited, with its log in the error.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.try_status()? {
            bail!("{} exited early ({status}); its output:\n{}", self.name, self.log());
        }
        Ok(())
    }

    /// The exit status if the program has exited.
    pub fn try_status(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(child) => Ok(child.try_wait()?),
            None => bail!("{} was already stopped", self.name),
        }
    }

    /// Waits up to `timeout` for the program to exit on its own.
    pub fn wait_timeout(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!("{} still running after {timeout:?}; its output:\n{}", self.name, self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the program now: SIGTERM, then SIGKILL after a second.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Ok(None) = child.try_wait() {
            let pid = libc::pid_t::try_from(child.id()).unwrap_or(0);
            if pid > 0 {
                terminate(pid);
            }
            let deadline = Instant::now() + Duration::from_secs(1);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends SIGTERM to `pid`.
#[allow(unsafe_code)]
fn terminate(pid: libc::pid_t) {
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is a child of ours that has not been reaped yet.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// Runs a command to completion and returns its stdout; a non-zero exit is an error with its stdout and stderr
/// (checkers such as `fsck.fat` report on stdout).
pub fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
