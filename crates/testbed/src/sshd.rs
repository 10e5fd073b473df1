//! A real OpenSSH `sshd` on 127.0.0.1 for health-check tests, with its own user, password and key.
//!
//! Password authentication needs a system account with a password, and tests must not add one to the machine.
//! So sshd runs in a private mount namespace (`unshare --mount`) where copies of `/etc/passwd` and
//! `/etc/shadow` with one extra test user are bind-mounted over the real files: the account exists for that sshd
//! alone and vanishes with it. Needs root (the tests run as root in CI) and the `openssh-server`,
//! `openssh-client` (ssh-keygen) and `openssl` (password hashing) packages.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::net::{free_port, wait_for_port};
use crate::process::{Daemon, run};

/// The test account's name.
pub const USER: &str = "vmkit-ssh-test";
/// Its uid and gid (high, unlikely to collide with real accounts; it only exists inside sshd's namespace).
const UID: u32 = 64_123;

/// A running sshd; stops when dropped.
#[derive(Debug)]
pub struct Sshd {
    port: u16,
    password: String,
    key: PathBuf,
    // Field order: the daemon stops before its directory is removed.
    daemon: Daemon,
    dir: tempfile::TempDir,
}

impl Sshd {
    /// Starts sshd with a test user whose password is `password` and who also accepts the key at
    /// [`Sshd::private_key`]. Retries with another port when one is taken.
    pub fn start(password: &str) -> anyhow::Result<Self> {
        Self::start_with(password, false)
    }

    /// Like [`Sshd::start`], and root may log in too, with the key only: for remote libvirt URIs
    /// (`qemu+ssh://root@127.0.0.1:PORT/system`), whose far side must reach libvirt's root socket.
    pub fn start_with_root(password: &str) -> anyhow::Result<Self> {
        Self::start_with(password, true)
    }

    fn start_with(password: &str, root: bool) -> anyhow::Result<Self> {
        let mut last = None;
        for _ in 0..5 {
            match Self::try_start(password, root) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
    }

    fn try_start(password: &str, root: bool) -> anyhow::Result<Self> {
        let dir = crate::scratch_dir("sshd")?;
        let d = dir.path();
        // The test user must reach its home and authorized_keys; secrets in here are mode 0600 themselves.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
        let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .context("sshd not found (Debian package openssh-server)")?;
        keygen(&d.join("host_key"))?;
        let key = d.join("id_ed25519");
        keygen(&key)?;
        std::fs::copy(d.join("id_ed25519.pub"), d.join("authorized_keys"))?;
        let home = d.join("home");
        std::fs::create_dir(&home)?;
        std::os::unix::fs::chown(&home, Some(UID), Some(UID)).context("chown of the test user's home (needs root)")?;
        write_accounts(d, &home, password)?;
        let port = free_port()?;
        let config = d.join("sshd_config");
        std::fs::write(&config, sshd_config(d, port, root))?;
        // The namespace's view of /etc: our passwd and shadow over the real ones, for sshd alone.
        let script = format!(
            "set -e\nmount --bind '{p}' /etc/passwd\nmount --bind '{s}' /etc/shadow\nmkdir -p /run/sshd\nexec '{sshd}' -D -e -f '{c}'\n",
            p = d.join("passwd").display(),
            s = d.join("shadow").display(),
            sshd = sshd.display(),
            c = config.display(),
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
        let mut daemon = Daemon::spawn("sshd", cmd, &d.join("sshd.log"))?;
        if let Err(e) = wait_for_port(port, Duration::from_secs(10)) {
            daemon.ensure_running()?;
            return Err(e.context(format!("sshd did not listen; its output:\n{}", daemon.log())));
        }
        Ok(Self { port, password: password.to_owned(), key, daemon, dir })
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The test user's name.
    pub fn user(&self) -> &str {
        USER
    }

    /// The test user's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// An OpenSSH ed25519 private key (mode 0600) that the test user accepts.
    pub fn private_key(&self) -> &Path {
        &self.key
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What sshd logged so far (authentication failures show here).
    pub fn log(&self) -> String {
        self.daemon.log()
    }
}

fn keygen(path: &Path) -> anyhow::Result<()> {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", "ed25519", "-N", "", "-C", "vmkit-test", "-f"]).arg(path);
    run(&mut cmd).context("ssh-keygen (Debian package openssh-client)")?;
    Ok(())
}

fn write_accounts(dir: &Path, home: &Path, password: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut hash_cmd = Command::new("openssl");
    hash_cmd.args(["passwd", "-6", "-stdin"]);
    let hash = run_with_stdin(hash_cmd, password).context("hashing the test password with openssl")?;
    let hash = hash.trim();
    if !hash.starts_with("$6$") {
        bail!("openssl passwd -6 printed something unexpected");
    }
    let mut passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    passwd.push_str(&format!("{USER}:x:{UID}:{UID}:vmkit test:{}:/bin/sh\n", home.display()));
    std::fs::write(dir.join("passwd"), passwd)?;
    let mut shadow = std::fs::read_to_string("/etc/shadow").context("reading /etc/shadow (needs root)")?;
    shadow.push_str(&format!("{USER}:{hash}:19000:0:99999:7:::\n"));
    let path = dir.join("shadow");
    std::fs::write(&path, shadow)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

fn run_with_stdin(mut cmd: Command, input: &str) -> anyhow::Result<String> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    child.stdin.take().context("stdin")?.write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn sshd_config(dir: &Path, port: u16, root: bool) -> String {
    let d = dir.display();
    // Only the test user (and root with the key, if asked) may log in; password and key both allowed for the
    // test user; no PAM (the shadow file is ours).
    let (permit_root, users) =
        if root { ("prohibit-password", format!("{USER} root")) } else { ("no", USER.to_owned()) };
    format!(
        "ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host_key\nPidFile none\nUsePAM no\n\
         PasswordAuthentication yes\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
         AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPermitRootLogin {permit_root}\n\
         AllowUsers {users}\nMaxAuthTries 10\nLogLevel VERBOSE\n"
    )
}
