//! SSH for vmkit: log in to a machine that was just set up and run a command that must exit 0 — the health
//! check at the end of an automation script, the image builders' guest commands and the boot tests.
//!
//! Why a crate of its own: the automation engine, the image builds and the boot tests all need this one
//! client, and none of them should import another's engine to get it (the image builder imports `automate`
//! only to run installer scripts).
//!
//! Semantics follow the script format: `retries` attempts in all, `timeout` for each attempt (connect,
//! authenticate, run), `retry_delay` between attempts. Authentication tries the key file first (when given),
//! then the password, and falls back to keyboard-interactive with the same password, which is how many sshd
//! configurations (macOS among them) ask for a password.
//!
//! The host key is not verified: the machine was installed moments ago, so there is no known key to compare
//! with; its fingerprint is logged instead. The password never appears in an error, a log line or a report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, MethodKind};

pub use userfile::Secret;

/// The SSH check that proves the machine is up after the last step.
#[derive(Debug, Clone)]
pub struct HealthCheck {
    /// Log in as this user.
    pub user: String,
    /// Password authentication.
    pub password: Option<Secret>,
    /// Public-key authentication with this private key (OpenSSH format), resolved relative to the script.
    pub key_file: Option<PathBuf>,
    /// Host from the script; the command line's `--ssh`/`--vm-ip` win over it.
    pub host: Option<String>,
    /// Port from the script; the command line wins over it.
    pub port: Option<u16>,
    /// Command that must exit 0.
    pub command: String,
    /// Per attempt: connect, authenticate, run.
    pub timeout: Duration,
    /// Attempts in all (at least 1).
    pub retries: u32,
    /// Pause between attempts.
    pub retry_delay: Duration,
}

/// Captured command output kept for the report (each stream).
const MAX_OUTPUT: usize = 4096;

/// Where the health check connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// TCP connection or SSH handshake failed.
    #[error("connecting to {target}: {source}")]
    Connect {
        /// Where.
        target: String,
        /// Why.
        source: russh::Error,
    },
    /// The private key could not be read.
    #[error("reading the private key {}: {source}", path.display())]
    KeyFile {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: russh::keys::Error,
    },
    /// The server refused every method tried.
    #[error("{target} refused {user}'s login (tried {tried}; the server offers {offered})")]
    AuthRejected {
        /// Where.
        target: String,
        /// As whom.
        user: String,
        /// Methods tried.
        tried: String,
        /// Methods the server still offers.
        offered: String,
    },
    /// Protocol failure after connecting (opening the channel, sending the command, ...).
    #[error("{doing} on {target}: {source}")]
    Session {
        /// What was being done.
        doing: &'static str,
        /// Where.
        target: String,
        /// Why.
        source: russh::Error,
    },
    /// The command ran and exited non-zero (or was killed by a signal).
    #[error("`{command}` exited with {status}{}", if stderr.is_empty() { String::new() } else { format!(": {}", stderr.trim()) })]
    CommandFailed {
        /// The command.
        command: String,
        /// Exit status or signal.
        status: String,
        /// What it wrote to stderr (truncated).
        stderr: String,
    },
    /// The channel closed without an exit status.
    #[error("`{command}` ended without an exit status")]
    NoExitStatus {
        /// The command.
        command: String,
    },
    /// The attempt took longer than `timeout`.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// One attempt's outcome.
#[derive(Debug)]
pub struct Attempt {
    /// 1-based.
    pub number: u32,
    /// How long it took.
    pub duration: Duration,
    /// The command's standard output on success, or why it failed.
    pub result: Result<String, SshError>,
}

/// The whole check: every attempt, in order.
#[derive(Debug)]
pub struct HealthReport {
    /// Where it connected.
    pub target: SshTarget,
    /// Every attempt made.
    pub attempts: Vec<Attempt>,
}

impl HealthReport {
    /// True if the last attempt succeeded.
    pub fn passed(&self) -> bool {
        self.attempts.last().is_some_and(|a| a.result.is_ok())
    }
}

/// Runs the health check against `target`: up to `check.retries` attempts, `check.retry_delay` apart.
/// `on_attempt` sees each attempt as it finishes (for logs).
pub async fn run_health_check(
    check: &HealthCheck,
    target: &SshTarget,
    mut on_attempt: impl FnMut(&Attempt),
) -> HealthReport {
    let mut attempts = Vec::new();
    for number in 1..=check.retries.max(1) {
        if number > 1 {
            tokio::time::sleep(check.retry_delay).await;
        }
        let started = Instant::now();
        let result = match tokio::time::timeout(check.timeout, attempt(check, target)).await {
            Ok(r) => r,
            Err(_) => Err(SshError::Timeout(check.timeout)),
        };
        let a = Attempt { number, duration: started.elapsed(), result };
        on_attempt(&a);
        let ok = a.result.is_ok();
        attempts.push(a);
        if ok {
            break;
        }
    }
    HealthReport { target: target.clone(), attempts }
}

/// Accepts any host key (there is no known key for a machine installed moments ago) and logs its fingerprint.
struct AnyHostKey;

impl client::Handler for AnyHostKey {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        if let PublicKeyOrCertificate::PublicKey { key, .. } = key {
            tracing::debug!(fingerprint = %key.fingerprint(Default::default()), "SSH host key");
        }
        Ok(true)
    }
}

async fn attempt(check: &HealthCheck, target: &SshTarget) -> Result<String, SshError> {
    let where_ = target.to_string();
    let config = Arc::new(client::Config { nodelay: true, ..Default::default() });
    let mut session = client::connect(config, (target.host.as_str(), target.port), AnyHostKey)
        .await
        .map_err(|source| SshError::Connect { target: where_.clone(), source })?;
    authenticate(&mut session, check, &where_).await?;
    let result = run_command(&session, &check.command, &where_).await;
    let _ = session.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    result
}

async fn authenticate(
    session: &mut client::Handle<AnyHostKey>,
    check: &HealthCheck,
    target: &str,
) -> Result<(), SshError> {
    let mut tried = Vec::new();
    let mut offered = String::from("nothing");
    let session_err = |doing, source| SshError::Session { doing, target: target.to_owned(), source };
    if let Some(path) = &check.key_file {
        let key = load_key(path)?;
        let hash = session.best_supported_rsa_hash().await.map_err(|e| session_err("negotiating the key's hash", e))?;
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash.flatten());
        let result = session
            .authenticate_publickey(&check.user, key)
            .await
            .map_err(|e| session_err("authenticating with the key", e))?;
        tried.push("publickey");
        match result {
            russh::client::AuthResult::Success => return Ok(()),
            russh::client::AuthResult::Failure { remaining_methods, .. } => offered = methods(&remaining_methods),
        }
    }
    if let Some(password) = &check.password {
        let result = session
            .authenticate_password(&check.user, password.expose())
            .await
            .map_err(|e| session_err("authenticating with the password", e))?;
        tried.push("password");
        let remaining = match result {
            russh::client::AuthResult::Success => return Ok(()),
            russh::client::AuthResult::Failure { remaining_methods, .. } => remaining_methods,
        };
        offered = methods(&remaining);
        if remaining.contains(&MethodKind::KeyboardInteractive) {
            tried.push("keyboard-interactive");
            if keyboard_interactive(session, check, target).await? {
                return Ok(());
            }
        }
    }
    Err(SshError::AuthRejected {
        target: target.to_owned(),
        user: check.user.clone(),
        tried: tried.join(", "),
        offered,
    })
}

/// Answers every prompt with the password; true on success.
async fn keyboard_interactive(
    session: &mut client::Handle<AnyHostKey>,
    check: &HealthCheck,
    target: &str,
) -> Result<bool, SshError> {
    use russh::client::KeyboardInteractiveAuthResponse as R;
    let Some(password) = &check.password else { return Ok(false) };
    let err =
        |source| SshError::Session { doing: "keyboard-interactive authentication", target: target.to_owned(), source };
    let mut reply = session.authenticate_keyboard_interactive_start(&check.user, None).await.map_err(err)?;
    // A server may send empty info requests before the real prompt; a few rounds are plenty.
    for _ in 0..5 {
        match reply {
            R::Success => return Ok(true),
            R::Failure { .. } => return Ok(false),
            R::InfoRequest { prompts, .. } => {
                let answers = prompts.iter().map(|_| password.expose().to_owned()).collect();
                reply = session.authenticate_keyboard_interactive_respond(answers).await.map_err(err)?;
            }
        }
    }
    Ok(false)
}

fn load_key(path: &Path) -> Result<russh::keys::PrivateKey, SshError> {
    let err = |source| SshError::KeyFile { path: path.to_owned(), source };
    let text =
        userfile::read_to_string(path, userfile::Limit::Key).map_err(|e| err(russh::keys::Error::IO(e.into_io())))?;
    russh::keys::decode_secret_key(&text, None).map_err(err)
}

fn methods(set: &russh::MethodSet) -> String {
    if set.is_empty() {
        return "nothing".to_owned();
    }
    set.iter().map(<&str>::from).collect::<Vec<_>>().join(", ")
}

async fn run_command(session: &client::Handle<AnyHostKey>, command: &str, target: &str) -> Result<String, SshError> {
    let err = |doing, source| SshError::Session { doing, target: target.to_owned(), source };
    let mut channel = session.channel_open_session().await.map_err(|e| err("opening a session channel", e))?;
    channel.exec(true, command).await.map_err(|e| err("starting the command", e))?;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut status: Option<String> = None;
    let mut exit_ok = false;
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => append_capped(&mut stdout, &data),
            ChannelMsg::ExtendedData { data, .. } => append_capped(&mut stderr, &data),
            ChannelMsg::ExitStatus { exit_status } => {
                exit_ok = exit_status == 0;
                status = Some(format!("status {exit_status}"));
            }
            ChannelMsg::ExitSignal { signal_name, .. } => status = Some(format!("signal {signal_name:?}")),
            ChannelMsg::Failure => {
                return Err(SshError::CommandFailed {
                    command: command.to_owned(),
                    status: "a refusal to run it".to_owned(),
                    stderr: String::new(),
                });
            }
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    match status {
        Some(_) if exit_ok => Ok(String::from_utf8_lossy(&stdout).into_owned()),
        Some(status) => Err(SshError::CommandFailed {
            command: command.to_owned(),
            status,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }),
        None => Err(SshError::NoExitStatus { command: command.to_owned() }),
    }
}

fn append_capped(buf: &mut Vec<u8>, data: &[u8]) {
    let room = MAX_OUTPUT.saturating_sub(buf.len());
    buf.extend_from_slice(&data[..data.len().min(room)]);
}
