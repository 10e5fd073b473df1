//! Two processes fetching the same file: the second waits for the first's lock — with a limit and a message,
//! not forever and not in silence.

use std::time::{Duration, Instant};

#[tokio::test]
async fn a_held_download_lock_times_out_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.img");
    std::fs::write(&file, b"content").unwrap();
    let digest = fetch::Sha256::of_bytes(b"content");
    let source = fetch::Source::new(&format!("file://{}", file.display()), digest).unwrap();
    let cache = fetch::Cache::at(dir.path().join("cache"));
    let lock_path = cache.lock_path(&digest);
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    // Another "process" downloading it: an open file description holding the flock.
    let holder = std::fs::File::create(&lock_path).unwrap();
    holder.lock().unwrap();

    let fetcher =
        fetch::Fetcher::new(cache).unwrap().progress(fetch::ProgressMode::Off).lock_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let err = fetcher.fetch(&source).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(matches!(err, fetch::FetchError::LockTimeout { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("another process") && message.contains(&lock_path.display().to_string()), "{message}");

    // Released: the same fetcher goes ahead.
    drop(holder);
    let fetched = fetcher.fetch(&source).await.unwrap();
    assert_eq!(std::fs::read(fetched.path).unwrap(), b"content");
}
