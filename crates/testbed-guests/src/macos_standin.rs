//! A stand-in for macOS's recovery and installer, built from Debian packages, for tests of vmkit's macOS build.
//!
//! macOS cannot boot where vmkit is tested (no Mac-capable KVM, no Apple media), so the build runs its real
//! pipeline — OpenCore release zip, recovery image (a UDIF `.dmg`), boot disk, the macOS machine profile, VNC,
//! the automation engine, SSH, provisioning, shutdown — against stand-ins that take the same places:
//!
//! * the **OpenCore release** is a zip with OpenCorePkg's layout whose `BOOTx64.efi` is a GRUB image
//!   (`grub-mkstandalone`, Debian's grub-efi-amd64-bin) playing OpenCore's picker: it boots the installed system
//!   when a disk carries one, else the recovery disk, as OpenCore does after its timeout;
//! * the **recovery image** is a UDIF image of a FAT disk holding Debian's kernel and a busybox initramfs that
//!   plays macOS Recovery on its screen (the VGA console that VNC shows): "Disk Utility" with an `[ Erase ]`
//!   button that must be *clicked* (the guest reads its USB tablet with [`crate::input_log`]'s program and
//!   accepts only a press inside the button), which formats the target disk (the empty system disk: neither the
//!   boot disk nor the recovery disk); "Reinstall macOS" with `[ Continue ]`, which copies the system onto it and
//!   reboots, as the installer does;
//! * the **installed system** (the same kernel and initramfs, booted from the target disk) plays Setup Assistant
//!   on first boot: "Create a Computer Account" reads the account name and, unechoed, its password from the
//!   keyboard (it keeps only the password's SHA-256, on the disk, for the test to compare), then "Terminal" runs
//!   one typed command line as the account — the build's script installs its key there. Then it serves SSH
//!   (dropbear from `dropbear-bin`, shared with the Windows stand-in: [`crate::standin`]) for that account, and
//!   on every later boot restores the account and its key from the disk. It has `sw_vers` (the version the
//!   recovery disk carries), `sudo` (runs its command: the stand-in's account is root) and `shutdown -h now`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use debguest::initramfs::busybox::{DEFAULT_MODULES, GuestSpec};

use crate::guest::GuestFile;
use testbed::process::run;

/// Printed on the serial port when the stand-in's OpenCore boots the recovery disk or the installed system.
pub const BOOT_MARKER: &str = "VMKIT-STANDIN-BOOT";
/// Printed on the serial port once the stand-in's installer has written the target disk.
pub const INSTALLED: &str = "STANDIN: macOS stand-in installed; rebooting";
/// Printed on the serial port when Setup Assistant has made the account.
pub const ACCOUNT_MADE: &str = "STANDIN: account created";
/// The button texts the test script clicks.
pub const ERASE: &str = "[ Erase ]";
/// The installer's button.
pub const CONTINUE: &str = "[ Continue ]";

/// Kernel modules besides the test guest's: AHCI disks, FAT, the USB keyboard and tablet.
const MODULES: &[&str] =
    &["ahci", "sd_mod", "vfat", "nls_cp437", "nls_ascii", "nls_utf8", "xhci_pci", "usbhid", "hid_generic"];

/// The picker: the installed system first (a disk with its marker), else the recovery disk.
const PICKER_CFG: &str = r#"serial --unit=0 --speed=115200
terminal_output serial console
insmod part_gpt
insmod fat
insmod all_video
if search --no-floppy --file --set=root /vmkit-standin-installed; then
    echo "VMKIT-STANDIN-BOOT installed"
    linux /vmlinuz console=tty0 console=ttyS0 panic=-1 vmkit.standin=installed
    initrd /initrd.img
    boot
fi
if search --no-floppy --file --set=root /vmkit-standin-recovery; then
    echo "VMKIT-STANDIN-BOOT recovery"
    linux /vmlinuz console=tty0 console=ttyS0 panic=-1 vmkit.standin=recovery
    initrd /initrd.img
    boot
fi
echo "VMKIT-STANDIN-BOOT found nothing to boot"
halt
"#;

/// busybox init: the stand-in's screens first, then dropbear (started again if it exits), a shell on the serial
/// port for a look after a failure.
const INITTAB: &str = "::sysinit:/standin/macos
::respawn:/usr/sbin/dropbear -F -E -R -p 22 -P /run/dropbear.pid
ttyS0::respawn:-/bin/sh
::shutdown:/bin/umount -a -r
";

/// The stand-in's recovery, installer and Setup Assistant.
const MACOS: &str = r#"#!/bin/sh
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
phase=installed
for arg in $(cat /proc/cmdline); do
    case "$arg" in vmkit.standin=*) phase="${arg#vmkit.standin=}" ;; esac
done
dmesg -n 1
log() { echo "STANDIN: $*" > /dev/ttyS0; }
fail() { log "FAILED: $*"; screen "FAILED: $*"; sleep 2; poweroff -f; }
# A screen: cleared, a title on row 2, lines below it.
screen() { printf '\033[?25l\033[2J\033[H\n  %s\n\n' "$1" > /dev/tty1; shift; for l in "$@"; do printf '  %s\n' "$l" > /dev/tty1; done; }
# A button at row $1, column $2 (1-based), clicked with the tablet: the press must land on its character cells
# (the console's font is 8x16 pixels). One logger runs for the whole boot (started below); a button looks only at
# the presses logged after it was drawn.
button() {
    row=$1; col=$2; label=$3
    x0=$(( (col - 1) * 8 )); x1=$(( (col - 1 + ${#label}) * 8 )); y0=$(( (row - 1) * 16 )); y1=$(( row * 16 ))
    seen=$(wc -l < /tmp/clicks)
    printf '\033[%d;%dH%s' "$row" "$col" "$label" > /dev/tty1
    while :; do
        hit=$(tail -n +$((seen + 1)) /tmp/clicks | grep "input_log: press" | while read -r _ _ x y _; do
            if [ "$x" -ge "$x0" ] && [ "$x" -lt "$x1" ] && [ "$y" -ge "$y0" ] && [ "$y" -lt "$y1" ]; then echo "$x $y"; fi
        done | head -n 1)
        [ -n "$hit" ] && break
        kill -0 "$logger" 2>/dev/null || fail "input_log ended: $(cat /tmp/clicks)"
        sleep 0.2
    done
    log "clicked $label at $hit"
}
# The USB tablet (its keyboard may come first).
for i in $(seq 1 120); do grep -qs "USB Tablet" /sys/class/input/event*/device/name && break; sleep 0.5; done
size=$(cat /sys/class/graphics/fb0/virtual_size 2>/dev/null || echo 1024,768)
W=${size%,*}; H=${size#*,}
input_log "$W" "$H" > /tmp/clicks 2>&1 &
logger=$!
until grep -q "input_log: ready" /tmp/clicks; do sleep 0.1; done
log "pointer: $(grep "input_log: ready" /tmp/clicks)"
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
mkdir -p /c /media/recovery /home /etc/dropbear
exec 3</dev/tty1

# The disks: the boot disk has a partition; the recovery disk carries the recovery marker; the target is the other.
for i in $(seq 1 60); do [ -b /dev/sdc ] && break; sleep 0.5; done
recovery=; target=
for d in /dev/sd[a-z]; do
    [ -b "$d" ] || continue
    [ -b "${d}1" ] && continue
    if mount -t vfat -o ro "$d" /media/recovery 2>/dev/null; then
        if [ -f /media/recovery/vmkit-standin-recovery ]; then recovery=$d; continue; fi
        umount /media/recovery
    fi
    target=$d
done
[ -n "$target" ] || fail "no target disk"

if [ "$phase" = recovery ]; then
    [ -n "$recovery" ] || fail "no recovery disk"
    screen "macOS Recovery (vmkit stand-in)" "Disk Utility" "" "QEMU HARDDISK Media ($target): the empty disk"
    button 8 4 "[ Erase ]"
    screen "Disk Utility" "Erasing QEMU HARDDISK Media ..."
    busybox mkdosfs -n MACINTOSHHD "$target" > /dev/ttyS0 2>&1 || fail "erasing $target"
    screen "Reinstall macOS Stand-in" "" "The installer copies macOS onto Macintosh HD ($target)."
    button 8 4 "[ Continue ]"
    screen "Installing macOS" "Copying files ..."
    mount -t vfat "$target" /c || fail "mounting $target"
    cp /media/recovery/vmlinuz /media/recovery/initrd.img /media/recovery/version /c/ || fail "copying"
    echo "installed from $recovery onto $target" > /c/vmkit-standin-installed
    umount /c
    umount /media/recovery
    sync
    log "macOS stand-in installed; rebooting"
    sleep 1
    reboot -f
fi

mount -t vfat "$target" /c || fail "mounting the system disk $target"
log "installed system booted from $target"
if [ ! -f /c/account ]; then
    screen "Create a Computer Account" "" "Account Name:"
    read -r name <&3 || fail "reading the account name"
    case "$name" in ''|*[!a-z0-9_-]*) fail "bad account name" ;; esac
    screen "Create a Computer Account" "" "Account Name: $name" "Password:"
    stty -echo <&3
    read -r password <&3 || fail "reading the password"
    stty echo <&3
    printf '%s' "$password" | sha256sum | cut -d' ' -f1 > /c/password.sha256
    unset password
    echo "$name" > /c/account
    log "account created"
    echo "$name:x:0:0:$name:/home/$name:/bin/sh" >> /etc/passwd
    mkdir -p "/home/$name"
    screen "Terminal" "" "$name@standin ~ %"
    read -r line <&3 || fail "reading the command"
    (cd "/home/$name" && HOME="/home/$name" sh -c "$line") > /dev/tty1 2>&1
    mkdir -p /c/ssh
    cp "/home/$name/.ssh/authorized_keys" /c/ssh/authorized_keys 2>/dev/null
    sleep 3
else
    name=$(cat /c/account)
    echo "$name:x:0:0:$name:/home/$name:/bin/sh" >> /etc/passwd
fi
mkdir -p "/home/$name/.ssh"
cp /c/ssh/authorized_keys "/home/$name/.ssh/authorized_keys" 2>/dev/null || log "no key for $name"
chmod 700 "/home/$name" "/home/$name/.ssh"
chmod 600 "/home/$name/.ssh/authorized_keys" 2>/dev/null
exec 3<&-
screen "macOS stand-in" "Remote Login: on"
log "serving SSH"
"#;

/// `sw_vers`: the version the recovery disk carried.
const SW_VERS: &str = "#!/bin/sh\nhead -n 1 /c/version\n";
/// `sudo [-n] CMD…`: the stand-in's account is root.
const SUDO: &str = "#!/bin/sh\nexport PATH=/sbin:/usr/sbin:/bin:/usr/bin\n[ \"$1\" = -n ] && shift\nexec \"$@\"\n";
/// `shutdown -h now`: power off once the SSH session has had its answer.
const SHUTDOWN: &str = "#!/bin/sh\n(sleep 1; sync; umount /c; poweroff -f) </dev/null >/dev/null 2>&1 &\nexit 0\n";

/// The stand-in release and recovery image.
#[derive(Debug, Clone)]
pub struct MacStandin {
    /// An OpenCore release zip (OpenCorePkg's layout) whose bootstrap is the stand-in picker.
    pub opencore: PathBuf,
    /// The recovery image (UDIF).
    pub recovery: PathBuf,
}

/// The files the stand-in adds to the busybox guest (`input_log` compiled into `dir`).
fn standin_files(dir: &Path) -> anyhow::Result<Vec<GuestFile>> {
    let text = |path: &str, mode: u32, data: &str| GuestFile { path: path.to_owned(), mode, data: data.into() };
    let mut files = vec![
        text("/etc/inittab", 0o644, INITTAB),
        text("/etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\n"),
        text("/etc/shells", 0o644, "/bin/sh\n"),
        text("/standin/macos", 0o755, MACOS),
        text("/usr/bin/sw_vers", 0o755, SW_VERS),
        text("/usr/bin/sudo", 0o755, SUDO),
        text("/sbin/shutdown", 0o755, SHUTDOWN),
        GuestFile { path: "/bin/input_log".to_owned(), mode: 0o755, data: crate::input_log::program(dir)? },
    ];
    files.extend(crate::standin::dropbear_files()?);
    Ok(files)
}

/// OpenCorePkg's release layout with `bootstrap` as `BOOTx64.efi`; the other EFI files vmkit takes are
/// placeholders (nothing but the bootstrap runs).
pub fn opencore_release(dir: &Path, bootstrap: &[u8]) -> anyhow::Result<PathBuf> {
    let root = dir.join("release");
    for (file, bytes) in [
        ("X64/EFI/BOOT/BOOTx64.efi", bootstrap.to_vec()),
        ("X64/EFI/OC/OpenCore.efi", b"stand-in OpenCore.efi".to_vec()),
        ("X64/EFI/OC/Drivers/OpenRuntime.efi", b"stand-in OpenRuntime.efi".to_vec()),
        ("X64/EFI/OC/Drivers/OpenHfsPlus.efi", b"stand-in OpenHfsPlus.efi".to_vec()),
        ("X64/EFI/OC/Drivers/ResetNvramEntry.efi", b"not used".to_vec()),
        ("IA32/EFI/OC/OpenCore.efi", b"not used".to_vec()),
        ("Docs/Sample.plist", b"not used".to_vec()),
    ] {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().context("path")?)?;
        std::fs::write(&path, bytes)?;
    }
    let zip = dir.join("OpenCore-stand-in-RELEASE.zip");
    let _ = std::fs::remove_file(&zip);
    run(Command::new("zip").arg("-q").arg("-r").arg(&zip).arg(".").current_dir(&root))?;
    std::fs::remove_dir_all(&root)?;
    Ok(zip)
}

/// The stand-in picker: a GRUB image running [`PICKER_CFG`].
fn picker(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let cfg = dir.join("picker-grub.cfg");
    std::fs::write(&cfg, PICKER_CFG)?;
    let efi = dir.join("picker.efi");
    run(Command::new("grub-mkstandalone")
        .args([
            "-O",
            "x86_64-efi",
            "--modules=serial terminal echo halt search search_fs_file fat part_gpt linux all_video efi_gop test",
            "-o",
        ])
        .arg(&efi)
        .arg(format!("boot/grub/grub.cfg={}", cfg.display())))?;
    Ok(std::fs::read(&efi)?)
}

/// Builds the stand-in release and recovery image into `dir`; the recovery disk says it is macOS `product`
/// (`14.6`), which the installed system's `sw_vers` reports.
pub async fn media(dir: &Path, product: &str) -> anyhow::Result<MacStandin> {
    let mut spec =
        GuestSpec { modules: DEFAULT_MODULES.iter().map(|m| (*m).to_owned()).collect(), ..GuestSpec::default() };
    spec.modules.extend(MODULES.iter().map(|m| (*m).to_owned()));
    let guest = crate::guest::build_image(spec).await?;
    let initrd = crate::guest::initrd_with(&guest.initrd, &standin_files(dir)?, dir)?;
    let opencore = opencore_release(dir, &picker(dir)?)?;

    // The recovery disk: a FAT file system over the whole disk.
    let raw = dir.join("recovery.raw");
    let _ = std::fs::remove_file(&raw);
    run(Command::new("mkfs.fat").args(["-n", "RECOVERY"]).arg("-C").arg(&raw).arg("65536"))?;
    let version = dir.join("version");
    std::fs::write(&version, format!("{product}\n"))?;
    let marker = dir.join("vmkit-standin-recovery");
    std::fs::write(&marker, "vmkit stand-in recovery\n")?;
    let m = |args: &[&std::ffi::OsStr]| run(Command::new("mcopy").args(args).env("MTOOLS_SKIP_CHECK", "1"));
    for (from, to) in [
        (guest.kernel.as_path(), "::/vmlinuz"),
        (initrd.as_path(), "::/initrd.img"),
        (version.as_path(), "::/version"),
        (marker.as_path(), "::/vmkit-standin-recovery"),
    ] {
        m(&["-i".as_ref(), raw.as_os_str(), from.as_os_str(), to.as_ref()])?;
    }
    let bytes = std::fs::read(&raw)?;
    let recovery = dir.join("BaseSystem.dmg");
    crate::udif::write(&bytes, &recovery, |i, _| {
        if i % 7 == 0 { crate::udif::Compression::Zlib } else { crate::udif::Compression::Raw }
    });
    for f in [raw, version, marker, initrd] {
        let _ = std::fs::remove_file(f);
    }
    Ok(MacStandin { opencore, recovery })
}
