//! A stand-in for Apple's macOS recovery server and its CDN, on 127.0.0.1, for the recovery client's tests.
//!
//! Apple's servers cannot be reached from a test, and would not misbehave on cue if they could. This server speaks
//! the same exchange — `GET /` hands out a `session` cookie; `POST /InstallationPayload/RecoveryImage` takes the
//! firmware's `key=value` body and answers `KEY: value` lines with asset URLs and tokens; assets are served only
//! with a live `Cookie: AssetToken=…`, with `Range` support — and checks what the client sends as strictly as a
//! real server would need it to be: an issued session, `text/plain`, every field present and well-formed. Tests
//! can make it fail the way the real one does: refuse the POST, expire the tokens (403), cut a transfer short,
//! announce a wrong length, or leave a key out of the reply. Every request is recorded.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::http::Acceptor;

/// One request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The path.
    pub path: String,
    /// The `Range` header.
    pub range: Option<String>,
    /// The `Cookie` header.
    pub cookie: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// For the image request: the body's fields, in order.
    pub fields: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct Product {
    id: String,
    image: Arc<Vec<u8>>,
    chunklist: Arc<Vec<u8>>,
}

#[derive(Debug, Default)]
struct State {
    /// Board id → product.
    boards: HashMap<String, Product>,
    sessions: Vec<String>,
    /// Live asset tokens → the path they unlock.
    tokens: HashMap<String, String>,
    counter: u64,
    requests: Vec<RecoveryRequest>,
    /// The next image requests answer with this status.
    post_status: Option<u16>,
    /// Keys left out of the next replies.
    omit: Vec<String>,
    /// Path suffix → (cut after this many body bytes, times left, expire every token when cutting).
    cuts: HashMap<String, (usize, usize, bool)>,
    /// Path suffix → extra bytes appended to the body (and counted in Content-Length).
    extra: HashMap<String, Vec<u8>>,
}

/// The running server. Dropping it stops it.
#[derive(Debug)]
pub struct RecoveryServer {
    acceptor: Acceptor,
    state: Arc<Mutex<State>>,
}

impl RecoveryServer {
    /// Starts the server on a free port of 127.0.0.1 with no products.
    pub fn start() -> anyhow::Result<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        let served = Arc::clone(&state);
        let acceptor = Acceptor::start("recovery fixture", move |conn, addr| serve(conn, addr, &served))?;
        Ok(Self { acceptor, state })
    }

    /// The server's base URL (`http://127.0.0.1:PORT/`).
    pub fn url(&self) -> String {
        format!("http://{}/", self.acceptor.addr())
    }

    /// Makes `board_id` get product `id`: this image and chunklist.
    pub fn publish(&self, board_id: &str, id: &str, image: Vec<u8>, chunklist: Vec<u8>) {
        lock(&self.state).boards.insert(
            board_id.to_owned(),
            Product { id: id.to_owned(), image: Arc::new(image), chunklist: Arc::new(chunklist) },
        );
    }

    /// Image requests are answered with HTTP `status` and no body from now on.
    pub fn refuse_image_requests(&self, status: u16) {
        lock(&self.state).post_status = Some(status);
    }

    /// Replies leave out `key` (`AT`, `CU`, …).
    pub fn omit_key(&self, key: &str) {
        lock(&self.state).omit.push(key.to_owned());
    }

    /// Every asset token issued so far stops working (the CDN answers 403), as Apple's do when they expire.
    pub fn expire_tokens(&self) {
        lock(&self.state).tokens.clear();
    }

    /// The next `times` responses for assets whose path ends with `suffix` send only `after` body bytes and
    /// close the connection; with `expire`, every token expires at that moment too.
    pub fn cut_after(&self, suffix: &str, after: usize, times: usize, expire: bool) {
        lock(&self.state).cuts.insert(suffix.to_owned(), (after, times, expire));
    }

    /// Assets whose path ends with `suffix` get `extra` bytes appended (a wrong length).
    pub fn append(&self, suffix: &str, extra: Vec<u8>) {
        lock(&self.state).extra.insert(suffix.to_owned(), extra);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RecoveryRequest> {
        lock(&self.state).requests.clone()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn respond(out: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) -> anyhow::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    Ok(())
}

fn hex_of_len(value: &str, len: usize) -> bool {
    value.len() == len && value.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

fn serve(conn: TcpStream, addr: SocketAddr, state: &Mutex<State>) -> anyhow::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers: HashMap<String, String> = HashMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let mut body = Vec::new();
    if let Some(len) = headers.get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len.min(1 << 16), 0);
        reader.read_exact(&mut body)?;
    }
    let fields: Vec<(String, String)> = String::from_utf8_lossy(&body)
        .split('\n')
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let cookie = headers.get("cookie").cloned();
    let mut out = conn;
    let mut st = lock(state);
    st.requests.push(RecoveryRequest {
        method: method.clone(),
        path: path.clone(),
        range: headers.get("range").cloned(),
        cookie: cookie.clone(),
        user_agent: headers.get("user-agent").cloned(),
        fields: if method == "POST" { fields.clone() } else { Vec::new() },
    });
    match (method.as_str(), path.as_str()) {
        ("GET", "/") => {
            st.counter += 1;
            let session = format!("{:032X}", st.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            st.sessions.push(session.clone());
            drop(st);
            let cookie = format!("session={session}; Domain=127.0.0.1; Path=/; HttpOnly");
            respond(&mut out, "200 OK", &[("Set-Cookie", cookie)], b"")
        }
        ("POST", "/InstallationPayload/RecoveryImage") => {
            if let Some(status) = st.post_status {
                drop(st);
                return respond(&mut out, &format!("{status} Refused"), &[], b"");
            }
            let session_ok = cookie
                .as_deref()
                .and_then(|c| c.split(';').map(str::trim).find_map(|c| c.strip_prefix("session=")))
                .is_some_and(|s| st.sessions.iter().any(|known| known == s));
            if !session_ok {
                drop(st);
                return respond(&mut out, "403 Forbidden", &[], b"");
            }
            let get = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("");
            let order: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
            let well_formed = headers.get("content-type").is_some_and(|t| t == "text/plain")
                && order == ["cid", "sn", "bid", "k", "fg", "os"]
                && hex_of_len(get("cid"), 16)
                && get("sn").len() == 17
                && hex_of_len(get("k"), 64)
                && hex_of_len(get("fg"), 64)
                && matches!(get("os"), "default" | "latest");
            if !well_formed {
                drop(st);
                return respond(&mut out, "400 Bad Request", &[], b"");
            }
            let Some(product) = st.boards.get(get("bid")).cloned() else {
                drop(st);
                return respond(&mut out, "404 Not Found", &[], b"");
            };
            st.counter += 1;
            let n = st.counter;
            let base = format!("http://{addr}/content/downloads/{}", product.id);
            let image_path = format!("/content/downloads/{}/BaseSystem.dmg", product.id);
            let list_path = format!("/content/downloads/{}/BaseSystem.chunklist", product.id);
            let image_token = format!("expires={n}~access={image_path}~md5={:016X}", n.wrapping_mul(31));
            let list_token = format!("expires={n}~access={list_path}~md5={:016X}", n.wrapping_mul(37));
            st.tokens.insert(image_token.clone(), image_path);
            st.tokens.insert(list_token.clone(), list_path);
            let lines = [
                ("AP", product.id.clone()),
                ("AU", format!("{base}/BaseSystem.dmg")),
                ("AH", "0".repeat(40)),
                ("AT", image_token),
                ("CU", format!("{base}/BaseSystem.chunklist")),
                ("CH", "0".repeat(40)),
                ("CT", list_token),
            ];
            let text: String = lines
                .iter()
                .filter(|(k, _)| !st.omit.iter().any(|o| o == k))
                .map(|(k, v)| format!("{k}: {v}\n"))
                .collect();
            drop(st);
            respond(&mut out, "200 OK", &[("Content-Type", "text/plain".into())], text.as_bytes())
        }
        ("GET", asset) if asset.starts_with("/content/downloads/") => {
            let token = cookie.as_deref().and_then(|c| c.strip_prefix("AssetToken="));
            if token.and_then(|t| st.tokens.get(t)).is_none_or(|p| p != asset) {
                drop(st);
                return respond(&mut out, "403 Forbidden", &[], b"");
            }
            let Some(product) = st.boards.values().find(|p| asset.contains(&format!("/{}/", p.id))).cloned() else {
                drop(st);
                return respond(&mut out, "404 Not Found", &[], b"");
            };
            let mut data = if asset.ends_with(".dmg") { product.image } else { product.chunklist }.to_vec();
            if let Some(extra) = st.extra.iter().find(|(s, _)| asset.ends_with(s.as_str())).map(|(_, e)| e.clone()) {
                data.extend_from_slice(&extra);
            }
            let mut cut = None;
            if let Some((after, left, expire)) =
                st.cuts.iter_mut().find(|(s, _)| asset.ends_with(s.as_str())).map(|(_, c)| c)
                && *left > 0
            {
                *left -= 1;
                cut = Some((*after, *expire));
            }
            if cut.is_some_and(|(_, expire)| expire) {
                st.tokens.clear();
            }
            drop(st);
            let start = headers
                .get("range")
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|s| s.parse::<usize>().ok());
            let (status, from, extra_headers) = match start {
                Some(s) if s < data.len() => (
                    "206 Partial Content",
                    s,
                    vec![("Content-Range", format!("bytes {s}-{}/{}", data.len() - 1, data.len()))],
                ),
                Some(_) => {
                    return respond(
                        &mut out,
                        "416 Range Not Satisfiable",
                        &[("Content-Range", format!("bytes */{}", data.len()))],
                        b"",
                    );
                }
                None => ("200 OK", 0, Vec::new()),
            };
            let rest = data.get(from..).unwrap_or_default();
            match cut {
                Some((after, _)) => {
                    let mut head =
                        format!("HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n", rest.len());
                    for (name, value) in &extra_headers {
                        head.push_str(&format!("{name}: {value}\r\n"));
                    }
                    head.push_str("\r\n");
                    out.write_all(head.as_bytes())?;
                    out.write_all(rest.get(..after.min(rest.len())).unwrap_or_default())?;
                    out.flush()?;
                    out.shutdown(std::net::Shutdown::Both)?;
                    Ok(())
                }
                None => respond(&mut out, status, &extra_headers, rest),
            }
        }
        _ => {
            drop(st);
            respond(&mut out, "404 Not Found", &[], b"")
        }
    }
}
