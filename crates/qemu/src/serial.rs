//! The guest's serial port: a log to wait on, and a console to type into.
//!
//! vmkit connects serial ports to a Unix-socket chardev with `logfile=` ([`crate::QemuCommand::serial_socket`]):
//! QEMU appends everything the guest sends to the log file whether or not a client is connected, and a client of
//! the socket can type into the guest.
//!
//! [`SerialLog`] waits until the log matches a text or a regular expression, reading only what was appended since
//! its last look, with a timeout — and, given the [`Qemu`], fails the moment QEMU exits, with QEMU's message and
//! the log's last lines, instead of waiting out the timeout. The window it searches is bounded (1 MiB), so a
//! chatty guest cannot make it allocate without limit.
//!
//! [`SerialConsole`] writes to the socket. It also drains what QEMU sends back: a client that stops reading
//! would fill the socket buffer, and QEMU would then stall the guest's UART — and with it the log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::bytes::Regex;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::process::{Exit, Qemu};

/// How much of the log is kept in memory for matching.
const WINDOW: usize = 1 << 20;
/// How often the log file is re-read while waiting.
const POLL: Duration = Duration::from_millis(25);

/// What went wrong waiting on or writing to a serial port.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    /// The pattern did not appear in time.
    #[error("serial log {path} did not show {pattern} within {after:?}; its last lines:\n{tail}")]
    Timeout {
        /// The log.
        path: PathBuf,
        /// The pattern, as text.
        pattern: String,
        /// The timeout.
        after: Duration,
        /// The end of the log.
        tail: String,
    },
    /// QEMU exited while waiting.
    #[error("QEMU exited while waiting for {pattern} in {path} ({exit}); the log's last lines:\n{tail}")]
    QemuExited {
        /// The log.
        path: PathBuf,
        /// The pattern, as text.
        pattern: String,
        /// How QEMU ended.
        exit: Box<Exit>,
        /// The end of the log.
        tail: String,
    },
    /// Reading the log or using the socket failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or socket.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A regular expression did not compile.
    #[error("invalid regular expression {pattern:?}: {message}")]
    BadRegex {
        /// The expression.
        pattern: String,
        /// The compiler's message.
        message: String,
    },
}

/// What to wait for: a literal text or a regular expression.
#[derive(Debug, Clone)]
pub struct Pattern {
    kind: PatternKind,
    shown: String,
}

#[derive(Debug, Clone)]
enum PatternKind {
    Literal(Vec<u8>),
    Regex(Regex),
}

impl Pattern {
    /// A literal text.
    pub fn text(text: &str) -> Self {
        Self { kind: PatternKind::Literal(text.as_bytes().to_vec()), shown: format!("{text:?}") }
    }

    /// A regular expression (Rust `regex` syntax, matched against the log's bytes).
    pub fn regex(expr: &str) -> Result<Self, SerialError> {
        let regex =
            Regex::new(expr).map_err(|e| SerialError::BadRegex { pattern: expr.to_owned(), message: e.to_string() })?;
        Ok(Self { kind: PatternKind::Regex(regex), shown: format!("/{expr}/") })
    }

    /// Where the pattern first matches in `hay`: (start, end, capture groups).
    fn find_in(&self, hay: &[u8]) -> Option<(usize, usize, Vec<Option<String>>)> {
        match &self.kind {
            PatternKind::Literal(needle) => {
                if needle.is_empty() {
                    return Some((0, 0, Vec::new()));
                }
                let start = hay.windows(needle.len()).position(|w| w == needle.as_slice())?;
                Some((start, start + needle.len(), Vec::new()))
            }
            PatternKind::Regex(regex) => {
                let caps = regex.captures(hay)?;
                let whole = caps.get(0)?;
                let groups = caps
                    .iter()
                    .skip(1)
                    .map(|g| g.map(|g| String::from_utf8_lossy(g.as_bytes()).into_owned()))
                    .collect();
                Some((whole.start(), whole.end(), groups))
            }
        }
    }
}

impl From<&str> for Pattern {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// A match in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The matched text (lossy UTF-8).
    pub text: String,
    /// Capture groups of a regular expression (`None` for groups that did not take part).
    pub groups: Vec<Option<String>>,
    /// Byte offset in the log just after the match.
    pub end: u64,
}

/// A serial log file with a read position.
#[derive(Debug, Clone)]
pub struct SerialLog {
    path: PathBuf,
    /// Log offset of `window[0]`.
    window_start: u64,
    /// Bytes read but not yet consumed by a match.
    window: Vec<u8>,
    /// Log offset up to which the file has been read.
    read_to: u64,
}

impl SerialLog {
    /// A reader of the log at `path`, from its beginning. The file may not exist yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), window_start: 0, window: Vec::new(), read_to: 0 }
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Skips everything logged so far: later waits only see new output.
    pub fn skip_to_end(&mut self) -> Result<(), SerialError> {
        let len = match std::fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(SerialError::Io { op: "reading", path: self.path.clone(), source }),
        };
        self.window.clear();
        self.window_start = len;
        self.read_to = len;
        Ok(())
    }

    /// The whole log so far (lossy UTF-8).
    pub fn contents(&self) -> Result<String, SerialError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(source) => Err(SerialError::Io { op: "reading", path: self.path.clone(), source }),
        }
    }

    /// Waits until the log, after the read position, matches `pattern`; the position moves past the match.
    /// With `qemu`, fails as soon as QEMU exits.
    pub async fn wait_for(
        &mut self,
        pattern: &Pattern,
        timeout: Duration,
        qemu: Option<&Qemu>,
    ) -> Result<Match, SerialError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let exited = qemu.map(Qemu::exited);
        tokio::pin!(let exited = async move {
            match exited {
                Some(f) => f.await,
                None => std::future::pending().await,
            }
        };);
        loop {
            self.read_more().await?;
            if let Some(m) = self.find(pattern) {
                return Ok(m);
            }
            tokio::select! {
                exit = &mut exited => {
                    // QEMU may have written the awaited line just before exiting.
                    self.read_more().await?;
                    if let Some(m) = self.find(pattern) {
                        return Ok(m);
                    }
                    return Err(SerialError::QemuExited {
                        path: self.path.clone(),
                        pattern: pattern.shown.clone(),
                        exit: Box::new(exit),
                        tail: self.tail(),
                    });
                }
                () = tokio::time::sleep_until(deadline) => {
                    self.read_more().await?;
                    if let Some(m) = self.find(pattern) {
                        return Ok(m);
                    }
                    return Err(SerialError::Timeout {
                        path: self.path.clone(),
                        pattern: pattern.shown.clone(),
                        after: timeout,
                        tail: self.tail(),
                    });
                }
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    fn find(&mut self, pattern: &Pattern) -> Option<Match> {
        let (start, end_in_window, groups) = pattern.find_in(&self.window)?;
        let text = String::from_utf8_lossy(&self.window[start..end_in_window]).into_owned();
        let end = self.window_start + end_in_window as u64;
        self.window.drain(..end_in_window);
        self.window_start = end;
        Some(Match { text, groups, end })
    }

    async fn read_more(&mut self) -> Result<(), SerialError> {
        let mut file = match tokio::fs::File::open(&self.path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(SerialError::Io { op: "opening", path: self.path.clone(), source }),
        };
        let len = file
            .metadata()
            .await
            .map_err(|source| SerialError::Io { op: "reading", path: self.path.clone(), source })?
            .len();
        if len < self.read_to {
            // Truncated or replaced: start over.
            self.window.clear();
            self.window_start = 0;
            self.read_to = 0;
        }
        if len == self.read_to {
            return Ok(());
        }
        file.seek(std::io::SeekFrom::Start(self.read_to)).await.map_err(|source| SerialError::Io {
            op: "seeking in",
            path: self.path.clone(),
            source,
        })?;
        let mut chunk = Vec::new();
        (&mut file).take(len - self.read_to).read_to_end(&mut chunk).await.map_err(|source| SerialError::Io {
            op: "reading",
            path: self.path.clone(),
            source,
        })?;
        self.read_to += chunk.len() as u64;
        self.window.extend_from_slice(&chunk);
        if self.window.len() > WINDOW {
            let drop = self.window.len() - WINDOW;
            self.window.drain(..drop);
            self.window_start += drop as u64;
        }
        Ok(())
    }

    fn tail(&self) -> String {
        let text = self.contents().unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// A client of a serial port's Unix socket, for typing into the guest.
#[derive(Debug)]
pub struct SerialConsole {
    path: PathBuf,
    writer: tokio::net::unix::OwnedWriteHalf,
    drain: tokio::task::JoinHandle<()>,
}

impl SerialConsole {
    /// Connects to the chardev socket QEMU listens on.
    pub async fn connect(path: &Path) -> Result<Self, SerialError> {
        let stream = tokio::net::UnixStream::connect(path).await.map_err(|source| SerialError::Io {
            op: "connecting to",
            path: path.to_owned(),
            source,
        })?;
        let (mut read, writer) = stream.into_split();
        let drain = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = read.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        });
        Ok(Self { path: path.to_owned(), writer, drain })
    }

    /// Sends bytes as typed.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), SerialError> {
        self.writer.write_all(bytes).await.map_err(|source| SerialError::Io {
            op: "writing to",
            path: self.path.clone(),
            source,
        })
    }

    /// Sends a line and a newline.
    pub async fn send_line(&mut self, line: &str) -> Result<(), SerialError> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.send(&bytes).await
    }
}

impl Drop for SerialConsole {
    fn drop(&mut self) {
        self.drain.abort();
    }
}
