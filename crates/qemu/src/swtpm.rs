//! swtpm, the TPM 2.0 emulator QEMU's `-tpmdev emulator` talks to: its command line as a model, and a supervised
//! process.
//!
//! One swtpm serves one QEMU run and exits when QEMU closes the connection; its state directory keeps the TPM's
//! identity (endorsement seed, NV storage) from one run to the next, so a Windows image keeps its TPM (and what
//! BitLocker or Windows Hello sealed to it) wherever the directory goes. vmkit starts swtpm before QEMU, waits for
//! its control socket, and kills it when the [`Swtpm`] is dropped; the run script of an image starts it the same
//! way from [`SwtpmCommand::argv`] (daemonised, ending with QEMU's connection).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Why swtpm could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SwtpmError {
    /// The program could not be run.
    #[error("starting swtpm (Debian package swtpm): {0}")]
    Spawn(#[source] std::io::Error),
    /// The state directory could not be made.
    #[error("creating the TPM state directory {}: {source}", path.display())]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// swtpm exited before its socket appeared.
    #[error("swtpm exited before listening ({status}): {output}")]
    Exited {
        /// Its exit status.
        status: String,
        /// What it printed.
        output: String,
    },
    /// The control socket did not appear in time.
    #[error("swtpm did not create {} within {after:?}", socket.display())]
    Timeout {
        /// The socket.
        socket: PathBuf,
        /// The wait.
        after: Duration,
    },
}

/// `swtpm socket --tpm2 --tpmstate dir=… --ctrl type=unixio,path=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwtpmCommand {
    /// The program (`swtpm`).
    pub program: PathBuf,
    /// Where the TPM's state lives.
    pub state_dir: PathBuf,
    /// The control socket QEMU connects to.
    pub socket: PathBuf,
    /// swtpm's log file.
    pub log: Option<PathBuf>,
    /// `--daemon`: fork into the background once listening (for run scripts).
    pub daemon: bool,
}

impl SwtpmCommand {
    /// A TPM 2.0 with its state in `state_dir` and its control socket at `socket`.
    pub fn new(state_dir: impl Into<PathBuf>, socket: impl Into<PathBuf>) -> Self {
        Self { program: "swtpm".into(), state_dir: state_dir.into(), socket: socket.into(), log: None, daemon: false }
    }

    /// The whole argv, program first. Paths with a comma are doubled as swtpm's option parser wants.
    pub fn argv(&self) -> Vec<OsString> {
        let opt = |head: &str, path: &Path| {
            let mut s = OsString::from(head);
            s.push(path.to_string_lossy().replace(',', ",,"));
            s
        };
        let mut argv: Vec<OsString> = vec![self.program.clone().into(), "socket".into(), "--tpm2".into()];
        argv.push("--tpmstate".into());
        argv.push(opt("dir=", &self.state_dir));
        argv.push("--ctrl".into());
        argv.push(opt("type=unixio,path=", &self.socket));
        if let Some(log) = &self.log {
            argv.push("--log".into());
            argv.push(opt("level=1,file=", log));
        }
        if self.daemon {
            argv.push("--daemon".into());
        }
        argv
    }
}

/// A running swtpm, killed when dropped.
#[derive(Debug)]
pub struct Swtpm {
    child: std::process::Child,
    socket: PathBuf,
}

impl Swtpm {
    /// Starts swtpm (not daemonised) and waits up to `timeout` for its control socket.
    pub fn start(cmd: &SwtpmCommand, timeout: Duration) -> Result<Self, SwtpmError> {
        std::fs::create_dir_all(&cmd.state_dir)
            .map_err(|source| SwtpmError::StateDir { path: cmd.state_dir.clone(), source })?;
        let _ = std::fs::remove_file(&cmd.socket);
        let mut plain = cmd.clone();
        plain.daemon = false;
        let argv = plain.argv();
        let mut child = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(SwtpmError::Spawn)?;
        let started = Instant::now();
        loop {
            if cmd.socket.exists() {
                return Ok(Self { child, socket: cmd.socket.clone() });
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut output = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut err, &mut output);
                }
                return Err(SwtpmError::Exited { status: status.to_string(), output: output.trim().to_owned() });
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SwtpmError::Timeout { socket: cmd.socket.clone(), after: timeout });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The control socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// swtpm's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for swtpm to exit by itself (it does once QEMU disconnects), then kills it.
    pub fn stop(mut self, timeout: Duration) {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_doubles_commas() {
        let mut cmd = SwtpmCommand::new("tpm,state", "tpm/sock");
        cmd.daemon = true;
        let argv: Vec<String> = cmd.argv().into_iter().map(|a| a.into_string().unwrap()).collect();
        assert_eq!(
            argv,
            [
                "swtpm",
                "socket",
                "--tpm2",
                "--tpmstate",
                "dir=tpm,,state",
                "--ctrl",
                "type=unixio,path=tpm/sock",
                "--daemon"
            ]
        );
    }

    #[test]
    fn starts_keeps_state_and_is_killed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = SwtpmCommand::new(dir.path().join("state"), dir.path().join("swtpm.sock"));
        let mut tpm = Swtpm::start(&cmd, Duration::from_secs(10)).expect("swtpm (Debian package swtpm)");
        assert!(tpm.is_running());
        let pid = tpm.pid();
        drop(tpm);
        assert!(
            !Path::new(&format!("/proc/{pid}/status")).exists() || {
                let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                s.contains("State:\tZ")
            }
        );
        assert!(!dir.path().join("swtpm.sock").exists());
    }
}
