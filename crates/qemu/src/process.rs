//! A supervised QEMU process.
//!
//! Long waits in vmkit ("until SSH answers", "until the log says X") must end the moment QEMU dies, with the
//! reason QEMU printed, instead of running into a timeout minutes later. So a task owns the child from the
//! start: it reaps it, and publishes an [`Exit`] (status plus the tail of QEMU's output) on a watch channel.
//! [`Qemu::exited`] is a future any number of waiters can `select!` against.
//!
//! Starting: [`Qemu::start`] spawns QEMU and, when the model has a QMP socket, connects and negotiates QMP.
//! QEMU only serves QMP from its main loop, after it has created every backend and bound VNC, so a finished
//! handshake means "QEMU is up"; a bind failure shows as an exit with QEMU's message instead.
//!
//! Dying with its parent: QEMU is started through util-linux's `setpriv --pdeathsig KILL`, which sets
//! `PR_SET_PDEATHSIG` and then executes QEMU in the same process, so the kernel kills QEMU when vmkit dies — even
//! by SIGKILL, when no destructor runs. (The signal follows the *thread* that started QEMU: start it from a thread
//! that lives as long as the VM should, e.g. the runtime's, not a short-lived blocking-pool thread.) Without
//! `setpriv` on the PATH QEMU starts directly and a warning is logged.
//!
//! Stopping: dropping a [`Qemu`] kills the process (SIGKILL via tokio's `kill_on_drop` and the supervisor), so
//! a failing test never leaks a VM. [`Qemu::stop`] walks the polite ladder: a caller-provided guest power-off,
//! then ACPI power-down over QMP, then QMP `quit`, then SIGKILL — each step with its own timeout, skipping ahead
//! as soon as QEMU is gone.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::ChildStdout;
use tokio::sync::{mpsc, watch};

use crate::model::{ModelError, QemuCommand, display_argv};
use crate::qmp::{Qmp, QmpError, QmpOptions};

/// How much of QEMU's stderr (and stdout, unless taken) is kept for error messages.
const OUTPUT_TAIL: usize = 64 * 1024;

/// Why QEMU could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// The model did not render.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The program could not be run.
    #[error("starting {program}: {source} (is QEMU installed? Debian package qemu-system-x86)")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// QEMU exited before it was up (bad option, a port in use, a missing file…).
    #[error("QEMU exited during start-up ({exit})\ncommand: {argv}")]
    EarlyExit {
        /// How it ended, with its output.
        exit: Exit,
        /// The command line.
        argv: String,
    },
    /// QMP failed during start-up.
    #[error("QMP on {socket}: {source}")]
    Qmp {
        /// The socket.
        socket: PathBuf,
        /// The QMP error.
        source: QmpError,
    },
    /// QEMU did not get up in time.
    #[error("QEMU did not answer on QMP socket {socket} within {after:?}")]
    StartTimeout {
        /// The socket.
        socket: PathBuf,
        /// The timeout.
        after: Duration,
    },
    /// The model has no QMP socket but the operation needs one.
    #[error("this QEMU has no QMP socket")]
    NoQmp,
    /// SIGKILL did not end it.
    #[error("QEMU (pid {pid}) did not exit after SIGKILL within {after:?}")]
    Unkillable {
        /// Process id.
        pid: u32,
        /// How long was waited.
        after: Duration,
    },
}

impl QemuError {
    /// Whether QEMU failed because an address (VNC, a host forward) was already in use: worth a retry with
    /// another port.
    pub fn is_addr_in_use(&self) -> bool {
        match self {
            Self::EarlyExit { exit, .. } => exit.is_addr_in_use(),
            _ => false,
        }
    }
}

/// How QEMU ended.
#[derive(Debug, Clone)]
pub struct Exit {
    /// The exit status; `None` if the supervisor was torn down (runtime shut down) before it could reap.
    pub status: Option<ExitStatus>,
    /// The last part of what QEMU wrote to stderr (and stdout, unless taken).
    pub output: String,
}

impl Exit {
    /// The exit code, if QEMU exited normally.
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// The signal that killed QEMU, if one did.
    pub fn signal(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.status.and_then(|s| s.signal())
    }

    /// Whether QEMU exited with status 0 (a guest power-off or a QMP `quit`).
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Whether the output says a listener could not bind. QEMU's message for a host forward does not say why
    /// it failed, so that one counts too (a retry with other ports is bounded anyway).
    pub fn is_addr_in_use(&self) -> bool {
        let out = self.output.to_ascii_lowercase();
        out.contains("address already in use")
            || out.contains("failed to find an available port")
            || out.contains("could not set up host forwarding rule")
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code(), self.signal()) {
            (Some(code), _) => write!(f, "exit code {code}")?,
            (None, Some(sig)) => write!(f, "killed by signal {sig}")?,
            _ => f.write_str("exit status unknown")?,
        }
        let out = self.output.trim();
        if !out.is_empty() {
            write!(f, "; QEMU said:\n{out}")?;
        }
        Ok(())
    }
}

/// How to start QEMU.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Keep QEMU's stdout for the caller ([`Qemu::take_stdout`]) instead of collecting it with stderr.
    pub capture_stdout: bool,
    /// How long QEMU may take to answer on QMP.
    pub start_timeout: Duration,
    /// QMP options.
    pub qmp: QmpOptions,
    /// Environment variables to set for QEMU.
    pub env: Vec<(OsString, OsString)>,
    /// Have the kernel kill QEMU when the starting thread dies (see the module documentation).
    pub die_with_parent: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            capture_stdout: false,
            start_timeout: Duration::from_secs(30),
            qmp: QmpOptions::default(),
            env: Vec::new(),
            die_with_parent: true,
        }
    }
}

/// `program` found the way `execvp` would (a path with a slash as it is, else the first match on `PATH`).
fn find_program(program: &std::ffi::OsStr) -> Option<PathBuf> {
    let path = std::path::Path::new(program);
    if program.as_encoded_bytes().contains(&b'/') {
        return path.is_file().then(|| path.to_owned());
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(program)).find(|p| p.is_file())
}

#[derive(Default)]
struct Tail {
    buf: VecDeque<u8>,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes);
        let excess = self.buf.len().saturating_sub(OUTPUT_TAIL);
        self.buf.drain(..excess);
    }

    fn text(&self) -> String {
        let (a, b) = self.buf.as_slices();
        let mut v = Vec::with_capacity(a.len() + b.len());
        v.extend_from_slice(a);
        v.extend_from_slice(b);
        String::from_utf8_lossy(&v).into_owned()
    }
}

/// A running (or exited) QEMU.
pub struct Qemu {
    pid: u32,
    argv: String,
    exit_rx: watch::Receiver<Option<Exit>>,
    kill_tx: mpsc::UnboundedSender<()>,
    output: Arc<Mutex<Tail>>,
    stdout: Option<ChildStdout>,
    qmp: Option<Qmp>,
    qmp_socket: Option<PathBuf>,
}

impl std::fmt::Debug for Qemu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qemu").field("pid", &self.pid).field("qmp_socket", &self.qmp_socket).finish_non_exhaustive()
    }
}

impl Qemu {
    /// Starts QEMU and, if the model has a QMP socket, waits until QMP answers (or QEMU exits, which is an
    /// error carrying QEMU's message).
    pub async fn start(cmd: &QemuCommand) -> Result<Self, QemuError> {
        Self::start_with(cmd, StartOptions::default()).await
    }

    /// [`Qemu::start`] with options.
    pub async fn start_with(cmd: &QemuCommand, options: StartOptions) -> Result<Self, QemuError> {
        let argv = cmd.argv()?;
        let shown = display_argv(&argv);
        let mut qemu = Self::spawn_argv(&argv, &options)?;
        qemu.argv = shown.clone();
        if let Some(socket) = cmd.qmp_socket() {
            qemu.qmp_socket = Some(socket.to_owned());
            let exited = qemu.exited();
            let connect = connect_when_listening(socket.to_owned(), options.qmp);
            tokio::select! {
                exit = exited => return Err(QemuError::EarlyExit { exit, argv: shown }),
                r = tokio::time::timeout(options.start_timeout, connect) => match r {
                    Ok(Ok(qmp)) => qemu.qmp = Some(qmp),
                    Ok(Err(source)) => {
                        // The socket may have closed because QEMU is exiting: report the exit if it comes soon.
                        if let Ok(exit) = tokio::time::timeout(Duration::from_secs(2), qemu.exited()).await {
                            return Err(QemuError::EarlyExit { exit, argv: shown });
                        }
                        return Err(QemuError::Qmp { socket: socket.to_owned(), source });
                    }
                    Err(_) => {
                        return Err(QemuError::StartTimeout { socket: socket.to_owned(), after: options.start_timeout });
                    }
                },
            }
        }
        tracing::info!(pid = qemu.pid, "QEMU started");
        Ok(qemu)
    }

    fn spawn_argv(argv: &[OsString], options: &StartOptions) -> Result<Self, QemuError> {
        let Some((program, args)) = argv.split_first() else {
            return Err(QemuError::Model(ModelError::Inconsistent("empty argv".to_owned())));
        };
        let mut command = match (options.die_with_parent, find_program("setpriv".as_ref())) {
            (true, Some(setpriv)) => {
                // setpriv's own failure to run QEMU would be an early exit; keep "not installed" a spawn error.
                let found = find_program(program).ok_or_else(|| QemuError::Spawn {
                    program: program.to_string_lossy().into_owned(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                })?;
                let mut c = tokio::process::Command::new(setpriv);
                c.args(["--pdeathsig", "KILL", "--"]).arg(found);
                c
            }
            (die_with_parent, _) => {
                if die_with_parent {
                    tracing::warn!("setpriv (util-linux) not found: QEMU will outlive vmkit if vmkit is killed");
                }
                tokio::process::Command::new(program)
            }
        };
        command.args(args).stdin(Stdio::null()).stderr(Stdio::piped()).stdout(Stdio::piped()).kill_on_drop(true);
        for (k, v) in &options.env {
            command.env(k, v);
        }
        tracing::debug!(argv = %display_argv(argv), "spawning QEMU");
        let mut child = command
            .spawn()
            .map_err(|source| QemuError::Spawn { program: program.to_string_lossy().into_owned(), source })?;
        let pid = child.id().unwrap_or(0);
        let output = Arc::new(Mutex::new(Tail::default()));
        let mut readers = Vec::new();
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(collect(stderr, Arc::clone(&output))));
        }
        let stdout = child.stdout.take();
        let stdout = if options.capture_stdout {
            stdout
        } else {
            if let Some(out) = stdout {
                readers.push(tokio::spawn(collect(out, Arc::clone(&output))));
            }
            None
        };
        let (exit_tx, exit_rx) = watch::channel(None);
        let (kill_tx, mut kill_rx) = mpsc::unbounded_channel::<()>();
        let tail = Arc::clone(&output);
        tokio::spawn(async move {
            let status = tokio::select! {
                s = child.wait() => s,
                _ = kill_rx.recv() => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            // Let the readers drain the pipes so the exit carries QEMU's last words.
            for r in readers {
                let _ = tokio::time::timeout(Duration::from_secs(2), r).await;
            }
            let output = tail.lock().map(|t| t.text()).unwrap_or_default();
            let exit = Exit { status: status.ok(), output };
            tracing::info!(pid, %exit, "QEMU exited");
            let _ = exit_tx.send(Some(exit));
        });
        Ok(Self { pid, argv: display_argv(argv), exit_rx, kill_tx, output, stdout, qmp: None, qmp_socket: None })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The command line, for messages.
    pub fn command_line(&self) -> &str {
        &self.argv
    }

    /// The QMP connection made at start-up (when the model had a QMP socket).
    pub fn qmp(&self) -> Result<&Qmp, QemuError> {
        self.qmp.as_ref().ok_or(QemuError::NoQmp)
    }

    /// QEMU's stdout, when started with [`StartOptions::capture_stdout`] (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.stdout.take()
    }

    /// What QEMU has written to stderr so far (the last 64 KiB).
    pub fn output(&self) -> String {
        self.output.lock().map(|t| t.text()).unwrap_or_default()
    }

    /// The exit, if QEMU has exited.
    pub fn try_exit(&self) -> Option<Exit> {
        self.exit_rx.borrow().clone()
    }

    /// A future that resolves when QEMU exits — `select!` it against any wait so a dead QEMU is noticed at once.
    /// It owns what it needs, so it can outlive the borrow of `self`.
    pub fn exited(&self) -> impl Future<Output = Exit> + Send + 'static {
        let mut rx = self.exit_rx.clone();
        async move {
            loop {
                if let Some(exit) = rx.borrow_and_update().clone() {
                    return exit;
                }
                if rx.changed().await.is_err() {
                    return rx.borrow().clone().unwrap_or(Exit {
                        status: None,
                        output: "QEMU's supervisor stopped before QEMU exited".to_owned(),
                    });
                }
            }
        }
    }

    /// Sends SIGKILL (if QEMU still runs) and waits for the exit.
    pub async fn kill(&self) -> Result<Exit, QemuError> {
        let _ = self.kill_tx.send(());
        let after = Duration::from_secs(10);
        tokio::time::timeout(after, self.exited()).await.map_err(|_| QemuError::Unkillable { pid: self.pid, after })
    }

    /// Stops QEMU politely if it can, by force if it must. See [`StopPlan`].
    pub async fn stop(&self, plan: StopPlan<'_>) -> Result<Stopped, QemuError> {
        if let Some(exit) = self.try_exit() {
            return Ok(Stopped { by: StopStep::AlreadyExited, exit });
        }
        if let Some((poweroff, timeout)) = plan.guest {
            tracing::debug!(?timeout, "asking the guest to power off");
            let exited = self.exited();
            let attempt = async {
                poweroff.await;
                std::future::pending::<()>().await;
            };
            tokio::select! {
                exit = exited => return Ok(Stopped { by: StopStep::Guest, exit }),
                () = attempt => {}
                () = tokio::time::sleep(timeout) => {}
            }
        }
        if let (Some(timeout), Some(qmp)) = (plan.powerdown, self.qmp.as_ref()) {
            tracing::debug!(?timeout, "QMP system_powerdown");
            match qmp.system_powerdown().await {
                Ok(()) => {
                    if let Ok(exit) = tokio::time::timeout(timeout, self.exited()).await {
                        return Ok(Stopped { by: StopStep::Powerdown, exit });
                    }
                }
                Err(e) => tracing::debug!(error = %e, "system_powerdown failed"),
            }
        }
        if let (Some(timeout), Some(qmp)) = (plan.quit, self.qmp.as_ref()) {
            tracing::debug!(?timeout, "QMP quit");
            match qmp.quit().await {
                Ok(()) => {
                    if let Ok(exit) = tokio::time::timeout(timeout, self.exited()).await {
                        return Ok(Stopped { by: StopStep::Quit, exit });
                    }
                }
                Err(e) => tracing::debug!(error = %e, "quit failed"),
            }
        }
        if let Some(exit) = self.try_exit() {
            return Ok(Stopped { by: StopStep::AlreadyExited, exit });
        }
        tracing::debug!("killing QEMU");
        let exit = self.kill().await?;
        Ok(Stopped { by: StopStep::Kill, exit })
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if self.exit_rx.borrow().is_none() {
            let _ = self.kill_tx.send(());
        }
    }
}

/// A future that asks the guest to power off.
pub type GuestPoweroff<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The polite-to-forceful shutdown ladder for [`Qemu::stop`]. A step without a timeout is skipped; SIGKILL is
/// always the last resort.
pub struct StopPlan<'a> {
    /// A future that asks the guest to power off (e.g. `poweroff` over SSH), and how long to wait for QEMU to exit
    /// after starting it (the future's own run time counts).
    pub guest: Option<(GuestPoweroff<'a>, Duration)>,
    /// ACPI power button over QMP, and how long to wait for the exit.
    pub powerdown: Option<Duration>,
    /// QMP `quit`, and how long to wait for the exit.
    pub quit: Option<Duration>,
}

impl std::fmt::Debug for StopPlan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopPlan")
            .field("guest", &self.guest.as_ref().map(|(_, t)| t))
            .field("powerdown", &self.powerdown)
            .field("quit", &self.quit)
            .finish()
    }
}

impl Default for StopPlan<'_> {
    /// ACPI power-down (60 s), then `quit` (10 s), then SIGKILL.
    fn default() -> Self {
        Self { guest: None, powerdown: Some(Duration::from_secs(60)), quit: Some(Duration::from_secs(10)) }
    }
}

impl<'a> StopPlan<'a> {
    /// Starts the ladder with a guest-side power-off (e.g. over SSH).
    pub fn with_guest(mut self, poweroff: impl Future<Output = ()> + Send + 'a, timeout: Duration) -> Self {
        self.guest = Some((Box::pin(poweroff), timeout));
        self
    }

    /// Straight to SIGKILL.
    pub fn kill() -> Self {
        Self { guest: None, powerdown: None, quit: None }
    }
}

/// Which step of the ladder ended QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopStep {
    /// It had exited before `stop` was called (or between steps).
    AlreadyExited,
    /// The guest powered off on request.
    Guest,
    /// ACPI power-down.
    Powerdown,
    /// QMP `quit`.
    Quit,
    /// SIGKILL.
    Kill,
}

/// The result of [`Qemu::stop`].
#[derive(Debug, Clone)]
pub struct Stopped {
    /// The step that ended QEMU.
    pub by: StopStep,
    /// How it exited.
    pub exit: Exit,
}

async fn collect<R: tokio::io::AsyncRead + Unpin>(mut pipe: R, tail: Arc<Mutex<Tail>>) {
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let chunk = &buf[..n];
                tracing::debug!(target: "qemu::output", "{}", String::from_utf8_lossy(chunk).trim_end());
                if let Ok(mut t) = tail.lock() {
                    t.push(chunk);
                }
            }
        }
    }
}

/// Connects to a QMP socket that QEMU is about to create, retrying while it does not exist or refuses.
async fn connect_when_listening(socket: PathBuf, options: QmpOptions) -> Result<Qmp, QmpError> {
    loop {
        match Qmp::connect_with(&socket, options).await {
            Ok(qmp) => return Ok(qmp),
            Err(QmpError::Connect { .. }) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => return Err(e),
        }
    }
}
