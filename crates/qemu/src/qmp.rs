//! An async QMP (QEMU Machine Protocol) client over a Unix socket.
//!
//! QMP is line-delimited JSON: QEMU greets, the client negotiates capabilities, then sends commands; replies and
//! asynchronous events arrive on the same stream. One background task reads the stream: a reply goes to the
//! command that is waiting for it (matched by the `id` vmkit puts in every command), an event goes to every
//! subscriber of [`Qmp::events`]. So several tasks can share one connection (QEMU serves one QMP client per
//! socket at a time), and events are never lost between commands.
//!
//! Robustness: a line longer than the limit (4 MiB by default — QEMU's largest reply, `query-qmp-schema`, is a
//! few hundred KiB) is an error, not an allocation; every command has a timeout; when QEMU closes the socket
//! (it exited) every waiting command fails with [`QmpError::Closed`] at once. Secrets (the VNC password, a
//! [`Secret`]) are never logged or put in errors: only command names are.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{broadcast, oneshot};

/// The longest line vmkit accepts from QEMU by default.
pub const DEFAULT_MAX_LINE: usize = 4 << 20;
/// How long a command may take by default.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What went wrong talking QMP.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QmpError {
    /// The socket could not be reached.
    #[error("connecting to QMP socket {path}: {message}")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// Reading or writing failed.
    #[error("QMP {op}: {message}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        message: String,
    },
    /// The peer did not start with a QMP greeting.
    #[error("not a QMP greeting: {0}")]
    Greeting(String),
    /// A line was longer than the limit.
    #[error("QMP line longer than {limit} bytes; refusing to buffer it")]
    LineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// A line was not JSON, or JSON of an unexpected shape.
    #[error("malformed QMP message ({reason}): {excerpt}")]
    Malformed {
        /// What was wrong.
        reason: String,
        /// The start of the line.
        excerpt: String,
    },
    /// QEMU answered a command with an error.
    #[error("QMP command {command} failed: {class}: {desc}")]
    Command {
        /// The command.
        command: String,
        /// QMP's `error.class` (`GenericError`, `CommandNotFound`, `DeviceNotFound`, …).
        class: String,
        /// QMP's `error.desc`.
        desc: String,
    },
    /// The connection closed (usually: QEMU exited) before the reply came.
    #[error("QMP connection closed{}: {reason}", command.as_ref().map(|c| format!(" while waiting for {c}")).unwrap_or_default())]
    Closed {
        /// The command that was waiting, if any.
        command: Option<String>,
        /// Why it closed.
        reason: String,
    },
    /// No reply within the timeout.
    #[error("QMP command {command} got no reply within {after:?}")]
    Timeout {
        /// The command.
        command: String,
        /// The timeout.
        after: Duration,
    },
    /// A reply of the wrong shape for a typed helper.
    #[error("unexpected reply to {command}: {detail}")]
    UnexpectedReply {
        /// The command.
        command: String,
        /// What did not fit.
        detail: String,
    },
    /// An argument cannot be sent (e.g. a path that is not UTF-8).
    #[error("cannot send {command}: {detail}")]
    BadArgument {
        /// The command.
        command: String,
        /// What is wrong.
        detail: String,
    },
}

/// The VNC password [`Qmp::change_vnc_password`] sends: vmkit's one secret type (never printed: its `Debug` is
/// `<redacted>` and it has no `Display`), re-exported so QMP's callers need not name the crate it lives in.
pub use userfile::Secret;

/// QEMU's version from the greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub struct QemuVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Micro.
    pub micro: u32,
}

/// The greeting QEMU sends on connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// QEMU's version.
    pub version: QemuVersion,
    /// The distribution's package string.
    pub package: String,
    /// Capabilities QEMU offers.
    pub capabilities: Vec<String>,
}

/// An asynchronous event (`SHUTDOWN`, `POWERDOWN`, `RESET`, `STOP`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Event name.
    pub name: String,
    /// Event data (`{}` when none).
    pub data: Value,
    /// When QEMU emitted it: seconds and microseconds since the epoch.
    pub timestamp: Option<(i64, i64)>,
}

/// The VM's run state (`query-status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RunState {
    /// Running.
    #[serde(rename = "running")]
    Running,
    /// Paused by a `stop`.
    #[serde(rename = "paused")]
    Paused,
    /// Not started yet (`-S`).
    #[serde(rename = "prelaunch")]
    Prelaunch,
    /// Shut down, QEMU still alive (`-no-shutdown`).
    #[serde(rename = "shutdown")]
    Shutdown,
    /// Suspended to RAM.
    #[serde(rename = "suspended")]
    Suspended,
    /// Stopped on an I/O error.
    #[serde(rename = "io-error")]
    IoError,
    /// Stopped on an internal error.
    #[serde(rename = "internal-error")]
    InternalError,
    /// The guest panicked.
    #[serde(rename = "guest-panicked")]
    GuestPanicked,
    /// Stopped by the watchdog.
    #[serde(rename = "watchdog")]
    Watchdog,
    /// Any other state (migration, debug, …).
    #[serde(other)]
    Other,
}

/// Reply of `query-status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Status {
    /// The run state.
    pub status: RunState,
    /// Whether vCPUs run.
    pub running: bool,
}

/// One TPM from `query-tpm`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TpmInfo {
    /// tpmdev id.
    pub id: String,
    /// Interface model (`tpm-crb`, `tpm-tis`).
    pub model: String,
    /// Backend.
    pub options: TpmOptions,
}

/// The backend of a TPM.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TpmOptions {
    /// `emulator` or `passthrough`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Backend details (for `emulator`: the chardev).
    #[serde(default)]
    pub data: Value,
}

/// Image format for [`Qmp::screendump`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreendumpFormat {
    /// Portable pixmap (QEMU's default; fastest).
    Ppm,
    /// PNG (QEMU 7.1 and later).
    Png,
}

type Reply = Result<Value, QmpError>;

struct Pending {
    waiting: HashMap<u64, (String, oneshot::Sender<Reply>)>,
    closed: Option<String>,
}

struct Inner {
    writer: tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    events: broadcast::Sender<Event>,
    greeting: Greeting,
    timeout: Duration,
    reader: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut reader) = self.reader.lock()
            && let Some(task) = reader.take()
        {
            task.abort();
        }
    }
}

/// A QMP connection, shareable between tasks (clones use the same connection).
#[derive(Clone)]
pub struct Qmp {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Qmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qmp").field("greeting", &self.inner.greeting).finish_non_exhaustive()
    }
}

/// Options for a QMP connection.
#[derive(Debug, Clone, Copy)]
pub struct QmpOptions {
    /// Longest line accepted.
    pub max_line: usize,
    /// Default timeout for each command (and for the greeting and capabilities negotiation).
    pub timeout: Duration,
}

impl Default for QmpOptions {
    fn default() -> Self {
        Self { max_line: DEFAULT_MAX_LINE, timeout: DEFAULT_COMMAND_TIMEOUT }
    }
}

impl Qmp {
    /// Connects to QEMU's QMP socket, reads the greeting and negotiates capabilities.
    pub async fn connect(path: &Path) -> Result<Self, QmpError> {
        Self::connect_with(path, QmpOptions::default()).await
    }

    /// [`Qmp::connect`] with options.
    pub async fn connect_with(path: &Path, options: QmpOptions) -> Result<Self, QmpError> {
        let stream = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|e| QmpError::Connect { path: path.to_owned(), message: e.to_string() })?;
        Self::handshake(stream, options).await
    }

    /// Runs the QMP handshake over any byte stream (a socket QEMU gave, or a test's fake) and starts the reader.
    pub async fn handshake<S>(stream: S, options: QmpOptions) -> Result<Self, QmpError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, mut write) = tokio::io::split(stream);
        let mut reader = BufReader::new(read);
        let mut line = Vec::new();
        let greeting = tokio::time::timeout(options.timeout, async {
            if !read_line_bounded(&mut reader, &mut line, options.max_line).await? {
                return Err(QmpError::Greeting("connection closed before the greeting".to_owned()));
            }
            parse_greeting(&line)
        })
        .await
        .map_err(|_| QmpError::Timeout { command: "greeting".to_owned(), after: options.timeout })??;

        tokio::time::timeout(options.timeout, async {
            write
                .write_all(b"{\"execute\":\"qmp_capabilities\",\"id\":0}\n")
                .await
                .map_err(|e| QmpError::Io { op: "writing qmp_capabilities", message: e.to_string() })?;
            loop {
                line.clear();
                if !read_line_bounded(&mut reader, &mut line, options.max_line).await? {
                    return Err(QmpError::Closed {
                        command: Some("qmp_capabilities".to_owned()),
                        reason: "end of stream".to_owned(),
                    });
                }
                let msg = parse_json(&line)?;
                if msg.get("event").is_some() {
                    continue;
                }
                return reply_result("qmp_capabilities", &msg).map(drop);
            }
        })
        .await
        .map_err(|_| QmpError::Timeout { command: "qmp_capabilities".to_owned(), after: options.timeout })??;

        let (events, _) = broadcast::channel(256);
        let inner = Arc::new(Inner {
            writer: tokio::sync::Mutex::new(Box::new(write)),
            pending: Mutex::new(Pending { waiting: HashMap::new(), closed: None }),
            next_id: AtomicU64::new(1),
            events,
            greeting,
            timeout: options.timeout,
            reader: Mutex::new(None),
        });
        let task = tokio::spawn(read_loop(Arc::downgrade(&inner), reader, options.max_line));
        if let Ok(mut slot) = inner.reader.lock() {
            *slot = Some(task);
        }
        Ok(Self { inner })
    }

    /// QEMU's greeting.
    pub fn greeting(&self) -> &Greeting {
        &self.inner.greeting
    }

    /// Subscribes to events from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Whether the connection has closed (QEMU exited or dropped it).
    pub fn is_closed(&self) -> bool {
        self.inner.pending.lock().map(|p| p.closed.is_some()).unwrap_or(true)
    }

    /// Runs a command and returns its `return` value.
    pub async fn execute(&self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        self.execute_timeout(command, arguments, self.inner.timeout).await
    }

    /// [`Qmp::execute`] with a specific timeout.
    pub async fn execute_timeout(
        &self,
        command: &str,
        arguments: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, QmpError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({ "execute": command, "id": id });
        if let Some(args) = arguments {
            msg["arguments"] = args;
        }
        let mut bytes = serde_json::to_vec(&msg)
            .map_err(|e| QmpError::BadArgument { command: command.to_owned(), detail: e.to_string() })?;
        bytes.push(b'\n');

        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self
                .inner
                .pending
                .lock()
                .map_err(|_| QmpError::Closed { command: Some(command.to_owned()), reason: "poisoned".to_owned() })?;
            if let Some(reason) = &pending.closed {
                return Err(QmpError::Closed { command: Some(command.to_owned()), reason: reason.clone() });
            }
            pending.waiting.insert(id, (command.to_owned(), tx));
        }
        tracing::debug!(command, id, "QMP command");
        let result = tokio::time::timeout(timeout, async {
            {
                let mut w = self.inner.writer.lock().await;
                if let Err(e) = w.write_all(&bytes).await {
                    return Err(QmpError::Io { op: "writing a command", message: e.to_string() });
                }
                if let Err(e) = w.flush().await {
                    return Err(QmpError::Io { op: "writing a command", message: e.to_string() });
                }
            }
            rx.await.unwrap_or_else(|_| {
                Err(QmpError::Closed { command: Some(command.to_owned()), reason: "reader stopped".to_owned() })
            })
        })
        .await;
        if let Ok(mut pending) = self.inner.pending.lock() {
            pending.waiting.remove(&id);
        }
        match result {
            Ok(r) => r,
            Err(_) => Err(QmpError::Timeout { command: command.to_owned(), after: timeout }),
        }
    }

    /// Runs a command and decodes its reply.
    pub async fn execute_as<T: serde::de::DeserializeOwned>(
        &self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<T, QmpError> {
        let value = self.execute(command, arguments).await?;
        serde_json::from_value(value)
            .map_err(|e| QmpError::UnexpectedReply { command: command.to_owned(), detail: e.to_string() })
    }

    /// Presses the ACPI power button (the guest decides whether to power off).
    pub async fn system_powerdown(&self) -> Result<(), QmpError> {
        self.execute("system_powerdown", None).await.map(drop)
    }

    /// Ends QEMU at once. A connection that closes before the reply counts as success: QEMU exits right after
    /// answering, and may win the race.
    pub async fn quit(&self) -> Result<(), QmpError> {
        match self.execute("quit", None).await {
            Ok(_) | Err(QmpError::Closed { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes the current screen to `path` (written by QEMU, so the path is QEMU's view of the file system).
    pub async fn screendump(&self, path: &Path, format: ScreendumpFormat) -> Result<(), QmpError> {
        let filename = path.to_str().ok_or_else(|| QmpError::BadArgument {
            command: "screendump".to_owned(),
            detail: format!("path {} is not UTF-8", path.display()),
        })?;
        let mut args = json!({ "filename": filename });
        if format == ScreendumpFormat::Png {
            args["format"] = json!("png");
        }
        self.execute("screendump", Some(args)).await.map(drop)
    }

    /// Sets the VNC password (the server must run with `password=on`).
    pub async fn change_vnc_password(&self, password: &Secret) -> Result<(), QmpError> {
        self.execute("change-vnc-password", Some(json!({ "password": password.expose() }))).await.map(drop)
    }

    /// The VM's run state.
    pub async fn query_status(&self) -> Result<Status, QmpError> {
        self.execute_as("query-status", None).await
    }

    /// The TPMs QEMU emulates.
    pub async fn query_tpm(&self) -> Result<Vec<TpmInfo>, QmpError> {
        self.execute_as("query-tpm", None).await
    }

    /// Runs a human-monitor (HMP) command and returns its output.
    pub async fn human_monitor_command(&self, command_line: &str) -> Result<String, QmpError> {
        let v = self.execute("human-monitor-command", Some(json!({ "command-line": command_line }))).await?;
        v.as_str().map(str::to_owned).ok_or_else(|| QmpError::UnexpectedReply {
            command: "human-monitor-command".to_owned(),
            detail: format!("expected a string, got {v}"),
        })
    }

    /// Presses the keys (QEMU key codes such as `ctrl`, `alt`, `delete`, `a`, `ret`) together, then releases them.
    pub async fn send_keys(&self, qcodes: &[&str]) -> Result<(), QmpError> {
        let keys: Vec<Value> = qcodes.iter().map(|k| json!({ "type": "qcode", "data": k })).collect();
        self.execute("send-key", Some(json!({ "keys": keys }))).await.map(drop)
    }
}

async fn read_loop<R: AsyncBufRead + Unpin>(inner: std::sync::Weak<Inner>, mut reader: R, max_line: usize) {
    let mut line = Vec::new();
    let reason = loop {
        line.clear();
        let msg = match read_line_bounded(&mut reader, &mut line, max_line).await {
            Ok(true) => match parse_json(&line) {
                Ok(v) => v,
                Err(e) => break e.to_string(),
            },
            Ok(false) => break "end of stream".to_owned(),
            Err(e) => break e.to_string(),
        };
        let Some(inner) = inner.upgrade() else { return };
        if let Some(name) = msg.get("event").and_then(Value::as_str) {
            let timestamp = msg
                .get("timestamp")
                .and_then(|t| Some((t.get("seconds")?.as_i64()?, t.get("microseconds")?.as_i64()?)));
            let data = msg.get("data").cloned().unwrap_or_else(|| json!({}));
            tracing::debug!(event = name, "QMP event");
            // No subscribers is fine.
            let _ = inner.events.send(Event { name: name.to_owned(), data, timestamp });
            continue;
        }
        let Some(id) = msg.get("id").and_then(Value::as_u64) else {
            tracing::warn!("QMP message without id ignored");
            continue;
        };
        let waiter = inner.pending.lock().ok().and_then(|mut p| p.waiting.remove(&id));
        if let Some((command, tx)) = waiter {
            let _ = tx.send(reply_result(&command, &msg));
        }
    };
    if let Some(inner) = inner.upgrade() {
        tracing::debug!(%reason, "QMP connection closed");
        if let Ok(mut p) = inner.pending.lock() {
            p.closed = Some(reason.clone());
            for (_, (command, tx)) in p.waiting.drain() {
                let _ = tx.send(Err(QmpError::Closed { command: Some(command), reason: reason.clone() }));
            }
        }
    }
}

/// Reads one `\n`-terminated line into `buf` (without the line end), refusing lines over `limit` bytes.
/// Returns `false` at the end of the stream with nothing read.
pub(crate) async fn read_line_bounded<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    limit: usize,
) -> Result<bool, QmpError> {
    loop {
        let chunk = reader.fill_buf().await.map_err(|e| QmpError::Io { op: "reading", message: e.to_string() })?;
        if chunk.is_empty() {
            if buf.is_empty() {
                return Ok(false);
            }
            return Err(QmpError::Closed {
                command: None,
                reason: "stream ended in the middle of a message".to_owned(),
            });
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(pos) => (pos + 1, true),
            None => (chunk.len(), false),
        };
        if buf.len() + take > limit.saturating_add(1) {
            return Err(QmpError::LineTooLong { limit });
        }
        buf.extend_from_slice(&chunk[..take]);
        reader.consume(take);
        if done {
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            return Ok(true);
        }
    }
}

fn excerpt(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
    if line.len() > 200 { format!("{text}…") } else { text }
}

fn parse_json(line: &[u8]) -> Result<Value, QmpError> {
    let v: Value = serde_json::from_slice(line)
        .map_err(|e| QmpError::Malformed { reason: e.to_string(), excerpt: excerpt(line) })?;
    if !v.is_object() {
        return Err(QmpError::Malformed { reason: "not a JSON object".to_owned(), excerpt: excerpt(line) });
    }
    Ok(v)
}

fn parse_greeting(line: &[u8]) -> Result<Greeting, QmpError> {
    #[derive(Deserialize)]
    struct Outer {
        #[serde(rename = "QMP")]
        qmp: InnerGreeting,
    }
    #[derive(Deserialize)]
    struct InnerGreeting {
        version: VersionBlock,
        #[serde(default)]
        capabilities: Vec<String>,
    }
    #[derive(Deserialize)]
    struct VersionBlock {
        qemu: QemuVersion,
        #[serde(default)]
        package: String,
    }
    let outer: Outer =
        serde_json::from_slice(line).map_err(|e| QmpError::Greeting(format!("{e}: {}", excerpt(line))))?;
    Ok(Greeting {
        version: outer.qmp.version.qemu,
        package: outer.qmp.version.package.trim().to_owned(),
        capabilities: outer.qmp.capabilities,
    })
}

fn reply_result(command: &str, msg: &Value) -> Result<Value, QmpError> {
    if let Some(ret) = msg.get("return") {
        return Ok(ret.clone());
    }
    if let Some(err) = msg.get("error") {
        let field = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        return Err(QmpError::Command { command: command.to_owned(), class: field("class"), desc: field("desc") });
    }
    Err(QmpError::UnexpectedReply { command: command.to_owned(), detail: "neither return nor error".to_owned() })
}
