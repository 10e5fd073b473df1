//! SHA-256 digests as values: parsed once from user input, compared as bytes, shown as lowercase hex.
//!
//! A download is only ever identified by the digest the caller expects, so the type refuses anything that is not
//! 64 hex digits up front (a typo in a recipe is a bad input, not a failed download later).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use sha2::{Digest, Sha256 as Hasher};

use crate::FetchError;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    /// The digest's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters: the name of the file in the cache.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The digest of `data`.
    pub fn of_bytes(data: &[u8]) -> Self {
        Self(Hasher::digest(data).into())
    }

    /// The digest of a file's contents, read in 1 MiB blocks.
    pub fn of_file(path: &Path) -> Result<Self, FetchError> {
        store::sha256_file(path).map(Self).map_err(|source| FetchError::Io {
            op: "reading",
            path: path.to_owned(),
            source,
        })
    }

    pub(crate) fn from_hasher(hasher: Hasher) -> Self {
        Self(hasher.finalize().into())
    }
}

impl FromStr for Sha256 {
    type Err = FetchError;

    /// Parses 64 hex digits (either case); a `sha256:` prefix is accepted.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let text = text.strip_prefix("sha256:").unwrap_or(text);
        let bad = |reason: &str| FetchError::BadDigest { input: s.to_owned(), reason: reason.to_owned() };
        if text.len() != 64 {
            return Err(bad(&format!("a SHA-256 is 64 hex digits, this has {} characters", text.len())));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|e| bad(&e.to_string()))?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_lowercase_hex() {
        let upper = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        let d: Sha256 = upper.parse().unwrap();
        assert_eq!(d.to_hex(), upper.to_lowercase());
        assert_eq!(d, Sha256::of_bytes(b""));
        let prefixed: Sha256 = format!("sha256:{upper}").parse().unwrap();
        assert_eq!(prefixed, d);
    }

    #[test]
    fn rejects_wrong_length_and_non_hex() {
        let short = "abc".parse::<Sha256>().unwrap_err().to_string();
        assert!(short.contains("64 hex digits") && short.contains("abc"), "{short}");
        let nonhex = "g".repeat(64).parse::<Sha256>().unwrap_err().to_string();
        assert!(nonhex.contains("Invalid character"), "{nonhex}");
    }
}
