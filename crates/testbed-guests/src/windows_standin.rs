//! A stand-in for Windows install media, built from Debian packages, for tests of vmkit's Windows build.
//!
//! No Windows media exists where vmkit is tested, so the "install ISO" is a UEFI El Torito ISO that boots under
//! Secure Boot like the real one: Debian's Microsoft-signed shim (`shim-signed`) loads Debian's signed GRUB
//! (`grub-efi-amd64-signed`), which boots Debian's signed kernel with a busybox initramfs that plays Setup:
//!
//! * it prints the DVD's "Press any key to boot from CD or DVD" on the screen and the serial port and waits for a
//!   key on the keyboard (Debian's signed GRUB has no command that waits for any key: `sleep --interruptible`
//!   takes only Escape, `read` is not built in); without one, no install;
//! * it finds the answer media (a FAT USB disk with `Autounattend.xml` at its root) and reads the public key
//!   vmkit put there;
//! * it "applies the image": writes `system.img` from the ISO — a FAT file system holding shim, GRUB, the same
//!   kernel and initramfs and a GRUB script that boots them as the installed system — onto the VirtIO disk, and
//!   stores the key on it (`ProgramData/ssh/administrators_authorized_keys`, where Windows keeps it);
//! * it serves SSH on port 22 (dropbear from `dropbear-bin`, copied in with its shared libraries) for the
//!   recipe's user with that key, and has a `powershell` in its PATH that decodes `-EncodedCommand` (base64 of
//!   UTF-16LE) and runs the stand-in's equivalent: vmkit's readiness probe, volume trim and shutdown
//!   (`poweroff -f`), the Secure Boot/TPM query answered from real state (the `SecureBoot` EFI variable,
//!   `/sys/class/tpm`), and anything else — the recipe's provisioning lines — as a POSIX shell script (the
//!   prelude `$ErrorActionPreference = 'Stop'` becomes `set -e`).
//!
//! The installed disk boots by itself through the same signed chain (the firmware finds `\EFI\BOOT\BOOTX64.EFI`
//! on it), so `vmkit image test` can boot the built image. The VirtIO driver media is an ISO with the driver
//! folders the answer file names.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use debguest::initramfs::busybox::{DEFAULT_MODULES, GuestSpec};

use crate::guest::GuestFile;
use testbed::process::run;

/// Debian's Microsoft-signed shim.
pub const SHIM: &str = "/usr/lib/shim/shimx64.efi.signed";
/// Debian's signed GRUB.
pub const GRUB: &str = "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed";
/// dropbear from `dropbear-bin`.
pub use crate::standin::DROPBEAR;
/// Printed on the serial port once the stand-in's Setup has written the disk.
pub const SETUP_DONE: &str = "STANDIN: setup applied the system image";
/// Printed on the serial port when the installed system boots.
pub const INSTALLED_BOOT: &str = "STANDIN: installed system booted";

/// Kernel modules the stand-in needs besides the test guest's: SATA CD-ROMs, the USB answer disk, ISO9660 and
/// FAT, efivarfs.
const MODULES: &[&str] = &[
    "ahci",
    "sr_mod",
    "sd_mod",
    "isofs",
    "vfat",
    "nls_cp437",
    "nls_ascii",
    "nls_utf8",
    "xhci_pci",
    "usb_storage",
    "efivarfs",
];

/// The install DVD's GRUB script: boots Setup (whose first act is the DVD's prompt).
const ISO_GRUB_CFG: &str = r#"set timeout=0
echo "VMKIT-STANDIN lockdown=$lockdown shim_lock=$shim_lock"
linux /vmlinuz console=tty0 console=ttyS0 panic=-1 vmkit.standin=setup
initrd /initrd.img
boot
"#;

/// The installed system's GRUB script.
const DISK_GRUB_CFG: &str = r#"set timeout=0
echo "VMKIT-STANDIN-DISK lockdown=$lockdown shim_lock=$shim_lock"
linux /vmlinuz console=tty0 console=ttyS0 panic=-1 vmkit.standin=installed
initrd /initrd.img
boot
"#;

/// busybox init: the stand-in runs once, then dropbear in the foreground (started again if it exits), a shell on
/// the serial port for a look after a failure.
const INITTAB: &str = "::sysinit:/standin/setup
::respawn:/usr/sbin/dropbear -F -E -R -p 22 -P /run/dropbear.pid
tty1::respawn:-/bin/sh
::shutdown:/bin/umount -a -r
";

/// The stand-in's Setup and first boot.
const SETUP: &str = r#"#!/bin/sh
# Plays Windows Setup (vmkit.standin=setup) or the installed system (vmkit.standin=installed).
phase=installed
for arg in $(cat /proc/cmdline); do
    case "$arg" in vmkit.standin=*) phase="${arg#vmkit.standin=}" ;; esac
done
say() { echo "STANDIN: $*" > /dev/ttyS0; echo "STANDIN: $*" > /dev/tty1; }
fail() { say "FAILED: $*"; sleep 2; poweroff -f; }
mount -t efivarfs efivarfs /sys/firmware/efi/efivars || say "no efivarfs"
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
mkdir -p /c /media/answer /media/cd /etc/dropbear /home/agent/.ssh
if [ "$phase" = setup ]; then
    # The DVD's prompt, as the real loader shows it: on the screen and the serial port, any key on the keyboard
    # (the VGA console's), and without one no install.
    exec 3</dev/tty1
    say "Press any key to boot from CD or DVD"
    if read -t 60 -n 1 key <&3; then say "VMKIT-KEY-PRESSED"; else fail "no key pressed at the DVD prompt"; fi
    exec 3<&-
    say "Windows Setup stand-in: looking for the answer media"
    answer=
    for i in $(seq 1 90); do
        for d in /dev/sd[a-z]; do
            [ -b "$d" ] || continue
            if mount -t vfat -o ro "$d" /media/answer 2>/dev/null; then
                if [ -f /media/answer/Autounattend.xml ]; then answer=$d; break 2; fi
                umount /media/answer
            fi
        done
        sleep 1
    done
    [ -n "$answer" ] || fail "no answer media with Autounattend.xml"
    say "answer media on $answer"
    cd=
    for i in $(seq 1 90); do
        for d in /dev/sr[0-9]; do
            [ -b "$d" ] || continue
            if mount -t iso9660 -o ro "$d" /media/cd 2>/dev/null; then
                if [ -f /media/cd/system.img ]; then cd=$d; break 2; fi
                umount /media/cd
            fi
        done
        sleep 1
    done
    [ -n "$cd" ] || fail "no install media with system.img"
    [ -b /dev/vda ] || fail "no VirtIO disk"
    dd if=/media/cd/system.img of=/dev/vda bs=1M conv=fsync 2>/dev/null || fail "writing the disk"
    mount -t vfat /dev/vda /c || fail "mounting the applied image"
    mkdir -p /c/ProgramData/ssh
    tr -d '\r' < /media/answer/vmkit-authorized-keys > /c/ProgramData/ssh/administrators_authorized_keys
    echo "applied by the stand-in from $cd with the answer media on $answer" > /c/setup.txt
    umount /media/answer
    umount /media/cd
    sync
    say "setup applied the system image"
else
    for i in $(seq 1 60); do [ -b /dev/vda ] && break; sleep 1; done
    mount -t vfat /dev/vda /c || fail "mounting the system disk"
    say "installed system booted"
fi
cp /c/ProgramData/ssh/administrators_authorized_keys /home/agent/.ssh/authorized_keys || fail "no key"
chmod 700 /home/agent /home/agent/.ssh
chmod 600 /home/agent/.ssh/authorized_keys
say "serving SSH"
"#;

/// The stand-in's `powershell`.
const POWERSHELL: &str = r#"#!/bin/sh
# The stand-in's PowerShell: decodes -EncodedCommand (base64 of UTF-16LE) and runs the stand-in's equivalent.
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
enc=
while [ $# -gt 0 ]; do
    case "$1" in
        -EncodedCommand) enc="$2"; shift 2 ;;
        *) shift ;;
    esac
done
[ -n "$enc" ] || { echo "stand-in powershell: only -EncodedCommand is understood" >&2; exit 64; }
script=$(printf '%s' "$enc" | base64 -d | tr -d '\000\r')
is() { [ "$script" = "$(cat "/standin/ps/$1")" ]; }
if is ready; then
    exit 0
elif is query; then
    sb=null
    f=/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c
    if [ -f "$f" ]; then
        # 4 bytes of attributes, then the value (efivarfs does not seek: read the whole variable)
        if [ "$(od -An -tu1 "$f" | awk '{ print $5 }')" = 1 ]; then sb=true; else sb=false; fi
    fi
    present=false
    spec=null
    if [ -e /sys/class/tpm/tpm0 ]; then
        present=true
        spec="\"$(cat /sys/class/tpm/tpm0/tpm_version_major).0, 0, stand-in\""
    fi
    printf '{"secureBoot":%s,"tpmPresent":%s,"tpmSpecVersion":%s}\n' "$sb" "$present" "$spec"
elif is trim; then
    sync
    fstrim /c >/dev/null 2>&1 || true
elif is shutdown; then
    (sleep 1; sync; umount /c; poweroff -f) </dev/null >/dev/null 2>&1 &
    exit 0
else
    body=$(printf '%s\n' "$script" | sed "1s/^\$ErrorActionPreference = 'Stop'\$/set -e/")
    exec sh -c "$body"
fi
"#;

/// The kernel and initramfs spec of the stand-in.
pub fn guest_spec() -> GuestSpec {
    let mut modules: Vec<String> = DEFAULT_MODULES.iter().map(|m| (*m).to_owned()).collect();
    modules.extend(MODULES.iter().map(|m| (*m).to_owned()));
    GuestSpec { modules, ..GuestSpec::default() }
}

/// The files the stand-in adds to the busybox guest.
fn standin_files() -> anyhow::Result<Vec<GuestFile>> {
    use images::windows::guest as ps;
    let text = |path: &str, mode: u32, data: &str| GuestFile { path: path.to_owned(), mode, data: data.into() };
    let mut files = vec![
        text("/etc/inittab", 0o644, INITTAB),
        text("/etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nagent:x:0:0:agent:/home/agent:/bin/sh\n"),
        text("/etc/shells", 0o644, "/bin/sh\n"),
        text("/standin/setup", 0o755, SETUP),
        text("/bin/powershell", 0o755, POWERSHELL),
        text("/standin/ps/ready", 0o644, ps::READY),
        text("/standin/ps/query", 0o644, ps::SECURITY_QUERY),
        text("/standin/ps/trim", 0o644, ps::TRIM),
        text("/standin/ps/shutdown", 0o644, ps::SHUTDOWN),
    ];
    files.extend(crate::standin::dropbear_files()?);
    Ok(files)
}

/// Stand-in install and driver media.
#[derive(Debug, Clone)]
pub struct StandinMedia {
    /// The install ISO.
    pub iso: PathBuf,
    /// The VirtIO driver ISO.
    pub virtio: PathBuf,
}

/// Builds the stand-in install ISO and VirtIO media into `dir` (the kernel and busybox from the testbed cache).
pub async fn media(dir: &Path) -> anyhow::Result<StandinMedia> {
    let guest = crate::guest::build_image(guest_spec()).await?;
    let initrd = crate::guest::initrd_with(&guest.initrd, &standin_files()?, dir)?;
    // The installed system: a FAT file system for the whole VirtIO disk, booted by the same signed chain.
    let system = dir.join("system.img");
    let _ = std::fs::remove_file(&system);
    run(Command::new("mkfs.fat").args(["-n", "STANDIN"]).arg("-C").arg(&system).arg("65536"))?;
    let tree = dir.join("iso");
    std::fs::create_dir_all(tree.join("boot/grub"))?;
    std::fs::create_dir_all(tree.join(".disk"))?;
    std::fs::write(tree.join("boot/grub/grub.cfg"), DISK_GRUB_CFG)?;
    std::fs::write(tree.join(".disk/info"), "vmkit stand-in\n")?;
    let m = |args: &[&str]| run(Command::new(args[0]).args(&args[1..]).env("MTOOLS_SKIP_CHECK", "1"));
    let s = system.to_str().context("path")?;
    let t = |p: &str| tree.join(p).display().to_string();
    m(&["mmd", "-i", s, "::/EFI", "::/EFI/BOOT", "::/boot", "::/boot/grub", "::/.disk"])?;
    m(&["mcopy", "-i", s, SHIM, "::/EFI/BOOT/BOOTX64.EFI"])?;
    m(&["mcopy", "-i", s, GRUB, "::/EFI/BOOT/grubx64.efi"])?;
    m(&["mcopy", "-i", s, &t("boot/grub/grub.cfg"), "::/boot/grub/grub.cfg"])?;
    m(&["mcopy", "-i", s, &t(".disk/info"), "::/.disk/info"])?;
    m(&["mcopy", "-i", s, guest.kernel.to_str().context("path")?, "::/vmlinuz"])?;
    m(&["mcopy", "-i", s, initrd.to_str().context("path")?, "::/initrd.img"])?;
    // The DVD: its own GRUB script, the kernel and initramfs, the system image.
    std::fs::write(tree.join("boot/grub/grub.cfg"), ISO_GRUB_CFG)?;
    std::fs::copy(&guest.kernel, tree.join("vmlinuz"))?;
    std::fs::copy(&initrd, tree.join("initrd.img"))?;
    std::fs::rename(&system, tree.join("system.img"))?;
    let iso = dir.join("install.iso");
    uefi_iso(dir, &tree, Path::new(SHIM), &iso)?;
    std::fs::remove_dir_all(&tree)?;
    let _ = std::fs::remove_file(&initrd);
    let virtio = virtio_iso(dir)?;
    Ok(StandinMedia { iso, virtio })
}

/// Makes `iso` from the directory `tree` as Windows install media looks to vmkit and to UEFI firmware: an ESP image
/// (`shim` as the default loader, Debian's signed GRUB beside it) as the El Torito EFI boot image (`-no-emul-boot`),
/// and `sources/install.wim` with one x64 "Windows 11 Pro" made with wimlib. GRUB reads its script from
/// `boot/grub/grub.cfg` in `tree` (it finds the disc by `.disk/info`).
pub fn uefi_iso(dir: &Path, tree: &Path, shim: &Path, iso: &Path) -> anyhow::Result<()> {
    let m = |args: &[&str]| run(Command::new(args[0]).args(&args[1..]).env("MTOOLS_SKIP_CHECK", "1"));
    let esp = dir.join("efi.img");
    let _ = std::fs::remove_file(&esp);
    run(Command::new("mkfs.fat").arg("-C").arg(&esp).arg("8192"))?;
    let e = esp.to_str().context("path")?;
    m(&["mmd", "-i", e, "::/EFI", "::/EFI/BOOT"])?;
    m(&["mcopy", "-i", e, shim.to_str().context("path")?, "::/EFI/BOOT/BOOTX64.EFI"])?;
    m(&["mcopy", "-i", e, GRUB, "::/EFI/BOOT/grubx64.efi"])?;
    std::fs::rename(&esp, tree.join("efi.img"))?;
    std::fs::create_dir_all(tree.join("sources"))?;
    let content = dir.join("wim-content");
    std::fs::create_dir_all(&content)?;
    std::fs::write(content.join("readme.txt"), "stand-in\n")?;
    let wim = tree.join("sources/install.wim");
    let _ = std::fs::remove_file(&wim);
    run(Command::new("wimlib-imagex")
        .arg("capture")
        .arg(&content)
        .arg(&wim)
        .args(["Windows 11 Pro", "Windows 11 Pro"]))?;
    run(Command::new("wimlib-imagex").arg("info").arg(&wim).args([
        "1",
        "--image-property",
        "WINDOWS/EDITIONID=Professional",
        "--image-property",
        "WINDOWS/ARCH=9",
    ]))?;
    run(Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-J", "-r", "-V", "STANDIN", "-e", "efi.img", "-no-emul-boot", "-o"])
        .arg(iso)
        .arg(tree))?;
    std::fs::remove_dir_all(&content)?;
    Ok(())
}

/// VirtIO-like driver media in `dir`: the folders the answer file names for Windows 11 (`viostor`, `vioscsi`,
/// `NetKVM` under `w11/amd64`), made with genisoimage.
pub fn virtio_iso(dir: &Path) -> anyhow::Result<PathBuf> {
    let vtree = dir.join("virtio");
    for driver in ["viostor", "vioscsi", "NetKVM"] {
        let d = vtree.join(driver).join("w11/amd64");
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(format!("{}.inf", driver.to_lowercase())), "; stand-in\n")?;
    }
    let virtio = dir.join("virtio.iso");
    run(Command::new("genisoimage").args(["-quiet", "-J", "-r", "-V", "virtio-win", "-o"]).arg(&virtio).arg(&vtree))?;
    std::fs::remove_dir_all(&vtree)?;
    Ok(virtio)
}
