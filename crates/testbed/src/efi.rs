//! A stand-in EFI program for boot tests: a GRUB image made by Debian's `grub-mkstandalone` (package
//! grub-efi-amd64-bin) that prints a marker on the serial port and powers the machine off. It goes where a real
//! boot loader would (OpenCore's `EFI/BOOT/BOOTx64.efi`), so a test sees the firmware find and start it.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

/// Builds the stand-in in `dir` (its config and image stay there) and returns the image's bytes.
pub fn stand_in(dir: &Path, marker: &str) -> anyhow::Result<Vec<u8>> {
    let cfg = dir.join("stand-in-grub.cfg");
    std::fs::write(
        &cfg,
        format!("serial --unit=0 --speed=115200\nterminal_output serial console\necho {marker}\nhalt\n"),
    )?;
    let efi = dir.join("stand-in.efi");
    let out = Command::new("grub-mkstandalone")
        .args(["-O", "x86_64-efi", "--modules=serial terminal echo halt", "-o"])
        .arg(&efi)
        .arg(format!("boot/grub/grub.cfg={}", cfg.display()))
        .output()
        .context("grub-mkstandalone (Debian package grub-efi-amd64-bin)")?;
    anyhow::ensure!(out.status.success(), "grub-mkstandalone: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(&efi).with_context(|| format!("reading {}", efi.display()))
}
