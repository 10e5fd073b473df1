//! Downloads with a required SHA-256 into a content-addressed cache.
//!
//! Every image build starts from a file someone else publishes, and published files drift. So a download here is
//! always *a URL plus the digest it must have*: the file lands in the cache as `sha256/<hex>` only after its bytes
//! hashed to `<hex>`, by an atomic rename, so the cache never holds a wrong or half-written file and a cached file
//! is reused with no network at all. An interrupted download keeps its bytes and continues with an HTTP Range
//! request. Progress shows as a bar on a terminal and as a few plain lines in logs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fetch::FetchError> {
//! let cache = fetch::Cache::locate(None)?;
//! let source = fetch::Source::new(
//!     "https://cloud-images.ubuntu.com/releases/noble/release-20260615/ubuntu-24.04-server-cloudimg-amd64.img",
//!     "5fa5b05e5ec239858c4531485d6023b0896448c2df7c63b34f8dae6ea6051a44".parse()?,
//! )?;
//! let fetched = fetch::Fetcher::new(cache)?.fetch(&source).await?;
//! let image: &std::path::Path = &fetched.path; // in the cache, named by its SHA-256
//! # let _ = image;
//! # Ok(()) }
//! ```

mod cache;
pub mod chunklist;
mod digest;
mod download;
pub mod macos;
mod progress;
mod source;

use std::path::PathBuf;

pub use cache::{CACHE_DIR_ENV, Cache};
pub use digest::Sha256;
pub use download::{Fetched, Fetcher};
pub use progress::{LINE_INTERVAL, LineSink, ProgressMode};
pub use source::{Source, UbuntuCloudImage, VIRTIO_WIN_SHA256, VIRTIO_WIN_VERSION, VirtioWin};

/// Everything that can go wrong while fetching.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A digest given by the user is not a SHA-256.
    #[error("`{input}` is not a SHA-256 digest: {reason}")]
    BadDigest {
        /// What was given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// A URL that cannot be fetched.
    #[error("cannot fetch `{url}`: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A named source was given a malformed field.
    #[error("{source_kind}: {field} `{value}` is not valid (expected {expected})")]
    BadSourceField {
        /// Which named source.
        source_kind: &'static str,
        /// The field.
        field: String,
        /// Its value.
        value: String,
        /// What a valid value looks like.
        expected: String,
    },
    /// The downloaded bytes do not have the required digest. Nothing was cached.
    #[error("SHA-256 mismatch for {url}: expected {expected}, got {actual}; nothing was cached")]
    HashMismatch {
        /// The URL.
        url: String,
        /// The digest the caller required.
        expected: Sha256,
        /// The digest of what arrived.
        actual: Sha256,
    },
    /// The HTTP client could not be set up.
    #[error("setting up the HTTP client: {source}")]
    Client {
        /// The cause.
        source: reqwest::Error,
    },
    /// The request failed (connection, TLS, timeout, dropped connection) after every attempt.
    #[error("downloading {url}: {source}")]
    Http {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("downloading {url}: the server answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The server answered a range request with a different range.
    #[error("downloading {url}: the server sent range `{range}`, not the one asked for")]
    BadRange {
        /// The URL.
        url: String,
        /// The Content-Range header it sent.
        range: String,
    },
    /// The connection ended before the announced size arrived.
    #[error("downloading {url}: the connection ended after {got} of {total} bytes")]
    Truncated {
        /// The URL.
        url: String,
        /// Bytes received so far.
        got: u64,
        /// Bytes announced.
        total: u64,
    },
    /// Another process held the download's lock for longer than the fetcher waits.
    #[error(
        "{name}: another process has been downloading it for {} s (it holds {}); giving up — try again when it is done",
        waited.as_secs(), lock.display()
    )]
    LockTimeout {
        /// The source's name.
        name: String,
        /// The lock file.
        lock: PathBuf,
        /// How long this process waited.
        waited: std::time::Duration,
    },
    /// A chunklist, or an image checked against one, failed verification. Nothing was cached.
    #[error("{url}: {source}; nothing was cached")]
    Chunklist {
        /// The URL of the chunklist or image.
        url: String,
        /// What failed.
        #[source]
        source: chunklist::ChunklistError,
    },
    /// The server announced a size other than the one the chunklist covers.
    #[error("downloading {url}: the server announced {announced} bytes, the chunklist covers {expected}")]
    WrongLength {
        /// The URL.
        url: String,
        /// The size in Content-Length / Content-Range.
        announced: u64,
        /// The size the chunklist covers.
        expected: u64,
    },
    /// Apple's recovery server answered something the protocol does not allow.
    #[error("macOS recovery server {url}: {reason}")]
    Recovery {
        /// The URL asked.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// No cache directory could be determined (no home directory and no override).
    #[error("no cache directory: set ${CACHE_DIR_ENV} or pass a cache directory")]
    NoCacheDir,
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl FetchError {
    /// Names the URL in an error raised where it was not known.
    pub(crate) fn with_url(self, url: &reqwest::Url) -> Self {
        match self {
            Self::Chunklist { url: u, source } if u.is_empty() => Self::Chunklist { url: url.to_string(), source },
            other => other,
        }
    }

    /// True when the error is the caller's input (bad digest, URL or source field), not a failed download.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::BadDigest { .. } | Self::BadUrl { .. } | Self::BadSourceField { .. })
    }
}
