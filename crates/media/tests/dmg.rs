//! UDIF disk images made by the test (a minimal writer below: zero-fill, raw and zlib runs, the property list,
//! the `koly` trailer), converted to raw disks by vmkit's reader and, independently, by `dmg2img` and
//! `qemu-img`: all three must give back the disk the test started from. Compressions the reader does not decode,
//! corrupted runs and broken trailers are refused with nothing written.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use media::dmg::{Compression, DmgError, SECTOR, Udif};

/// Sectors per run (Apple's tools use 2048; smaller runs give more of them in a small test disk).
const RUN_SECTORS: usize = 64;

/// A 2 MiB disk: patterned data with all-zero stretches.
fn disk() -> Vec<u8> {
    let mut disk: Vec<u8> = (0..2u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 9) as u8).collect();
    disk[200_000..500_000].fill(0);
    disk[1_500_000..1_600_000].fill(0);
    disk
}

/// Writes `disk` as a UDIF image. `kind(i, run)` picks each run's storage; all-zero runs are zero-fill.
fn write_udif(disk: &[u8], path: &Path, kind: impl Fn(usize, &[u8]) -> Compression) {
    let run_bytes = RUN_SECTORS * SECTOR as usize;
    let mut data = Vec::new();
    let mut runs = Vec::new();
    for (i, run) in disk.chunks(run_bytes).enumerate() {
        let sectors = (run.len() / SECTOR as usize) as u64;
        let first = (i * RUN_SECTORS) as u64;
        let offset = data.len() as u64;
        let compression = if run.iter().all(|b| *b == 0) { Compression::Zero } else { kind(i, run) };
        let stored: Vec<u8> = match compression {
            Compression::Zero => Vec::new(),
            Compression::Zlib => {
                let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                z.write_all(run).unwrap();
                z.finish().unwrap()
            }
            // Raw, and the types the reader refuses (their bytes do not matter to the refusal).
            _ => run.to_vec(),
        };
        data.extend_from_slice(&stored);
        runs.push((compression.type_code(), first, sectors, offset, stored.len() as u64));
    }
    let total_sectors = (disk.len() as u64) / SECTOR;
    runs.push((0xffff_ffff, total_sectors, 0, data.len() as u64, 0));

    let mut mish = Vec::new();
    mish.extend_from_slice(b"mish");
    mish.extend_from_slice(&1u32.to_be_bytes());
    mish.extend_from_slice(&0u64.to_be_bytes()); // first sector
    mish.extend_from_slice(&total_sectors.to_be_bytes());
    mish.extend_from_slice(&0u64.to_be_bytes()); // data offset
    mish.extend_from_slice(&(RUN_SECTORS as u32).to_be_bytes()); // buffers needed
    mish.extend_from_slice(&0u32.to_be_bytes()); // block descriptors
    mish.extend_from_slice(&[0; 24]); // reserved
    mish.extend_from_slice(&[0; 136]); // checksum: type, size, 128 bytes
    mish.extend_from_slice(&(runs.len() as u32).to_be_bytes());
    for (kind, first, sectors, offset, length) in &runs {
        mish.extend_from_slice(&kind.to_be_bytes());
        mish.extend_from_slice(&0u32.to_be_bytes());
        for v in [first, sectors, offset, length] {
            mish.extend_from_slice(&v.to_be_bytes());
        }
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(&mish);
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n<dict>\n\t<key>resource-fork</key>\n\t<dict>\n\t\t<key>blkx</key>\n\t\t<array>\n\
         \t\t\t<dict>\n\t\t\t\t<key>Attributes</key>\n\t\t\t\t<string>0x0050</string>\n\
         \t\t\t\t<key>CFName</key>\n\t\t\t\t<string>whole disk (Apple_HFS : 0)</string>\n\
         \t\t\t\t<key>Data</key>\n\t\t\t\t<data>\n\t\t\t\t{encoded}\n\t\t\t\t</data>\n\
         \t\t\t\t<key>ID</key>\n\t\t\t\t<string>0</string>\n\
         \t\t\t\t<key>Name</key>\n\t\t\t\t<string>whole disk (Apple_HFS : 0)</string>\n\
         \t\t\t</dict>\n\t\t</array>\n\t</dict>\n</dict>\n</plist>\n"
    );
    let mut koly = Vec::new();
    koly.extend_from_slice(b"koly");
    koly.extend_from_slice(&4u32.to_be_bytes());
    koly.extend_from_slice(&512u32.to_be_bytes());
    koly.extend_from_slice(&1u32.to_be_bytes()); // flags: flattened
    koly.extend_from_slice(&0u64.to_be_bytes()); // running data fork offset
    koly.extend_from_slice(&0u64.to_be_bytes()); // data fork offset
    koly.extend_from_slice(&(data.len() as u64).to_be_bytes());
    koly.extend_from_slice(&0u64.to_be_bytes()); // resource fork offset
    koly.extend_from_slice(&0u64.to_be_bytes()); // resource fork length
    koly.extend_from_slice(&1u32.to_be_bytes()); // segment number
    koly.extend_from_slice(&1u32.to_be_bytes()); // segment count
    koly.extend_from_slice(&[0; 16]); // segment id
    koly.extend_from_slice(&[0; 136]); // data checksum
    koly.extend_from_slice(&(data.len() as u64).to_be_bytes()); // XML offset
    koly.extend_from_slice(&(xml.len() as u64).to_be_bytes());
    koly.extend_from_slice(&[0; 120]); // reserved
    koly.extend_from_slice(&[0; 136]); // master checksum
    koly.extend_from_slice(&1u32.to_be_bytes()); // image variant
    koly.extend_from_slice(&total_sectors.to_be_bytes());
    koly.extend_from_slice(&[0; 12]);
    assert_eq!(koly.len(), 512);
    let mut out = std::fs::File::create(path).unwrap();
    out.write_all(&data).unwrap();
    out.write_all(xml.as_bytes()).unwrap();
    out.write_all(&koly).unwrap();
}

fn mixed(i: usize, _: &[u8]) -> Compression {
    if i.is_multiple_of(3) { Compression::Raw } else { Compression::Zlib }
}

#[test]
fn vmkit_dmg2img_and_qemu_img_read_back_the_same_disk() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk();
    let dmg = dir.path().join("test.dmg");
    write_udif(&disk, &dmg, mixed);

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
        write_udif(&disk, &dmg, |i, _| if i == 5 { kind } else { Compression::Zlib });
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
    write_udif(&disk, &dmg, |_, _| Compression::Zlib);
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
        std::fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(".vmkit"))
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
