//! Helpers shared by rfb's integration tests: real X windows on a testbed display.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

pub mod console;

use testbed::{Daemon, Display};

/// Generous: the machine may be busy compiling.
pub const WAIT: Duration = Duration::from_secs(60);

/// A helper script from `tests/support`.
pub fn support(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support").join(name)
}

/// A Tk text entry at the top-left corner; Enter writes its content to the returned path and exits.
pub fn entry_window(display: &Display, title: &str) -> anyhow::Result<(Daemon, PathBuf)> {
    let out = display.dir().join(format!("{title}.txt"));
    let mut cmd = display.command("python3");
    cmd.arg(support("entry.py")).arg(&out).arg(title);
    let daemon = display.spawn(title, cmd)?;
    display.wait_for_window(title, WAIT)?;
    Ok((daemon, out))
}

/// Shows `ppm` pixel for pixel at the top-left corner.
pub fn image_window(display: &Display, ppm: &[u8], title: &str) -> anyhow::Result<Daemon> {
    let path = display.dir().join(format!("{title}.ppm"));
    std::fs::write(&path, ppm)?;
    let mut cmd = display.command("python3");
    cmd.arg(support("image.py")).arg(&path).arg(title);
    let daemon = display.spawn(title, cmd)?;
    display.wait_for_window(title, WAIT)?;
    Ok(daemon)
}

/// A deterministic pseudo-random generator (xorshift64*), so failures can be reproduced from the seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `len` random printable ASCII characters (0x20..=0x7e).
pub fn random_ascii(seed: u64, len: usize) -> String {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| char::from(0x20 + rng.below(95) as u8)).collect()
}

/// Every printable ASCII character, space to tilde.
pub fn all_printable_ascii() -> String {
    (0x20u8..=0x7e).map(char::from).collect()
}

/// A seed that changes between runs (and is printed so a failure can be replayed with `RFB_TEST_SEED`).
pub fn seed() -> u64 {
    let seed = std::env::var("RFB_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!("RFB_TEST_SEED={seed}");
    seed
}

/// A test image exercising every ZRLE tile type a server may pick: noise (raw tiles), solid areas, two-, four-
/// and sixteen-colour patterns (packed palettes), runs (RLE) and a many-colour palette region.
pub fn test_image(width: u32, height: u32, seed: u64) -> (Vec<u8>, Vec<[u8; 3]>) {
    let mut rng = Rng::new(seed);
    let mut px = Vec::with_capacity((width * height) as usize);
    let palette16: Vec<[u8; 3]> = (0..16).map(|_| rng.next().to_le_bytes()[..3].try_into().unwrap()).collect();
    let palette100: Vec<[u8; 3]> = (0..100).map(|_| rng.next().to_le_bytes()[..3].try_into().unwrap()).collect();
    for y in 0..height {
        for x in 0..width {
            let band = x * 6 / width;
            let p: [u8; 3] = match band {
                0 => rng.next().to_le_bytes()[..3].try_into().unwrap(),
                1 => [20, 120, 220],
                2 => {
                    if (x + y) % 2 == 0 {
                        [255, 255, 255]
                    } else {
                        [0, 0, 0]
                    }
                }
                3 => palette16[((x / 3 + y * 7) % 4) as usize],
                4 => palette16[((x * 5 + y / 2) % 16) as usize],
                _ => palette100[((x / 9 + y / 5 * 3) % 100) as usize],
            };
            px.push(p);
        }
    }
    let mut ppm = format!("P6\n{width} {height}\n255\n").into_bytes();
    for p in &px {
        ppm.extend_from_slice(p);
    }
    (ppm, px)
}

/// TigerVNC's Xvnc with extra options testbed's displays do not take: `-RawKeyboard` (type the scancodes of QEMU
/// Extended Key Events instead of mapping keysyms, its default, which would leave the scancode path untested) or
/// `-Protocol3.3`. Minimal on purpose: what these tests need from a display.
pub struct CustomXvnc {
    number: u32,
    port: u16,
    dir: tempfile::TempDir,
    _server: Daemon,
}

impl CustomXvnc {
    /// Xvnc typing raw scancodes, no password.
    pub fn raw_keyboard(width: u32, height: u32) -> anyhow::Result<Self> {
        Self::start(width, height, &["-RawKeyboard"], None)
    }

    /// Xvnc with `extra` options and, if given, VNC Authentication with `password`.
    pub fn start(width: u32, height: u32, extra: &[&str], password: Option<&str>) -> anyhow::Result<Self> {
        let mut last = None;
        for attempt in 0..8u32 {
            let number = 700 + (std::process::id() % 200) + attempt * 7;
            if std::path::Path::new(&format!("/tmp/.X{number}-lock")).exists() {
                continue;
            }
            let port = testbed::free_port()?;
            let dir = tempfile::Builder::new().prefix("vmkit-rfb-xvnc-").tempdir()?;
            let mut cmd = std::process::Command::new("Xvnc");
            cmd.arg(format!(":{number}"))
                .args(["-geometry", &format!("{width}x{height}"), "-depth", "24", "-localhost", "-nolisten", "tcp"])
                .args(["-rfbport", &port.to_string(), "-AlwaysShared"])
                .args(extra);
            match password {
                Some(pw) => {
                    let file = dir.path().join("passwd");
                    let mut child = std::process::Command::new("vncpasswd")
                        .arg("-f")
                        .stdin(std::process::Stdio::piped())
                        .stdout(std::process::Stdio::piped())
                        .spawn()?;
                    std::io::Write::write_all(&mut child.stdin.take().unwrap(), pw.as_bytes())?;
                    std::fs::write(&file, child.wait_with_output()?.stdout)?;
                    cmd.args(["-SecurityTypes", "VncAuth", "-PasswordFile"]).arg(file);
                }
                None => {
                    cmd.args(["-SecurityTypes", "None"]);
                }
            }
            let server = Daemon::spawn("Xvnc", cmd, &dir.path().join("Xvnc.log"))?;
            match testbed::wait_for_port(port, Duration::from_secs(15)) {
                Ok(()) => return Ok(Self { number, port, dir, _server: server }),
                Err(e) => last = Some(e.context(server.log())),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no free X display number")))
    }

    pub fn vnc_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn command(&self, program: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        cmd.env("DISPLAY", format!(":{}", self.number));
        cmd
    }

    /// A Tk text entry, as [`entry_window`].
    pub fn entry_window(&self, title: &str) -> anyhow::Result<(Daemon, PathBuf)> {
        let out = self.dir.path().join(format!("{title}.txt"));
        let mut cmd = self.command("python3");
        cmd.arg(support("entry.py")).arg(&out).arg(title);
        let daemon = Daemon::spawn(title, cmd, &self.dir.path().join(format!("{title}.log")))?;
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let found = self.command("xdotool").args(["search", "--onlyvisible", "--name", title]).output()?;
            if !found.stdout.is_empty() {
                return Ok((daemon, out));
            }
            anyhow::ensure!(std::time::Instant::now() < deadline, "no window {title:?}: {}", daemon.log());
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}
