//! Fuzzes the UDIF (`.dmg`) structure readers with arbitrary bytes taken as a whole file: the `koly` trailer,
//! the property list and its base64 `mish` run tables.
//!
//! Properties beyond "no panic, no hang, no huge allocation": a parsed trailer's data fork and property list lie
//! inside the file; every parsed run lies inside its partition, every partition inside the disk, and no run is
//! larger than the reader's limit.

#![no_main]

use libfuzzer_sys::fuzz_target;
use media::dmg::{MAX_RUN_BYTES, SECTOR, TRAILER_LEN, Trailer, parse_plist};

fuzz_target!(|data: &[u8]| {
    let Some(start) = data.len().checked_sub(TRAILER_LEN) else { return };
    let len = data.len() as u64;
    let Ok(trailer) = Trailer::parse(&data[start..], len) else { return };
    assert!(trailer.data_offset + trailer.data_length <= start as u64);
    assert!(trailer.xml_offset + trailer.xml_length <= start as u64);
    let xml = &data[trailer.xml_offset as usize..(trailer.xml_offset + trailer.xml_length) as usize];
    let Ok(xml) = std::str::from_utf8(xml) else { return };
    let Ok(partitions) = parse_plist(xml, &trailer) else { return };
    for p in &partitions {
        assert!(p.sector + p.sectors <= trailer.sectors);
        for run in &p.runs {
            assert!(run.sector >= p.sector && run.sector + run.sectors <= p.sector + p.sectors);
            assert!(run.sectors * SECTOR <= MAX_RUN_BYTES);
        }
    }
});
