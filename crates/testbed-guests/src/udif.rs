//! UDIF disk images (`.dmg`) written for tests: the shape Apple's recovery images have — runs of sectors stored
//! as zero fill, raw or zlib-compressed, listed in a `blkx` property list, located by the `koly` trailer — so
//! vmkit's reader (`media::dmg`) and the tools it is checked against (`dmg2img`, `qemu-img`) get real input.
//! Runs of other compressions carry their raw bytes under the other type code: enough to test refusals.

use std::io::Write;
use std::path::Path;

use base64::Engine;
pub use media::dmg::Compression;
use media::dmg::SECTOR;

/// Sectors per run (Apple's tools use 2048; smaller runs give more of them in a small test disk).
pub const RUN_SECTORS: usize = 64;

/// Writes `disk` as a UDIF image. `kind(i, run)` picks each run's storage; all-zero runs are zero-fill.
pub fn write(disk: &[u8], path: &Path, kind: impl Fn(usize, &[u8]) -> Compression) {
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
                z.write_all(run).expect("writing the test UDIF");
                z.finish().expect("writing the test UDIF")
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
    let mut out = std::fs::File::create(path).expect("writing the test UDIF");
    out.write_all(&data).expect("writing the test UDIF");
    out.write_all(xml.as_bytes()).expect("writing the test UDIF");
    out.write_all(&koly).expect("writing the test UDIF");
}
