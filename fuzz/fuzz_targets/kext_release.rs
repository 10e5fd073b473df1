//! Fuzzes the kext release reader: arbitrary bytes as a kext release zip (a download pinned by digest, or a file a
//! user names), with every bundle taken and with one bundle asked for by name.
//!
//! Properties beyond "no panic, no hang, no huge allocation": every bundle read is a plain `*.kext` name, its
//! files are plain relative paths that stay inside it and hold its `Info.plist`, its executable (when it has one)
//! is one of its files, no file exceeds the limit and all of them together stay within the release limit; the
//! order OpenCore gets holds each bundle exactly once.

#![no_main]

use std::path::Path;

use images::macos::kexts::{MAX_FILE, MAX_TOTAL, from_zip, ordered};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for wanted in [Vec::new(), vec!["Lilu.kext".to_owned()]] {
        let Ok(bundles) = from_zip(std::io::Cursor::new(data), Path::new("/fuzz/kext.zip"), &wanted) else {
            continue;
        };
        let mut total = 0u64;
        for b in &bundles {
            assert!(b.name.ends_with(".kext") && !b.name.contains('/'));
            assert!(b.files.iter().any(|(p, _)| p == "Contents/Info.plist"));
            assert!(b.executable_path.is_empty() || b.files.iter().any(|(p, _)| *p == b.executable_path));
            for (p, bytes) in &b.files {
                assert!(!p.starts_with('/') && !p.split('/').any(|c| c == ".." || c.is_empty()));
                assert!(bytes.len() as u64 <= MAX_FILE);
                total += bytes.len() as u64;
            }
        }
        assert!(total <= MAX_TOTAL);
        let names: Vec<String> = bundles.iter().map(|b| b.name.clone()).collect();
        if let Ok(order) = ordered(bundles) {
            let mut got: Vec<String> = order.iter().map(|b| b.name.clone()).collect();
            let mut want = names;
            got.sort();
            want.sort();
            assert_eq!(got, want);
        }
    }
});
