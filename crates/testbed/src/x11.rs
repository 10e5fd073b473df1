//! X displays served over VNC: TigerVNC `Xvnc`, or `x11vnc` in front of `Xvfb`.
//!
//! Xvnc accepts the QEMU Extended Key Event and ExtendedDesktopSize extensions; x11vnc accepts neither, so the
//! pair covers both paths of an RFB client. Both listen on 127.0.0.1 only. There is no window manager: keyboard
//! focus follows the pointer, and windows have no title bar.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::net::{free_port, wait_for_port};
use crate::process::{Daemon, run};

/// Which VNC server serves the display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisplayKind {
    /// TigerVNC's `Xvnc`: an X server with a built-in VNC server.
    Xvnc,
    /// `Xvfb` with `x11vnc` attached; the VNC server can be restarted while the X server lives on.
    X11vnc,
}

/// A running X display reachable over VNC on 127.0.0.1.
#[derive(Debug)]
pub struct Display {
    kind: DisplayKind,
    number: u32,
    port: u16,
    password_file: Option<PathBuf>,
    /// Extra arguments for x11vnc, kept for restarts.
    vnc_args: Vec<String>,
    dir: tempfile::TempDir,
    // Field order matters: the VNC server goes before the X server it serves.
    vnc: Option<Daemon>,
    x: Option<Daemon>,
}

/// How to start a [`Display`].
#[derive(Debug, Clone)]
pub struct DisplayOptions {
    /// The VNC server.
    pub kind: DisplayKind,
    /// Screen size in pixels.
    pub width: u32,
    /// Screen size in pixels.
    pub height: u32,
    /// VNC password (VNC Authentication); `None` for security type None.
    pub password: Option<String>,
    /// More command-line arguments for the VNC server, after testbed's own: Xvnc's for an Xvnc display (e.g.
    /// `-RawKeyboard` to type the scancodes of QEMU Extended Key Events, `-Protocol3.3`), x11vnc's for an x11vnc
    /// display (kept across [`Display::restart_vnc`]).
    pub extra_args: Vec<String>,
}

impl Default for DisplayOptions {
    fn default() -> Self {
        Self { kind: DisplayKind::Xvnc, width: 1024, height: 768, password: None, extra_args: Vec::new() }
    }
}

impl Display {
    /// An Xvnc display of the given size without a password.
    pub fn xvnc(width: u32, height: u32) -> anyhow::Result<Self> {
        Self::start(DisplayOptions { kind: DisplayKind::Xvnc, width, height, ..DisplayOptions::default() })
    }

    /// An Xvfb display served by x11vnc, without a password.
    pub fn x11vnc(width: u32, height: u32) -> anyhow::Result<Self> {
        Self::start(DisplayOptions { kind: DisplayKind::X11vnc, width, height, ..DisplayOptions::default() })
    }

    /// Starts a display; retries with other display numbers and ports when one is taken.
    pub fn start(opts: DisplayOptions) -> anyhow::Result<Self> {
        let mut last_err = None;
        for _ in 0..8 {
            match Self::try_start(&opts) {
                Ok(d) => return Ok(d),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
    }

    fn try_start(opts: &DisplayOptions) -> anyhow::Result<Self> {
        let dir = crate::scratch_dir("display")?;
        let number = pick_display_number()?;
        let port = free_port()?;
        let password_file = match &opts.password {
            Some(pw) => Some(write_password_file(dir.path(), pw)?),
            None => None,
        };
        let geometry = format!("{}x{}", opts.width, opts.height);
        let mut display = Self {
            kind: opts.kind,
            number,
            port,
            password_file,
            vnc_args: opts.extra_args.clone(),
            dir,
            vnc: None,
            x: None,
        };
        match opts.kind {
            DisplayKind::Xvnc => {
                let mut cmd = Command::new("Xvnc");
                cmd.arg(format!(":{number}"))
                    .args(["-geometry", &geometry, "-depth", "24", "-localhost", "-nolisten", "tcp"])
                    .args(["-rfbport", &port.to_string(), "-AlwaysShared", "-AcceptSetDesktopSize=1"]);
                match &display.password_file {
                    Some(f) => cmd.args(["-SecurityTypes", "VncAuth", "-PasswordFile"]).arg(f),
                    None => cmd.args(["-SecurityTypes", "None"]),
                };
                cmd.args(&opts.extra_args);
                display.x = Some(Daemon::spawn("Xvnc", cmd, &display.dir.path().join("Xvnc.log"))?);
                display.wait_ready()?;
            }
            DisplayKind::X11vnc => {
                let mut cmd = Command::new("Xvfb");
                cmd.arg(format!(":{number}")).args(["-screen", "0", &format!("{geometry}x24"), "-nolisten", "tcp"]);
                display.x = Some(Daemon::spawn("Xvfb", cmd, &display.dir.path().join("Xvfb.log"))?);
                display.wait_x()?;
                display.start_vnc()?;
            }
        }
        Ok(display)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        self.wait_x()?;
        wait_for_port(self.port, Duration::from_secs(10))
    }

    fn wait_x(&mut self) -> anyhow::Result<()> {
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{}", self.number));
        for _ in 0..500 {
            if let Some(x) = self.x.as_mut() {
                x.ensure_running()?;
            }
            if socket.exists() && self.command("xdpyinfo").output().is_ok_and(|o| o.status.success()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("X display :{} did not come up", self.number)
    }

    fn start_vnc(&mut self) -> anyhow::Result<()> {
        let mut cmd = Command::new("x11vnc");
        cmd.args(["-display", &format!(":{}", self.number), "-localhost", "-rfbport", &self.port.to_string()]).args([
            "-forever",
            "-shared",
            "-noxdamage",
            "-nocursor",
            "-quiet",
        ]);
        match &self.password_file {
            Some(f) => cmd.arg("-rfbauth").arg(f),
            None => cmd.arg("-nopw"),
        };
        cmd.args(&self.vnc_args);
        let log = self.dir.path().join(format!("x11vnc-{}.log", std::process::id()));
        self.vnc = Some(Daemon::spawn("x11vnc", cmd, &log)?);
        let result = wait_for_port(self.port, Duration::from_secs(15));
        if let Some(vnc) = self.vnc.as_mut() {
            vnc.ensure_running()?;
        }
        result
    }

    /// Stops the VNC server and starts it again on the same port (x11vnc only); the X server and its windows
    /// live on. `down_for` is how long the port stays closed.
    pub fn restart_vnc(&mut self, down_for: Duration) -> anyhow::Result<()> {
        if self.kind != DisplayKind::X11vnc {
            bail!("only an x11vnc display can restart its VNC server");
        }
        if let Some(mut vnc) = self.vnc.take() {
            vnc.stop();
        }
        std::thread::sleep(down_for);
        self.start_vnc()
    }

    /// Stops the VNC server (x11vnc only), leaving the X server running.
    pub fn stop_vnc(&mut self) {
        if let Some(mut vnc) = self.vnc.take() {
            vnc.stop();
        }
    }

    /// Which server this is.
    pub fn kind(&self) -> DisplayKind {
        self.kind
    }

    /// The X display name, e.g. `:21`.
    pub fn name(&self) -> String {
        format!(":{}", self.number)
    }

    /// The VNC port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, as vmkit's `--vnc` takes it.
    pub fn vnc_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file holding the VNC password in the form `vncpasswd -f` writes (what the servers read), when a
    /// password was set.
    pub fn password_file(&self) -> Option<&Path> {
        self.password_file.as_deref()
    }

    /// The password in a plain-text file (what vmkit's `--password-file` reads), when a password was set.
    pub fn plain_password_file(&self) -> Option<PathBuf> {
        self.password_file.as_ref().map(|_| self.dir.path().join("password.txt"))
    }

    /// A scratch directory that lives as long as the display.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A command that runs on this display (`DISPLAY` set, GTK's accessibility bus quiet).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("DISPLAY", self.name()).env("NO_AT_BRIDGE", "1").env("GTK_A11Y", "none");
        cmd
    }

    /// Starts a program on this display in the background (e.g. a zenity dialog). Its output goes to a log in
    /// the display's scratch dir.
    pub fn spawn(&self, name: &str, cmd: Command) -> anyhow::Result<Daemon> {
        let log = self.dir.path().join(format!("{name}-{}.log", unique()));
        Daemon::spawn(name, cmd, &log)
    }

    /// Waits until a window whose title matches `title` (a regular expression, as `xdotool search --name` takes
    /// it) is mapped, and returns its X window id.
    pub fn wait_for_window(&self, title: &str, timeout: Duration) -> anyhow::Result<u64> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let out = self.command("xdotool").args(["search", "--onlyvisible", "--name", title]).output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(id) = text.lines().next().and_then(|l| l.trim().parse().ok()) {
                return Ok(id);
            }
            if std::time::Instant::now() >= deadline {
                bail!("no window titled {title:?} appeared on {} within {timeout:?}", self.name());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Changes the screen size with `xrandr` (Xvnc only; the size must be one Xvnc offers or is added here).
    pub fn resize(&self, width: u32, height: u32) -> anyhow::Result<()> {
        let mut cmd = self.command("xrandr");
        cmd.args(["--fb", &format!("{width}x{height}")]);
        run(&mut cmd).context("xrandr --fb")?;
        Ok(())
    }
}

/// A display number whose lock file and socket do not exist yet.
fn pick_display_number() -> anyhow::Result<u32> {
    let base = 100 + (std::process::id() % 400) * 4 + unique() % 4;
    for n in (base..base + 400).chain(20..100) {
        let lock = PathBuf::from(format!("/tmp/.X{n}-lock"));
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
        if !lock.exists() && !socket.exists() {
            return Ok(n);
        }
    }
    bail!("no free X display number")
}

/// A counter, so that names made in one process do not collide.
fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Writes `password` as `vncpasswd -f` would (DES-obfuscated, the format Xvnc and x11vnc read).
fn write_password_file(dir: &Path, password: &str) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    let path = dir.join("vncpasswd");
    crate::write_private(&dir.join("password.txt"), password)?;
    let mut child = Command::new("vncpasswd")
        .arg("-f")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running vncpasswd (Debian package tigervnc-tools)")?;
    child.stdin.take().context("vncpasswd stdin")?.write_all(password.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("vncpasswd -f failed");
    }
    std::fs::write(&path, out.stdout)?;
    Ok(path)
}
