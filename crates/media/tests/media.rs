//! The media readers against real artefacts: WIMs and solid ESDs made by wimlib, ISOs made by genisoimage (UDF
//! bridge, Joliet, plain ISO9660), cut-off and foreign images, an HTML page, virtio-win-like driver media. The
//! editions read are compared with what `wimlib-imagex info` reports for the same file.

mod fixtures;

use std::path::Path;

use fixtures::{CONSUMER, IsoKind, make_esd, make_iso, make_wim, virtio_tree, wimlib_info, windows_tree};
use media::edition::EditionSelector;
use media::wim::{Arch, Format};
use media::{Error, Filesystem, Iso};

fn wimlib_arch(n: u32) -> &'static str {
    match n {
        9 => "x86_64",
        12 => "ARM64",
        0 => "x86",
        _ => "?",
    }
}

/// Checks that the editions vmkit reads equal wimlib's view of `wim` (and the properties the fixture set).
fn assert_same_as_wimlib(editions: &[media::wim::Edition], wim: &Path) {
    let (count, theirs) = wimlib_info(wim);
    assert_eq!(count as usize, editions.len());
    assert_eq!(theirs.len(), editions.len());
    for (ours, theirs) in editions.iter().zip(&theirs) {
        assert_eq!(ours.index, theirs.index);
        assert_eq!(ours.name, theirs.name);
        assert_eq!(ours.edition_id.as_deref(), Some(theirs.edition_id.as_str()));
        assert_eq!(ours.version.map(|v| v.build.to_string()), Some(theirs.build.clone()));
        let fixture = &CONSUMER[ours.index as usize - 1];
        assert_eq!(ours.arch, Some(Arch::from_number(fixture.arch)));
        assert_eq!(wimlib_arch(fixture.arch), theirs.arch);
        assert_eq!(ours.languages, ["en-US"]);
        assert_eq!(ours.installation_type.as_deref(), Some("Client"));
    }
}

#[test]
fn editions_of_a_udf_windows_iso_match_wimlib() {
    let dir = tempfile::tempdir().unwrap();
    let wim = dir.path().join("install.wim");
    make_wim(dir.path(), &wim, &CONSUMER);
    let iso_path = dir.path().join("win.iso");
    make_iso(&windows_tree(dir.path(), &wim, "install.wim"), &iso_path, IsoKind::Udf, "CCCOMA_X64FRE_EN-US_DV9");

    let media = media::windows::inspect_path(&iso_path).unwrap();
    assert_eq!(media.filesystem, Filesystem::Udf { revision: 0x0102 });
    assert_eq!(media.volume_id, "CCCOMA_X64FRE_EN-US_DV9");
    assert_eq!(media.image_path, "sources/install.wim");
    assert_eq!(media.format, Format::Wim);
    assert_eq!(media.header.image_count, 4);
    assert_eq!(media.image_size, std::fs::metadata(&wim).unwrap().len());
    assert_same_as_wimlib(&media.editions, &wim);
    let pro = &media.editions[1];
    assert_eq!(pro.display_name.as_deref(), Some("Windows 11 Pro"));
    assert_eq!(pro.version.unwrap().to_string(), "10.0.26100.1742");

    // Choosing editions.
    let pick = |s: &str, arch| media.select(&s.parse::<EditionSelector>().unwrap(), arch).map(|e| e.index);
    assert_eq!(pick("Pro", Some(Arch::X64)).unwrap(), 2);
    assert_eq!(pick("Home", None).unwrap(), 1);
    assert_eq!(pick("Enterprise N", None).unwrap(), 3);
    assert_eq!(pick("4", Some(Arch::Arm64)).unwrap(), 4);
    let err = pick("Enterprise", None).unwrap_err();
    assert!(matches!(err, Error::EditionNotPresent { .. }), "{err}");
    assert!(err.to_string().contains("2 \"Windows 11 Pro\" (Professional, x64)"), "{err}");
    let err = pick("Pro Education", Some(Arch::X64)).unwrap_err();
    assert!(matches!(err, Error::WrongArchitecture { .. }), "{err}");
    assert!(err.to_string().ends_with("is for arm64, not x64"), "{err}");
}

#[test]
fn a_solid_esd_is_read_like_a_wim() {
    let dir = tempfile::tempdir().unwrap();
    let wim = dir.path().join("install.wim");
    make_wim(dir.path(), &wim, &CONSUMER);
    let esd = dir.path().join("install.esd");
    make_esd(&wim, &esd);
    let iso_path = dir.path().join("esd.iso");
    make_iso(&windows_tree(dir.path(), &esd, "install.esd"), &iso_path, IsoKind::Udf, "ESD_ISO");

    let media = media::windows::inspect_path(&iso_path).unwrap();
    assert_eq!(media.image_path, "sources/install.esd");
    assert_eq!(media.format, Format::Esd);
    assert_eq!(media.header.version, media::wim::VERSION_SOLID);
    assert_eq!(media.header.compression, media::wim::Compression::Lzms);
    assert_same_as_wimlib(&media.editions, &esd);

    // The same file read directly, outside an ISO.
    let file = std::fs::File::open(&esd).unwrap();
    let info = media::wim::read_info(&file, "install.esd").unwrap();
    assert_eq!(info.editions, media.editions);
}

#[test]
fn joliet_and_plain_iso9660_media_are_read_and_files_come_back_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let wim = dir.path().join("install.wim");
    make_wim(dir.path(), &wim, &CONSUMER[..2]);
    let tree = windows_tree(dir.path(), &wim, "install.wim");
    let original = std::fs::read(&wim).unwrap();
    for (kind, fs, name) in [
        (IsoKind::Udf, Filesystem::Udf { revision: 0x0102 }, "install.wim"),
        (IsoKind::Joliet, Filesystem::Joliet, "install.wim"),
        (IsoKind::Plain, Filesystem::Iso9660, "INSTALL.WIM"),
    ] {
        let path = dir.path().join(format!("{kind:?}.iso"));
        make_iso(&tree, &path, kind, "WIN");
        let iso = Iso::open_path(&path).unwrap();
        assert_eq!(iso.filesystem(), fs);
        let entry = iso.entry("/Sources/Install.WIM").unwrap();
        assert_eq!(entry.name(), name);
        assert_eq!(entry.size(), original.len() as u64);
        assert_eq!(iso.read_vec(&entry, 0, entry.size()).unwrap(), original, "{kind:?}");
        let mut middle = [0u8; 1000];
        iso.read_range(&entry, 4000, &mut middle).unwrap();
        assert_eq!(middle[..], original[4000..5000]);
        assert!(iso.read_vec(&entry, entry.size() - 10, 11).is_err());
        let mut top: Vec<String> = iso.list("").unwrap().iter().map(|e| e.name().to_ascii_lowercase()).collect();
        top.sort();
        assert_eq!(top, ["boot", "bootmgr", "efi", "setup.exe", "sources", "support"], "{kind:?}");
        assert!(iso.lookup("sources/nothing.here").unwrap().is_none());
        assert!(iso.lookup("bootmgr/inside").unwrap().is_none());
        assert!(matches!(iso.list("bootmgr").unwrap_err(), Error::WrongKind { .. }));
        let media = media::windows::inspect(&iso).unwrap();
        assert_eq!(media.editions.len(), 2);
    }
}

#[test]
fn foreign_media_say_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let debian = dir.path().join("debian.iso");
    make_iso(&fixtures::debian_tree(dir.path()), &debian, IsoKind::Joliet, "Debian 12.8.0 amd64 n");
    let err = media::windows::inspect_path(&debian).unwrap_err();
    assert!(matches!(err, Error::NotWindowsMedia { .. }));
    assert_eq!(
        err.to_string(),
        "not Windows installation media: no sources/ folder (volume \"Debian 12.8.0 amd64 n\"; top level: .disk/, \
         boot/, dists/, install.amd/, isolinux/, pool/, README.txt)"
    );

    let html = dir.path().join("Win11.iso");
    std::fs::write(&html, "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>".repeat(2000)).unwrap();
    let err = media::windows::inspect_path(&html).unwrap_err();
    assert_eq!(err.to_string(), "not an ISO image: found an HTML page (starts with <!DOCTYPE html>)");
    assert!(err.is_bad_input());
    let small = dir.path().join("small.iso");
    std::fs::write(&small, "<html>404</html>").unwrap();
    let err = media::windows::inspect_path(&small).unwrap_err().to_string();
    assert_eq!(err, "not an ISO image: found an HTML page (starts with <html>), 16 bytes: too small for an ISO image");

    let missing = media::windows::inspect_path(&dir.path().join("absent.iso")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }) && missing.is_bad_input());
}

#[test]
fn windows_media_without_an_install_image_or_with_a_bad_one_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let not_wim = dir.path().join("fake.wim");
    std::fs::write(&not_wim, b"PK\x03\x04 a zip, renamed").unwrap();
    let tree = windows_tree(dir.path(), &not_wim, "install.wim");
    let iso = dir.path().join("bad-wim.iso");
    make_iso(&tree, &iso, IsoKind::Udf, "BAD");
    let err = media::windows::inspect_path(&iso).unwrap_err();
    assert_eq!(err.to_string(), "sources/install.wim: not a WIM file (starts with a ZIP archive)");

    std::fs::remove_file(tree.join("sources/install.wim")).unwrap();
    std::fs::write(tree.join("sources/install.swm"), b"MSWIM\0\0\0").unwrap();
    let iso = dir.path().join("no-install.iso");
    make_iso(&tree, &iso, IsoKind::Udf, "NOINSTALL");
    let err = media::windows::inspect_path(&iso).unwrap_err();
    assert!(matches!(err, Error::NoInstallImage { .. }));
    assert!(err.to_string().contains("split image (install.swm)"), "{err}");
}

/// Offset of the first occurrence of `needle` in the file (found independently of the reader under test).
fn find_bytes(file: &Path, needle: &[u8]) -> usize {
    let data = std::fs::read(file).unwrap();
    data.windows(needle.len()).position(|w| w == needle).unwrap()
}

#[test]
fn truncated_media_are_reported_as_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let wim = dir.path().join("install.wim");
    make_wim(dir.path(), &wim, &CONSUMER[..2]);
    let full = dir.path().join("win.iso");
    make_iso(&windows_tree(dir.path(), &wim, "install.wim"), &full, IsoKind::Udf, "WIN");
    let bytes = std::fs::read(&full).unwrap();
    let wim_at = find_bytes(&full, b"MSWIM\0\0\0\xd0\0\0\0");
    let wim_len = std::fs::metadata(&wim).unwrap().len() as usize;
    // Cut inside the WIM (its XML is near the end), after the anchor (300 KiB: before UDF's anchor at 512 KiB),
    // and inside the volume descriptors (ISO9660's are there, UDF's recognition sequence is cut).
    for cut in [wim_at + wim_len - 200, 300 << 10, 36 << 10] {
        let path = dir.path().join(format!("cut-{cut}.iso"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = media::windows::inspect_path(&path).unwrap_err();
        assert!(matches!(err, Error::Truncated { .. }), "cut at {cut}: {err}");
        assert!(err.to_string().contains(&format!("only {cut} bytes")), "{err}");
    }
}

#[test]
fn virtio_driver_media_are_checked_for_the_windows_version_and_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let all = ["viostor", "vioscsi", "NetKVM", "Balloon", "vioserial"];
    let tree = virtio_tree(dir.path(), &all, &["w10", "w11", "2k22"], &["amd64", "ARM64"]);
    let iso_path = dir.path().join("virtio-win.iso");
    make_iso(&tree, &iso_path, IsoKind::Joliet, "virtio-win-0.1.262");
    let found = media::virtio::check_path(&iso_path, "w11", Arch::X64).unwrap();
    assert_eq!(found.volume_id, "virtio-win-0.1.262");
    let paths: Vec<&str> = found.drivers.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["viostor/w11/amd64", "vioscsi/w11/amd64", "NetKVM/w11/amd64"]);
    assert_eq!(found.drivers[2].infs, ["netkvm.inf"]);
    let arm = media::virtio::check_path(&iso_path, "2k22", Arch::Arm64).unwrap();
    assert_eq!(arm.drivers[0].path, "viostor/2k22/ARM64");

    let err = media::virtio::check_path(&iso_path, "2k25", Arch::X64).unwrap_err();
    assert_eq!(
        err.to_string(),
        "VirtIO driver media lacks drivers for 2k25/amd64: viostor/ has no 2k25/ folder (it has: 2k22, w10, w11); \
         vioscsi/ has no 2k25/ folder (it has: 2k22, w10, w11); NetKVM/ has no 2k25/ folder (it has: 2k22, w10, w11)"
    );

    // Partial media: no vioscsi at all, NetKVM only for w10.
    let dir2 = tempfile::tempdir().unwrap();
    virtio_tree(dir2.path(), &["viostor"], &["w11"], &["amd64"]);
    virtio_tree(dir2.path(), &["NetKVM"], &["w10"], &["amd64"]);
    let partial = dir2.path().join("partial.iso");
    make_iso(&dir2.path().join("virtio-tree"), &partial, IsoKind::Udf, "partial");
    let err = media::virtio::check_path(&partial, "w11", Arch::X64).unwrap_err();
    assert!(matches!(err, Error::DriversMissing { .. }));
    assert_eq!(
        err.to_string(),
        "VirtIO driver media lacks drivers for w11/amd64: no vioscsi/ folder; NetKVM/ has no w11/ folder (it has: w10)"
    );

    let html = dir.path().join("virtio-win.iso.html");
    std::fs::write(&html, "<!doctype html><html><body>Moved</body></html>\n".repeat(1000)).unwrap();
    let err = media::virtio::check_path(&html, "w11", Arch::X64).unwrap_err();
    assert_eq!(err.to_string(), "not an ISO image: found an HTML page (starts with <!doctype html>)");
}

#[test]
fn damaged_metadata_never_panics() {
    // A quick, deterministic relative of the fuzz target: flip bytes of a real UDF image's metadata area.
    let dir = tempfile::tempdir().unwrap();
    let wim = dir.path().join("install.wim");
    make_wim(dir.path(), &wim, &CONSUMER[..1]);
    let path = dir.path().join("win.iso");
    make_iso(&windows_tree(dir.path(), &wim, "install.wim"), &path, IsoKind::Udf, "WIN");
    let original = std::fs::read(&path).unwrap();
    let mut state = 0x2545_f491_u64;
    let mut ok = 0;
    for _ in 0..3000 {
        let mut bytes = original.clone();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state as usize) % (original.len().min(700 << 10));
            bytes[at] = (state >> 32) as u8;
        }
        if let Ok(iso) = Iso::open(bytes)
            && media::windows::inspect(&iso).is_ok()
        {
            ok += 1;
        }
    }
    assert!(ok > 0, "some mutations hit unused bytes and still read");
}
