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
