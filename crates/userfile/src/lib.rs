//! Reading the files a user names — configs, scripts, recipes, keys, passwords, file contents to embed — with a
//! size bound.
//!
//! Why: a path given on the command line or in a config can name anything, and `std::fs::read` of `/dev/zero`,
//! `/dev/urandom` or a FIFO fed by `yes` never returns while it eats memory. Checking the file's size first does
//! not help (character devices and pipes report 0). So every user-named file is read through [`read`] or
//! [`read_to_string`], which stop one byte after the limit and fail with an error naming the file and the limit.
//! The limits of each kind of file live here too ([`Limit`]), so the same kind is bounded the same way wherever
//! it is read.
//!
//! The other user-given text that must be handled with care before it reaches a message is a URL or URI with a
//! password in it (`https://user:pw@host/…`, `qemu+ssh://user:pw@host/system`): [`redact_url_password`] masks
//! it, for the download errors and the libvirt connection messages alike. A password held in memory is a
//! [`Secret`], which has no `Display` and whose `Debug` prints `<redacted>`.

use std::io::Read;
use std::path::{Path, PathBuf};

/// How much of each kind of file vmkit reads at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Config files, automation scripts, image recipes: real ones are kilobytes; a generated desktop file with a
    /// hundred thousand VMs is about 20 MiB.
    Config,
    /// SSH keys (private or public, `authorized_keys` files).
    Key,
    /// Password files (the first line is the password).
    Password,
    /// Files whose content is embedded into something vmkit makes (cloud-init `write_files`, provisioning files).
    Content,
    /// A value a script types, read from a file (`--var-file`): a password, an account name, a public key.
    Value,
    /// A number of bytes.
    Bytes(u64),
}

impl Limit {
    /// The bound in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            Self::Config => 64 << 20,
            Self::Key | Self::Value => 64 << 10,
            Self::Password => 4 << 10,
            Self::Content => 16 << 20,
            Self::Bytes(n) => n,
        }
    }
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is larger than its kind may be (or endless, like `/dev/zero`).
    #[error("{} is larger than {limit} bytes (the most vmkit reads for this kind of file); is it the right file?", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The bound.
        limit: u64,
    },
    /// The file is not UTF-8 text.
    #[error("{} is not UTF-8 text (invalid byte at offset {offset})", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
        /// Where the first invalid byte is.
        offset: usize,
        /// The bytes that were read.
        bytes: Vec<u8>,
    },
}

impl ReadError {
    /// The file.
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. } | Self::TooLarge { path, .. } | Self::NotText { path, .. } => path,
        }
    }
}

impl ReadError {
    /// The error as an `io::Error`, for callers whose own errors carry the path beside an `io::Error` (the
    /// message then leaves the path out).
    pub fn into_io(self) -> std::io::Error {
        match self {
            Self::Io { source, .. } => source,
            Self::TooLarge { limit, .. } => std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "larger than {limit} bytes, the most vmkit reads for this kind of file (is it the right file?)"
                ),
            ),
            Self::NotText { offset, .. } => std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not UTF-8 text (invalid byte at offset {offset})"),
            ),
        }
    }
}

/// The bytes of `path`, or [`ReadError::TooLarge`] as soon as more than `limit` bytes came.
pub fn read(path: &Path, limit: Limit) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io { path: path.to_owned(), source };
    let max = limit.bytes();
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge { path: path.to_owned(), limit: max });
    }
    Ok(bytes)
}

/// The text of `path` (see [`read`]); not UTF-8 is [`ReadError::NotText`].
pub fn read_to_string(path: &Path, limit: Limit) -> Result<String, ReadError> {
    let bytes = read(path, limit)?;
    String::from_utf8(bytes).map_err(|e| ReadError::NotText {
        path: path.to_owned(),
        offset: e.utf8_error().valid_up_to(),
        bytes: e.into_bytes(),
    })
}

/// What replaces a password in a URL.
pub const PASSWORD_MASK: &str = "***";

/// `text` with the password of its URL's user information (`scheme://user:PASSWORD@host…`) replaced by
/// [`PASSWORD_MASK`]; text without one is returned as it is. Works on text that is not a valid URL too (an error
/// message may quote what failed to parse).
pub fn redact_url_password(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace; user information ends at its last '@'.
        let end = tail.find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace()).unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@').and_then(|at| authority[..at].find(':').map(|colon| (colon, at))) {
            Some((colon, at)) => {
                out.push_str(&authority[..=colon]);
                out.push_str(PASSWORD_MASK);
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// A value never printed: `Debug` shows `<redacted>`, and there is no `Display`. vmkit's one type for a password
/// held in memory (VNC and SSH passwords, secret script variables); other crates re-export it.
///
/// ```compile_fail
/// // No `Display`: a secret cannot be put into a message by accident.
/// let s = userfile::Secret::new("hunter2");
/// let _ = format!("{s}");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that needs it (authentication).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn url_passwords_are_masked_wherever_they_are() {
        assert_eq!(redact_url_password("http://user:pw@host/a"), "http://user:***@host/a");
        assert_eq!(
            redact_url_password("cannot connect to qemu+ssh://root:s3cr:et@10.0.0.1:22/system?keyfile=k: refused"),
            "cannot connect to qemu+ssh://root:***@10.0.0.1:22/system?keyfile=k: refused"
        );
        assert_eq!(redact_url_password("a https://u:p@x b http://v:q@y"), "a https://u:***@x b http://v:***@y");
        assert_eq!(redact_url_password("https://user@host/a:b@c"), "https://user@host/a:b@c", "no password");
        assert_eq!(redact_url_password("qemu:///system"), "qemu:///system");
        assert_eq!(redact_url_password("no url: a:b@c"), "no url: a:b@c");
    }

    use super::*;

    #[test]
    fn secrets_show_only_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(vec![s.clone()])), "Some([<redacted>])");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn endless_files_fail_fast_with_the_limit_in_the_message() {
        let started = std::time::Instant::now();
        for kind in [Limit::Config, Limit::Key, Limit::Password, Limit::Content, Limit::Value] {
            let err = read(Path::new("/dev/zero"), kind).unwrap_err();
            assert!(matches!(err, ReadError::TooLarge { limit, .. } if limit == kind.bytes()), "{err}");
            assert!(err.to_string().contains("/dev/zero"), "{err}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn files_up_to_the_limit_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read(&p, Limit::Bytes(5)).unwrap(), b"12345");
        assert!(matches!(read(&p, Limit::Bytes(4)), Err(ReadError::TooLarge { limit: 4, .. })));
        assert_eq!(read_to_string(&p, Limit::Key).unwrap(), "12345");
        std::fs::write(&p, b"ok\xffno").unwrap();
        assert!(matches!(read_to_string(&p, Limit::Key), Err(ReadError::NotText { offset: 2, .. })));
        let missing = read(&dir.path().join("missing"), Limit::Key).unwrap_err();
        assert!(matches!(missing, ReadError::Io { .. }) && missing.to_string().contains("missing"));
    }
}
