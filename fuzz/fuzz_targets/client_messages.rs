//! Fuzzes the decoder of a VNC viewer's messages (`vmkit automate record` reads them from the relayed stream):
//! arbitrary bytes, fed whole and in arbitrary pieces.
//!
//! Properties beyond "no panic, no hang, no huge allocation": how the bytes are split never changes what is
//! decoded (the messages, or the error and where it is); an error is sticky; and nothing is buffered beyond one
//! message's fixed part (clipboard text is skipped, never kept).

#![no_main]

use automate::record::messages::Decoder;
use libfuzzer_sys::fuzz_target;

/// The largest message the decoder buffers: SetEncodings with 65535 encodings.
const MAX_MESSAGE: usize = 4 + 4 * 65535;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else { return };
    let whole = Decoder::new().push(bytes);
    let mut pieces = Decoder::new();
    let mut got = Vec::new();
    let mut error = None;
    for chunk in bytes.chunks(usize::from(split).max(1)) {
        match pieces.push(chunk) {
            Ok(m) => got.extend(m),
            Err(e) => {
                assert_eq!(pieces.push(&[0]).err(), Some(e.clone()), "an error stays");
                error = Some(e);
                break;
            }
        }
        assert!(pieces.pending() <= MAX_MESSAGE, "{} bytes buffered", pieces.pending());
    }
    match (whole, error) {
        (Ok(all), None) => assert_eq!(all, got),
        (Err(a), Some(b)) => assert_eq!(a, b),
        (a, b) => panic!("whole: {a:?}, in pieces: {b:?}"),
    }
});
