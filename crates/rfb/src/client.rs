//! The connected client: handshake, a background reader that keeps the framebuffer current, a writer task,
//! damage tracking and input.
//!
//! Design:
//! - **Reader task.** Owns the socket's read half, the [`Decoder`] and the working [`Framebuffer`]. At the end of
//!   every FramebufferUpdate it publishes the changed rectangles into the shared [`Frame`], adds them to the
//!   damage list, bumps a `watch` counter (which wakes [`Client::wait_for_damage`] and friends — consumers never
//!   poll) and asks for the next incremental update, so the server pushes changes as they happen. Between
//!   messages it waits without a timeout (a quiet screen sends nothing); inside a message every read has the
//!   connection timeout, so a stalled server is an error, not a hang.
//! - **Writer task.** Owns the write half; every message goes through it with a timeout. The reader never waits
//!   for a write, so a server that stops reading cannot make the client stop reading.
//! - **Failure.** The first error (lost connection, timeout, protocol violation) is stored and returned by every
//!   later call; [`Error::is_connection_lost`] tells the caller that reconnecting may help.
//! - **Typing.** Key events are paced by [`TypeOptions`]; see there for why the default suits QEMU.
//! - **Pointer.** Clicks hold the button long enough for slowly polled devices ([`ClickTiming`]). QEMU says
//!   whether the guest's pointer device is absolute or relative ([`PointerMode`]); on a relative one (the
//!   default PS/2 mouse) positions are reached by motions, see [`RelativeMotion`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::coverage::Coverage;
use crate::cursor::Cursor;
use crate::decode::{Decoder, Event, Limits};
use crate::error::Error;
use crate::frame::Frame;
use crate::framebuffer::Framebuffer;
use crate::handshake::{handshake, write_all};
use crate::keys::{self, Chord, Key};
use crate::proto::{self, Encoding, Rect, Version};

/// How to connect.
#[derive(Clone)]
pub struct ConnectOptions {
    /// Password for VNC Authentication (only the first 8 bytes count, as in every VNC server).
    pub password: Option<String>,
    /// Timeout for connecting, for each read inside a message, for each write and for the first frame.
    pub timeout: Duration,
    /// Share the desktop with other clients (false asks the server to disconnect them).
    pub shared: bool,
    /// Encodings to request, pixel encodings in order of preference. `None` picks [`default_encodings`]: Raw
    /// and CopyRect when the server is on a loopback address, ZRLE first otherwise; plus every pseudo-encoding
    /// this client implements.
    pub encodings: Option<Vec<Encoding>>,
    /// What the server may make the client allocate.
    pub limits: Limits,
    /// Return from [`Client::connect`] only once the first complete frame has arrived (default), so that
    /// [`Client::frame`] is never a blank placeholder.
    pub wait_for_first_frame: bool,
    /// How positions are reached when the server says the guest's pointer is relative.
    pub relative: RelativeMotion,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            password: None,
            timeout: Duration::from_secs(10),
            shared: true,
            encodings: None,
            limits: Limits::default(),
            wait_for_first_frame: true,
            relative: RelativeMotion::default(),
        }
    }
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("shared", &self.shared)
            .field("encodings", &self.encodings)
            .field("limits", &self.limits)
            .field("wait_for_first_frame", &self.wait_for_first_frame)
            .field("relative", &self.relative)
            .finish()
    }
}

/// The encodings requested when [`ConnectOptions::encodings`] is `None`.
///
/// Over loopback, bytes are nearly free and compression is not: a noisy 1920×1080 screen arrives from Xvnc in
/// ~25 ms as Raw but takes ~300 ms as ZRLE. ZRLE is left out entirely there, because a server that may use it
/// does so for part of the screen even when Raw is preferred (TigerVNC does). Elsewhere ZRLE comes first.
pub fn default_encodings(loopback: bool) -> Vec<Encoding> {
    let mut e = if loopback {
        vec![Encoding::Raw, Encoding::CopyRect]
    } else {
        vec![Encoding::Zrle, Encoding::CopyRect, Encoding::Raw]
    };
    e.extend(Encoding::PSEUDO);
    e
}

/// Pacing for typed text.
///
/// QEMU puts every VNC key event into an input queue and plays it to the guest `key-delay-ms` apart (10 ms
/// unless `-vnc ...,key-delay-ms=N` says otherwise); once 1024 queue entries (three per key event) pile up, it
/// drops events. A client that sends faster than QEMU plays therefore loses keys after a few hundred
/// characters. The default `key_delay` of 12 ms stays a little slower than QEMU's default, so QEMU's queue never
/// grows and typing is lossless against any QEMU. When vmkit starts QEMU itself it can set a small
/// `key-delay-ms` (QEMU's minimum is 1) and type with a correspondingly small `key_delay`; X servers (Xvnc,
/// x11vnc) queue without dropping and need no delay ([`TypeOptions::fast`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeOptions {
    /// Spacing of key events (presses and releases, Shift included): event *i* of a text goes out at
    /// start + *i* × `key_delay`. Zero sends each character's events at once.
    pub key_delay: Duration,
    /// Extra pause after every character.
    pub char_delay: Duration,
}

impl Default for TypeOptions {
    fn default() -> Self {
        Self { key_delay: Duration::from_millis(12), char_delay: Duration::ZERO }
    }
}

impl TypeOptions {
    /// No pauses: for servers that queue key events without dropping (Xvnc, x11vnc).
    pub fn fast() -> Self {
        Self { key_delay: Duration::ZERO, char_delay: Duration::ZERO }
    }

    /// Pacing for a QEMU started with `key-delay-ms=ms`: a key event every `ms` + 20 % (at least 1 ms more),
    /// so QEMU's queue stays empty. QEMU reads 0 as its default, 10 ms.
    pub fn for_qemu_key_delay(ms: u32) -> Self {
        let ms = if ms == 0 { 10 } else { ms };
        let us = u64::from(ms) * 1000;
        Self { key_delay: Duration::from_micros(us + (us / 5).max(1000)), char_delay: Duration::ZERO }
    }
}

/// A pointer button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Button {
    /// Button 1.
    Left,
    /// Button 2.
    Middle,
    /// Button 3.
    Right,
    /// Button 4: one wheel step up per click.
    WheelUp,
    /// Button 5: one wheel step down per click.
    WheelDown,
}

impl Button {
    /// The button's bit in an RFB button mask.
    pub const fn mask(self) -> u8 {
        match self {
            Button::Left => 1,
            Button::Middle => 2,
            Button::Right => 4,
            Button::WheelUp => 8,
            Button::WheelDown => 16,
        }
    }
}

/// How a click is timed ([`Client::click_with`]).
///
/// QEMU's USB HID devices (the tablet, the USB mouse) queue pointer events until the guest polls the device,
/// and merge a motion into the queued event before it when the buttons did not change: a move sent after a
/// release that the guest has not polled yet overwrites the release's position, so the guest sees the button
/// go up somewhere else — and toolkits that act on release (GTK, Qt, Windows, macOS) do nothing. A guest
/// polls every few milliseconds when it runs at full speed, but under emulation (TCG) or on a loaded host it
/// may not poll for a hundred milliseconds or more. So the pointer rests on the target before the press, the
/// button is held, and whoever moves the pointer after a click must first give the guest time to see the
/// release (the runner waits until the screen reacts, or a pause, before it parks the pointer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClickTiming {
    /// Pause between moving the pointer onto the target and pressing the button.
    pub before_press: Duration,
    /// How long the button is held down.
    pub hold: Duration,
}

impl Default for ClickTiming {
    /// 50 ms on the target, then the button held 100 ms (openQA holds 150 ms; 100 ms is a quick human click).
    fn default() -> Self {
        Self { before_press: Duration::from_millis(50), hold: Duration::from_millis(100) }
    }
}

/// Whether the guest's pointer device is absolute or relative, as the server says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerMode {
    /// The server said so (QEMU with a USB tablet) or cannot say: every server but QEMU is absolute (X servers,
    /// hypervisors' tablets), and so is a QEMU too old for the QEMU Pointer Motion Change pseudo-encoding.
    Absolute,
    /// QEMU said the guest's pointer is relative (its default PS/2 mouse, a USB mouse): positions are reached
    /// by motions, see [`RelativeMotion`].
    Relative,
    /// The server has not said (yet): treated as absolute.
    Unknown,
}

impl PointerMode {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            PointerMode::Absolute => "absolute",
            PointerMode::Relative => "relative",
            PointerMode::Unknown => "unknown",
        }
    }
}

/// How the pointer is moved when the guest's device is relative ([`PointerMode::Relative`]).
///
/// Where a relative pointer is, only the guest knows, and a guest may accelerate motions (X's default doubles
/// every part of a motion beyond 4 units per event; libinput scales by speed). So each move first moves the
/// pointer a screen and a quarter up and to the left (in motions of up to 127 units, what one PS/2 or HID
/// report carries) — whatever the guest's acceleration, the pointer ends in the top-left corner — waits
/// `home_pause`, then walks to the target in motions of at most `step` units per axis,
/// `pause` apart: slow and small enough that classic threshold acceleration does not apply. A guest whose
/// acceleration scales even such motions (libinput's adaptive profile) still misses by a few pixels; the
/// exact fix is an absolute device (`-device usb-tablet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelativeMotion {
    /// Largest motion per event on each axis, in pixels (at least 1).
    pub step: u32,
    /// Pause between motion events.
    pub pause: Duration,
    /// How long after the motions to the corner the walk starts: QEMU passes motions on to the guest as fast as
    /// the device's queue empties and adds new motions to what is still pending, so the walk's first steps
    /// would be lost at the edge if they came too soon.
    pub home_pause: Duration,
}

impl Default for RelativeMotion {
    fn default() -> Self {
        Self { step: 4, pause: Duration::from_millis(4), home_pause: Duration::from_millis(100) }
    }
}

/// Largest motion per event while homing a relative pointer: what one PS/2 or HID report carries.
const HOME_CHUNK: u32 = 127;

/// Damage rectangles kept before they are merged into their bounding box.
const MAX_DAMAGE_RECTS: usize = 64;

struct State {
    frame: Frame,
    damage: Vec<Rect>,
    updates_started: u64,
    /// Full-screen requests made so far (the one sent while connecting is number 1).
    tickets: u64,
    /// The latest request whose complete frame has arrived and been published.
    done_ticket: u64,
    /// The latest request whose complete frame has arrived in the update being decoded (published at its end).
    ready_ticket: u64,
    /// Coverage of the screen since the oldest request still waiting for its frame.
    tracker: Option<Tracker>,
    /// The decoder's framebuffer size (ahead of `frame` while an update that resized it is being decoded).
    fb_size: (u32, u32),
    extended_keys: bool,
    /// What the server said about the guest's pointer device (QEMU Pointer Motion Change): absolute or not.
    pointer_absolute: Option<bool>,
    /// The pointer's shape, once the server has sent one.
    cursor: Option<Arc<Cursor>>,
    /// Where the pointer is: where this client last put it, or where the server last reported it.
    pointer_pos: (u32, u32),
    bells: u64,
    cut_text: Option<String>,
    failure: Option<Error>,
}

struct Shared {
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    /// True while the reader waits for the rest of a message (and so has a read timeout running).
    mid_message: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn fail(&self, err: Error) {
        {
            let mut st = self.lock();
            if st.failure.is_none() {
                tracing::debug!(error = %err, "VNC session ended");
                st.failure = Some(err);
            }
        }
        self.notify();
    }
}

/// Watches pixels painted by updates that started after `after_update`, for requests up to `ticket`.
struct Tracker {
    ticket: u64,
    after_update: u64,
    coverage: Coverage,
}

impl State {
    /// A full-screen request is being made: returns its ticket and starts tracking if nothing is tracked.
    fn new_ticket(&mut self) -> u64 {
        self.tickets += 1;
        if self.tracker.is_none() {
            self.tracker = Some(Tracker {
                ticket: self.tickets,
                after_update: self.updates_started,
                coverage: Coverage::new(self.fb_size.0, self.fb_size.1),
            });
        }
        self.tickets
    }

    /// Pixels were painted by update number `update`.
    fn painted(&mut self, update: u64, rect: Rect) {
        let Some(tr) = &mut self.tracker else { return };
        if update <= tr.after_update {
            return;
        }
        tr.coverage.add(rect);
        if tr.coverage.is_complete() {
            self.ready_ticket = tr.ticket;
            self.tracker = None;
            if self.tickets > self.ready_ticket {
                // Requests made while this one was tracked need pixels painted after they were made.
                let ticket = self.tickets;
                self.tickets -= 1;
                self.new_ticket();
                debug_assert_eq!(self.tickets, ticket);
            }
        }
    }

    /// The screen changed size: only what is painted from now on counts.
    fn resized(&mut self, width: u32, height: u32) {
        self.fb_size = (width, height);
        if let Some(tr) = &mut self.tracker {
            tr.coverage = Coverage::new(width, height);
            if width == 0 || height == 0 {
                self.painted(u64::MAX, Rect::default());
            }
        }
    }
}

struct WriteCmd {
    bytes: Vec<u8>,
    doing: &'static str,
    done: Option<oneshot::Sender<Result<(), Error>>>,
}

#[derive(Clone, Copy)]
struct PointerState {
    x: u16,
    y: u16,
    mask: u8,
    /// In relative mode: the pointer was walked to (x, y) from a corner, so (x, y) is where the guest has it.
    homed: bool,
}

/// A connection to a VNC server. Methods take `&self`; share it between tasks with an `Arc`. Dropping it closes
/// the connection.
pub struct Client {
    shared: Arc<Shared>,
    writes: mpsc::UnboundedSender<WriteCmd>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
    name: String,
    version: Version,
    encodings: Vec<Encoding>,
    timeout: Duration,
    relative: RelativeMotion,
    pointer: tokio::sync::Mutex<PointerState>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("name", &self.name).field("version", &self.version).finish_non_exhaustive()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

impl Client {
    /// Connects to `addr` (`host:port`), runs the handshake, sets the pixel format and encodings, starts the
    /// background reader and, unless told otherwise, waits for the first complete frame. Needs a tokio runtime.
    pub async fn connect(addr: &str, opts: ConnectOptions) -> Result<Client, Error> {
        let timeout = opts.timeout;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Err(_) => return Err(Error::Timeout { doing: format!("connecting to {addr}"), after: timeout }),
            Ok(Err(e)) => return Err(Error::Connect { addr: addr.to_owned(), source: Arc::new(e) }),
            Ok(Ok(s)) => s,
        };
        // Key and pointer events are tiny; Nagle's algorithm would hold them back.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let loopback = stream.peer_addr().is_ok_and(|a| a.ip().is_loopback());
        let (mut rd, mut wr) = stream.into_split();
        let password = opts.password.as_deref().map(str::as_bytes);
        let init = handshake(&mut rd, &mut wr, password, opts.shared, timeout, opts.limits).await?;
        tracing::debug!(name = %init.name, width = init.width, height = init.height, "VNC server connected");

        let encodings = opts.encodings.clone().unwrap_or_else(|| default_encodings(loopback));
        let mut setup = proto::set_pixel_format();
        setup.extend(proto::set_encodings(&encodings));
        setup.extend(proto::update_request(false, 0, 0, init.width, init.height));
        write_all(&mut wr, &setup, timeout, "sending the pixel format, encodings and first update request").await?;

        let fb = Framebuffer::new(init.width, init.height);
        let frame = Frame { width: init.width, height: init.height, pixels: Arc::new(fb.pixels().to_vec()), serial: 0 };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                frame,
                damage: Vec::new(),
                updates_started: 0,
                tickets: 0,
                done_ticket: 0,
                ready_ticket: 0,
                fb_size: (init.width, init.height),
                tracker: None,
                extended_keys: false,
                pointer_absolute: None,
                cursor: None,
                pointer_pos: (0, 0),
                bells: 0,
                cut_text: None,
                failure: None,
            }),
            changed: watch::Sender::new(0),
            mid_message: AtomicBool::new(false),
        });
        let first = {
            // The non-incremental request sent with the setup above.
            let mut st = shared.lock();
            let ticket = st.new_ticket();
            if init.width == 0 || init.height == 0 {
                st.painted(u64::MAX, Rect::default());
            }
            ticket
        };
        let (writes, write_rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_loop(wr, write_rx, shared.clone(), timeout));
        let decoder = Decoder::new(&encodings, opts.limits);
        let reader = tokio::spawn({
            let (shared, writes) = (shared.clone(), writes.clone());
            async move {
                let Err(err) = read_loop(rd, decoder, fb, &shared, &writes, timeout).await;
                shared.fail(err);
            }
        });
        let client = Client {
            shared,
            writes,
            reader,
            writer,
            name: init.name,
            version: init.version,
            encodings,
            timeout,
            relative: opts.relative,
            pointer: tokio::sync::Mutex::new(PointerState { x: 0, y: 0, mask: 0, homed: false }),
        };
        if opts.wait_for_first_frame {
            client.wait_until(timeout, |st| (st.done_ticket >= first).then_some(())).await?.ok_or_else(|| {
                Error::Timeout { doing: "waiting for the first full frame".to_owned(), after: timeout }
            })?;
        }
        Ok(client)
    }

    /// The desktop name the server announced.
    pub fn server_name(&self) -> &str {
        &self.name
    }

    /// The protocol version in use.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The encodings requested from the server.
    pub fn encodings(&self) -> &[Encoding] {
        &self.encodings
    }

    /// The current framebuffer size (width, height).
    pub fn size(&self) -> (u32, u32) {
        let st = self.shared.lock();
        (st.frame.width, st.frame.height)
    }

    /// True once the server has acknowledged QEMU Extended Key Events: keys then go out with scancodes.
    pub fn supports_extended_keys(&self) -> bool {
        self.shared.lock().extended_keys
    }

    /// Whether the guest's pointer is absolute or relative, as the server said (QEMU Pointer Motion Change).
    pub fn pointer_mode(&self) -> PointerMode {
        match self.shared.lock().pointer_absolute {
            Some(true) => PointerMode::Absolute,
            Some(false) => PointerMode::Relative,
            None => PointerMode::Unknown,
        }
    }

    /// The pointer's shape as the server last sent it (Cursor or XCursor pseudo-encoding), or `None` if it has
    /// sent none. A server that sends the shape leaves the pointer out of the framebuffer; [`Cursor::paint`]
    /// draws it onto a copy of a frame at [`Client::pointer_position`] for whoever wants to see it.
    pub fn cursor(&self) -> Option<Arc<Cursor>> {
        self.shared.lock().cursor.clone()
    }

    /// True while the last pointer shape the server sent is visible: the server then draws the pointer nowhere
    /// in the framebuffer, so it cannot hide text there. False for servers that paint the pointer into the screen
    /// image: those that do not implement the pointer shape encodings, QEMU showing a guest that draws its own
    /// pointer (no hardware cursor), and servers that hid the shape — TigerVNC's Xvnc sends an empty shape and
    /// paints the pointer itself while the pointer is not where this client last put it (right after
    /// connecting, or after something else moved it; in that case it starts painting a second after the move
    /// but hides the shape only at the next move, so this reads true for a while although the pointer is
    /// painted).
    pub fn pointer_out_of_framebuffer(&self) -> bool {
        self.shared.lock().cursor.as_ref().is_some_and(|c| !c.is_hidden())
    }

    /// Where the pointer is, in framebuffer pixels: where this client last moved it, or where the server last
    /// said something else moved it (PointerPos pseudo-encoding), whichever came later.
    pub fn pointer_position(&self) -> (u32, u32) {
        self.shared.lock().pointer_pos
    }

    /// The latest complete screen. Cheap: no pixels are copied.
    pub fn frame(&self) -> Frame {
        self.shared.lock().frame.clone()
    }

    /// `Ok` while the connection is up; otherwise the error that ended it.
    pub fn status(&self) -> Result<(), Error> {
        match &self.shared.lock().failure {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// How many times the server rang the bell.
    pub fn bell_count(&self) -> u64 {
        self.shared.lock().bells
    }

    /// The last text the server put on the clipboard (ServerCutText, capped by [`Limits::max_cut_text`]).
    pub fn cut_text(&self) -> Option<String> {
        self.shared.lock().cut_text.clone()
    }

    /// The rectangles that changed since the last call (or since connecting), oldest first; a resize reports
    /// the whole new screen. Many small rectangles are merged into their bounding box.
    pub fn take_damage(&self) -> Vec<Rect> {
        std::mem::take(&mut self.shared.lock().damage)
    }

    /// Waits until the screen changes (or has changed since the last [`Client::take_damage`]) and returns the
    /// damage, taking it; `Ok(None)` when `timeout` passes without a change. Wakes as soon as an update ends.
    pub async fn wait_for_damage(&self, timeout: Duration) -> Result<Option<Vec<Rect>>, Error> {
        self.wait_until(timeout, |st| (!st.damage.is_empty()).then(|| std::mem::take(&mut st.damage))).await
    }

    /// Asks for a complete (non-incremental) update and waits until every pixel has been repainted by updates
    /// that began after the call (however many messages the server splits them into); returns the fresh frame.
    /// Fails with [`Error::Timeout`] if the server does not deliver within the connection timeout.
    pub async fn refresh(&self) -> Result<Frame, Error> {
        let ((w, h), ticket) = {
            let mut st = self.shared.lock();
            (st.fb_size, st.new_ticket())
        };
        self.send(proto::update_request(false, 0, 0, w, h).to_vec(), "requesting a full update").await?;
        self.wait_until(self.timeout, |st| (st.done_ticket >= ticket).then(|| st.frame.clone()))
            .await?
            .ok_or_else(|| Error::Timeout { doing: "waiting for a full update".to_owned(), after: self.timeout })
    }

    /// Presses (`down`) or releases a key. With QEMU Extended Key Events acknowledged and a scancode known, the
    /// scancode goes along; otherwise the keysym alone.
    pub async fn key(&self, key: Key, down: bool) -> Result<(), Error> {
        self.send(self.key_message(key, down), "sending a key event").await
    }

    /// Presses and releases a key.
    pub async fn press(&self, key: Key) -> Result<(), Error> {
        self.key_events(&[(key, true), (key, false)]).await
    }

    /// Presses a chord: modifiers down in order, the key down and up, modifiers up in reverse order.
    pub async fn press_chord(&self, chord: &Chord) -> Result<(), Error> {
        self.key_events(&chord.events()).await
    }

    /// Sends key events in one write, in order.
    pub async fn key_events(&self, events: &[(Key, bool)]) -> Result<(), Error> {
        let ext = self.supports_extended_keys();
        let bytes = events.iter().flat_map(|&(k, down)| message(ext, k, down)).collect();
        self.send(bytes, "sending key events").await
    }

    /// Types `text` as the US layout would (see [`crate::keys`]), paced by `opts`. Newlines are Enter, tabs Tab;
    /// other control characters are refused before anything is sent. Shift is held across a run of shifted
    /// characters and released at the end.
    pub async fn type_text(&self, text: &str, opts: &TypeOptions) -> Result<(), Error> {
        let strokes = keys::text_strokes(text).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let ext = self.supports_extended_keys();
        let mut shift = false;
        let mut pacer = Pacer::new(opts.key_delay);
        for stroke in strokes {
            let mut events: Vec<(Key, bool)> = Vec::with_capacity(3);
            if stroke.shift != shift {
                shift = stroke.shift;
                events.push((Key::SHIFT, shift));
            }
            events.push((stroke.key, true));
            events.push((stroke.key, false));
            if opts.key_delay.is_zero() {
                let bytes = events.iter().flat_map(|&(k, d)| message(ext, k, d)).collect();
                self.send(bytes, "typing").await?;
            } else {
                for (k, d) in events {
                    self.send(message(ext, k, d), "typing").await?;
                    pacer.tick().await;
                }
            }
            if !opts.char_delay.is_zero() {
                tokio::time::sleep(opts.char_delay).await;
                pacer.restart();
            }
        }
        if shift {
            self.send(message(ext, Key::SHIFT, false), "typing").await?;
        }
        Ok(())
    }

    /// Moves the pointer to (x, y) with the buttons in `buttons` (a mask of [`Button::mask`] bits) held.
    ///
    /// When the server says the guest's pointer is relative, the position is reached by motions (see
    /// [`RelativeMotion`]): from a corner when no button is held and the pointer moves, else from where this
    /// client last put it.
    pub async fn pointer(&self, x: u32, y: u32, buttons: u8) -> Result<(), Error> {
        let (w, h) = self.size();
        if x >= w || y >= h {
            return Err(Error::InvalidInput(format!("pointer position ({x},{y}) is outside the {w}x{h} screen")));
        }
        let (x, y) = (x as u16, y as u16);
        let mut p = self.pointer.lock().await;
        if self.pointer_mode() == PointerMode::Relative {
            self.walk(&mut p, x, y, buttons, (w, h)).await?;
        } else {
            *p = PointerState { x, y, mask: buttons, homed: false };
            self.send(proto::pointer_event(buttons, x, y).to_vec(), "sending a pointer event").await?;
        }
        self.shared.lock().pointer_pos = (x.into(), y.into());
        Ok(())
    }

    /// Reaches (x, y) on a relative pointer: home to the top-left corner if needed, then walk in small steps.
    async fn walk(&self, p: &mut PointerState, x: u16, y: u16, buttons: u8, (w, h): (u32, u32)) -> Result<(), Error> {
        let rel = self.relative;
        let moves = (p.x, p.y) != (x, y) || !p.homed;
        if moves && buttons == 0 {
            // Beyond the screen, up and to the left: the guest clamps the pointer at the corner. In motions
            // no larger than one PS/2 or HID report carries (127): QEMU keeps what does not fit into its
            // device's queue and adds the next motions to it, so a motion of the walk sent while part of a
            // large one is still pending would be swallowed at the edge. Then motions of zero for
            // `home_pause`, each of which lets QEMU pass on more of what is pending.
            let (mut left_x, mut left_y) = (w.saturating_add(w / 4), h.saturating_add(h / 4));
            while left_x > 0 || left_y > 0 {
                let (dx, dy) = (left_x.min(HOME_CHUNK), left_y.min(HOME_CHUNK));
                (left_x, left_y) = (left_x - dx, left_y - dy);
                let (rx, ry) = proto::relative_position(-(dx as i32), -(dy as i32));
                self.send(proto::pointer_event(p.mask, rx, ry).to_vec(), "sending a pointer motion").await?;
                tokio::time::sleep(rel.pause).await;
            }
            let flush_until = Instant::now() + rel.home_pause;
            while Instant::now() < flush_until {
                let (rx, ry) = proto::relative_position(0, 0);
                self.send(proto::pointer_event(p.mask, rx, ry).to_vec(), "sending a pointer motion").await?;
                tokio::time::sleep(rel.pause.max(Duration::from_millis(1))).await;
            }
            *p = PointerState { x: 0, y: 0, mask: p.mask, homed: true };
        }
        let step = i32::try_from(rel.step.max(1)).unwrap_or(1);
        let (mut cx, mut cy) = (i32::from(p.x), i32::from(p.y));
        let (tx, ty) = (i32::from(x), i32::from(y));
        loop {
            let dx = (tx - cx).clamp(-step, step);
            let dy = (ty - cy).clamp(-step, step);
            let last = cx + dx == tx && cy + dy == ty;
            // The buttons change only with the last event (a press or release where the pointer arrives).
            let mask = if last { buttons } else { p.mask };
            let (rx, ry) = proto::relative_position(dx, dy);
            self.send(proto::pointer_event(mask, rx, ry).to_vec(), "sending a pointer motion").await?;
            (cx, cy) = (cx + dx, cy + dy);
            *p = PointerState { x: cx as u16, y: cy as u16, mask, homed: p.homed };
            if last {
                return Ok(());
            }
            tokio::time::sleep(rel.pause).await;
        }
    }

    /// Moves the pointer, keeping the buttons that are held.
    pub async fn move_to(&self, x: u32, y: u32) -> Result<(), Error> {
        let mask = self.pointer.lock().await.mask;
        self.pointer(x, y, mask).await
    }

    /// Presses or releases `button` where the pointer is.
    pub async fn button(&self, button: Button, down: bool) -> Result<(), Error> {
        let p = *self.pointer.lock().await;
        let mask = if down { p.mask | button.mask() } else { p.mask & !button.mask() };
        self.pointer(p.x.into(), p.y.into(), mask).await
    }

    /// Moves to (x, y), presses and releases `button`, timed by [`ClickTiming::default`] so every guest sees
    /// the click. Whoever moves the pointer next should first let the guest see the release (see
    /// [`ClickTiming`]).
    pub async fn click(&self, x: u32, y: u32, button: Button) -> Result<(), Error> {
        self.click_with(x, y, button, &ClickTiming::default()).await
    }

    /// Moves to (x, y), waits, presses `button`, holds it and releases it, as `timing` says.
    pub async fn click_with(&self, x: u32, y: u32, button: Button, timing: &ClickTiming) -> Result<(), Error> {
        self.move_to(x, y).await?;
        tokio::time::sleep(timing.before_press).await;
        self.button(button, true).await?;
        tokio::time::sleep(timing.hold).await;
        self.button(button, false).await
    }

    fn key_message(&self, key: Key, down: bool) -> Vec<u8> {
        message(self.supports_extended_keys(), key, down)
    }

    /// Sends one message through the writer task and waits until it is written.
    async fn send(&self, bytes: Vec<u8>, doing: &'static str) -> Result<(), Error> {
        self.status()?;
        let (done, result) = oneshot::channel();
        if self.writes.send(WriteCmd { bytes, doing, done: Some(done) }).is_err() {
            return Err(self.status().err().unwrap_or_else(|| gone(doing)));
        }
        match result.await {
            Ok(r) => r,
            Err(_) => Err(self.status().err().unwrap_or_else(|| gone(doing))),
        }
    }

    /// Waits until `f` returns `Some` (checked now and after every change), the session fails, or `timeout`
    /// passes (`Ok(None)`).
    ///
    /// If `timeout` passes while the reader is in the middle of a message, the wait goes on (for at most another
    /// `timeout`): the reader's own read timeout then decides, so a server that stalls mid-message is reported
    /// as such rather than as a generic wait timeout, and one that is still sending gets to finish.
    async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&mut State) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        let mut changes = self.shared.changed.subscribe();
        let deadline = Instant::now() + timeout;
        let grace_end = deadline + timeout;
        loop {
            {
                let mut st = self.shared.lock();
                if let Some(v) = f(&mut st) {
                    return Ok(Some(v));
                }
                if let Some(e) = &st.failure {
                    return Err(e.clone());
                }
            }
            let now = Instant::now();
            let wake = if now < deadline {
                deadline
            } else if now < grace_end && self.shared.mid_message.load(Ordering::Relaxed) {
                (now + Duration::from_millis(20)).min(grace_end)
            } else {
                return Ok(None);
            };
            match tokio::time::timeout_at(wake, changes.changed()).await {
                Err(_) => continue,
                Ok(Err(_)) => return Err(gone("waiting for the server")),
                Ok(Ok(())) => {}
            }
        }
    }
}

fn gone(doing: &str) -> Error {
    Error::lost(doing, std::io::Error::new(std::io::ErrorKind::NotConnected, "the connection's tasks have stopped"))
}

fn message(extended: bool, key: Key, down: bool) -> Vec<u8> {
    match key.scancode {
        Some(sc) if extended => proto::qemu_key_event(down, key.keysym, sc).to_vec(),
        _ => proto::key_event(down, key.keysym).to_vec(),
    }
}

/// Spaces key events `delay` apart on average: event *i* goes out at start + *i* × `delay`. Tokio's timer has
/// millisecond resolution, so sleeping a fixed delay after each event would round every pause up; scheduling
/// against absolute times keeps the average exact, at the cost of occasional back-to-back pairs, which QEMU's
/// queue absorbs. After a long stall (a busy machine) the schedule restarts instead of bursting to catch up.
struct Pacer {
    delay: Duration,
    next: Instant,
}

impl Pacer {
    /// Events further behind schedule than this many delays restart the schedule.
    const MAX_BEHIND: u32 = 16;

    fn new(delay: Duration) -> Self {
        Self { delay, next: Instant::now() }
    }

    /// Starts the schedule again from now (after a deliberate extra pause, which must not be caught up on).
    fn restart(&mut self) {
        self.next = Instant::now();
    }

    async fn tick(&mut self) {
        self.next += self.delay;
        let now = Instant::now();
        if self.next > now {
            tokio::time::sleep_until(self.next).await;
        } else if now - self.next > self.delay * Self::MAX_BEHIND {
            self.next = now;
        }
    }
}

async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<WriteCmd>,
    shared: Arc<Shared>,
    timeout: Duration,
) {
    while let Some(cmd) = rx.recv().await {
        let result = write_all(&mut wr, &cmd.bytes, timeout, cmd.doing).await;
        if let Err(e) = &result {
            shared.fail(e.clone());
        }
        let failed = result.is_err();
        if let Some(done) = cmd.done {
            let _ = done.send(result);
        }
        if failed {
            return;
        }
    }
}

/// What the reader collects during one FramebufferUpdate.
#[derive(Default)]
struct Pending {
    start: u64,
    rects: Vec<Rect>,
    resized: bool,
}

fn add_damage(list: &mut Vec<Rect>, r: Rect) {
    if list.len() >= MAX_DAMAGE_RECTS {
        let all = list.iter().fold(r, |acc, x| acc.union(x));
        list.clear();
        list.push(all);
    } else {
        list.push(r);
    }
}

async fn read_loop(
    mut rd: OwnedReadHalf,
    mut decoder: Decoder,
    mut fb: Framebuffer,
    shared: &Shared,
    writes: &mpsc::UnboundedSender<WriteCmd>,
    timeout: Duration,
) -> Result<std::convert::Infallible, Error> {
    const CHUNK: usize = 256 * 1024;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut start = 0usize;
    let mut events = Vec::new();
    let mut pending = Pending::default();
    let mut full_request_due = false;
    loop {
        let used = decoder.feed(&buf[start..], &mut fb, &mut events)?;
        start += used;
        for ev in events.drain(..) {
            match ev {
                Event::UpdateStarted => {
                    let mut st = shared.lock();
                    st.updates_started += 1;
                    pending = Pending { start: st.updates_started, ..Pending::default() };
                }
                Event::Painted(r) => {
                    shared.lock().painted(pending.start, r);
                    add_damage(&mut pending.rects, r);
                }
                Event::Resized { width, height } => {
                    tracing::debug!(width, height, "framebuffer resized");
                    shared.lock().resized(width, height);
                    pending.resized = true;
                    pending.rects.clear();
                    full_request_due = true;
                }
                Event::ExtendedKeyEvents => {
                    shared.lock().extended_keys = true;
                    shared.notify();
                }
                Event::CursorShape(cursor) => {
                    tracing::debug!(?cursor, "pointer shape");
                    shared.lock().cursor = Some(Arc::new(cursor));
                    shared.notify();
                }
                Event::PointerMode { absolute } => {
                    tracing::debug!(absolute, "pointer mode");
                    shared.lock().pointer_absolute = Some(absolute);
                    shared.notify();
                }
                Event::PointerMoved { x, y } => {
                    shared.lock().pointer_pos = (x, y);
                    shared.notify();
                }
                Event::UpdateFinished => {
                    publish(shared, &fb, &pending);
                    shared.notify();
                    let (w, h) = (fb.width(), fb.height());
                    let bytes = proto::update_request(!full_request_due, 0, 0, w, h).to_vec();
                    full_request_due = false;
                    let _ = writes.send(WriteCmd { bytes, doing: "requesting a framebuffer update", done: None });
                }
                Event::Bell => {
                    shared.lock().bells += 1;
                    shared.notify();
                }
                Event::CutText { text, .. } => {
                    shared.lock().cut_text = Some(text.iter().map(|&b| char::from(b)).collect());
                    shared.notify();
                }
            }
        }
        if start == buf.len() {
            buf.clear();
            start = 0;
        } else if start > 0 && buf.capacity() - buf.len() < CHUNK / 4 {
            buf.drain(..start);
            start = 0;
        }
        if buf.capacity() - buf.len() < CHUNK / 4 {
            buf.reserve(CHUNK);
        }
        let idle = decoder.is_idle() && start == buf.len();
        shared.mid_message.store(!idle, Ordering::Relaxed);
        let read = if idle {
            rd.read_buf(&mut buf).await
        } else {
            match tokio::time::timeout(timeout, rd.read_buf(&mut buf)).await {
                Ok(r) => r,
                Err(_) => return Err(Error::Timeout { doing: decoder.activity(&buf[start..]), after: timeout }),
            }
        };
        match read {
            Ok(0) => {
                let eof = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the server closed the connection");
                return Err(Error::lost(decoder.activity(&buf[start..]), eof));
            }
            Ok(_) => {}
            Err(e) => return Err(Error::lost(decoder.activity(&buf[start..]), e)),
        }
    }
}

/// Copies what changed during an update into the shared frame, records the damage and completes the
/// full-screen requests whose frame is now there.
fn publish(shared: &Shared, fb: &Framebuffer, pending: &Pending) {
    let (w, h) = (fb.width(), fb.height());
    let mut st = shared.lock();
    let st = &mut *st;
    st.done_ticket = st.done_ticket.max(st.ready_ticket);
    if pending.resized || (st.frame.width, st.frame.height) != (w, h) {
        st.frame = Frame { width: w, height: h, pixels: Arc::new(fb.pixels().to_vec()), serial: st.frame.serial + 1 };
        st.damage.clear();
        st.damage.push(Rect::new(0, 0, w, h));
    } else if !pending.rects.is_empty() {
        let pixels = Arc::make_mut(&mut st.frame.pixels);
        for r in &pending.rects {
            fb.copy_rect_to(*r, pixels);
        }
        st.frame.serial += 1;
        for r in &pending.rects {
            add_damage(&mut st.damage, *r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Consumers share a client between tasks and spawn its futures.
    #[allow(dead_code)]
    fn client_and_its_futures_are_send(c: &Client) {
        fn send<T: Send + Sync>(_: &T) {}
        fn fut<T: Send>(_: T) {}
        send(c);
        fut(Client::connect("", ConnectOptions::default()));
        fut(c.refresh());
        fut(c.wait_for_damage(Duration::ZERO));
        fut(c.type_text("", &TypeOptions::default()));
        fut(c.press_chord(&Chord::parse("enter").unwrap_or(Chord { modifiers: vec![], key: Key::ENTER })));
        fut(c.click(0, 0, Button::Left));
    }

    #[test]
    fn qemu_pacing_is_slower_than_qemu() {
        assert_eq!(TypeOptions::for_qemu_key_delay(1).key_delay, Duration::from_millis(2));
        assert_eq!(TypeOptions::for_qemu_key_delay(10).key_delay, Duration::from_millis(12));
        assert_eq!(TypeOptions::for_qemu_key_delay(0).key_delay, Duration::from_millis(12));
        assert!(TypeOptions::default().key_delay > Duration::from_millis(10));
    }

    #[test]
    fn damage_collapses_into_a_bounding_box() {
        let mut list = Vec::new();
        for i in 0..MAX_DAMAGE_RECTS as u32 + 1 {
            add_damage(&mut list, Rect::new(i, i, 1, 1));
        }
        assert_eq!(list, [Rect::new(0, 0, MAX_DAMAGE_RECTS as u32 + 1, MAX_DAMAGE_RECTS as u32 + 1)]);
    }
}
