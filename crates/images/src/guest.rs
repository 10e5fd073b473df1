//! Talking to a booting guest over SSH: wait until it answers, run commands, ask it to power off.
//!
//! vmkit has one SSH client, the `ssh` crate's health check (russh, key or password, a command whose exit status
//! counts); this module drives it with the patterns a build needs. Each command is one connection, which costs a
//! fraction of a second against a guest that takes tens of seconds to boot, and keeps every step independent of a
//! session that sshd may drop while cloud-init restarts it. Root commands go through `sudo -n sh -c` with the
//! line shell-quoted as one argument, so recipe text cannot escape into the outer command.
//!
//! None of these waits watch QEMU: callers `select!` them against [`qemu::Qemu::exited`] so a dead guest ends
//! the wait at once.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ssh::HealthCheck;
use ssh::{SshError, SshTarget, run_health_check};

/// A guest reachable over SSH with a key.
#[derive(Debug, Clone)]
pub struct GuestSsh {
    /// Where (127.0.0.1 and the forwarded port).
    pub target: SshTarget,
    /// Login user.
    pub user: String,
    /// Private key file.
    pub key: PathBuf,
}

/// Why the guest could not be reached or a command failed.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// SSH never answered in time.
    #[error("SSH on {target} did not let {user} in within {waited:?} (last attempt: {last})")]
    NotReady {
        /// Where.
        target: String,
        /// As whom.
        user: String,
        /// How long was waited.
        waited: Duration,
        /// The last attempt's error.
        last: String,
    },
    /// A command failed.
    #[error("`{command}` on the guest: {source}")]
    Command {
        /// The command.
        command: String,
        /// Why.
        source: Box<SshError>,
    },
}

impl GuestSsh {
    /// A guest at `127.0.0.1:port`.
    pub fn local(port: u16, user: &str, key: PathBuf) -> Self {
        Self { target: SshTarget { host: "127.0.0.1".into(), port }, user: user.to_owned(), key }
    }

    fn check(&self, command: &str, timeout: Duration) -> HealthCheck {
        HealthCheck {
            user: self.user.clone(),
            password: None,
            key_file: Some(self.key.clone()),
            host: None,
            port: None,
            command: command.to_owned(),
            timeout,
            retries: 1,
            retry_delay: Duration::ZERO,
        }
    }

    /// Every `interval`, looks for sshd's banner; once there is one, logs in and runs `true`. Returns when that
    /// works, fails when `limit` passes.
    ///
    /// The banner check matters with QEMU's user-mode network: it accepts the host-side connection at once and
    /// only then tries the guest, so while the guest's network is not up a connection just sits there. A login
    /// attempt would wait for its whole timeout; a banner check gives up after a second and tries again.
    pub async fn wait_ready(&self, limit: Duration, interval: Duration) -> Result<Duration, GuestError> {
        self.wait_ready_with(limit, interval, "true").await
    }

    /// [`GuestSsh::wait_ready`] with another command proving the login works (Windows has no `true`: its probe
    /// is PowerShell, [`crate::windows::guest::READY`]).
    pub async fn wait_ready_with(
        &self,
        limit: Duration,
        interval: Duration,
        probe: &str,
    ) -> Result<Duration, GuestError> {
        let started = Instant::now();
        let mut last = String::from("no attempt");
        while started.elapsed() < limit {
            let attempt_started = Instant::now();
            if let Err(why) = self.banner(Duration::from_secs(1)).await {
                last = why;
                if let Some(rest) = interval.checked_sub(attempt_started.elapsed()) {
                    tokio::time::sleep(rest).await;
                }
                continue;
            }
            let report = run_health_check(&self.check(probe, Duration::from_secs(30)), &self.target, |_| {}).await;
            if let Some(attempt) = report.attempts.last() {
                match &attempt.result {
                    Ok(_) => return Ok(started.elapsed()),
                    Err(e) => last = e.to_string(),
                }
            }
            tracing::debug!(%last, "guest SSH not ready");
            if let Some(rest) = interval.checked_sub(attempt_started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
        Err(GuestError::NotReady {
            target: self.target.to_string(),
            user: self.user.clone(),
            waited: started.elapsed(),
            last,
        })
    }

    /// Connects and reads the first line the server sends; `Ok` if it is an SSH banner within `timeout`.
    pub async fn banner(&self, timeout: Duration) -> Result<(), String> {
        use tokio::io::AsyncReadExt;
        let addr = (self.target.host.as_str(), self.target.port);
        let read = async {
            let mut stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connecting: {e}"))?;
            let mut buf = [0u8; 8];
            let mut got = 0;
            while got < 4 {
                let n = stream.read(&mut buf[got..]).await.map_err(|e| format!("reading the banner: {e}"))?;
                if n == 0 {
                    return Err("the connection closed before a banner (the guest's sshd is not up)".to_owned());
                }
                got += n;
            }
            if buf.starts_with(b"SSH-") {
                Ok(())
            } else {
                Err("the server sent something other than an SSH banner".to_owned())
            }
        };
        tokio::time::timeout(timeout, read).await.unwrap_or_else(|_| Err(format!("no SSH banner within {timeout:?}")))
    }

    /// Runs `command` as the login user; `retries` extra attempts 2 s apart cover an sshd that restarts.
    pub async fn run(&self, command: &str, timeout: Duration, retries: u32) -> Result<String, GuestError> {
        let mut check = self.check(command, timeout);
        check.retries = retries + 1;
        check.retry_delay = Duration::from_secs(2);
        let report = run_health_check(&check, &self.target, |a| {
            if let Err(e) = &a.result {
                tracing::debug!(attempt = a.number, error = %e, command, "guest command attempt failed");
            }
        })
        .await;
        let failed = |source| GuestError::Command { command: command.to_owned(), source: Box::new(source) };
        let mut report = report;
        match report.attempts.pop() {
            Some(attempt) => attempt.result.map_err(failed),
            None => Err(failed(SshError::Timeout(timeout))),
        }
    }

    /// Runs a shell line as root (`sudo -n sh -c LINE`), once.
    pub async fn run_as_root(&self, line: &str, timeout: Duration) -> Result<String, GuestError> {
        self.run(&root_command(line), timeout, 0).await
    }
}

/// What sets one VM apart from another made from the same image: its machine id and its SSH host keys.
///
/// An image must not carry the identity its build boot generated, or every VM made from it would share it. The
/// build records the build boot's identity in the manifest (the machine id only as a digest), removes it before
/// the image is published, and the boot test checks that a VM booted from the image made its own.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestIdentity {
    /// SHA-256 of `/etc/machine-id`.
    pub machine_id_sha256: String,
    /// The SSH host keys' fingerprints (`SHA256:…`), as `ssh-keygen -l` shows them.
    pub host_keys: Vec<String>,
}

impl GuestIdentity {
    /// The shell line that prints the machine id, then one `ssh-keygen -l` line per host key.
    pub const QUERY: &str =
        "cat /etc/machine-id && for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf \"$f\" || exit 1; done";

    /// Reads [`GuestIdentity::QUERY`]'s output.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let id = lines.next().ok_or("no machine id")?;
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("`{}` is not a machine id", id.chars().take(40).collect::<String>()));
        }
        let mut host_keys = Vec::new();
        for line in lines {
            match line.split_whitespace().nth(1) {
                Some(fp) if fp.starts_with("SHA256:") => host_keys.push(fp.to_owned()),
                _ => return Err(format!("`{line}` is not an ssh-keygen -l line")),
            }
        }
        if host_keys.is_empty() {
            return Err("no SSH host keys".to_owned());
        }
        host_keys.sort();
        Ok(Self { machine_id_sha256: fetch::Sha256::of_bytes(id.as_bytes()).to_hex(), host_keys })
    }

    /// What `self` shares with `other`, in words; empty when the two are distinct machines.
    pub fn shared_with(&self, other: &Self) -> Vec<String> {
        let mut shared = Vec::new();
        if self.machine_id_sha256 == other.machine_id_sha256 {
            shared.push("the machine id".to_owned());
        }
        shared.extend(self.host_keys.iter().filter(|k| other.host_keys.contains(k)).map(|k| format!("host key {k}")));
        shared
    }
}

/// `sudo -n sh -c '<line>'`, the line quoted for the remote shell as one argument.
pub fn root_command(line: &str) -> String {
    format!("sudo -n sh -c {}", shell_quote(line))
}

/// Quotes `s` for a POSIX shell (vmkit's one quoter, [`qemu::script::sh_quote`]).
pub use qemu::script::sh_quote as shell_quote;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn banner_check_tells_sshd_from_a_silent_or_closing_peer() {
        use tokio::io::AsyncWriteExt;
        async fn server(reply: Option<&'static [u8]>) -> u16 {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            tokio::spawn(async move {
                while let Ok((mut conn, _)) = listener.accept().await {
                    match reply {
                        Some(bytes) => {
                            let _ = conn.write_all(bytes).await;
                            tokio::time::sleep(Duration::from_secs(5)).await;
                        }
                        // Like QEMU's user-mode network before the guest listens: accepted, then nothing.
                        None => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                }
            });
            port
        }
        let guest = |port| GuestSsh::local(port, "agent", PathBuf::from("/nonexistent"));
        assert_eq!(guest(server(Some(b"SSH-2.0-OpenSSH_9.2\r\n")).await).banner(Duration::from_secs(5)).await, Ok(()));
        let silent = guest(server(None).await).banner(Duration::from_millis(300)).await.unwrap_err();
        assert!(silent.contains("no SSH banner"), "{silent}");
        let other = guest(server(Some(b"HTTP/1.1 400\r\n")).await).banner(Duration::from_secs(5)).await.unwrap_err();
        assert!(other.contains("something other"), "{other}");
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        assert!(guest(closed_port).banner(Duration::from_secs(5)).await.is_err());
    }

    #[test]
    fn identities_are_parsed_and_compared() {
        let text = "0123456789abcdef0123456789abcdef\n256 SHA256:abc root@b (ED25519)\n3072 SHA256:def root@b (RSA)\n";
        let a = GuestIdentity::parse(text).unwrap();
        assert_eq!(a.host_keys, vec!["SHA256:abc".to_owned(), "SHA256:def".to_owned()]);
        assert_eq!(a.machine_id_sha256.len(), 64);
        assert!(!text.contains(&a.machine_id_sha256), "only a digest of the id is kept");
        let b = GuestIdentity::parse("fedcba9876543210fedcba9876543210\n256 SHA256:xyz root@c (ED25519)\n").unwrap();
        assert!(a.shared_with(&b).is_empty());
        let c = GuestIdentity::parse("0123456789abcdef0123456789abcdef\n256 SHA256:def root@c (RSA)\n").unwrap();
        assert_eq!(a.shared_with(&c), vec!["the machine id".to_owned(), "host key SHA256:def".to_owned()]);
        for bad in [
            "",
            "uninitialized\n256 SHA256:a x (E)",
            "0123456789abcdef0123456789abcdef\n",
            "0123456789abcdef0123456789abcdef\nnope",
        ] {
            assert!(GuestIdentity::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn root_commands_quote_the_line_as_one_argument() {
        assert_eq!(root_command("echo hi"), "sudo -n sh -c 'echo hi'");
        assert_eq!(root_command("echo 'a' $HOME; rm x"), r"sudo -n sh -c 'echo '\''a'\'' $HOME; rm x'");
        // What the remote shell makes of it: exactly the line, as one argument to sh -c.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell_quote("it's $x `y` \"z\"\n")))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "it's $x `y` \"z\"\n");
    }
}
