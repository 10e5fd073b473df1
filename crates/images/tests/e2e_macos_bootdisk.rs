//! The macOS boot disk (GPT + FAT32 EFI system partition, assembled in Rust) checked by independent readers —
//! `sgdisk`, `sfdisk`, `fsck.fat`, mtools — and booted for real by OVMF under TCG, with a stand-in EFI program
//! in OpenCore's place (`testbed::efi`: a GRUB image that prints a marker on the serial port and powers the
//! machine off).

use std::process::Command;
use std::time::Duration;

use images::macos::bootdisk::{BootDisk, ESP_FIRST_LBA, SECTOR};
use qemu::{Accel, Device, Drive, Firmware, ImageFormat, Pattern, Qemu, QemuCommand, SerialLog, StopPlan};

const MARKER: &str = "VMKIT-STAND-IN-BOOTED";

fn run(cmd: &mut Command) -> String {
    testbed::process::run(cmd).unwrap_or_else(|e| panic!("{e:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_macos_bootdisk_is_read_by_independent_tools_and_booted_by_ovmf() {
    let dir = tempfile::tempdir().unwrap();
    let program = testbed::efi::stand_in(dir.path(), MARKER).unwrap();
    let config = b"<?xml version=\"1.0\"?><plist version=\"1.0\"><dict/></plist>\n".to_vec();
    let disk = BootDisk::new(64 << 20, "OPENCORE")
        .file("EFI/BOOT/BOOTx64.efi", program.clone())
        .file("EFI/OC/config.plist", config.clone());
    let path = dir.path().join("opencore.img");
    disk.write(&path).unwrap();
    // Never over an existing file.
    assert!(disk.write(&path).is_err());

    // The partition table, as sgdisk and sfdisk read it.
    let verify = run(Command::new("sgdisk").arg("-v").arg(&path));
    assert!(verify.contains("No problems found"), "{verify}");
    let table = run(Command::new("sgdisk").arg("-p").arg(&path));
    assert!(table.contains("EF00") && table.contains(&format!("{ESP_FIRST_LBA}")), "{table}");
    let json = run(Command::new("sfdisk").arg("--json").arg(&path));
    assert!(json.contains("\"label\": \"gpt\"") && json.contains("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"), "{json}");

    // The file system, as fsck.fat and mtools read it.
    let offset = ESP_FIRST_LBA * SECTOR;
    let esp = dir.path().join("esp.img");
    let bytes = std::fs::read(&path).unwrap();
    let end = (disk.esp_last_lba() + 1) * SECTOR;
    std::fs::write(&esp, &bytes[offset as usize..end as usize]).unwrap();
    // fsck.fat -n finds nothing to repair (the subdirectories' `.` and `..` entries come first).
    let fsck = Command::new("fsck.fat").arg("-n").arg("-v").arg(&esp).output().unwrap();
    assert!(fsck.status.success(), "fsck.fat -n: {}", String::from_utf8_lossy(&fsck.stdout));
    let fsck = String::from_utf8_lossy(&fsck.stdout).into_owned();
    assert!(fsck.contains("32 bit entries") && fsck.contains("Media byte 0xf8"), "{fsck}");
    assert!(!fsck.contains("Expected") && !fsck.contains("Perform changes"), "{fsck}");
    let image = format!("{}@@{offset}", path.display());
    let listing = run(Command::new("mdir").args(["-i", &image, "-/", "::/EFI"]));
    assert!(listing.to_uppercase().contains("BOOTX64") && listing.contains("config.plist"), "{listing}");
    let label = run(Command::new("mlabel").args(["-i", &image, "-s", "::"]));
    assert!(label.contains("OPENCORE"), "{label}");
    let copied = dir.path().join("copied.efi");
    run(Command::new("mcopy").args(["-i", &image]).arg("::/EFI/BOOT/BOOTx64.efi").arg(&copied));
    assert!(std::fs::read(&copied).unwrap() == program);

    // OVMF boots it: the removable-media path EFI/BOOT/BOOTx64.efi on the first AHCI disk.
    let vars = dir.path().join("OVMF_VARS.fd");
    std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars).unwrap();
    let mut cmd = QemuCommand::new(Accel::Tcg);
    cmd.memory_mib = 512;
    cmd.no_defaults = true;
    cmd.display = Some(qemu::Display::None);
    cmd.firmware = Firmware::Uefi { code: "/usr/share/OVMF/OVMF_CODE_4M.fd".into(), vars, secure: false };
    cmd.drives.push(Drive::with_device(
        "opencore",
        &path,
        ImageFormat::Raw,
        Device::new("ide-hd").prop("bus", "ide.0").prop("bootindex", "0"),
    ));
    let log_path = dir.path().join("serial.log");
    cmd.serial_socket(dir.path().join("serial.sock"), &log_path);
    cmd.qmp = Some(dir.path().join("qmp.sock"));
    let qemu = Qemu::start(&cmd).await.unwrap();
    let mut log = SerialLog::new(&log_path);
    let found = log.wait_for(&Pattern::text(MARKER), Duration::from_secs(180), Some(&qemu)).await;
    let exit = tokio::time::timeout(Duration::from_secs(60), qemu.exited()).await;
    if exit.is_err() {
        let _ = qemu.stop(StopPlan::kill()).await;
    }
    found.unwrap_or_else(|e| panic!("the stand-in did not run: {e}\n{}", log.contents().unwrap_or_default()));
    assert!(exit.is_ok(), "the stand-in's halt did not power the machine off");
}
