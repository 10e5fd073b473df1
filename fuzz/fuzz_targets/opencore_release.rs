//! Fuzzes the OpenCore release reader: arbitrary bytes as a release zip (a download pinned by digest, or a file
//! a user names).
//!
//! Properties beyond "no panic, no hang, no huge allocation": a release that reads holds exactly the files vmkit
//! takes, in order, each no larger than the reader's limit.

#![no_main]

use std::path::Path;

use images::macos::opencore::{MAX_FILE, OpenCoreFiles, RELEASE_FILES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(release) = OpenCoreFiles::from_zip(std::io::Cursor::new(data), Path::new("/fuzz/OpenCore.zip")) {
        assert_eq!(release.files.len(), RELEASE_FILES.len());
        for ((target, bytes), (_, expected)) in release.files.iter().zip(RELEASE_FILES) {
            assert_eq!(*target, expected);
            assert!(bytes.len() as u64 <= MAX_FILE);
        }
    }
});
