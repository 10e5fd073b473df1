//! FAT volumes with nested directories, checked by independent readers: `fsck.fat -n` (dosfstools) must find
//! nothing to repair, and mtools (`mdir`, `mcopy`) must read every file back byte for byte — on a volume sized by
//! the writer (FAT12/FAT16) and on a FAT32 volume formatted into a fixed span, as the macOS boot disk's ESP is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use images::fat::{FatImage, FatLayout};

fn run(cmd: &mut Command) -> String {
    testbed::process::run(cmd.env("MTOOLS_SKIP_CHECK", "1")).unwrap_or_else(|e| panic!("{e:#}"))
}

/// A tree like OpenCore's: three levels, long names, names that differ from their 8.3 alias only by case, and one
/// directory with enough entries to span several 512-byte clusters.
fn tree() -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    files.insert("EFI/BOOT/BOOTx64.efi".to_owned(), vec![0x4d; 3000]);
    files.insert("EFI/OC/OpenCore.efi".to_owned(), (0..70_000u32).map(|i| (i % 251) as u8).collect());
    files.insert("EFI/OC/config.plist".to_owned(), b"<plist version=\"1.0\"><dict/></plist>\n".to_vec());
    files.insert("EFI/OC/Drivers/OpenRuntime.efi".to_owned(), vec![1; 513]);
    files.insert("EFI/OC/Kexts/Lilu.kext/Contents/Info.plist".to_owned(), b"info".to_vec());
    files.insert("EFI/OC/Kexts/Lilu.kext/Contents/MacOS/Lilu".to_owned(), vec![2; 10]);
    files.insert("EFI/OC/Resources/Audio/empty.txt".to_owned(), Vec::new());
    for i in 0..40 {
        files.insert(format!("EFI/OC/Tools/a-rather-long-tool-name-{i:02}.efi"), format!("tool {i}").into_bytes());
    }
    files.insert("README.txt".to_owned(), b"root file".to_vec());
    files
}

fn image(files: &BTreeMap<String, Vec<u8>>) -> FatImage {
    let mut image = FatImage::new("VMKIT TEST").unwrap();
    for (path, data) in files {
        image.add_file(path, data.clone()).unwrap();
    }
    image
}

/// `fsck.fat -n` (check, change nothing) exits 0 and reports nothing to repair.
fn fsck_is_clean(volume: &Path) -> String {
    let out = Command::new("fsck.fat").arg("-n").arg("-v").arg(volume).output().expect("fsck.fat (dosfstools)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "fsck.fat -n: {text}");
    for complaint in ["Expected", "Leaving", "Fix?", "Free cluster summary", "Perform changes", "dot"] {
        assert!(!text.contains(complaint), "fsck.fat reports {complaint:?}: {text}");
    }
    text
}

/// Every file, listed by `mdir -/` and copied back by `mcopy -s`, equals what was written.
fn mtools_read_back(image: &str, files: &BTreeMap<String, Vec<u8>>, scratch: &Path) {
    let listing = run(Command::new("mdir").args(["-i", image, "-/", "::/"]));
    for path in files.keys() {
        let name = path.rsplit('/').next().unwrap();
        assert!(listing.contains(name), "mdir -/ does not list {name}: {listing}");
    }
    let out = scratch.join("copied");
    std::fs::create_dir(&out).unwrap();
    run(Command::new("mcopy").args(["-s", "-n", "-i", image, "::/EFI", "::/README.txt"]).arg(&out));
    let mut found = BTreeMap::new();
    collect(&out, &out, &mut found);
    assert_eq!(found.keys().collect::<Vec<_>>(), files.keys().collect::<Vec<_>>());
    for (path, data) in files {
        assert!(&found[path] == data, "{path} differs");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

fn collect(base: &Path, dir: &Path, into: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path: PathBuf = entry.unwrap().path();
        if path.is_dir() {
            collect(base, &path, into);
        } else {
            let rel = path.strip_prefix(base).unwrap().to_str().unwrap().to_owned();
            into.insert(rel, std::fs::read(&path).unwrap());
        }
    }
}

#[test]
fn fat_nested_directories_pass_fsck_and_read_back_with_mtools() {
    let dir = tempfile::tempdir().unwrap();
    let files = tree();
    let path = dir.path().join("sized.img");
    image(&files).write(&path, 0o600).unwrap();
    fsck_is_clean(&path);
    mtools_read_back(path.to_str().unwrap(), &files, dir.path());

    // A larger payload moves the sized volume to FAT16; still clean.
    let mut big = files.clone();
    big.insert("EFI/OC/big/payload.bin".to_owned(), vec![9; 24 << 20]);
    let path = dir.path().join("sized16.img");
    image(&big).write(&path, 0o600).unwrap();
    let report = fsck_is_clean(&path);
    assert!(report.contains("16 bit entries") || report.contains("FAT16"), "{report}");
    mtools_read_back(path.to_str().unwrap(), &big, dir.path());
}

#[test]
fn fat32_span_with_nested_directories_passes_fsck_and_reads_back_with_mtools() {
    let dir = tempfile::tempdir().unwrap();
    let files = tree();
    let path = dir.path().join("fat32.img");
    let mut file = std::fs::File::create_new(&path).unwrap();
    file.set_len(40 << 20).unwrap();
    let layout = FatLayout { fat32: true, bytes_per_cluster: Some(512), volume_id: Some(0x1234_5678) };
    image(&files).format_into(&mut file, layout).unwrap();
    drop(file);
    let report = fsck_is_clean(&path);
    assert!(report.contains("32 bit entries"), "{report}");
    let info = run(Command::new("minfo").args(["-i", path.to_str().unwrap(), "::"]));
    assert!(info.to_lowercase().contains("serial number: 12345678"), "the volume id: {info}");
    mtools_read_back(path.to_str().unwrap(), &files, dir.path());
    let label = run(Command::new("mlabel").args(["-i", path.to_str().unwrap(), "-s", "::"]));
    assert!(label.contains("VMKIT TEST"), "{label}");
}
