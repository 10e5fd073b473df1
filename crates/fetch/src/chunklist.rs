//! Apple chunklists: the signed list of SHA-256 digests that makes a macOS recovery image verifiable.
//!
//! Apple publishes no digest of a recovery image (`BaseSystem.dmg`) that a recipe could pin; the image changes
//! with every point release. What Apple does publish next to it is a *chunklist*: the image cut into chunks, each
//! with its size and SHA-256, and an RSA signature over that list made with a key whose public half is in every
//! Mac's firmware. A chunklist that verifies against that key, and an image whose chunks all hash to the listed
//! digests, in order, covering the image exactly, is an image Apple published. That is the only check there is,
//! so it is done in full here, before anything enters the cache — the same role a pinned SHA-256 plays for other
//! downloads, which is why this parser lives in `fetch` and not with the media readers.
//!
//! The layout (all integers little-endian):
//!
//! ```text
//! 0x00  magic "CNKL"            0x04  header size (u32, 0x24)
//! 0x08  file version (u8, 1)    0x09  chunk method (u8, 1 = SHA-256)
//! 0x0a  signature method (u8)   0x0b  padding
//! 0x0c  chunk count (u64)       0x14  chunk table offset (u64, 0x24)
//! 0x1c  signature offset (u64)  = chunk table offset + 36 × chunk count
//! chunk table: chunk count × { size (u32), SHA-256 (32 bytes) }
//! signature method 1: 256 bytes, an RSA-2048 PKCS#1 v1.5 signature (SHA-256) over header + chunk table,
//!                     stored as a little-endian integer
//! signature method 2: 32 bytes, the plain SHA-256 of header + chunk table (no signature at all)
//! ```
//!
//! Nothing may follow the signature. Parsing is sans-IO ([`Chunklist::parse`] takes bytes); [`ChunkCheck`]
//! verifies an image as its bytes stream past, so a download is checked as it arrives.

use std::sync::Arc;

use rsa::{BoxedUint, Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256 as Hasher};

/// The magic at offset 0.
pub const MAGIC: [u8; 4] = *b"CNKL";
/// The size of the header, and the offset of the chunk table.
pub const HEADER_LEN: usize = 0x24;
/// The size of one chunk table entry.
pub const CHUNK_ENTRY_LEN: usize = 0x24;
/// The size of an RSA-2048 signature.
pub const RSA_SIGNATURE_LEN: usize = 256;
/// Chunklists larger than this are refused before parsing (a real one for a 1 GiB image is a few kilobytes).
pub const MAX_LEN: usize = 4 << 20;

/// The modulus of Apple's EFI ROM public key (RSA-2048, exponent 65537), with which Apple signs recovery
/// chunklists. Published with OpenCorePkg's `macrecovery.py` (as `Apple_EFI_ROM_public_key_1`).
const APPLE_EFI_ROM_KEY_MODULUS: &str = concat!(
    "C3E748CAD9CD384329E10E25A91E43E1A762FF529ADE578C935BDDF9B13F2179D4855E6FC89E9E29CA12517D17DFA1ED",
    "CE0BEBF0EA7B461FFE61D94E2BDF72C196F89ACD3536B644064014DAE25A15DB6BB0852ECBD120916318D1CCDEA3C84C",
    "92ED743FC176D0BACA920D3FCF3158AFF731F88CE0623182A8ED67E650515F75745909F07D415F55FC15A35654D118C5",
    "5A462D37A3ACDA08612F3F3F6571761EFCCBCC299AEE99B3A4FD6212CCFFF5EF37A2C334E871191F7E1C31960E010A54",
    "E86FA3F62E6D6905E1CD57732410A3EB0C6B4DEFDABE9F59BF1618758C751CD56CEF851D1C0EAA1C558E37AC108DA908",
    "9863D20E2E7E4BF475EC66FE6B3EFDCF",
);

/// Apple's public key for recovery chunklists.
pub fn apple_public_key() -> RsaPublicKey {
    let mut modulus = [0u8; 256];
    // The constant is 512 hex digits; a test checks that it decodes and makes a valid key.
    let _ = hex::decode_to_slice(APPLE_EFI_ROM_KEY_MODULUS, &mut modulus);
    let n = BoxedUint::from_be_slice_vartime(&modulus);
    let e = BoxedUint::from(65_537u32);
    RsaPublicKey::new_unchecked(n, e)
}

/// How a chunklist vouches for its chunk table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// Method 1: an RSA-2048 PKCS#1 v1.5 SHA-256 signature, big-endian (converted from the file's little-endian).
    Rsa(Vec<u8>),
    /// Method 2: only the SHA-256 of header and chunk table. Anyone can make one; it proves nothing.
    DigestOnly([u8; 32]),
}

/// One chunk of the image: its size and the SHA-256 of its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Bytes in the chunk.
    pub size: u32,
    /// The SHA-256 of those bytes.
    pub sha256: [u8; 32],
}

/// A parsed chunklist whose structure is consistent (its signature is checked by [`Chunklist::verify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunklist {
    chunks: Arc<[Chunk]>,
    /// SHA-256 of header + chunk table: what the signature signs.
    signed_digest: [u8; 32],
    signature: Signature,
}

/// How far a chunklist was trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The RSA signature verified against the key.
    Signed,
    /// The list carries no signature (method 2) and the caller allowed that.
    Unsigned,
}

/// What is wrong with a chunklist, or with an image checked against one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunklistError {
    /// Shorter than the header, or than the header says.
    #[error("chunklist is {got} bytes, shorter than the {need} its header requires")]
    Short {
        /// Bytes present.
        got: usize,
        /// Bytes needed.
        need: usize,
    },
    /// Bytes after the signature.
    #[error("chunklist has {extra} bytes after its signature")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// Larger than [`MAX_LEN`].
    #[error("chunklist is {len} bytes; refusing anything over {MAX_LEN}")]
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// A header field with a value this parser does not accept.
    #[error("chunklist header: {field} is {value}, expected {expected}")]
    Header {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// Method 2 with a digest that does not even match the list.
    #[error("chunklist's own digest does not match its header and chunk table")]
    DigestMismatch,
    /// The list has no signature and unsigned lists were not allowed.
    #[error("chunklist is unsigned (signature method 2); refusing it (an explicit allow-unsigned flag accepts it)")]
    Unsigned,
    /// The RSA signature does not verify against the key.
    #[error("chunklist signature does not verify against the public key")]
    BadSignature,
    /// A chunk of the image hashes differently than listed (a corrupted, altered or reordered image).
    #[error("image chunk {index} (bytes {offset}..{end}) does not match the chunklist's SHA-256")]
    ChunkMismatch {
        /// Which chunk (0-based).
        index: usize,
        /// Its first byte in the image.
        offset: u64,
        /// One past its last byte.
        end: u64,
    },
    /// The image is longer than the chunks cover.
    #[error("image is longer than the {expected} bytes its chunklist covers")]
    ImageTooLong {
        /// The size the chunklist covers.
        expected: u64,
    },
    /// The image ended before the last chunk.
    #[error("image ended after {got} of the {expected} bytes its chunklist covers")]
    ImageTooShort {
        /// Bytes seen.
        got: u64,
        /// Bytes the chunklist covers.
        expected: u64,
    },
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(data.get(at..at + 4).unwrap_or(&[0; 4]));
    u32::from_le_bytes(b)
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(data.get(at..at + 8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(b)
}

impl Chunklist {
    /// Parses a chunklist and checks its structure: magic, header size, version, methods, offsets, a chunk table
    /// that ends where the signature begins, a signature of the right size and nothing after it. The signature
    /// itself is checked by [`Chunklist::verify`].
    pub fn parse(data: &[u8]) -> Result<Self, ChunklistError> {
        if data.len() > MAX_LEN {
            return Err(ChunklistError::TooLarge { len: data.len() });
        }
        if data.len() < HEADER_LEN {
            return Err(ChunklistError::Short { got: data.len(), need: HEADER_LEN });
        }
        let header = |field, value: String, expected| ChunklistError::Header { field, value, expected };
        if data.get(..4) != Some(&MAGIC[..]) {
            let magic = data.get(..4).map(|m| String::from_utf8_lossy(m).into_owned()).unwrap_or_default();
            return Err(header("magic", format!("{magic:?}"), "\"CNKL\""));
        }
        let header_size = u32_at(data, 4);
        if header_size as usize != HEADER_LEN {
            return Err(header("header size", header_size.to_string(), "36"));
        }
        let version = data.get(8).copied().unwrap_or_default();
        if version != 1 {
            return Err(header("file version", version.to_string(), "1"));
        }
        let chunk_method = data.get(9).copied().unwrap_or_default();
        if chunk_method != 1 {
            return Err(header("chunk method", chunk_method.to_string(), "1 (SHA-256)"));
        }
        let signature_method = data.get(10).copied().unwrap_or_default();
        let signature_len = match signature_method {
            1 => RSA_SIGNATURE_LEN,
            2 => 32,
            other => return Err(header("signature method", other.to_string(), "1 (RSA) or 2 (digest only)")),
        };
        let count = u64_at(data, 0x0c);
        let chunk_offset = u64_at(data, 0x14);
        let signature_offset = u64_at(data, 0x1c);
        if count == 0 {
            return Err(header("chunk count", "0".into(), "at least 1"));
        }
        if chunk_offset != HEADER_LEN as u64 {
            return Err(header("chunk table offset", chunk_offset.to_string(), "36"));
        }
        let max_count = (MAX_LEN / CHUNK_ENTRY_LEN) as u64;
        if count > max_count {
            return Err(header("chunk count", count.to_string(), "what fits in a chunklist of at most 4 MiB"));
        }
        let table_end = HEADER_LEN + CHUNK_ENTRY_LEN * count as usize;
        if signature_offset != table_end as u64 {
            return Err(header("signature offset", signature_offset.to_string(), "the end of the chunk table"));
        }
        let need = table_end + signature_len;
        if data.len() < need {
            return Err(ChunklistError::Short { got: data.len(), need });
        }
        if data.len() > need {
            return Err(ChunklistError::TrailingBytes { extra: data.len() - need });
        }
        let table = data.get(HEADER_LEN..table_end).unwrap_or_default();
        let chunks: Arc<[Chunk]> = table
            .chunks_exact(CHUNK_ENTRY_LEN)
            .map(|entry| {
                let mut sha256 = [0u8; 32];
                sha256.copy_from_slice(entry.get(4..).unwrap_or(&[0; 32]));
                Chunk { size: u32_at(entry, 0), sha256 }
            })
            .collect();
        if let Some(index) = chunks.iter().position(|c| c.size == 0) {
            return Err(header("chunk size", format!("0 (chunk {index})"), "more than 0"));
        }
        let signed_digest: [u8; 32] = Hasher::digest(data.get(..table_end).unwrap_or_default()).into();
        let raw = data.get(table_end..need).unwrap_or_default();
        let signature = if signature_method == 1 {
            let mut be = raw.to_vec();
            be.reverse();
            Signature::Rsa(be)
        } else {
            let mut digest = [0u8; 32];
            digest.copy_from_slice(raw);
            Signature::DigestOnly(digest)
        };
        Ok(Self { chunks, signed_digest, signature })
    }

    /// Checks the signature against `key` (normally [`apple_public_key`]). An unsigned list (method 2) is
    /// refused unless `allow_unsigned`, and even then its own digest must match.
    pub fn verify(&self, key: &RsaPublicKey, allow_unsigned: bool) -> Result<Trust, ChunklistError> {
        match &self.signature {
            Signature::Rsa(sig) => key
                .verify(Pkcs1v15Sign::new::<Hasher>(), &self.signed_digest, sig)
                .map(|()| Trust::Signed)
                .map_err(|_| ChunklistError::BadSignature),
            Signature::DigestOnly(digest) => {
                if *digest != self.signed_digest {
                    return Err(ChunklistError::DigestMismatch);
                }
                if allow_unsigned { Ok(Trust::Unsigned) } else { Err(ChunklistError::Unsigned) }
            }
        }
    }

    /// The chunks, in image order.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// The image size the chunks cover.
    pub fn image_len(&self) -> u64 {
        self.chunks.iter().map(|c| u64::from(c.size)).sum()
    }

    /// The signature as parsed.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// A checker for the image this list describes.
    pub fn checker(&self) -> ChunkCheck {
        ChunkCheck {
            chunks: Arc::clone(&self.chunks),
            index: 0,
            filled: 0,
            offset: 0,
            hasher: Hasher::new(),
            total: self.image_len(),
        }
    }
}

/// Verifies an image against a chunklist as its bytes stream past: each chunk is checked the moment its last
/// byte arrives, so a bad chunk stops a download there. [`ChunkCheck::finish`] then requires the image to have
/// ended exactly at the last chunk.
#[derive(Debug, Clone)]
pub struct ChunkCheck {
    chunks: Arc<[Chunk]>,
    index: usize,
    /// Bytes of the current chunk seen so far.
    filled: u32,
    /// Image offset of the current chunk's first byte.
    offset: u64,
    hasher: Hasher,
    total: u64,
}

impl ChunkCheck {
    /// Feeds the next bytes of the image.
    pub fn update(&mut self, mut data: &[u8]) -> Result<(), ChunklistError> {
        while !data.is_empty() {
            let Some(chunk) = self.chunks.get(self.index) else {
                return Err(ChunklistError::ImageTooLong { expected: self.total });
            };
            let want = (chunk.size - self.filled) as usize;
            let (now, rest) = data.split_at(want.min(data.len()));
            self.hasher.update(now);
            self.filled += now.len() as u32;
            data = rest;
            if self.filled == chunk.size {
                let digest: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
                let end = self.offset + u64::from(chunk.size);
                if digest != chunk.sha256 {
                    return Err(ChunklistError::ChunkMismatch { index: self.index, offset: self.offset, end });
                }
                self.index += 1;
                self.filled = 0;
                self.offset = end;
            }
        }
        Ok(())
    }

    /// Bytes of the image seen so far.
    pub fn position(&self) -> u64 {
        self.offset + u64::from(self.filled)
    }

    /// Bytes up to the end of the last chunk that verified.
    pub fn verified(&self) -> u64 {
        self.offset
    }

    /// The image size the chunks cover.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Succeeds when every chunk arrived and verified, and nothing more.
    pub fn finish(&self) -> Result<(), ChunklistError> {
        if self.index == self.chunks.len() && self.filled == 0 {
            Ok(())
        } else {
            Err(ChunklistError::ImageTooShort { got: self.position(), expected: self.total })
        }
    }
}

/// Making chunklists: what the tests use to produce lists signed with their own keys (and what a mirror of
/// recovery images could use to re-publish one).
pub mod build {
    use rsa::{Pkcs1v15Sign, RsaPrivateKey};
    use sha2::{Digest, Sha256 as Hasher};

    use super::{CHUNK_ENTRY_LEN, HEADER_LEN, MAGIC, RSA_SIGNATURE_LEN};

    /// Header and chunk table for `image` cut into `chunk_size`-byte chunks, with `signature_method` in the
    /// header: the bytes a signature covers.
    pub fn body(image: &[u8], chunk_size: usize, signature_method: u8) -> Vec<u8> {
        let chunks: Vec<&[u8]> = image.chunks(chunk_size.max(1)).collect();
        let count = chunks.len();
        let mut out = Vec::with_capacity(HEADER_LEN + CHUNK_ENTRY_LEN * count + RSA_SIGNATURE_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        out.extend_from_slice(&[1, 1, signature_method, 0]);
        out.extend_from_slice(&(count as u64).to_le_bytes());
        out.extend_from_slice(&(HEADER_LEN as u64).to_le_bytes());
        out.extend_from_slice(&((HEADER_LEN + CHUNK_ENTRY_LEN * count) as u64).to_le_bytes());
        for chunk in chunks {
            out.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
            out.extend_from_slice(&Hasher::digest(chunk));
        }
        out
    }

    /// A chunklist for `image` signed with `key` (method 1).
    pub fn signed(image: &[u8], chunk_size: usize, key: &RsaPrivateKey) -> Result<Vec<u8>, rsa::Error> {
        let mut out = body(image, chunk_size, 1);
        let digest = Hasher::digest(&out);
        let mut signature = key.sign(Pkcs1v15Sign::new::<Hasher>(), &digest)?;
        signature.reverse();
        out.extend_from_slice(&signature);
        Ok(out)
    }

    /// An unsigned chunklist for `image` (method 2: the digest of header and table, no signature).
    pub fn unsigned(image: &[u8], chunk_size: usize) -> Vec<u8> {
        let mut out = body(image, chunk_size, 2);
        let digest = Hasher::digest(&out);
        out.extend_from_slice(&digest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apple_key_is_a_2048_bit_key_with_exponent_65537() {
        use rsa::traits::PublicKeyParts;
        let key = apple_public_key();
        assert_eq!(key.size(), 256);
        assert_eq!(key.e(), &BoxedUint::from(65_537u32));
        let n = key.n().to_be_bytes();
        let hex_n = hex::encode_upper(n.iter().skip_while(|b| **b == 0).copied().collect::<Vec<_>>());
        assert_eq!(hex_n, APPLE_EFI_ROM_KEY_MODULUS);
        assert!(RsaPublicKey::new(key.n().as_ref().clone(), key.e().clone()).is_ok());
    }

    #[test]
    fn header_fields_are_checked() {
        let image = vec![7u8; 100];
        let good = build::unsigned(&image, 40);
        assert_eq!(Chunklist::parse(&good).unwrap().chunks().len(), 3);
        let cases: [(usize, u8, &str); 5] = [
            (0, b'X', "magic"),
            (4, 0x25, "header size"),
            (8, 2, "file version"),
            (9, 2, "chunk method"),
            (10, 3, "signature method"),
        ];
        for (at, value, field) in cases {
            let mut bad = good.clone();
            bad[at] = value;
            let err = Chunklist::parse(&bad).unwrap_err();
            assert!(matches!(err, ChunklistError::Header { field: f, .. } if f == field), "{field}: {err}");
        }
        let mut bad = good.clone();
        bad[0x1c] += 1;
        assert!(Chunklist::parse(&bad).unwrap_err().to_string().contains("signature offset"));
        let mut bad = good.clone();
        bad[0x0c..0x14].copy_from_slice(&0u64.to_le_bytes());
        assert!(Chunklist::parse(&bad).unwrap_err().to_string().contains("chunk count"));
        let mut bad = good.clone();
        bad[0x0c..0x14].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Chunklist::parse(&bad).is_err());
    }

    #[test]
    fn short_and_trailing_bytes_are_refused() {
        let good = build::unsigned(&[1u8; 10], 4);
        for cut in [0, 3, HEADER_LEN - 1, HEADER_LEN, good.len() - 1] {
            let err = Chunklist::parse(&good[..cut]).unwrap_err();
            assert!(matches!(err, ChunklistError::Short { .. } | ChunklistError::Header { .. }), "{cut}: {err}");
        }
        let mut long = good.clone();
        long.push(0);
        assert_eq!(Chunklist::parse(&long).unwrap_err(), ChunklistError::TrailingBytes { extra: 1 });
    }

    #[test]
    fn checker_covers_the_image_exactly() {
        let image: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let list = Chunklist::parse(&build::unsigned(&image, 300)).unwrap();
        assert_eq!(list.image_len(), 1000);
        // Any split of the stream verifies.
        for step in [1, 7, 299, 300, 301, 1000] {
            let mut check = list.checker();
            for piece in image.chunks(step) {
                check.update(piece).unwrap();
            }
            check.finish().unwrap();
        }
        let mut check = list.checker();
        check.update(&image[..999]).unwrap();
        assert_eq!(check.verified(), 900);
        assert_eq!(check.finish().unwrap_err(), ChunklistError::ImageTooShort { got: 999, expected: 1000 });
        let mut check = list.checker();
        check.update(&image).unwrap();
        assert_eq!(check.update(&[0]).unwrap_err(), ChunklistError::ImageTooLong { expected: 1000 });
        let mut altered = image.clone();
        altered[650] ^= 1;
        let mut check = list.checker();
        assert_eq!(
            check.update(&altered).unwrap_err(),
            ChunklistError::ChunkMismatch { index: 2, offset: 600, end: 900 }
        );
    }

    #[test]
    fn unsigned_lists_need_the_flag_and_a_matching_digest() {
        let list = Chunklist::parse(&build::unsigned(&[3u8; 64], 16)).unwrap();
        let key = apple_public_key();
        assert_eq!(list.verify(&key, false).unwrap_err(), ChunklistError::Unsigned);
        assert_eq!(list.verify(&key, true).unwrap(), Trust::Unsigned);
        let mut bytes = build::unsigned(&[3u8; 64], 16);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let list = Chunklist::parse(&bytes).unwrap();
        assert_eq!(list.verify(&key, true).unwrap_err(), ChunklistError::DigestMismatch);
    }
}
