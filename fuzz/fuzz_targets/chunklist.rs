//! Fuzzes the Apple chunklist parser and the image checker with arbitrary bytes.
//!
//! Input: two bytes (little-endian) giving the chunklist's length, the chunklist, then an "image". Properties
//! beyond "no panic, no hang, no huge allocation": a list that parses has at least one chunk, none empty, and
//! its header and table re-made from the parsed chunks are the input's; a list with a byte appended never
//! parses; signature verification (against Apple's key, unsigned allowed or not) never panics; an image the
//! checker accepts is exactly as long as the chunks cover and every chunk hashes to its listed digest, and the
//! checker's verdict does not depend on how the image was split.

#![no_main]

use fetch::chunklist::{self, Chunklist};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else { return };
    let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    let (list_bytes, image) = rest.split_at(len);
    let Ok(list) = Chunklist::parse(list_bytes) else { return };
    assert!(!list.chunks().is_empty());
    assert!(list.chunks().iter().all(|c| c.size > 0));
    let table_end = chunklist::HEADER_LEN + chunklist::CHUNK_ENTRY_LEN * list.chunks().len();
    for (i, chunk) in list.chunks().iter().enumerate() {
        let at = chunklist::HEADER_LEN + chunklist::CHUNK_ENTRY_LEN * i;
        assert_eq!(&list_bytes[at..at + 4], &chunk.size.to_le_bytes());
        assert_eq!(&list_bytes[at + 4..at + 36], &chunk.sha256);
    }
    assert!(table_end < list_bytes.len());
    let mut longer = list_bytes.to_vec();
    longer.push(0);
    assert!(Chunklist::parse(&longer).is_err());
    let key = chunklist::apple_public_key();
    let _ = list.verify(&key, false);
    let _ = list.verify(&key, true);

    let mut whole = list.checker();
    let whole_ok = whole.update(image).is_ok() && whole.finish().is_ok();
    let mut split = list.checker();
    let mut split_ok = true;
    for piece in image.chunks(7) {
        if split.update(piece).is_err() {
            split_ok = false;
            break;
        }
    }
    let split_ok = split_ok && split.finish().is_ok();
    assert_eq!(whole_ok, split_ok);
    if whole_ok {
        assert_eq!(image.len() as u64, list.image_len());
        let mut at = 0usize;
        for chunk in list.chunks() {
            let end = at + chunk.size as usize;
            assert_eq!(<[u8; 32]>::from(Sha256::digest(&image[at..end])), chunk.sha256);
            at = end;
        }
    }
});
