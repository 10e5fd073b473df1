//! Getting a file into the cache: HTTP(S) with resume and retries, or a copy from a `file://` URL.
//!
//! The invariant: `sha256/<hex>` only ever appears by renaming a partial file whose bytes hashed to `<hex>`.
//! Bytes are hashed as they are written, so a finished download is verified without reading it again; a partial
//! file left by an interrupted run is hashed once when the next run picks it up, then continued with
//! `Range: bytes=<len>-`. A server that ignores the range (200 instead of 206) makes us start over; a digest that
//! does not match after a resumed download gets one clean retry from zero (the server may have changed the file
//! under the old partial), and after that the error is final and nothing stays behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::{StatusCode, Url};
use sha2::{Digest, Sha256 as Hasher};
use tokio::io::AsyncWriteExt;

use crate::chunklist::{ChunkCheck, Chunklist};
use crate::progress::{LineSink, Reporter};
use crate::{Cache, FetchError, ProgressMode, Sha256, Source};

/// What [`Fetcher::fetch`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The verified file in the cache (read-only).
    pub path: PathBuf,
    /// Its digest.
    pub sha256: Sha256,
    /// True when the file was already cached and nothing was transferred.
    pub from_cache: bool,
    /// Its size in bytes.
    pub size: u64,
}

/// Downloads [`Source`]s into a [`Cache`].
#[derive(Debug, Clone)]
pub struct Fetcher {
    cache: Cache,
    client: reqwest::Client,
    attempts: u32,
    retry_delay: Duration,
    progress: ProgressMode,
    lines: Option<LineSink>,
    lock_timeout: Duration,
}

/// The result of one HTTP transfer attempt.
enum Attempt {
    /// All bytes are in the partial file.
    Complete,
    /// Worth another try (network error, 5xx); the partial file keeps what arrived.
    Transient(FetchError),
}

/// The partial file and the hash of exactly the bytes it holds.
struct Partial {
    path: PathBuf,
    len: u64,
    hasher: Hasher,
    /// Some of the bytes came from an earlier transfer (this run's or an interrupted run's).
    resumed: bool,
    /// For a chunklist download: the bytes checked chunk by chunk as they are written.
    check: Option<ChunkCheck>,
    /// The fresh checker a reset starts over with.
    check_start: Option<ChunkCheck>,
}

/// What a download must turn out to be.
#[derive(Clone, Copy)]
enum Expect<'a> {
    /// Exactly these bytes: the whole file's SHA-256.
    Sha256(&'a Sha256),
    /// The image a verified chunklist describes: every chunk's SHA-256, in order, covering it exactly.
    Chunks(&'a Chunklist),
}

/// One file to transfer.
#[derive(Clone, Copy)]
struct Job<'a> {
    url: &'a Url,
    name: &'a str,
    /// A `Cookie` header value the server requires (Apple's asset tokens). Never logged.
    cookie: Option<&'a str>,
    /// A `User-Agent` the server expects instead of vmkit's.
    user_agent: Option<&'a str>,
    expect: Expect<'a>,
    /// Names the partial and lock files: the digest of the file, or of the chunklist that describes it.
    key: &'a Sha256,
}

impl Fetcher {
    /// A fetcher with 5 attempts per file, 2 s between attempts (doubling), and automatic progress display.
    pub fn new(cache: Cache) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("vmkit/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|source| FetchError::Client { source })?;
        Ok(Self {
            cache,
            client,
            attempts: 5,
            retry_delay: Duration::from_secs(2),
            progress: ProgressMode::Auto,
            lines: None,
            lock_timeout: Duration::from_secs(60 * 60),
        })
    }

    /// How long to wait for another process downloading the same file (default one hour) before
    /// [`FetchError::LockTimeout`].
    #[must_use]
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// How many transfer attempts per file before giving up (at least 1).
    #[must_use]
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The pause before the first retry; it doubles for each further one.
    #[must_use]
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// The progress display.
    #[must_use]
    pub fn progress(mut self, mode: ProgressMode) -> Self {
        self.progress = mode;
        self
    }

    /// Where progress lines go (the plain-lines display, notes, retries); without a sink they are `tracing`
    /// events, never printed by the library.
    pub fn lines(mut self, sink: LineSink) -> Self {
        self.lines = Some(sink);
        self
    }

    /// The cache this fetcher fills.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Makes `source` available in the cache and returns where it is. A cached file is returned at once, without
    /// touching the network; otherwise the file is downloaded (resuming a partial one), verified and renamed in.
    pub async fn fetch(&self, source: &Source) -> Result<Fetched, FetchError> {
        if let Some(found) = self.cached(source)? {
            return Ok(found);
        }
        self.cache.ensure_dirs()?;
        let _lock = self.lock(source).await?;
        // Someone else may have finished it while we waited for the lock.
        if let Some(found) = self.cached(source)? {
            return Ok(found);
        }
        let job = Job {
            url: source.url(),
            name: source.name(),
            cookie: None,
            user_agent: None,
            expect: Expect::Sha256(source.sha256()),
            key: source.sha256(),
        };
        self.transfer(job).await
    }

    /// Downloads the image a chunklist describes into the cache, checking every chunk as it arrives; the file is
    /// cached under its own SHA-256 only when every chunk verified and the image ended exactly at the last one.
    /// `list` must already have been verified ([`Chunklist::verify`]); `list_digest` (the chunklist file's
    /// SHA-256) names the partial file, so an interrupted download resumes even from a new URL or token.
    /// `cookie` is sent as the `Cookie` header (never logged), `user_agent` replaces vmkit's.
    pub async fn fetch_chunked(
        &self,
        url: &Url,
        name: &str,
        cookie: Option<&str>,
        user_agent: Option<&str>,
        list: &Chunklist,
        list_digest: &Sha256,
    ) -> Result<Fetched, FetchError> {
        self.cache.ensure_dirs()?;
        let _lock = self.lock_key(list_digest, name).await?;
        let job = Job { url, name, cookie, user_agent, expect: Expect::Chunks(list), key: list_digest };
        self.transfer(job).await
    }

    async fn transfer(&self, job: Job<'_>) -> Result<Fetched, FetchError> {
        let mut reporter = Reporter::new(self.progress, job.name, self.lines.clone());
        let list = match job.expect {
            Expect::Chunks(list) => Some(list),
            Expect::Sha256(_) => None,
        };
        let mut partial = Partial::open(self.cache.partial_path(job.key), list).await?;
        let result = if job.url.scheme() == "file" {
            self.copy_local(job, &mut partial, &mut reporter).await
        } else {
            self.download(job, &mut partial, &mut reporter).await
        };
        match result {
            Ok(()) => {
                reporter.done();
                self.commit(partial).await
            }
            Err(err) => {
                reporter.abandon();
                Err(err)
            }
        }
    }

    fn cached(&self, source: &Source) -> Result<Option<Fetched>, FetchError> {
        let Some(path) = self.cache.lookup(source.sha256()) else { return Ok(None) };
        let size = std::fs::metadata(&path)
            .map_err(|source| FetchError::Io { op: "inspecting", path: path.clone(), source })?
            .len();
        tracing::debug!(url = %shown_url(source.url().as_str()), path = %path.display(), "cache hit");
        Ok(Some(Fetched { path, sha256: *source.sha256(), from_cache: true, size }))
    }

    async fn lock(&self, source: &Source) -> Result<std::fs::File, FetchError> {
        self.lock_key(source.sha256(), source.name()).await
    }

    /// Holds the advisory lock that keeps two processes from writing the same partial file.
    pub(crate) async fn lock_key(&self, key: &Sha256, name: &str) -> Result<std::fs::File, FetchError> {
        let path = self.cache.lock_path(key);
        let io = |source| FetchError::Io { op: "locking", path: path.clone(), source };
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io)?;
        let started = std::time::Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if started.elapsed() >= self.lock_timeout {
                        return Err(FetchError::LockTimeout {
                            name: name.to_owned(),
                            lock: path.clone(),
                            waited: started.elapsed(),
                        });
                    }
                    if !told {
                        // Through the progress display: nothing is printed with `ProgressMode::Off`.
                        Reporter::new(self.progress, name, self.lines.clone()).note(&format!(
                            "another process is downloading it; waiting up to {} min",
                            self.lock_timeout.as_secs().div_ceil(60)
                        ));
                        told = true;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
    }

    async fn download(&self, job: Job<'_>, partial: &mut Partial, reporter: &mut Reporter) -> Result<(), FetchError> {
        let mut fresh_retry_left = true;
        let mut attempt = 1u32;
        let mut delay = self.retry_delay;
        loop {
            match self.attempt(job, partial, reporter).await? {
                Attempt::Complete => {
                    let expected = match job.expect {
                        Expect::Chunks(_) => return partial.finish_chunks(job.url).await,
                        Expect::Sha256(expected) => expected,
                    };
                    let actual = partial.digest();
                    if actual == *expected {
                        return Ok(());
                    }
                    let was_resumed = partial.resumed;
                    partial.reset().await?;
                    if was_resumed && fresh_retry_left {
                        fresh_retry_left = false;
                        reporter.retrying("SHA-256 mismatch after resuming; downloading from the start", delay);
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(FetchError::HashMismatch {
                        url: shown_url(job.url.as_str()),
                        expected: *expected,
                        actual,
                    });
                }
                Attempt::Transient(err) if attempt < self.attempts => {
                    reporter.retrying(&err.to_string(), delay);
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                    delay = delay.saturating_mul(2);
                }
                Attempt::Transient(err) => return Err(err),
            }
        }
    }

    async fn attempt(
        &self,
        job: Job<'_>,
        partial: &mut Partial,
        reporter: &mut Reporter,
    ) -> Result<Attempt, FetchError> {
        let url = job.url;
        let mut request = self.client.get(url.clone());
        if partial.len > 0 {
            request = request.header(RANGE, format!("bytes={}-", partial.len));
        }
        if let Some(cookie) = job.cookie {
            let mut value = reqwest::header::HeaderValue::from_str(cookie).map_err(|_| FetchError::BadUrl {
                url: shown_url(url.as_str()),
                reason: "a cookie that is not a valid header value".into(),
            })?;
            value.set_sensitive(true);
            request = request.header(reqwest::header::COOKIE, value);
        }
        if let Some(agent) = job.user_agent {
            request = request.header(reqwest::header::USER_AGENT, agent);
        }
        let transient = |e: reqwest::Error| {
            Attempt::Transient(FetchError::Http { url: shown_url(url.as_str()), source: e.without_url() })
        };
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Ok(transient(e)),
        };
        let status = response.status();
        let total = match status {
            StatusCode::PARTIAL_CONTENT => {
                let range = response.headers().get(CONTENT_RANGE).and_then(|v| v.to_str().ok()).unwrap_or_default();
                match parse_content_range(range) {
                    Some((start, total)) if start == partial.len => {
                        partial.resumed = true;
                        total
                    }
                    _ => {
                        // A range we did not ask for: start over rather than guess.
                        tracing::warn!(url = %shown_url(url.as_str()), range, "unexpected Content-Range; restarting download");
                        partial.reset().await?;
                        return Ok(Attempt::Transient(FetchError::BadRange {
                            url: shown_url(url.as_str()),
                            range: range.into(),
                        }));
                    }
                }
            }
            StatusCode::OK => {
                if partial.len > 0 {
                    tracing::info!(%url, "server ignored the range request; downloading from the start");
                    partial.reset().await?;
                }
                response.content_length()
            }
            StatusCode::RANGE_NOT_SATISFIABLE if partial.len > 0 => {
                // The partial file already holds every byte (a run died between the last byte and the rename),
                // or more bytes than the file has. Either the digest matches now, or we start over.
                return Ok(Attempt::Complete);
            }
            s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT || s == StatusCode::TOO_MANY_REQUESTS => {
                return Ok(Attempt::Transient(FetchError::Status { url: shown_url(url.as_str()), status: s.as_u16() }));
            }
            s => return Err(FetchError::Status { url: shown_url(url.as_str()), status: s.as_u16() }),
        };
        if let (Expect::Chunks(list), Some(total)) = (job.expect, total)
            && total != list.image_len()
        {
            return Err(FetchError::WrongLength {
                url: shown_url(url.as_str()),
                announced: total,
                expected: list.image_len(),
            });
        }
        reporter.begin(total, partial.len);
        let mut file = partial.append().await?;
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    partial.flush(&mut file).await?;
                    return Ok(transient(e));
                }
            };
            if let Err(err) = partial.write(&mut file, &chunk).await {
                partial.reset().await?;
                return Err(err.with_url(url));
            }
            reporter.advance(chunk.len() as u64);
        }
        partial.flush(&mut file).await?;
        if let Some(total) = total
            && partial.len != total
        {
            return Ok(Attempt::Transient(FetchError::Truncated {
                url: shown_url(url.as_str()),
                got: partial.len,
                total,
            }));
        }
        Ok(Attempt::Complete)
    }

    async fn copy_local(&self, job: Job<'_>, partial: &mut Partial, reporter: &mut Reporter) -> Result<(), FetchError> {
        let from = job
            .url
            .to_file_path()
            .map_err(|()| FetchError::BadUrl { url: shown_url(job.url.as_str()), reason: "not a local path".into() })?;
        let io = |op, source| FetchError::Io { op, path: from.clone(), source };
        let mut input = tokio::fs::File::open(&from).await.map_err(|e| io("opening", e))?;
        let total = input.metadata().await.map_err(|e| io("inspecting", e))?.len();
        partial.reset().await?;
        reporter.begin(Some(total), 0);
        let mut file = partial.append().await?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut input, &mut buf).await.map_err(|e| io("reading", e))?;
            if n == 0 {
                break;
            }
            if let Err(err) = partial.write(&mut file, buf.get(..n).unwrap_or_default()).await {
                partial.reset().await?;
                return Err(err.with_url(job.url));
            }
            reporter.advance(n as u64);
        }
        partial.flush(&mut file).await?;
        let expected = match job.expect {
            Expect::Chunks(_) => return partial.finish_chunks(job.url).await,
            Expect::Sha256(expected) => expected,
        };
        let actual = partial.digest();
        if actual != *expected {
            partial.reset().await?;
            return Err(FetchError::HashMismatch { url: shown_url(job.url.as_str()), expected: *expected, actual });
        }
        Ok(())
    }

    /// Moves a verified partial file into place under its digest: fsync, read-only, rename, fsync the directory.
    async fn commit(&self, partial: Partial) -> Result<Fetched, FetchError> {
        let sha256 = partial.digest();
        let to = self.cache.blob_path(&sha256);
        let from = partial.path;
        let size = partial.len;
        tokio::task::spawn_blocking(move || -> Result<PathBuf, FetchError> {
            use std::os::unix::fs::PermissionsExt;
            let io = |op, path: &Path, source| FetchError::Io { op, path: path.to_owned(), source };
            let file = std::fs::File::open(&from).map_err(|e| io("opening", &from, e))?;
            file.sync_all().map_err(|e| io("syncing", &from, e))?;
            std::fs::set_permissions(&from, std::fs::Permissions::from_mode(0o444))
                .map_err(|e| io("setting permissions of", &from, e))?;
            std::fs::rename(&from, &to).map_err(|e| io("renaming into", &to, e))?;
            if let Some(dir) = to.parent() {
                std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io("syncing", dir, e))?;
            }
            Ok(to)
        })
        .await
        .map_err(|e| FetchError::Io { op: "committing", path: self.cache.root().to_owned(), source: e.into() })?
        .map(|path| Fetched { path, sha256, from_cache: false, size })
    }
}

impl Partial {
    /// Opens (without creating) the partial file and hashes what it holds; for a chunklist download, its bytes
    /// are checked chunk by chunk too, and a partial file that fails the check is thrown away.
    async fn open(path: PathBuf, list: Option<&Chunklist>) -> Result<Self, FetchError> {
        let hashing = path.clone();
        let check_start = list.map(Chunklist::checker);
        let check = check_start.clone();
        type Read = (u64, Hasher, Option<ChunkCheck>, bool);
        let (len, hasher, check, bad) = tokio::task::spawn_blocking(move || -> std::io::Result<Read> {
            use std::io::Read;
            let mut hasher = Hasher::new();
            let mut check = check;
            let mut len = 0u64;
            let mut file = match std::fs::File::open(&hashing) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, hasher, check, false)),
                Err(e) => return Err(e),
            };
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    return Ok((len, hasher, check, false));
                }
                let data = buf.get(..n).unwrap_or_default();
                if let Some(check) = check.as_mut()
                    && check.update(data).is_err()
                {
                    return Ok((0, Hasher::new(), None, true));
                }
                hasher.update(data);
                len += n as u64;
            }
        })
        .await
        .map_err(|e| FetchError::Io { op: "reading", path: path.clone(), source: e.into() })?
        .map_err(|source| FetchError::Io { op: "reading", path: path.clone(), source })?;
        let mut partial = Self { path, len, hasher, resumed: len > 0, check, check_start };
        if bad {
            tracing::warn!(path = %partial.path.display(), "partial download fails its chunklist; starting over");
            partial.reset().await?;
        } else if len > 0 {
            tracing::info!(path = %partial.path.display(), len, "resuming a partial download");
        }
        Ok(partial)
    }

    /// A chunklist download's end: every chunk arrived, and nothing more. Otherwise the bytes are thrown away.
    async fn finish_chunks(&mut self, url: &Url) -> Result<(), FetchError> {
        let Some(check) = &self.check else { return Ok(()) };
        if let Err(source) = check.finish() {
            self.reset().await?;
            return Err(FetchError::Chunklist { url: shown_url(url.as_str()), source });
        }
        Ok(())
    }

    fn digest(&self) -> Sha256 {
        Sha256::from_hasher(self.hasher.clone())
    }

    /// Forgets every byte: the file is removed and the hash restarted.
    async fn reset(&mut self) -> Result<(), FetchError> {
        match tokio::fs::remove_file(&self.path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(FetchError::Io { op: "removing", path: self.path.clone(), source }),
        }
        self.len = 0;
        self.hasher = Hasher::new();
        self.resumed = false;
        self.check = self.check_start.clone();
        Ok(())
    }

    async fn append(&self) -> Result<tokio::fs::File, FetchError> {
        tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await
            .map_err(|source| FetchError::Io { op: "opening", path: self.path.clone(), source })
    }

    /// Appends bytes. For a chunklist download they are checked first: bytes that make a chunk fail are never
    /// written (the caller then resets the file).
    async fn write(&mut self, file: &mut tokio::fs::File, data: &[u8]) -> Result<(), FetchError> {
        if let Some(check) = self.check.as_mut() {
            check.update(data).map_err(|source| FetchError::Chunklist { url: String::new(), source })?;
        }
        file.write_all(data).await.map_err(|source| FetchError::Io {
            op: "writing",
            path: self.path.clone(),
            source,
        })?;
        self.hasher.update(data);
        self.len += data.len() as u64;
        Ok(())
    }

    async fn flush(&self, file: &mut tokio::fs::File) -> Result<(), FetchError> {
        file.flush().await.map_err(|source| FetchError::Io { op: "writing", path: self.path.clone(), source })
    }
}

/// Parses `bytes START-END/TOTAL` (TOTAL may be `*`) into `(START, Some(TOTAL))`.
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse::<u64>().ok()?),
    };
    Some((start, total))
}

/// Checks that a URL is one we can fetch.
/// A URL as messages show it: its password (`user:PASSWORD@`) masked.
pub(crate) fn shown_url(url: &str) -> String {
    userfile::redact_url_password(url)
}

pub(crate) fn parse_url(url: &str) -> Result<Url, FetchError> {
    let parsed = Url::parse(url).map_err(|e| FetchError::BadUrl { url: shown_url(url), reason: e.to_string() })?;
    match parsed.scheme() {
        "http" | "https" | "file" => Ok(parsed),
        other => Err(FetchError::BadUrl { url: shown_url(url), reason: format!("unsupported scheme `{other}`") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        assert_eq!(parse_content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("bytes 9-5/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range(""), None);
    }

    #[test]
    fn url_schemes() {
        assert!(parse_url("https://example.org/a.img").is_ok());
        assert!(parse_url("file:///tmp/a.img").is_ok());
        let err = parse_url("ftp://example.org/a").unwrap_err().to_string();
        assert!(err.contains("ftp"), "{err}");
        assert!(parse_url("not a url").is_err());
    }
}
