//! Headless Chromium (Debian's `chromium`) for tests that check how generated HTML renders.
//!
//! Each call uses a fresh profile directory and the flags that keep Chromium from reaching the network or
//! touching the user's profile: no sandbox (tests run as root), no GPU, no first-run, no background networking,
//! no component updates, no sync.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

fn chromium(profile: &Path) -> Command {
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// Loads `page` (a local file) and returns the DOM after scripts and layout, as Chromium serialises it.
pub fn dump_dom(page: &Path) -> anyhow::Result<String> {
    let profile = crate::scratch_dir("chromium")?;
    let url = file_url(page)?;
    let out = chromium(profile.path())
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .context("running chromium (Debian package chromium)")?;
    if !out.status.success() {
        bail!("chromium --dump-dom {url} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Renders `page` into a PNG screenshot of `width`×`height` at `png`.
pub fn screenshot(page: &Path, png: &Path, width: u32, height: u32) -> anyhow::Result<()> {
    let profile = crate::scratch_dir("chromium")?;
    let url = file_url(page)?;
    let out = chromium(profile.path())
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(&url)
        .output()
        .context("running chromium (Debian package chromium)")?;
    if !out.status.success() || !png.is_file() {
        bail!("chromium --screenshot {url} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn file_url(page: &Path) -> anyhow::Result<String> {
    let abs = page.canonicalize().with_context(|| format!("{} does not exist", page.display()))?;
    let mut url = String::from("file://");
    for b in abs.to_string_lossy().bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => url.push(b as char),
            _ => url.push_str(&format!("%{b:02X}")),
        }
    }
    Ok(url)
}
