//! UDIF disk images made by the test (`testbed_guests::udif`: zero-fill, raw and zlib runs, the property list, the
//! `koly` trailer), converted to raw disks by vmkit's reader and, independently, by `dmg2img` and
//! `qemu-img`: all three must give back the disk the test started from. Compressions the reader does not decode,
//! corrupted runs and broken trailers are refused with nothing written.

use std::process::Command;

use media::dmg::{Compression, DmgError, SECTOR, Udif};

/// A 2 MiB disk: patterned data with all-zero stretches.
fn disk() -> Vec<u8> {
    let mut disk: Vec<u8> = (0..2u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 9) as u8).collect();
    disk[200_000..500_000].fill(0);
    disk[1_500_000..1_600_000].fill(0);
    disk
}

fn mixed(i: usize, _: &[u8]) -> Compression {
    if i.is_multiple_of(3) { Compression::Raw } else { Compression::Zlib }
}

#[test]
fn vmkit_dmg2img_and_qemu_img_read_back_the_same_disk() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk();
    let dmg = dir.path().join("test.dmg");
    testbed_guests::udif::write(&disk, &dmg, mixed);

    let udif = Udif::open(&dmg).unwrap();
    assert_eq!(udif.sectors * SECTOR, disk.len() as u64);
    let kinds: Vec<Compression> = udif.compressions().into_iter().collect();
    assert_eq!(kinds, vec![Compression::Zero, Compression::Raw, Compression::Zlib]);
    let ours = dir.path().join("vmkit.img");
    udif.convert(&dmg, &ours).unwrap();
    assert!(std::fs::read(&ours).unwrap() == disk, "vmkit's conversion differs from the disk");
    // The output is never overwritten.
    assert!(matches!(udif.convert(&dmg, &ours), Err(DmgError::Io { .. })));

    let theirs = dir.path().join("dmg2img.img");
    let status = Command::new("dmg2img").arg("-i").arg(&dmg).arg("-o").arg(&theirs).output().unwrap();
    assert!(status.status.success(), "dmg2img: {}", String::from_utf8_lossy(&status.stderr));
    assert!(std::fs::read(&theirs).unwrap() == disk, "dmg2img reads a different disk from the test's image");

    let qemu = dir.path().join("qemu.img");
    let status =
        Command::new("qemu-img").args(["convert", "-f", "dmg", "-O", "raw"]).arg(&dmg).arg(&qemu).output().unwrap();
    assert!(status.status.success(), "qemu-img: {}", String::from_utf8_lossy(&status.stderr));
    assert!(std::fs::read(&qemu).unwrap() == disk, "qemu-img reads a different disk from the test's image");
}

#[test]
fn compressions_the_reader_does_not_decode_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk();
    for (kind, name) in [
        (Compression::Lzfse, "LZFSE (ULFO)"),
        (Compression::Bzip2, "bzip2 (UDBZ)"),
        (Compression::Lzma, "LZMA (ULMO)"),
        (Compression::Adc, "ADC (UDCO)"),
    ] {
        let dmg = dir.path().join(format!("{kind:?}.dmg"));
        testbed_guests::udif::write(&disk, &dmg, |i, _| if i == 5 { kind } else { Compression::Zlib });
        let udif = Udif::open(&dmg).unwrap();
        assert!(udif.compressions().contains(&kind));
        let out = dir.path().join(format!("{kind:?}.img"));
        let err = udif.convert(&dmg, &out).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, DmgError::Unsupported { sector: 320, .. }), "{text}");
        assert!(text.contains(name) && text.contains("whole disk"), "{text}");
        assert!(!out.exists(), "nothing may be written for a refused image");
    }
}

#[test]
fn corrupt_runs_and_broken_trailers_are_refused_with_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk();
    let dmg = dir.path().join("zlib.dmg");
    testbed_guests::udif::write(&disk, &dmg, |_, _| Compression::Zlib);
    let mut bytes = std::fs::read(&dmg).unwrap();
    // Damage the first run's compressed bytes.
    for b in &mut bytes[10..40] {
        *b ^= 0x5a;
    }
    let bad = dir.path().join("bad.dmg");
    std::fs::write(&bad, &bytes).unwrap();
    let out = dir.path().join("bad.img");
    let err = Udif::open(&bad).unwrap().convert(&bad, &out).unwrap_err();
    assert!(matches!(err, DmgError::Corrupt { sector: 0, .. }), "{err}");
    assert!(!out.exists());
    assert!(
        std::fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.')),
        "no temporary file is left behind"
    );

    let good = std::fs::read(&dmg).unwrap();
    for (what, broken) in [
        ("no trailer", good[..good.len() - 1].to_vec()),
        ("too short", good[..100].to_vec()),
        ("bad magic", {
            let mut b = good.clone();
            let at = b.len() - 512;
            b[at] = b'x';
            b
        }),
        ("sectors zero", {
            let mut b = good.clone();
            let at = b.len() - 512 + 492;
            b[at..at + 8].fill(0);
            b
        }),
    ] {
        let path = dir.path().join("broken.dmg");
        std::fs::write(&path, &broken).unwrap();
        let err = Udif::open(&path).unwrap_err();
        assert!(matches!(err, DmgError::Format { .. }), "{what}: {err}");
    }
}
