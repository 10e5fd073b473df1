//! Fuzzes the ISO9660/Joliet/UDF reader and what is built on it (Windows media inspection, the VirtIO driver
//! check) with arbitrary image bytes.
//!
//! Properties beyond "no panic, no hang, no huge allocation": a listed entry can be found again by its name; a
//! file's bytes can be read in full or fail with an error, never a panic; reads are bounded by the image (a
//! 1 MiB input never makes the reader allocate gigabytes: folder and extent limits hold).

#![no_main]

use libfuzzer_sys::fuzz_target;
use media::Iso;
use media::wim::Arch;

fuzz_target!(|data: &[u8]| {
    let Ok(iso) = Iso::open(data) else { return };
    let _ = media::windows::inspect(&iso);
    let _ = media::virtio::check(&iso, "w11", Arch::X64);
    let Ok(root) = iso.root() else { return };
    let Ok(top) = iso.read_dir(&root) else { return };
    for entry in top.iter().take(16) {
        if entry.name().is_empty() || entry.name().contains('/') {
            continue;
        }
        if let Ok(Some(again)) = iso.lookup(entry.name()) {
            assert!(media::iso::names_match(again.name(), entry.name()));
        }
        if entry.is_dir() {
            let _ = iso.read_dir(entry);
        } else if entry.size() <= data.len() as u64 {
            if let Ok(bytes) = iso.read_vec(entry, 0, entry.size()) {
                assert_eq!(bytes.len() as u64, entry.size());
            }
        }
    }
});
