//! `vmkit automate record`: a script written by demonstration.
//!
//! The recorder is a VNC proxy. A person points any VNC viewer at its listening address (loopback only) and
//! uses the machine as usual; the recorder passes every byte between the viewer and the real server, reads the
//! viewer's input on the way ([`messages`]), and reads the screen over a second, shared connection of its own
//! (the [`rfb`] client, so the screen is decoded the way every other vmkit command decodes it, whatever
//! encodings the viewer chose). When the viewer disconnects or the recording is stopped, it writes
//! - a script ([`render`]): each click as `wait` + `click` on the text under the pointer (OCR of the screen the
//!   person clicked on; the shortest phrase that is unique on that screen), or `click_at` with a comment when no
//!   text was there; typing as `type`, keys as `key` and `hotkey`;
//! - the frames and input of the session in the format `--debug` writes ([`crate::recording`]), so
//!   `vmkit automate replay` can check the script against what the person did.
//!
//! Why a relay rather than a terminating proxy: the viewer authenticates to the server itself (VNC
//! Authentication passes through, [`relay`]), so vmkit never sees the viewer's password and never offers the
//! screen with weaker security than the server's. The recorder's own connection uses `--password-file`.

pub mod compose;
pub mod messages;
pub mod relay;
pub mod render;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::recording::{FrameRecorder, start_line};
use crate::redact::Redactor;
use crate::script::Secret;
use compose::{Composer, Counts, Input};
use messages::{ClientMessage, Decoder};

/// How to record.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// The real VNC server, `HOST:PORT`.
    pub vnc: String,
    /// Its password, for the recorder's own connection.
    pub password: Option<Secret>,
    /// Where the viewer connects (a loopback address unless `allow_remote`).
    pub listen: SocketAddr,
    /// Accept a viewer from another machine (`--allow-remote-viewer`): it must then authenticate to the server
    /// (VNC Authentication only; a server without a password is refused).
    pub allow_remote: bool,
    /// The script to write.
    pub output: PathBuf,
    /// The recording's directory (`frames/index.jsonl` + `NNNNNN.png` go straight into it).
    pub frames: PathBuf,
    /// Replace an existing script and recording.
    pub force: bool,
    /// Write typed text into the script and the recording (`--no-type-text` turns it off).
    pub type_text: bool,
    /// Timeout for connecting and for each handshake step.
    pub timeout: Duration,
}

/// Why a recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Bad arguments or files in the way: nothing was started.
    #[error("{0}")]
    BadInput(String),
    /// The VNC server could not be reached or refused the recorder.
    #[error("VNC server {addr}: {message}")]
    Vnc {
        /// The server.
        addr: String,
        /// What went wrong.
        message: String,
    },
    /// Listening or relaying failed.
    #[error("{doing}: {source}")]
    Io {
        /// What was being done.
        doing: String,
        /// Why.
        source: std::io::Error,
    },
    /// The viewer's handshake with the server failed.
    #[error("the viewer's connection: {0}")]
    Handshake(#[from] relay::HandshakeError),
    /// Stopped before a viewer connected: nothing to write.
    #[error("stopped before a viewer connected; nothing was written")]
    NoViewer,
    /// Writing the results failed.
    #[error("{0}")]
    Output(String),
}

impl RecordError {
    /// True for errors of the user's input (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, RecordError::BadInput(_))
    }
}

/// What a finished recording wrote.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The script.
    pub output: PathBuf,
    /// The recording.
    pub frames: PathBuf,
    /// Steps written.
    pub steps: usize,
    /// What they were.
    pub counts: Counts,
    /// Why the session ended.
    pub ended: String,
}

/// Checks the options before anything starts: a loopback listener, no script or recording overwritten unless
/// `force`.
pub fn check_options(opts: &RecordOptions) -> Result<(), RecordError> {
    if !opts.listen.ip().is_loopback() && !opts.allow_remote {
        return Err(RecordError::BadInput(format!(
            "--listen {}: the recorder listens on a loopback address (127.0.0.1 or [::1]) unless \
             --allow-remote-viewer is given; anyone who reaches it controls the machine",
            opts.listen
        )));
    }
    if opts.output.exists() && !opts.force {
        return Err(RecordError::BadInput(format!("{} exists; give --force to replace it", opts.output.display())));
    }
    let parent = opts.output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(RecordError::BadInput(format!("{}: no such directory", parent.display())));
    }
    if opts.frames.is_file() {
        return Err(RecordError::BadInput(format!("--frames {}: a file, not a directory", opts.frames.display())));
    }
    let occupied = std::fs::read_dir(&opts.frames).map(|mut d| d.next().is_some()).unwrap_or(false);
    if occupied && !opts.force {
        return Err(RecordError::BadInput(format!(
            "--frames {} is not empty; give --force to replace the recording there",
            opts.frames.display()
        )));
    }
    Ok(())
}

/// Records one viewer session (see the module docs): returns once the viewer disconnected, the server closed,
/// or `stop` completed, with the script and the recording written. `log` gets progress lines.
pub async fn record(
    opts: &RecordOptions,
    stop: impl Future<Output = ()>,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<Summary, RecordError> {
    check_options(opts)?;
    tokio::pin!(stop);
    let vnc_err = |message: String| RecordError::Vnc { addr: opts.vnc.clone(), message };
    let connect = rfb::ConnectOptions {
        password: opts.password.as_ref().map(|p| p.expose().to_owned()),
        timeout: opts.timeout,
        shared: true,
        ..Default::default()
    };
    let client = rfb::Client::connect(&opts.vnc, connect).await.map_err(|e| {
        if e.is_auth_failure() {
            // Wrong or missing credentials are the user's input, as for `run`.
            RecordError::BadInput(format!("VNC server {}: {e}", opts.vnc))
        } else {
            vnc_err(e.to_string())
        }
    })?;
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| RecordError::Io { doing: format!("listening on {}", opts.listen), source })?;
    let local = listener.local_addr().map_err(|source| RecordError::Io { doing: "listening".into(), source })?;
    log(format!(
        "recording {} ({}): point a VNC viewer at {local}; disconnect the viewer or press Ctrl-C to finish",
        opts.vnc,
        client.server_name()
    ));
    let (mut viewer, peer) = tokio::select! {
        accepted = listener.accept() => {
            accepted.map_err(|source| RecordError::Io { doing: format!("accepting on {local}"), source })?
        }
        () = &mut stop => return Err(RecordError::NoViewer),
    };
    drop(listener);
    let remote = !peer.ip().is_loopback();
    if remote && !opts.allow_remote {
        return Err(RecordError::BadInput(format!("a viewer connected from {peer}, not from this machine")));
    }
    log(format!("viewer connected from {peer}"));
    let mut server = tokio::time::timeout(opts.timeout, TcpStream::connect(&opts.vnc))
        .await
        .map_err(|_| vnc_err("timed out connecting for the viewer".into()))?
        .map_err(|e| vnc_err(format!("connecting for the viewer: {e}")))?;
    let _ = server.set_nodelay(true);
    let _ = viewer.set_nodelay(true);
    let negotiated = relay::relay_handshake(&mut viewer, &mut server, opts.timeout, remote).await?;
    log(format!(
        "viewer session: RFB 3.{}, {}, {}x{} \"{}\"",
        negotiated.minor,
        if negotiated.security == 2 { "VNC Authentication" } else { "no authentication" },
        negotiated.width,
        negotiated.height,
        negotiated.name
    ));

    let started = Instant::now();
    let first = client.frame();
    let header = start_line(&opts.vnc, client.server_name(), (first.width(), first.height()));
    let recorder = FrameRecorder::create(&opts.frames, started, Redactor::default(), header)
        .map_err(|e| RecordError::Output(e.to_string()))?;
    let pointer = |c: &rfb::Client| (c.pointer_mode(), c.pointer_out_of_framebuffer());
    let mut composer = Composer::new(recorder, &first, pointer(&client), opts.type_text);

    let (mut viewer_rd, mut viewer_wr) = viewer.into_split();
    let (mut server_rd, mut server_wr) = server.into_split();
    let mut downstream = tokio::spawn(async move {
        let r = tokio::io::copy(&mut server_rd, &mut viewer_wr).await;
        let _ = viewer_wr.shutdown().await;
        r
    });
    let mut decoder = Decoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    // Screens are taken at most this often while they change (every distinct one is kept, the last always).
    let interval = Duration::from_millis(100);
    let mut last_capture = Instant::now();
    let mut capture_at: Option<tokio::time::Instant> = None;
    let ended = loop {
        tokio::select! {
            biased;
            () = &mut stop => break "stopped".to_owned(),
            read = viewer_rd.read(&mut buf) => {
                let n = match read {
                    Ok(0) => break "the viewer disconnected".to_owned(),
                    Err(e) => break format!("the viewer's connection failed: {e}"),
                    Ok(n) => n,
                };
                let bytes = &buf[..n];
                let decoded = decoder.push(bytes);
                let now = Instant::now();
                let messages = match decoded {
                    Ok(m) => m,
                    Err(e) => break format!("{e}; the recording stops here"),
                };
                for m in messages {
                    let input = match m {
                        ClientMessage::Pointer { buttons, x, y } => Input::Pointer { buttons, x, y },
                        ClientMessage::Key { down, keysym } | ClientMessage::QemuKey { down, keysym, .. } => {
                            Input::Key { down, keysym }
                        }
                        ClientMessage::CutText { len } => Input::Paste { len },
                        _ => continue,
                    };
                    composer.input(input, &client.frame(), pointer(&client), now);
                }
                if let Err(e) = server_wr.write_all(bytes).await {
                    break format!("the server's connection failed: {e}");
                }
            }
            copied = &mut downstream => {
                break match copied {
                    Ok(Ok(_)) => "the VNC server closed the viewer's connection".to_owned(),
                    Ok(Err(e)) => format!("the VNC server's connection failed: {e}"),
                    Err(e) => format!("relaying to the viewer failed: {e}"),
                };
            }
            damage = client.wait_for_damage(Duration::from_secs(3600)), if capture_at.is_none() => {
                match damage {
                    Ok(Some(_)) => {
                        let at = last_capture + interval;
                        capture_at = Some(tokio::time::Instant::from_std(at.max(Instant::now())));
                    }
                    Ok(None) => {}
                    Err(e) => break format!("the recorder's own VNC connection failed: {e}"),
                }
            }
            () = async { if let Some(at) = capture_at { tokio::time::sleep_until(at).await } }, if capture_at.is_some() => {
                capture_at = None;
                last_capture = Instant::now();
                composer.frame(&client.frame(), pointer(&client), last_capture);
            }
        }
    };
    downstream.abort();
    drop((viewer_rd, server_wr));
    log(format!("{ended}; reading the clicked screens"));

    let last = client.frame();
    let mut engine = crate::blocking(ocr::Engine::new).map_err(|e| RecordError::Output(format!("OCR: {e}")))?;
    let read = |frame: &rfb::Frame| {
        let pixels = ocr::Frame::packed(frame.rgba(), frame.width(), frame.height(), ocr::PixelLayout::Rgbx)
            .map_err(|e| e.to_string())?;
        engine.read(&pixels).map_err(|e| e.to_string())
    };
    let (steps, counts) = crate::blocking(|| composer.finish(&last, read)).map_err(RecordError::Output)?;
    let header = format!(
        "recorded by vmkit automate record from {} ({}) at {}",
        opts.vnc,
        client.server_name(),
        crate::time::utc(std::time::SystemTime::now()).rfc3339()
    );
    let text = render::render(&steps, &header).map_err(|e| RecordError::Output(e.to_string()))?;
    write_new(&opts.output, text.as_bytes(), opts.force)?;
    Ok(Summary { output: opts.output.clone(), frames: opts.frames.clone(), steps: steps.len(), counts, ended })
}

/// Writes `bytes` to `path` through a temporary file in the same directory: the file appears complete or not
/// at all, and an existing one is replaced only with `force` (without it, a file created meanwhile wins).
fn write_new(path: &Path, bytes: &[u8], force: bool) -> Result<(), RecordError> {
    let io = |doing: String| move |source| RecordError::Io { doing, source };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io(format!("writing {}", tmp.display())))?;
    let result = if force {
        std::fs::rename(&tmp, path)
    } else {
        std::fs::hard_link(&tmp, path).and_then(|()| std::fs::remove_file(&tmp))
    };
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            RecordError::Output(format!("{} appeared while recording; not replaced (give --force)", path.display()))
        } else {
            RecordError::Io { doing: format!("writing {}", path.display()), source: e }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path) -> RecordOptions {
        RecordOptions {
            vnc: "127.0.0.1:1".into(),
            password: None,
            listen: "127.0.0.1:0".parse().expect("addr"),
            allow_remote: false,
            output: dir.join("s.yml"),
            frames: dir.join("frames"),
            force: false,
            type_text: true,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn refuses_remote_listeners_and_existing_files() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut o = opts(tmp.path());
        assert!(check_options(&o).is_ok());
        o.listen = "0.0.0.0:5999".parse().expect("addr");
        assert!(check_options(&o).is_err_and(|e| e.is_bad_input() && e.to_string().contains("loopback")));
        o.allow_remote = true;
        assert!(check_options(&o).is_ok());
        let mut o = opts(tmp.path());
        std::fs::write(&o.output, "keep").expect("write");
        assert!(check_options(&o).is_err_and(|e| e.to_string().contains("--force")));
        o.force = true;
        assert!(check_options(&o).is_ok());
        let o = opts(tmp.path());
        std::fs::create_dir(&o.frames).expect("dir");
        std::fs::write(o.frames.join("x"), "").expect("write");
        std::fs::remove_file(&o.output).expect("rm");
        assert!(check_options(&o).is_err_and(|e| e.to_string().contains("not empty")));
    }

    #[test]
    fn writing_never_replaces_without_force() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("s.yml");
        write_new(&path, b"one", false).expect("new");
        assert!(write_new(&path, b"two", false).is_err());
        assert_eq!(std::fs::read(&path).expect("read"), b"one");
        write_new(&path, b"three", true).expect("forced");
        assert_eq!(std::fs::read(&path).expect("read"), b"three");
        let names: Vec<_> = std::fs::read_dir(tmp.path()).expect("dir").flatten().map(|e| e.file_name()).collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    }
}
