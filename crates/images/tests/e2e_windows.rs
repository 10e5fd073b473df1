//! The Windows machine profile booted for real, with a stand-in for Windows Setup: no Windows media exists here,
//! so the "install ISO" is a UEFI El Torito ISO holding Debian's Microsoft-signed shim and Debian's signed GRUB
//! (packages shim-signed, grub-efi-amd64-signed). `vmkit image prepare` makes the directory from a Windows recipe
//! (the edition chosen by name from a real WIM inside the ISO, the VirtIO media checked, real answer media, VARS
//! copy, TPM directory, disk); the test boots the same machine model under TCG and shows:
//!
//! * Secure Boot is enforced: GRUB reports `lockdown=y shim_lock=y` (it is only set when shim verified it under
//!   Secure Boot), and a shim with one flipped byte is refused by the firmware;
//! * a TPM 2.0 is there: QMP `query-tpm` lists the CRB device backed by the emulator, swtpm wrote its state into
//!   the image directory;
//! * the media are attached where the answer file expects them: GRUB finds the VirtIO driver directory the
//!   answer file names (`viostor\w11\amd64`) on a second CD-ROM and `Autounattend.xml` on a separate disk;
//! * the boot prompt is answered: GRUB prints the DVD's prompt and waits for a key, vmkit sees it on the serial
//!   log and presses the key over QMP; GRUB reports the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use images::recipe::{Recipe, Source};
use images::windows::machine::{self, InstallMedia};
use images::windows::prepare::{self, MediaOverrides, PrepareOptions, names};

use testbed_guests::windows_standin::{self, GRUB, SHIM};

/// The stand-in's GRUB script: what Secure Boot says, where the media are, then the DVD's prompt.
const GRUB_CFG: &str = r#"set timeout=0
echo "VMKIT-STANDIN lockdown=$lockdown shim_lock=$shim_lock"
if search --no-floppy --file --set=v /viostor/w11/amd64/viostor.inf; then echo "VMKIT-VIRTIO $v"; fi
if search --no-floppy --file --set=a /Autounattend.xml; then echo "VMKIT-ANSWER $a"; fi
echo "Press any key to boot from CD or DVD"
if sleep --interruptible 60; then echo "VMKIT-NO-KEY"; else echo "VMKIT-KEY-PRESSED"; fi
halt
"#;

/// A UEFI-bootable ISO (testbed's stand-in layout: shim as the ESP's default loader, GRUB beside it, an
/// install.wim) whose GRUB runs [`GRUB_CFG`].
fn standin_iso(dir: &Path, shim: &Path) -> PathBuf {
    let tree = dir.join("iso");
    std::fs::create_dir_all(tree.join("boot/grub")).unwrap();
    std::fs::create_dir_all(tree.join(".disk")).unwrap();
    std::fs::write(tree.join("boot/grub/grub.cfg"), GRUB_CFG).unwrap();
    std::fs::write(tree.join(".disk/info"), "vmkit stand-in\n").unwrap();
    let iso = dir.join("install.iso");
    windows_standin::uefi_iso(dir, &tree, shim, &iso).unwrap();
    iso
}

struct Booted {
    serial: String,
    tpm: Vec<qemu::TpmInfo>,
}

/// Boots the install machine of the prepared directory `out` until GRUB halts, or until `stop_at` shows on the
/// serial log, or `limit`.
async fn boot(
    recipe: &Recipe,
    out: &Path,
    (iso, virtio): (&Path, &Path),
    press: bool,
    stop_at: Option<&str>,
    limit: Duration,
) -> Booted {
    let Source::Windows(w) = &recipe.source else { panic!("not a Windows recipe") };
    let sockets = tempfile::Builder::new().prefix("vmkit-e2e-win-").tempdir_in("/tmp").unwrap();
    let media = InstallMedia { iso: iso.to_owned(), virtio: virtio.to_owned(), answer: PathBuf::new() };
    let m = prepare::machine_in(out, recipe, w, qemu::Accel::Tcg, Some(media));
    let _tpm = qemu::Swtpm::start(
        &qemu::SwtpmCommand::new(out.join(names::TPM_DIR), m.tpm_socket.clone().unwrap()),
        Duration::from_secs(10),
    )
    .expect("swtpm");
    let serial_log = out.join("serial.log");
    let _ = std::fs::remove_file(&serial_log);
    let display = qemu::free_vnc_display(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)).unwrap();
    let cmd = m.supervised(
        sockets.path().join("qmp.sock"),
        (sockets.path().join("serial.sock"), serial_log.clone()),
        sockets.path().join("qemu.pid"),
        qemu::Vnc::localhost(display),
    );
    let qemu = qemu::Qemu::start(&cmd).await.expect("QEMU starts");
    let tpm = qemu.qmp().unwrap().query_tpm().await.unwrap();
    if press {
        let seen = machine::answer_boot_prompt(&qemu, &serial_log, "esc", Duration::from_secs(120)).await.unwrap();
        assert!(seen, "the prompt never came: {}", std::fs::read_to_string(&serial_log).unwrap_or_default());
    }
    match stop_at {
        Some(text) => {
            let _ = qemu::SerialLog::new(&serial_log).wait_for(&qemu::Pattern::text(text), limit, Some(&qemu)).await;
        }
        None => {
            let _ = tokio::time::timeout(limit, qemu.exited()).await;
        }
    }
    let _ = qemu.kill().await;
    let serial = String::from_utf8_lossy(&std::fs::read(&serial_log).unwrap_or_default()).into_owned();
    Booted { serial, tpm }
}

fn recipe(dir: &Path, iso: &Path, virtio: &Path) -> Recipe {
    std::fs::write(dir.join("pw"), "Stand-in pass <&\"\n").unwrap();
    let text = format!(
        "name = \"win-standin\"\nusername = \"agent\"\nmemory = 1024\ndiskSize = \"4G\"\n[source.windows]\nversion = 11\n\
         edition = \"Pro\"\npasswordFile = \"pw\"\niso = {:?}\nvirtio = {:?}\n",
        iso.display().to_string(),
        virtio.display().to_string()
    );
    std::fs::write(dir.join("win.toml"), text).unwrap();
    Recipe::load(&dir.join("win.toml")).unwrap()
}

#[tokio::test]
async fn e2e_windows_profile_secure_boot_tpm_media_and_the_boot_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let iso = standin_iso(dir.path(), Path::new(SHIM));
    let virtio = windows_standin::virtio_iso(dir.path()).unwrap();
    let recipe = recipe(dir.path(), &iso, &virtio);
    let out = dir.path().join("prepared");
    let opts = PrepareOptions {
        out: out.clone(),
        cache_root: dir.path().join("cache"),
        replace: false,
        media: MediaOverrides::default(),
        progress: fetch::ProgressMode::Off,
        quiet: true,
        sink: None,
    };
    let Source::Windows(w) = &recipe.source else { unreachable_recipe() };
    let prepared = prepare::prepare(&recipe, w, &opts).await.unwrap();
    assert_eq!((prepared.image_index, prepared.edition.as_str()), (1, "Windows 11 Pro"));
    assert_eq!(prepared.drivers, ["viostor/w11/amd64", "vioscsi/w11/amd64", "NetKVM/w11/amd64"]);
    for f in [
        names::ANSWER_MEDIA,
        names::ANSWER_XML,
        names::VARS,
        names::INSTALL,
        names::PREPARED,
        "disk.qcow2",
        "id_ed25519",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    assert!(out.join(names::TPM_DIR).is_dir());
    let script = std::fs::read_to_string(out.join(names::INSTALL)).unwrap();
    assert!(script.contains("swtpm socket --tpm2 --tpmstate dir=\"$PWD\"/tpm"), "{script}");
    // A second prepare into the same directory is refused.
    assert!(matches!(prepare::prepare(&recipe, w, &opts).await, Err(images::build::BuildError::OutputExists { .. })));

    let booted = boot(&recipe, &out, (&iso, &virtio), true, None, Duration::from_secs(300)).await;
    let s = &booted.serial;
    assert!(s.contains("VMKIT-STANDIN lockdown=y shim_lock=y"), "Secure Boot not enforced:\n{s}");
    assert!(s.contains("VMKIT-VIRTIO cd"), "the VirtIO media is not a CD-ROM with the drivers:\n{s}");
    assert!(s.contains("VMKIT-ANSWER hd"), "the answer media is not a separate disk:\n{s}");
    assert!(s.contains("VMKIT-KEY-PRESSED"), "the prompt was not answered:\n{s}");
    assert_eq!(booted.tpm.len(), 1, "{:?}", booted.tpm);
    assert_eq!((booted.tpm[0].model.as_str(), booted.tpm[0].options.kind.as_str()), ("tpm-crb", "emulator"));
    assert!(
        std::fs::read_dir(out.join(names::TPM_DIR))
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().starts_with("tpm2-") })
    );

    // A shim with one byte flipped in its code is refused by the firmware: GRUB never runs.
    let mut tampered = std::fs::read(SHIM).unwrap();
    let at = tampered.len() / 2;
    tampered[at] ^= 0xFF;
    let bad_dir = dir.path().join("tampered");
    std::fs::create_dir(&bad_dir).unwrap();
    std::fs::write(bad_dir.join("shim.efi"), &tampered).unwrap();
    let bad_iso = standin_iso(&bad_dir, &bad_dir.join("shim.efi"));
    std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.ms.fd", out.join(names::VARS)).unwrap();
    let refused =
        boot(&recipe, &out, (&bad_iso, &virtio), false, Some("Access Denied"), Duration::from_secs(300)).await;
    assert!(!refused.serial.contains("VMKIT-STANDIN"), "a tampered shim ran:\n{}", refused.serial);
    assert!(refused.serial.contains("Access Denied"), "{}", refused.serial);
}

fn unreachable_recipe() -> ! {
    panic!("the recipe is a Windows recipe")
}

#[test]
fn fixtures_need_debian_packages() {
    for (file, package) in [(SHIM, "shim-signed"), (GRUB, "grub-efi-amd64-signed")] {
        assert!(Path::new(file).is_file(), "{file} missing: install the Debian package {package}");
    }
}
