//! A small HTTP/1.1 file server on 127.0.0.1 for download tests.
//!
//! Download code has to cope with what real servers and networks do: honour or ignore `Range`, drop the connection
//! half-way, be gone entirely. A general-purpose server cannot be told to misbehave on cue, so this one can: each
//! path can be set to cut the connection after a number of body bytes for its next N requests, or to ignore range
//! requests. Every request is recorded (path and `Range` header) so a test can assert that a download resumed
//! instead of starting over. One thread per connection; `Connection: close` after each response.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

/// One request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The request path, e.g. `/disk.img`.
    pub path: String,
    /// The `Range` header, if any (`bytes=123-`).
    pub range: Option<String>,
}

#[derive(Debug, Default)]
struct Entry {
    body: Arc<Vec<u8>>,
    /// Cut the connection after this many body bytes, for the next `drops_left` responses.
    drop_after: usize,
    drops_left: usize,
    ignore_range: bool,
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<String, Entry>,
    requests: Vec<Request>,
}

/// A loopback accept loop, one thread per connection, shared by the test servers: stopped (and joined) by
/// [`Acceptor::stop`] or on drop, after which connections are refused.
#[derive(Debug)]
pub(crate) struct Acceptor {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    /// Listens on a free port of 127.0.0.1 and runs `handle(connection, own address)` for each connection;
    /// `what` names the server in debug logs of failed connections.
    pub(crate) fn start<F>(what: &'static str, handle: F) -> anyhow::Result<Self>
    where
        F: Fn(TcpStream, SocketAddr) -> anyhow::Result<()> + Send + Sync + 'static,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let handle = Arc::new(handle);
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let handle = Arc::clone(&handle);
                    std::thread::spawn(move || {
                        if let Err(e) = handle(conn, addr) {
                            tracing::debug!("{what}: {e:#}");
                        }
                    });
                }
            })
        };
        Ok(Self { addr, stop, thread: Some(thread) })
    }

    /// The listening address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub(crate) fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            // Wake the accept loop so it sees the flag.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
            let _ = thread.join();
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running file server. Dropping it (or [`HttpServer::stop`]) closes the listener.
#[derive(Debug)]
pub struct HttpServer {
    acceptor: Acceptor,
    state: Arc<Mutex<State>>,
}

impl HttpServer {
    /// Starts a server on a free port of 127.0.0.1 with no files.
    pub fn start() -> anyhow::Result<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        let served = Arc::clone(&state);
        let acceptor = Acceptor::start("http fixture", move |conn, _| serve(conn, &served))?;
        Ok(Self { acceptor, state })
    }

    /// The URL of `path` on this server (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.acceptor.addr())
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.acceptor.addr()
    }

    /// Serves `body` at `path`.
    pub fn add(&self, path: &str, body: Vec<u8>) {
        lock(&self.state).files.insert(path.to_owned(), Entry { body: Arc::new(body), ..Entry::default() });
    }

    /// The next `times` responses for `path` send the headers for the whole (remaining) body, then only `after`
    /// bytes of it, then close the connection.
    pub fn drop_after(&self, path: &str, after: usize, times: usize) {
        if let Some(entry) = lock(&self.state).files.get_mut(path) {
            entry.drop_after = after;
            entry.drops_left = times;
        }
    }

    /// Makes `path` answer range requests with the whole file (200), as some servers do.
    pub fn ignore_range(&self, path: &str) {
        if let Some(entry) = lock(&self.state).files.get_mut(path) {
            entry.ignore_range = true;
        }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.state).requests.clone()
    }

    /// Stops accepting connections and waits for the accept loop to end; afterwards connections are refused.
    pub fn stop(&mut self) {
        self.acceptor.stop();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn serve(conn: TcpStream, state: &Mutex<State>) -> anyhow::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_owned());
        }
    }
    let (body, drop_after, ignore_range) = {
        let mut st = lock(state);
        st.requests.push(Request { path: path.clone(), range: range.clone() });
        match st.files.get_mut(&path) {
            Some(entry) => {
                let cut = (entry.drops_left > 0).then(|| {
                    entry.drops_left -= 1;
                    entry.drop_after
                });
                (Some(Arc::clone(&entry.body)), cut, entry.ignore_range)
            }
            None => (None, None, false),
        }
    };
    let mut out = conn;
    let Some(body) = body.filter(|_| method == "GET" || method == "HEAD") else {
        out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        return Ok(());
    };
    let start = match range.as_deref().filter(|_| !ignore_range).map(parse_range) {
        None => None,
        Some(Some(start)) if start < body.len() => Some(start),
        Some(_) => {
            let head = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                body.len()
            );
            out.write_all(head.as_bytes())?;
            return Ok(());
        }
    };
    let from = start.unwrap_or(0);
    let rest = body.get(from..).unwrap_or_default();
    let head = match start {
        Some(s) => format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {s}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len() - 1,
            body.len(),
            rest.len()
        ),
        None => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", rest.len()),
    };
    out.write_all(head.as_bytes())?;
    if method == "HEAD" {
        return Ok(());
    }
    match drop_after {
        Some(n) => {
            out.write_all(rest.get(..n.min(rest.len())).unwrap_or_default())?;
            out.flush()?;
            // Close without sending the rest: the client sees a body shorter than Content-Length.
            out.shutdown(std::net::Shutdown::Both)?;
        }
        None => out.write_all(rest)?,
    }
    Ok(())
}

/// `bytes=N-` → N. Other forms (suffix ranges, lists) are not used by vmkit and are refused.
fn parse_range(value: &str) -> Option<usize> {
    let spec = value.strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    if !end.is_empty() {
        return None;
    }
    start.parse().ok()
}
