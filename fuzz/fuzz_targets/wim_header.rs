//! Fuzzes the WIM header and XML parsers: arbitrary bytes as a whole WIM file (header + XML resource read through
//! `read_info`), and as the XML resource alone.
//!
//! Properties beyond "no panic": a successfully read WIM has as many editions as its header counts images, each
//! with a distinct index, and its XML resource lies inside the file.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = media::wim::read_info(data, "fuzz.wim") {
        assert_eq!(info.editions.len(), info.header.image_count as usize);
        assert!(info.header.xml.offset + info.header.xml.size <= data.len() as u64);
        let mut indexes: Vec<u32> = info.editions.iter().map(|e| e.index).collect();
        indexes.dedup();
        assert_eq!(indexes.len(), info.editions.len());
    }
    let _ = media::wim::parse_xml(data, "fuzz.xml");
});
