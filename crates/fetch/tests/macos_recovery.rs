//! The macOS recovery client against a stand-in of Apple's recovery server on 127.0.0.1 that speaks the same
//! exchange (session cookie, the POST, `KEY: value` replies, asset tokens) and fails the way the real one does:
//! a refused request (403), expired tokens, transfers cut short, a wrong length, a reply missing a key. Chunklists
//! are signed with a key the test makes; unsigned, foreign-signed and tampered ones are refused, and nothing
//! unverified ever reaches the cache.

use std::sync::OnceLock;
use std::time::Duration;

use fetch::chunklist::{self, ChunklistError, Trust};
use fetch::macos::{MLB_ZERO, MacosVersion, RECOVERY_USER_AGENT, Recovery};
use fetch::{Cache, FetchError, Fetcher, ProgressMode, Sha256};
use rsa::{RsaPrivateKey, RsaPublicKey};
use testbed::RecoveryServer;

const CHUNK: usize = 64 << 10;

fn test_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rand::rng(), 2048).unwrap())
}

fn image() -> Vec<u8> {
    // 1 MiB + a bit: the last chunk is short, as in Apple's lists.
    (0..(1u32 << 20) + 1234).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect()
}

struct Setup {
    server: RecoveryServer,
    _dir: tempfile::TempDir,
    cache: Cache,
    image: Vec<u8>,
}

fn setup(version: MacosVersion, chunklist: impl FnOnce(&[u8]) -> Vec<u8>) -> Setup {
    let server = RecoveryServer::start().unwrap();
    let image = image();
    let list = chunklist(&image);
    server.publish(version.release().board_id, "041-00042", image.clone(), list);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    Setup { server, _dir: dir, cache, image }
}

fn signed(image: &[u8]) -> Vec<u8> {
    chunklist::build::signed(image, CHUNK, test_key()).unwrap()
}

fn client(setup: &Setup, attempts: u32) -> Recovery {
    let fetcher = Fetcher::new(setup.cache.clone())
        .unwrap()
        .attempts(attempts)
        .retry_delay(Duration::from_millis(20))
        .progress(ProgressMode::Off);
    Recovery::new(fetcher).unwrap().server(setup.server.url().parse().unwrap()).key(RsaPublicKey::from(test_key()))
}

fn blobs(cache: &Cache) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache.root().join("sha256"))
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn partials(cache: &Cache) -> Vec<String> {
    std::fs::read_dir(cache.root().join("partial"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".part"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_exchange_fetches_a_verified_image_into_the_cache() {
    let s = setup(MacosVersion::Sonoma, signed);
    let got = client(&s, 1).fetch(MacosVersion::Sonoma).await.unwrap();
    assert_eq!(got.product, "041-00042");
    assert_eq!(got.trust, Trust::Signed);
    assert_eq!(got.board_id, "Mac-827FAC58A8FDFA22");
    assert_eq!(std::fs::read(&got.image.path).unwrap(), s.image);
    assert_eq!(got.image.sha256, Sha256::of_bytes(&s.image));
    assert_eq!(got.image.path, s.cache.blob_path(&got.image.sha256));
    assert_eq!(std::fs::read(&got.chunklist.path).unwrap(), signed(&s.image));
    assert!(partials(&s.cache).is_empty());

    let requests = s.server.requests();
    let methods: Vec<(&str, &str)> = requests.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect();
    assert_eq!(methods[0], ("GET", "/"));
    assert_eq!(methods[1], ("POST", "/InstallationPayload/RecoveryImage"));
    assert!(methods[2].1.ends_with("/BaseSystem.chunklist") && methods[3].1.ends_with("/BaseSystem.dmg"));
    let post = &requests[1];
    let field = |k: &str| post.fields.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(field("bid"), "Mac-827FAC58A8FDFA22");
    assert_eq!(field("os"), "default");
    assert_eq!(field("sn"), MLB_ZERO);
    assert!(post.cookie.as_deref().unwrap().starts_with("session="));
    for asset in &requests[2..] {
        assert!(asset.cookie.as_deref().unwrap().starts_with("AssetToken=expires="), "{asset:?}");
        assert_eq!(asset.user_agent.as_deref(), Some(RECOVERY_USER_AGENT));
    }

    // Again: the protocol runs (tokens are per request), the chunklist is the same, the image is not re-sent.
    let again = client(&s, 1).fetch(MacosVersion::Sonoma).await.unwrap();
    assert!(again.image.from_cache);
    assert_eq!(again.image.path, got.image.path);
    let dmg_gets = s.server.requests().iter().filter(|r| r.path.ends_with(".dmg")).count();
    assert_eq!(dmg_gets, 1);
}

#[tokio::test]
async fn a_refused_image_request_is_an_error_and_nothing_is_cached() {
    let s = setup(MacosVersion::Ventura, signed);
    s.server.refuse_image_requests(403);
    let err = client(&s, 1).fetch(MacosVersion::Ventura).await.unwrap_err();
    assert!(matches!(err, FetchError::Status { status: 403, .. }), "{err}");
    assert!(blobs(&s.cache).is_empty());
}

#[tokio::test]
async fn an_expired_token_is_renewed_and_the_download_resumes() {
    let s = setup(MacosVersion::Tahoe, signed);
    // The first image transfer stops after 300 000 bytes and every token expires at that moment.
    s.server.cut_after(".dmg", 300_000, 1, true);
    let got = client(&s, 2).fetch(MacosVersion::Tahoe).await.unwrap();
    assert_eq!(std::fs::read(&got.image.path).unwrap(), s.image);
    let requests = s.server.requests();
    let dmg: Vec<_> = requests.iter().filter(|r| r.path.ends_with(".dmg")).collect();
    // Cut, then a resume with the old token (refused), then a resume with the new one.
    assert_eq!(dmg.len(), 3, "{dmg:#?}");
    assert_eq!(dmg[0].range, None);
    assert_eq!(dmg[1].range.as_deref(), Some("bytes=300000-"));
    assert_eq!(dmg[2].range.as_deref(), Some("bytes=300000-"));
    assert_eq!(dmg[1].cookie, dmg[0].cookie);
    assert_ne!(dmg[2].cookie, dmg[1].cookie, "the resume must use the new token");
    assert_eq!(requests.iter().filter(|r| r.path == "/").count(), 2, "a second session was asked for");
}

#[tokio::test]
async fn tokens_that_stay_refused_end_in_an_error() {
    let s = setup(MacosVersion::Sequoia, signed);
    s.server.cut_after(".dmg", 1000, 100, true);
    let err = client(&s, 1).rounds(2).fetch(MacosVersion::Sequoia).await.unwrap_err();
    assert!(
        matches!(err, FetchError::Status { status: 403, .. } | FetchError::Truncated { .. } | FetchError::Http { .. }),
        "{err}"
    );
    // Only the verified chunklist is cached; the partial image stays for a later resume.
    assert_eq!(blobs(&s.cache), vec![Sha256::of_bytes(&signed(&s.image)).to_hex()]);
}

#[tokio::test]
async fn a_truncated_body_is_resumed_with_a_range_request() {
    let s = setup(MacosVersion::Sonoma, signed);
    s.server.cut_after(".dmg", 100_000, 1, false);
    let got = client(&s, 3).fetch(MacosVersion::Sonoma).await.unwrap();
    assert_eq!(std::fs::read(&got.image.path).unwrap(), s.image);
    let ranges: Vec<_> =
        s.server.requests().into_iter().filter(|r| r.path.ends_with(".dmg")).map(|r| r.range).collect();
    assert_eq!(ranges, vec![None, Some("bytes=100000-".to_owned())]);
}

#[tokio::test]
async fn a_truncated_chunklist_is_an_error() {
    let s = setup(MacosVersion::Sonoma, signed);
    s.server.cut_after(".chunklist", 100, 10, false);
    let err = client(&s, 1).rounds(2).fetch(MacosVersion::Sonoma).await.unwrap_err();
    assert!(matches!(err, FetchError::Truncated { got: 100, .. }), "{err}");
    assert!(blobs(&s.cache).is_empty());
}

#[tokio::test]
async fn a_wrong_length_is_refused_before_any_byte_is_kept() {
    let s = setup(MacosVersion::Sonoma, signed);
    s.server.append(".dmg", vec![0; 10]);
    let err = client(&s, 1).fetch(MacosVersion::Sonoma).await.unwrap_err();
    match err {
        FetchError::WrongLength { announced, expected, .. } => {
            assert_eq!(expected, s.image.len() as u64);
            assert_eq!(announced, expected + 10);
        }
        other => panic!("expected a wrong length, got {other}"),
    }
    assert_eq!(blobs(&s.cache).len(), 1, "only the chunklist");
}

#[tokio::test]
async fn a_tampered_image_is_refused_and_nothing_is_left() {
    let s = setup(MacosVersion::Sonoma, signed);
    // Publish a different image under the same (signed) chunklist.
    let mut evil = s.image.clone();
    evil[5 * CHUNK + 17] ^= 0x40;
    s.server.publish(MacosVersion::Sonoma.release().board_id, "041-00042", evil, signed(&s.image));
    let err = client(&s, 1).fetch(MacosVersion::Sonoma).await.unwrap_err();
    match &err {
        FetchError::Chunklist { source: ChunklistError::ChunkMismatch { index, .. }, .. } => assert_eq!(*index, 5),
        other => panic!("expected a chunk mismatch, got {other}"),
    }
    assert!(err.to_string().contains("nothing was cached"), "{err}");
    assert_eq!(blobs(&s.cache).len(), 1, "only the chunklist");
    assert!(partials(&s.cache).is_empty());
}

#[tokio::test]
async fn unsigned_chunklists_are_refused_unless_allowed() {
    let s = setup(MacosVersion::Ventura, |image| chunklist::build::unsigned(image, CHUNK));
    let err = client(&s, 1).fetch(MacosVersion::Ventura).await.unwrap_err();
    assert!(matches!(err, FetchError::Chunklist { source: ChunklistError::Unsigned, .. }), "{err}");
    assert!(blobs(&s.cache).is_empty());
    assert!(!s.server.requests().iter().any(|r| r.path.ends_with(".dmg")), "the image was not even requested");

    let got = client(&s, 1).allow_unsigned(true).fetch(MacosVersion::Ventura).await.unwrap();
    assert_eq!(got.trust, Trust::Unsigned);
    assert_eq!(std::fs::read(&got.image.path).unwrap(), s.image);
}

#[tokio::test]
async fn a_list_signed_by_another_key_is_refused() {
    let s = setup(MacosVersion::Ventura, signed);
    let fetcher = Fetcher::new(s.cache.clone()).unwrap().progress(ProgressMode::Off);
    // Apple's real key: the test's signature cannot verify against it.
    let recovery = Recovery::new(fetcher).unwrap().server(s.server.url().parse().unwrap());
    let err = recovery.fetch(MacosVersion::Ventura).await.unwrap_err();
    assert!(matches!(err, FetchError::Chunklist { source: ChunklistError::BadSignature, .. }), "{err}");
    assert!(blobs(&s.cache).is_empty());
}

#[tokio::test]
async fn a_reply_without_a_token_is_an_error_naming_it() {
    let s = setup(MacosVersion::Ventura, signed);
    s.server.omit_key("AT");
    let err = client(&s, 1).fetch(MacosVersion::Ventura).await.unwrap_err();
    assert!(err.to_string().contains("`AT`"), "{err}");
}

// The chunklist verifier on its own, with lists signed by the test's key.

#[test]
fn a_signed_list_verifies_and_every_alteration_is_refused() {
    use fetch::chunklist::{CHUNK_ENTRY_LEN, Chunklist, HEADER_LEN};
    let image = image();
    let key = RsaPublicKey::from(test_key());
    let good = signed(&image);
    let list = Chunklist::parse(&good).unwrap();
    assert_eq!(list.verify(&key, false).unwrap(), Trust::Signed);
    assert_eq!(list.image_len(), image.len() as u64);

    // Reordered chunk entries: still well-formed, but the signature no longer covers them.
    let mut reordered = good.clone();
    let (a, b) = (HEADER_LEN, HEADER_LEN + CHUNK_ENTRY_LEN);
    let first: Vec<u8> = reordered[a..b].to_vec();
    let second: Vec<u8> = reordered[b..b + CHUNK_ENTRY_LEN].to_vec();
    reordered[a..b].copy_from_slice(&second);
    reordered[b..b + CHUNK_ENTRY_LEN].copy_from_slice(&first);
    let parsed = Chunklist::parse(&reordered).unwrap();
    assert_eq!(parsed.verify(&key, true).unwrap_err(), ChunklistError::BadSignature);

    // A reordered image against the good list: the first chunk out of place is named.
    let mut swapped = image.clone();
    swapped[..CHUNK].copy_from_slice(&image[CHUNK..2 * CHUNK]);
    swapped[CHUNK..2 * CHUNK].copy_from_slice(&image[..CHUNK]);
    let mut check = list.checker();
    assert!(matches!(check.update(&swapped), Err(ChunklistError::ChunkMismatch { index: 0, .. })));

    // Short and trailing bytes.
    assert!(matches!(Chunklist::parse(&good[..good.len() - 1]), Err(ChunklistError::Short { .. })));
    let mut long = good.clone();
    long.extend_from_slice(b"x");
    assert_eq!(Chunklist::parse(&long).unwrap_err(), ChunklistError::TrailingBytes { extra: 1 });

    // A flipped signature bit, and Apple's key against the test's signature.
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert_eq!(Chunklist::parse(&flipped).unwrap().verify(&key, true).unwrap_err(), ChunklistError::BadSignature);
    assert_eq!(list.verify(&chunklist::apple_public_key(), true).unwrap_err(), ChunklistError::BadSignature);
}
