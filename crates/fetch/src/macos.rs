//! macOS recovery images from Apple's recovery server, verified by their signed chunklists.
//!
//! Apple's Internet Recovery protocol, as every Mac's firmware speaks it:
//!
//! 1. `GET /` on the recovery server; the reply's `Set-Cookie` carries a `session=…` cookie.
//! 2. `POST /InstallationPayload/RecoveryImage` with that cookie and a `text/plain` body of `key=value` lines:
//!    `cid` (16 random hex digits), `sn` (the board serial, MLB; seventeen zeros ask as an anonymous Mac), `bid`
//!    (the board id, which decides the macOS version), `k` and `fg` (64 random hex digits each) and `os`
//!    (`default` or `latest`).
//! 3. The reply is `KEY: value` lines: `AP` the product, `AU`/`AT` the image's URL and asset token, `CU`/`CT`
//!    the chunklist's URL and asset token (and `AH`/`CH`, which vmkit does not rely on).
//! 4. Each asset is fetched with `Cookie: AssetToken=<token>`. Tokens expire: a 403 from the CDN means asking the
//!    recovery server again, and the download resumes where it stopped.
//!
//! Which macOS comes back is decided by the board id, and tools that pick a board whose newest supported macOS is
//! newer than the one asked for fetch the wrong version as soon as Apple ships the next one. So [`RELEASES`] maps
//! each version to a board whose *last* supported macOS is that version, with the source of each entry, in one
//! table. The chunklist is verified ([`crate::chunklist`]) before the image is downloaded, and the image chunk by
//! chunk as it arrives; only then does it enter the cache.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderValue, SET_COOKIE};
use rsa::RsaPublicKey;

use crate::chunklist::{self, Chunklist, Trust};
use crate::{FetchError, Fetched, Fetcher, Sha256};

/// Apple's recovery server.
pub const RECOVERY_SERVER: &str = "https://osrecovery.apple.com/";
/// The board serial an anonymous request sends: Apple then answers by board id alone.
pub const MLB_ZERO: &str = "00000000000000000";
/// The user agent of the firmware's recovery client, which Apple's servers expect.
pub const RECOVERY_USER_AGENT: &str = "InternetRecovery/1.0";

/// A macOS version vmkit can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MacosVersion {
    /// macOS 13.
    Ventura,
    /// macOS 14.
    Sonoma,
    /// macOS 15.
    Sequoia,
    /// macOS 26.
    Tahoe,
}

/// Which recovery image the server picks for a board: the one the Mac shipped with, or the newest it supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsType {
    /// `os=default`.
    Default,
    /// `os=latest`.
    Latest,
}

impl OsType {
    /// The value sent in the request.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Latest => "latest",
        }
    }
}

/// One row of the version table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// The version.
    pub version: MacosVersion,
    /// The major version number.
    pub major: u32,
    /// The board id sent as `bid`: a Mac whose last supported macOS is this version.
    pub board_id: &'static str,
    /// The `os` value sent.
    pub os: OsType,
    /// Where the entry comes from.
    pub source: &'static str,
}

/// The version table: each macOS version → the board id and `os` value that make Apple's server return it.
pub const RELEASES: [Release; 4] = [
    Release {
        version: MacosVersion::Ventura,
        major: 13,
        board_id: "Mac-4B682C642B45593E",
        os: OsType::Latest,
        source: "OSX-KVM fetch-macOS-v2.py (\"Ventura (13)\", os_type latest); dockur/macos src/install.sh",
    },
    Release {
        version: MacosVersion::Sonoma,
        major: 14,
        board_id: "Mac-827FAC58A8FDFA22",
        os: OsType::Default,
        source: "OSX-KVM fetch-macOS-v2.py (\"Sonoma (14)\"); dockur/macos src/install.sh",
    },
    Release {
        version: MacosVersion::Sequoia,
        major: 15,
        board_id: "Mac-937A206F2EE63C01",
        os: OsType::Latest,
        source: "dockur/macos src/install.sh (sequoia)",
    },
    Release {
        version: MacosVersion::Tahoe,
        major: 26,
        board_id: "Mac-CFF7D910A743CAAF",
        os: OsType::Latest,
        source: "OSX-KVM fetch-macOS-v2.py (\"Tahoe (26)\", os_type latest); dockur/macos src/install.sh",
    },
];

impl MacosVersion {
    /// Every version, oldest first.
    pub const ALL: [Self; 4] = [Self::Ventura, Self::Sonoma, Self::Sequoia, Self::Tahoe];

    /// The lowercase name (`sonoma`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ventura => "ventura",
            Self::Sonoma => "sonoma",
            Self::Sequoia => "sequoia",
            Self::Tahoe => "tahoe",
        }
    }

    /// This version's row of [`RELEASES`].
    pub fn release(self) -> &'static Release {
        RELEASES.iter().find(|r| r.version == self).unwrap_or(&RELEASES[0])
    }
}

impl fmt::Display for MacosVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MacosVersion {
    type Err = FetchError;

    /// A name (`sonoma`, any case) or a major version (`14`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        RELEASES
            .iter()
            .find(|r| r.version.name() == wanted || r.major.to_string() == wanted)
            .map(|r| r.version)
            .ok_or_else(|| FetchError::BadSourceField {
                source_kind: "macos",
                field: "version".into(),
                value: s.to_owned(),
                expected: "one of ventura, sonoma, sequoia, tahoe (or 13, 14, 15, 26)".into(),
            })
    }
}

/// An asset's URL and the token that unlocks it. The token is a credential: never printed (see `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct Asset {
    /// The URL.
    pub url: Url,
    token: String,
}

impl Asset {
    /// The `Cookie` header value that unlocks the asset.
    fn cookie(&self) -> String {
        format!("AssetToken={}", self.token)
    }
}

impl fmt::Debug for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Asset").field("url", &self.url.as_str()).field("token", &"<redacted>").finish()
    }
}

/// The recovery server's answer to the image request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryInfo {
    /// The product (`AP`), e.g. `041-12345`.
    pub product: String,
    /// The image (`AU`, `AT`).
    pub image: Asset,
    /// The chunklist (`CU`, `CT`).
    pub chunklist: Asset,
}

impl RecoveryInfo {
    /// Parses the `KEY: value` reply. Every key vmkit needs must be present, URLs must be http(s), tokens must
    /// be usable as a cookie value.
    pub fn parse(text: &str, from: &str) -> Result<Self, FetchError> {
        let bad = |reason: String| FetchError::Recovery { url: from.to_owned(), reason };
        let get = |key: &'static str| -> Result<&str, FetchError> {
            text.lines()
                .filter_map(|line| line.trim_end_matches('\r').split_once(": "))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad(format!("the reply has no `{key}`")))
        };
        let url = |key: &'static str| -> Result<Url, FetchError> {
            let value = get(key)?;
            let parsed = Url::parse(value).map_err(|e| bad(format!("`{key}` is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(bad(format!("`{key}` is not an http(s) URL")));
            }
            Ok(parsed)
        };
        let token = |key: &'static str| -> Result<String, FetchError> {
            let value = get(key)?;
            // A cookie value: printable ASCII without separators that would end the header or the cookie.
            if !value.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b',' && b != b'"' && b != b'\\') {
                return Err(bad(format!("`{key}` is not a valid asset token")));
            }
            Ok(value.to_owned())
        };
        let product = get("AP")?;
        if !product.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_') {
            return Err(bad("`AP` is not a product id".into()));
        }
        Ok(Self {
            product: product.to_owned(),
            image: Asset { url: url("AU")?, token: token("AT")? },
            chunklist: Asset { url: url("CU")?, token: token("CT")? },
        })
    }
}

/// A recovery image in the cache, verified against its chunklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryImage {
    /// The version asked for.
    pub version: MacosVersion,
    /// The board id and `os` value sent.
    pub board_id: &'static str,
    /// The `os` value sent.
    pub os: OsType,
    /// Apple's product id for the image.
    pub product: String,
    /// The image (`BaseSystem.dmg`) in the cache.
    pub image: Fetched,
    /// Its chunklist in the cache.
    pub chunklist: Fetched,
    /// Whether the chunklist was signed, or unsigned and allowed.
    pub trust: Trust,
}

/// The recovery protocol client.
#[derive(Debug, Clone)]
pub struct Recovery {
    fetcher: Fetcher,
    server: Url,
    key: RsaPublicKey,
    allow_unsigned: bool,
    rounds: u32,
    client: reqwest::Client,
}

impl Recovery {
    /// A client of Apple's server that downloads through `fetcher`, checking chunklists against Apple's key.
    pub fn new(fetcher: Fetcher) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(RECOVERY_USER_AGENT)
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|source| FetchError::Client { source })?;
        let server = Url::parse(RECOVERY_SERVER)
            .map_err(|e| FetchError::BadUrl { url: RECOVERY_SERVER.into(), reason: e.to_string() })?;
        Ok(Self { fetcher, server, key: chunklist::apple_public_key(), allow_unsigned: false, rounds: 3, client })
    }

    /// Another recovery server (a mirror, or a test's).
    #[must_use]
    pub fn server(mut self, url: Url) -> Self {
        self.server = url;
        self
    }

    /// The key chunklists must be signed with (Apple's by default).
    #[must_use]
    pub fn key(mut self, key: RsaPublicKey) -> Self {
        self.key = key;
        self
    }

    /// Accept chunklists without a signature. Their chunks are still checked, but nothing says Apple made them.
    #[must_use]
    pub fn allow_unsigned(mut self, allow: bool) -> Self {
        self.allow_unsigned = allow;
        self
    }

    /// How many times to ask the recovery server afresh when an asset token is refused or a chunklist transfer
    /// fails (at least 1).
    #[must_use]
    pub fn rounds(mut self, rounds: u32) -> Self {
        self.rounds = rounds.max(1);
        self
    }

    fn endpoint(&self, path: &str) -> Result<Url, FetchError> {
        self.server.join(path).map_err(|e| FetchError::BadUrl { url: self.server.to_string(), reason: e.to_string() })
    }

    /// Step 1: the session cookie (`session=…`).
    pub async fn session(&self) -> Result<String, FetchError> {
        let url = self.endpoint("/")?;
        let response = self
            .client
            .get(url.clone())
            .header("Connection", "close")
            .send()
            .await
            .map_err(|source| FetchError::Http { url: url.to_string(), source })?;
        if !response.status().is_success() {
            return Err(FetchError::Status { url: url.to_string(), status: response.status().as_u16() });
        }
        response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .map(str::trim)
            .find(|c| c.starts_with("session=") && c.len() > "session=".len())
            .map(str::to_owned)
            .ok_or_else(|| FetchError::Recovery {
                url: url.to_string(),
                reason: "no session cookie in the reply".into(),
            })
    }

    /// Step 2: asks which image this board gets.
    pub async fn image_info(
        &self,
        session: &str,
        board_id: &str,
        os: OsType,
        mlb: &str,
    ) -> Result<RecoveryInfo, FetchError> {
        let url = self.endpoint("/InstallationPayload/RecoveryImage")?;
        let valid_board = board_id.len() <= 64
            && board_id.starts_with("Mac-")
            && board_id.bytes().skip(4).all(|b| b.is_ascii_hexdigit());
        if !valid_board {
            return Err(FetchError::BadSourceField {
                source_kind: "macos",
                field: "board id".into(),
                value: board_id.into(),
                expected: "Mac- and hex digits".into(),
            });
        }
        if mlb.len() != 17 || !mlb.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(FetchError::BadSourceField {
                source_kind: "macos",
                field: "board serial (MLB)".into(),
                value: "<not shown>".into(),
                expected: "17 letters and digits".into(),
            });
        }
        let body = request_body(&random_hex(16), mlb, board_id, &random_hex(64), &random_hex(64), os);
        let mut cookie = HeaderValue::from_str(session).map_err(|_| FetchError::Recovery {
            url: url.to_string(),
            reason: "the session cookie is not a valid header value".into(),
        })?;
        cookie.set_sensitive(true);
        let response = self
            .client
            .post(url.clone())
            .header("Connection", "close")
            .header(COOKIE, cookie)
            .header(CONTENT_TYPE, "text/plain")
            .body(body)
            .send()
            .await
            .map_err(|source| FetchError::Http { url: url.to_string(), source })?;
        if !response.status().is_success() {
            return Err(FetchError::Status { url: url.to_string(), status: response.status().as_u16() });
        }
        let text = response.text().await.map_err(|source| FetchError::Http { url: url.to_string(), source })?;
        RecoveryInfo::parse(&text, url.as_str())
    }

    /// Downloads a small asset (the chunklist) into memory, bounded, complete or an error.
    async fn small_asset(&self, asset: &Asset) -> Result<Vec<u8>, FetchError> {
        let url = asset.url.as_str();
        let mut cookie = HeaderValue::from_str(&asset.cookie())
            .map_err(|_| FetchError::Recovery { url: url.into(), reason: "invalid asset token".into() })?;
        cookie.set_sensitive(true);
        let mut response = self
            .client
            .get(asset.url.clone())
            .header("Connection", "close")
            .header(COOKIE, cookie)
            .send()
            .await
            .map_err(|source| FetchError::Http { url: url.into(), source })?;
        if !response.status().is_success() {
            return Err(FetchError::Status { url: url.into(), status: response.status().as_u16() });
        }
        let announced = response.content_length();
        if let Some(len) = announced
            && len > chunklist::MAX_LEN as u64
        {
            return Err(FetchError::Chunklist {
                url: url.into(),
                source: chunklist::ChunklistError::TooLarge { len: usize::try_from(len).unwrap_or(usize::MAX) },
            });
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(piece)) => {
                    body.extend_from_slice(&piece);
                    if body.len() > chunklist::MAX_LEN {
                        return Err(FetchError::Chunklist {
                            url: url.into(),
                            source: chunklist::ChunklistError::TooLarge { len: body.len() },
                        });
                    }
                }
                Ok(None) => break,
                Err(e) if announced.is_some() => {
                    tracing::debug!(url, "chunklist transfer ended early: {e}");
                    break;
                }
                Err(source) => return Err(FetchError::Http { url: url.into(), source }),
            }
        }
        if let Some(total) = announced
            && body.len() as u64 != total
        {
            return Err(FetchError::Truncated { url: url.into(), got: body.len() as u64, total });
        }
        Ok(body)
    }

    /// The whole exchange for `version`: session, image request, chunklist (verified), image (verified chunk by
    /// chunk) into the cache. An image already in the cache for the same chunklist is not downloaded again.
    pub async fn fetch(&self, version: MacosVersion) -> Result<RecoveryImage, FetchError> {
        let release = version.release();
        let cache = self.fetcher.cache().clone();
        let mut round = 1u32;
        loop {
            let session = self.session().await?;
            let info = self.image_info(&session, release.board_id, release.os, MLB_ZERO).await?;
            tracing::info!(product = %info.product, board = release.board_id, "recovery server answered");
            let list_url = info.chunklist.url.to_string();
            let bytes = match self.small_asset(&info.chunklist).await {
                Ok(bytes) => bytes,
                Err(err) if round < self.rounds && renewable(&err) => {
                    tracing::warn!("chunklist download failed ({err}); asking the recovery server again");
                    round += 1;
                    continue;
                }
                Err(err) => return Err(err),
            };
            let list =
                Chunklist::parse(&bytes).map_err(|source| FetchError::Chunklist { url: list_url.clone(), source })?;
            let trust = list
                .verify(&self.key, self.allow_unsigned)
                .map_err(|source| FetchError::Chunklist { url: list_url.clone(), source })?;
            if trust == Trust::Unsigned {
                tracing::warn!(url = %list_url, "the chunklist is UNSIGNED and was accepted because unsigned lists were allowed");
            }
            let list_digest = Sha256::of_bytes(&bytes);
            let chunklist_file = cache.insert_bytes(&bytes)?;
            let recovery = |image: Fetched| RecoveryImage {
                version,
                board_id: release.board_id,
                os: release.os,
                product: info.product.clone(),
                image,
                chunklist: chunklist_file.clone(),
                trust,
            };
            if let Some(image) = cache.resolve_ref(REF_KIND, &list_digest)? {
                return Ok(recovery(image));
            }
            let name = info
                .image
                .url
                .path_segments()
                .and_then(|mut s| s.next_back())
                .filter(|s| !s.is_empty())
                .unwrap_or("BaseSystem.dmg")
                .to_owned();
            let fetched = self
                .fetcher
                .fetch_chunked(
                    &info.image.url,
                    &name,
                    Some(&info.image.cookie()),
                    Some(RECOVERY_USER_AGENT),
                    &list,
                    &list_digest,
                )
                .await;
            match fetched {
                Ok(image) => {
                    cache.write_ref(REF_KIND, &list_digest, &image.sha256)?;
                    return Ok(recovery(image));
                }
                Err(err) if round < self.rounds && renewable(&err) => {
                    tracing::warn!("image download stopped ({err}); asking the recovery server for a new token");
                    round += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }
}

/// The cache's reference kind that maps a chunklist's digest to the image it verified.
const REF_KIND: &str = "chunklist-image";

/// Failures a fresh session and token may cure: a refused (expired) token, a dropped transfer.
fn renewable(err: &FetchError) -> bool {
    matches!(
        err,
        FetchError::Status { status: 403 | 408 | 429 | 500..=599, .. }
            | FetchError::Truncated { .. }
            | FetchError::Http { .. }
    )
}

/// The POST body: `key=value` lines in the order the firmware sends them.
fn request_body(cid: &str, mlb: &str, board_id: &str, k: &str, fg: &str, os: OsType) -> String {
    [("cid", cid), ("sn", mlb), ("bid", board_id), ("k", k), ("fg", fg), ("os", os.as_str())]
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `n` random uppercase hex digits.
fn random_hex(n: usize) -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..n).map(|_| char::from(b"0123456789ABCDEF"[rng.random_range(0..16usize)])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_one_row_per_version_with_a_source() {
        for version in MacosVersion::ALL {
            let release = version.release();
            assert_eq!(release.version, version);
            assert!(release.board_id.starts_with("Mac-") && release.board_id.len() == 20, "{release:?}");
            assert!(!release.source.is_empty());
            assert_eq!(version.name().parse::<MacosVersion>().unwrap(), version);
            assert_eq!(release.major.to_string().parse::<MacosVersion>().unwrap(), version);
        }
        let boards: std::collections::HashSet<_> = RELEASES.iter().map(|r| r.board_id).collect();
        assert_eq!(boards.len(), RELEASES.len(), "two versions share a board id");
        assert!("monterey".parse::<MacosVersion>().is_err());
    }

    #[test]
    fn body_has_the_fields_in_order() {
        let body = request_body("0123456789ABCDEF", MLB_ZERO, "Mac-827FAC58A8FDFA22", "K", "F", OsType::Latest);
        assert_eq!(body, "cid=0123456789ABCDEF\nsn=00000000000000000\nbid=Mac-827FAC58A8FDFA22\nk=K\nfg=F\nos=latest");
        let id = random_hex(64);
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase()));
    }

    #[test]
    fn reply_parsing() {
        let reply = "RC: \nAP: 041-12345\nAU: http://oscdn.example/BaseSystem.dmg\nAH: 00\n\
                     AT: expires=1~access=/x~md5=ab\nCU: http://oscdn.example/BaseSystem.chunklist\nCH: 00\nCT: expires=1~x\n";
        let info = RecoveryInfo::parse(reply, "test").unwrap();
        assert_eq!(info.product, "041-12345");
        assert_eq!(info.image.url.as_str(), "http://oscdn.example/BaseSystem.dmg");
        assert_eq!(info.image.cookie(), "AssetToken=expires=1~access=/x~md5=ab");
        assert!(!format!("{info:?}").contains("md5=ab"), "the token must not appear in Debug output");
        let missing = reply.replace("AT: ", "XX: ");
        assert!(RecoveryInfo::parse(&missing, "test").unwrap_err().to_string().contains("`AT`"));
        let injected = reply.replace("AT: expires=1", "AT: expires=1;evil=1");
        assert!(RecoveryInfo::parse(&injected, "test").is_err());
        let ftp = reply.replace("AU: http", "AU: ftp");
        assert!(RecoveryInfo::parse(&ftp, "test").is_err());
    }
}
