//! Fetching from a real HTTP server on 127.0.0.1 (the testbed's fixture): verified downloads, wrong digests,
//! connections dropped half-way and resumed with Range, servers that ignore Range, cache hits with the server gone,
//! and `file://` URLs.

use std::time::Duration;

use fetch::{Cache, FetchError, Fetcher, ProgressMode, Sha256, Source};
use testbed::HttpServer;

/// 3 MiB of bytes that are not all the same, so a misplaced chunk changes the digest.
fn payload() -> Vec<u8> {
    (0..3u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

fn fetcher(cache: &Cache, attempts: u32) -> Fetcher {
    Fetcher::new(cache.clone())
        .unwrap()
        .attempts(attempts)
        .retry_delay(Duration::from_millis(50))
        .progress(ProgressMode::Off)
}

fn cache_files(cache: &Cache) -> Vec<String> {
    let dir = cache.root().join("sha256");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn good_digest_is_cached_read_only_and_named_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    let server = HttpServer::start().unwrap();
    let body = payload();
    server.add("/disk.img", body.clone());
    let digest = Sha256::of_bytes(&body);
    let source = Source::new(&server.url("/disk.img"), digest).unwrap();

    let got = fetcher(&cache, 1).fetch(&source).await.unwrap();
    assert!(!got.from_cache);
    assert_eq!(got.size, body.len() as u64);
    assert_eq!(got.path, cache.root().join("sha256").join(digest.to_hex()));
    assert_eq!(std::fs::read(&got.path).unwrap(), body);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&got.path).unwrap().permissions().mode() & 0o777, 0o444);
    // Nothing left in the partial area but the lock file.
    let partial: Vec<_> = std::fs::read_dir(cache.root().join("partial"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(partial.is_empty(), "{partial:?}");
}

#[tokio::test]
async fn wrong_digest_is_an_error_and_nothing_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    let server = HttpServer::start().unwrap();
    server.add("/disk.img", payload());
    let wrong = Sha256::of_bytes(b"something else");
    let source = Source::new(&server.url("/disk.img"), wrong).unwrap();

    let err = fetcher(&cache, 3).fetch(&source).await.unwrap_err();
    match &err {
        FetchError::HashMismatch { expected, actual, url } => {
            assert_eq!(*expected, wrong);
            assert_eq!(*actual, Sha256::of_bytes(&payload()));
            assert!(url.ends_with("/disk.img"));
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&wrong.to_hex()) && text.contains("nothing was cached"), "{text}");
    assert!(cache_files(&cache).is_empty());
    assert!(!cache.has_partial(&wrong));
    // A mismatch is final: one request, no retries.
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn dropped_connection_resumes_with_range_in_the_same_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    let server = HttpServer::start().unwrap();
    let body = payload();
    server.add("/disk.img", body.clone());
    let half = body.len() / 2;
    server.drop_after("/disk.img", half, 1);
    let source = Source::new(&server.url("/disk.img"), Sha256::of_bytes(&body)).unwrap();

    let got = fetcher(&cache, 3).fetch(&source).await.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), body);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].range, None);
    let resumed_at: usize =
        requests[1].range.as_deref().and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok()).unwrap();
    assert!(resumed_at > 0 && resumed_at <= half, "resumed at {resumed_at} after {half} bytes were sent");
}

#[tokio::test]
async fn interrupted_download_is_resumed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    let server = HttpServer::start().unwrap();
    let body = payload();
    server.add("/disk.img", body.clone());
    let digest = Sha256::of_bytes(&body);
    let source = Source::new(&server.url("/disk.img"), digest).unwrap();

    // First run: the connection drops half-way and there are no retries left.
    server.drop_after("/disk.img", body.len() / 2, 1);
    let err = fetcher(&cache, 1).fetch(&source).await.unwrap_err();
    assert!(matches!(err, FetchError::Http { .. } | FetchError::Truncated { .. }), "{err:?}");
    assert!(cache_files(&cache).is_empty(), "nothing is cached after an interrupted download");
    assert!(cache.has_partial(&digest), "the bytes received are kept for the next run");

    // Second run (a new fetcher, as a new process would have): continues where the first stopped.
    let got = fetcher(&cache, 1).fetch(&source).await.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), body);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[1].range.as_deref().is_some_and(|r| r != "bytes=0-"), "{requests:?}");
}

#[tokio::test]
async fn server_that_ignores_range_gets_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    let server = HttpServer::start().unwrap();
    let body = payload();
    server.add("/disk.img", body.clone());
    server.drop_after("/disk.img", body.len() / 3, 1);
    server.ignore_range("/disk.img");
    let source = Source::new(&server.url("/disk.img"), Sha256::of_bytes(&body)).unwrap();

    let got = fetcher(&cache, 3).fetch(&source).await.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), body);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn stale_partial_with_changed_content_is_redownloaded_once() {
    // A partial file from an older version of the file: resuming gives the wrong digest, so the fetcher starts
    // over from zero once, and succeeds.
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    let server = HttpServer::start().unwrap();
    let body = payload();
    server.add("/disk.img", body.clone());
    let digest = Sha256::of_bytes(&body);
    std::fs::create_dir_all(cache.root().join("partial")).unwrap();
    std::fs::write(cache.root().join("partial").join(format!("{}.part", digest.to_hex())), vec![0xAB; 1000]).unwrap();
    let source = Source::new(&server.url("/disk.img"), digest).unwrap();

    let got = fetcher(&cache, 1).fetch(&source).await.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), body);
    let ranges: Vec<_> = server.requests().into_iter().map(|r| r.range).collect();
    assert_eq!(ranges, vec![Some("bytes=1000-".to_owned()), None]);
}

#[tokio::test]
async fn cache_hit_needs_no_server() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    let mut server = HttpServer::start().unwrap();
    let body = payload();
    server.add("/disk.img", body.clone());
    let source = Source::new(&server.url("/disk.img"), Sha256::of_bytes(&body)).unwrap();
    let first = fetcher(&cache, 1).fetch(&source).await.unwrap();
    server.stop();
    assert!(std::net::TcpStream::connect(server.addr()).is_err(), "the server is really gone");

    let second = fetcher(&cache, 1).fetch(&source).await.unwrap();
    assert!(second.from_cache);
    assert_eq!(second.path, first.path);
    assert_eq!(second.size, body.len() as u64);
    assert!(cache.verify(&Sha256::of_bytes(&body)).unwrap());
}

#[tokio::test]
async fn missing_file_is_an_http_status_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    let server = HttpServer::start().unwrap();
    let source = Source::new(&server.url("/nope.img"), Sha256::of_bytes(b"")).unwrap();
    let err = fetcher(&cache, 3).fetch(&source).await.unwrap_err();
    assert!(matches!(err, FetchError::Status { status: 404, .. }), "{err:?}");
    assert_eq!(server.requests().len(), 1, "a 404 is not retried");
}

#[tokio::test]
async fn file_urls_are_copied_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path().join("cache"));
    let input = dir.path().join("my image.qcow2");
    let body = payload();
    std::fs::write(&input, &body).unwrap();
    let url = format!("file://{}", input.display()).replace(' ', "%20");

    let wrong = Source::new(&url, Sha256::of_bytes(b"x")).unwrap();
    let err = fetcher(&cache, 1).fetch(&wrong).await.unwrap_err();
    assert!(matches!(err, FetchError::HashMismatch { .. }), "{err:?}");
    assert!(cache_files(&cache).is_empty());

    let good = Source::new(&url, Sha256::of_bytes(&body)).unwrap();
    assert_eq!(good.name(), "my image.qcow2");
    let got = fetcher(&cache, 1).fetch(&good).await.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), body);
    assert!(std::fs::read(&input).is_ok(), "the original stays where it was");
}

#[tokio::test]
async fn concurrent_fetches_of_one_file_download_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    let server = HttpServer::start().unwrap();
    let body = payload();
    server.add("/disk.img", body.clone());
    let source = Source::new(&server.url("/disk.img"), Sha256::of_bytes(&body)).unwrap();
    let (one, two) = (fetcher(&cache, 1), fetcher(&cache, 1));
    let (a, b) = tokio::join!(one.fetch(&source), two.fetch(&source));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.path, b.path);
    assert!(a.from_cache != b.from_cache, "exactly one of them downloaded");
    assert_eq!(server.requests().len(), 1);
}
