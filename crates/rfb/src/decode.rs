//! The server-message decoder: bytes in, framebuffer changes and events out, no I/O.
//!
//! Sans-IO so that it can be fuzzed and unit-tested over byte slices, and so that the background reader only
//! moves bytes from the socket into it. [`Decoder::feed`] consumes as many complete protocol units as the
//! input holds (a message header, a rectangle, or whole rows of a Raw rectangle) and tells the caller how many
//! bytes it used; the rest stays with the caller until more arrives. Raw rectangles are applied row by row, so
//! the caller's buffer never needs to hold more than one row of a Raw rectangle, one ZRLE rectangle (capped by
//! its size), or one capped ServerCutText.
//!
//! Every length and rectangle is checked before it is used: rectangles must lie inside the framebuffer, sizes
//! must be within [`Limits`], encodings must be ones the client asked for. Anything else is a
//! [`ProtocolError`] naming the offending value.

use flate2::Decompress;

use crate::cursor::{Cursor, mask_len};
use crate::error::ProtocolError;
use crate::framebuffer::{BYTES_PER_PIXEL, Framebuffer};
use crate::proto::{Encoding, Rect};
use crate::zrle;

/// Limits on what a server may make the client allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Widest framebuffer accepted.
    pub max_width: u32,
    /// Tallest framebuffer accepted.
    pub max_height: u32,
    /// Most pixels accepted (width × height); the client keeps two RGBA copies.
    pub max_pixels: u64,
    /// ServerCutText beyond this many bytes is truncated (the rest is read and dropped).
    pub max_cut_text: u32,
    /// Longest desktop name or reason string accepted.
    pub max_string: u32,
    /// Widest and tallest pointer shape accepted (Cursor and XCursor pseudo-encodings).
    pub max_cursor_size: u32,
}

impl Default for Limits {
    /// 8192×8192 at most and 8K UHD's pixel count (7680×4320); 1 MiB of clipboard; 64 KiB strings; pointer
    /// shapes up to 256×256 (operating systems use 32×32 to 128×128, large accessibility pointers up to 256).
    fn default() -> Self {
        Self {
            max_width: 8192,
            max_height: 8192,
            max_pixels: 7680 * 4320,
            max_cut_text: 1 << 20,
            max_string: 1 << 16,
            max_cursor_size: 256,
        }
    }
}

impl Limits {
    /// Checks a framebuffer size announced by the server.
    pub fn check_size(&self, width: u32, height: u32) -> Result<(), ProtocolError> {
        if width > self.max_width || height > self.max_height || u64::from(width) * u64::from(height) > self.max_pixels
        {
            return Err(ProtocolError::FramebufferTooLarge {
                width,
                height,
                max_width: self.max_width,
                max_height: self.max_height,
                max_pixels: self.max_pixels,
            });
        }
        Ok(())
    }
}

/// Something the decoder saw, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A FramebufferUpdate message began.
    UpdateStarted,
    /// Pixels in this rectangle changed (already applied to the framebuffer).
    Painted(Rect),
    /// The framebuffer was reallocated at a new size (black until the server paints it).
    Resized {
        /// New width.
        width: u32,
        /// New height.
        height: u32,
    },
    /// The server accepts QEMU Extended Key Events.
    ExtendedKeyEvents,
    /// The pointer's shape changed (Cursor or XCursor pseudo-encoding); the server leaves the pointer out of
    /// the framebuffer.
    CursorShape(Cursor),
    /// Something other than this client moved the pointer (PointerPos pseudo-encoding); clamped to the
    /// framebuffer.
    PointerMoved {
        /// Pixels from the left.
        x: u32,
        /// Pixels from the top.
        y: u32,
    },
    /// The server says whether the guest's pointer device is absolute (QEMU Pointer Motion Change
    /// pseudo-encoding): sent when the encodings are set and again whenever the guest's device changes.
    PointerMode {
        /// True for an absolute device (a USB tablet), false for a relative one (a PS/2 or USB mouse).
        absolute: bool,
    },
    /// The FramebufferUpdate message ended.
    UpdateFinished,
    /// The server rang the bell.
    Bell,
    /// The server's clipboard (ServerCutText, Latin-1).
    CutText {
        /// The text, at most [`Limits::max_cut_text`] bytes.
        text: Vec<u8>,
        /// True when the server sent more than the limit and the rest was dropped.
        truncated: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between messages.
    Idle,
    /// Inside a FramebufferUpdate, before a rectangle header. `left` is `None` when the update ends with LastRect.
    RectHeader { left: Option<u16> },
    /// Inside a Raw rectangle, `row` rows done.
    Raw { rect: Rect, row: u32, left: Option<u16> },
    /// Receiving the kept part of a ServerCutText.
    CutText { keep: u32, total: u32 },
    /// Dropping bytes the client does not use (colour map entries, clipboard beyond the limit).
    Skip { bytes: u64, what: &'static str },
}

/// Decodes server-to-client messages into a [`Framebuffer`]. Holds the connection's one zlib stream.
pub struct Decoder {
    state: State,
    limits: Limits,
    requested: Vec<Encoding>,
    zlib: Decompress,
    zbuf: Vec<u8>,
    last_rect_allowed: bool,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").field("state", &self.state).field("requested", &self.requested).finish()
    }
}

/// Message type numbers, server to client.
mod msg {
    pub const FRAMEBUFFER_UPDATE: u8 = 0;
    pub const SET_COLOUR_MAP_ENTRIES: u8 = 1;
    pub const BELL: u8 = 2;
    pub const SERVER_CUT_TEXT: u8 = 3;
    pub const QEMU: u8 = 255;
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Decoder {
    /// A decoder for a connection that requested `encodings` (rectangles in other encodings are errors).
    pub fn new(encodings: &[Encoding], limits: Limits) -> Self {
        Self {
            state: State::Idle,
            limits,
            requested: encodings.to_vec(),
            zlib: Decompress::new(true),
            zbuf: Vec::new(),
            last_rect_allowed: encodings.contains(&Encoding::LastRect),
        }
    }

    /// True between messages: no partial message is pending (the caller applies no read timeout then, as a
    /// server with nothing to say is silent).
    pub fn is_idle(&self) -> bool {
        self.state == State::Idle
    }

    /// What the decoder is in the middle of, for error messages ("reading a Raw rectangle 10x10+0+0").
    pub fn activity(&self, pending: &[u8]) -> String {
        match self.state {
            State::Idle => match pending.first() {
                None => "waiting for a server message".to_owned(),
                Some(&t) => format!("reading a {} message", message_name(t)),
            },
            State::RectHeader { .. } => "reading a FramebufferUpdate rectangle".to_owned(),
            State::Raw { rect, row, .. } => format!("reading row {row} of a Raw rectangle {rect}"),
            State::CutText { total, .. } => format!("reading a {total}-byte ServerCutText"),
            State::Skip { what, .. } => format!("reading {what}"),
        }
    }

    /// Consumes complete units from the front of `input`, applies them to `fb` and appends what happened to
    /// `events`. Returns how many bytes were used; the caller keeps the rest and calls again with more.
    pub fn feed(
        &mut self,
        input: &[u8],
        fb: &mut Framebuffer,
        events: &mut Vec<Event>,
    ) -> Result<usize, ProtocolError> {
        let mut pos = 0;
        while let Some(used) = self.step(&input[pos..], fb, events)? {
            pos += used;
        }
        Ok(pos)
    }

    /// One unit: the bytes it used (possibly none, e.g. an empty ServerCutText), or `None` when the input does
    /// not hold a complete unit yet. Every `Some` moves the state machine on, so `feed` terminates.
    fn step(
        &mut self,
        input: &[u8],
        fb: &mut Framebuffer,
        events: &mut Vec<Event>,
    ) -> Result<Option<usize>, ProtocolError> {
        let used = match self.state {
            State::Idle => return self.message(input, events),
            State::RectHeader { left } => return self.rect(input, left, fb, events),
            State::Raw { rect, row, left } => {
                let row_bytes = rect.width as usize * BYTES_PER_PIXEL;
                let rows = (input.len() / row_bytes).min((rect.height - row) as usize);
                if rows == 0 {
                    return Ok(None);
                }
                let used = rows * row_bytes;
                fb.put_wire_rows(rect, row, &input[..used]);
                let row = row + rows as u32;
                if row == rect.height {
                    events.push(Event::Painted(rect));
                    self.rect_done(left, events);
                } else {
                    self.state = State::Raw { rect, row, left };
                }
                used
            }
            State::CutText { keep, total } => {
                let Some(text) = input.get(..keep as usize) else { return Ok(None) };
                events.push(Event::CutText { text: text.to_vec(), truncated: total > keep });
                self.state = match u64::from(total - keep) {
                    0 => State::Idle,
                    bytes => State::Skip { bytes, what: "the part of a ServerCutText beyond the limit" },
                };
                keep as usize
            }
            State::Skip { bytes, what } => {
                let n = (input.len() as u64).min(bytes);
                if n == 0 {
                    return Ok(None);
                }
                self.state = if n == bytes { State::Idle } else { State::Skip { bytes: bytes - n, what } };
                n as usize
            }
        };
        Ok(Some(used))
    }

    fn message(&mut self, input: &[u8], events: &mut Vec<Event>) -> Result<Option<usize>, ProtocolError> {
        let Some(&kind) = input.first() else { return Ok(None) };
        match kind {
            msg::FRAMEBUFFER_UPDATE => {
                let Some(h) = input.get(..4) else { return Ok(None) };
                let count = be16(h, 2);
                events.push(Event::UpdateStarted);
                if count == 0 {
                    events.push(Event::UpdateFinished);
                    self.state = State::Idle;
                } else {
                    let left = if count == u16::MAX && self.last_rect_allowed { None } else { Some(count) };
                    self.state = State::RectHeader { left };
                }
                Ok(Some(4))
            }
            msg::SET_COLOUR_MAP_ENTRIES => {
                // Meaningless with a true-colour pixel format; the entries are read and dropped.
                let Some(h) = input.get(..6) else { return Ok(None) };
                let count = u64::from(be16(h, 4));
                self.state = match count {
                    0 => State::Idle,
                    n => State::Skip { bytes: n * 6, what: "SetColourMapEntries colours" },
                };
                Ok(Some(6))
            }
            msg::BELL => {
                events.push(Event::Bell);
                Ok(Some(1))
            }
            msg::SERVER_CUT_TEXT => {
                let Some(h) = input.get(..8) else { return Ok(None) };
                let total = be32(h, 4);
                if total & 0x8000_0000 != 0 {
                    return Err(ProtocolError::ExtendedCutText(total));
                }
                let keep = total.min(self.limits.max_cut_text);
                self.state = State::CutText { keep, total };
                Ok(Some(8))
            }
            msg::QEMU => {
                let Some(h) = input.get(..2) else { return Ok(None) };
                Err(ProtocolError::UnknownQemuMessage(h[1]))
            }
            other => Err(ProtocolError::UnknownMessage(other)),
        }
    }

    fn rect_done(&mut self, left: Option<u16>, events: &mut Vec<Event>) {
        match left {
            Some(1) => {
                events.push(Event::UpdateFinished);
                self.state = State::Idle;
            }
            Some(n) => self.state = State::RectHeader { left: Some(n - 1) },
            None => self.state = State::RectHeader { left: None },
        }
    }

    fn rect(
        &mut self,
        input: &[u8],
        left: Option<u16>,
        fb: &mut Framebuffer,
        events: &mut Vec<Event>,
    ) -> Result<Option<usize>, ProtocolError> {
        let Some(h) = input.get(..12) else { return Ok(None) };
        let rect = Rect::new(be16(h, 0).into(), be16(h, 2).into(), be16(h, 4).into(), be16(h, 6).into());
        let number = i32::from_be_bytes([h[8], h[9], h[10], h[11]]);
        let encoding = Encoding::from_number(number)
            .filter(|e| self.requested.contains(e))
            .ok_or(ProtocolError::UnrequestedEncoding { rect, encoding: number })?;
        let in_bounds = |name: &'static str, fb: &Framebuffer| {
            if rect.fits_in(fb.width(), fb.height()) {
                Ok(())
            } else {
                Err(ProtocolError::RectOutOfBounds { rect, encoding: name, width: fb.width(), height: fb.height() })
            }
        };
        let used = match encoding {
            Encoding::Raw => {
                in_bounds("Raw", fb)?;
                if rect.is_empty() {
                    self.rect_done(left, events);
                } else {
                    self.state = State::Raw { rect, row: 0, left };
                }
                return Ok(Some(12));
            }
            Encoding::CopyRect => {
                let Some(b) = input.get(12..16) else { return Ok(None) };
                in_bounds("CopyRect", fb)?;
                let (src_x, src_y) = (u32::from(be16(b, 0)), u32::from(be16(b, 2)));
                if !Rect::new(src_x, src_y, rect.width, rect.height).fits_in(fb.width(), fb.height()) {
                    return Err(ProtocolError::CopySourceOutOfBounds {
                        rect,
                        src_x,
                        src_y,
                        width: fb.width(),
                        height: fb.height(),
                    });
                }
                fb.copy_rect(src_x, src_y, rect);
                if !rect.is_empty() {
                    events.push(Event::Painted(rect));
                }
                16
            }
            Encoding::Zrle => {
                let Some(b) = input.get(12..16) else { return Ok(None) };
                in_bounds("ZRLE", fb)?;
                let len = u64::from(be32(b, 0));
                let max = zrle::max_compressed(rect);
                if len > max {
                    return Err(ProtocolError::TooLong { what: "ZRLE rectangle data", len, max });
                }
                let end = 16 + len as usize;
                let Some(data) = input.get(16..end) else { return Ok(None) };
                let max_out = usize::try_from(zrle::max_tile_data(rect)).unwrap_or(usize::MAX);
                zrle::inflate(&mut self.zlib, data, &mut self.zbuf, max_out)
                    .and_then(|()| zrle::decode_tiles(&self.zbuf, rect, fb))
                    .map_err(|problem| ProtocolError::Zrle { rect, problem })?;
                if !rect.is_empty() {
                    events.push(Event::Painted(rect));
                }
                end
            }
            Encoding::DesktopSize => {
                self.resize(rect.width, rect.height, fb, events)?;
                12
            }
            Encoding::ExtendedDesktopSize => {
                let Some(b) = input.get(12..16) else { return Ok(None) };
                let screens = usize::from(b[0]);
                let end = 16 + 16 * screens;
                if input.len() < end {
                    return Ok(None);
                }
                // x is the reason, y the status; a non-zero status answers a layout request that failed and
                // leaves the framebuffer as it was.
                if rect.y == 0 && (rect.width, rect.height) != (fb.width(), fb.height()) {
                    self.resize(rect.width, rect.height, fb, events)?;
                }
                end
            }
            Encoding::LastRect => {
                events.push(Event::UpdateFinished);
                self.state = State::Idle;
                return Ok(Some(12));
            }
            Encoding::QemuExtendedKeyEvent => {
                events.push(Event::ExtendedKeyEvents);
                12
            }
            Encoding::Cursor => {
                // x, y: the hot spot; pixels in the session's format, then the bitmask.
                self.check_cursor(rect)?;
                let pixels = rect.width as usize * rect.height as usize * BYTES_PER_PIXEL;
                let end = 12 + pixels + mask_len(rect.width, rect.height);
                let Some(data) = input.get(12..end) else { return Ok(None) };
                let (px, mask) = data.split_at(pixels);
                events.push(Event::CursorShape(Cursor::from_rich(rect.width, rect.height, (rect.x, rect.y), px, mask)));
                end
            }
            Encoding::XCursor => {
                // x, y: the hot spot; for a non-empty shape, two RGB colours, then the bitmap and the bitmask.
                self.check_cursor(rect)?;
                let (w, h, hot) = (rect.width, rect.height, (rect.x, rect.y));
                if rect.is_empty() {
                    events.push(Event::CursorShape(Cursor::from_x(w, h, hot, [0; 3], [0; 3], &[], &[])));
                    12
                } else {
                    let bits = mask_len(w, h);
                    let end = 12 + 6 + 2 * bits;
                    let Some(data) = input.get(12..end) else { return Ok(None) };
                    let (colours, maps) = data.split_at(6);
                    let (bitmap, mask) = maps.split_at(bits);
                    let (primary, secondary) =
                        ([colours[0], colours[1], colours[2]], [colours[3], colours[4], colours[5]]);
                    events.push(Event::CursorShape(Cursor::from_x(w, h, hot, primary, secondary, bitmap, mask)));
                    end
                }
            }
            Encoding::PointerTypeChange => {
                // x is 1 for absolute, 0 for relative; width and height are the screen's (unused).
                events.push(Event::PointerMode { absolute: rect.x != 0 });
                12
            }
            Encoding::PointerPos => {
                let x = rect.x.min(fb.width().saturating_sub(1));
                let y = rect.y.min(fb.height().saturating_sub(1));
                events.push(Event::PointerMoved { x, y });
                12
            }
        };
        self.rect_done(left, events);
        Ok(Some(used))
    }

    /// Checks a pointer shape's size against [`Limits::max_cursor_size`] before its data is waited for.
    fn check_cursor(&self, rect: Rect) -> Result<(), ProtocolError> {
        let max = self.limits.max_cursor_size;
        if rect.width > max || rect.height > max {
            return Err(ProtocolError::CursorTooLarge { width: rect.width, height: rect.height, max });
        }
        Ok(())
    }

    fn resize(
        &mut self,
        width: u32,
        height: u32,
        fb: &mut Framebuffer,
        events: &mut Vec<Event>,
    ) -> Result<(), ProtocolError> {
        self.limits.check_size(width, height)?;
        fb.reset(width, height);
        events.push(Event::Resized { width, height });
        Ok(())
    }
}

fn message_name(kind: u8) -> String {
    match kind {
        msg::FRAMEBUFFER_UPDATE => "FramebufferUpdate".to_owned(),
        msg::SET_COLOUR_MAP_ENTRIES => "SetColourMapEntries".to_owned(),
        msg::BELL => "Bell".to_owned(),
        msg::SERVER_CUT_TEXT => "ServerCutText".to_owned(),
        msg::QEMU => "QEMU".to_owned(),
        other => format!("type-{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Encoding; 11] = Encoding::ALL;

    fn header(x: u16, y: u16, w: u16, h: u16, enc: i32) -> Vec<u8> {
        let mut v = Vec::new();
        for n in [x, y, w, h] {
            v.extend_from_slice(&n.to_be_bytes());
        }
        v.extend_from_slice(&enc.to_be_bytes());
        v
    }

    fn update(rects: u16) -> Vec<u8> {
        let mut v = vec![0, 0];
        v.extend_from_slice(&rects.to_be_bytes());
        v
    }

    /// Feeds `bytes` one at a time (the worst split) and all at once; both must give the same result.
    fn run(bytes: &[u8], fb_size: (u32, u32)) -> (Result<Vec<Event>, ProtocolError>, Framebuffer) {
        let mut results = vec![];
        for chunk in [1usize, bytes.len().max(1)] {
            let mut d = Decoder::new(&ALL, Limits::default());
            let mut fb = Framebuffer::new(fb_size.0, fb_size.1);
            let mut events = vec![];
            let mut buf: Vec<u8> = vec![];
            let mut result = Ok(());
            for piece in bytes.chunks(chunk) {
                buf.extend_from_slice(piece);
                match d.feed(&buf, &mut fb, &mut events) {
                    Ok(n) => {
                        buf.drain(..n);
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            results.push((result.map(|()| events), fb));
        }
        let second = results.pop().unwrap();
        let first = results.pop().unwrap();
        assert_eq!(first, second, "byte-at-a-time and whole-input decoding differ");
        first
    }

    #[test]
    fn raw_copyrect_and_pseudo_rects() {
        let mut bytes = update(6);
        bytes.extend(header(0, 0, 2, 1, 0));
        bytes.extend_from_slice(&[1, 2, 3, 0, 4, 5, 6, 0]);
        bytes.extend(header(1, 1, 2, 1, 1));
        bytes.extend_from_slice(&[0, 0, 0, 0]);
        bytes.extend(header(0, 0, 0, 0, -258));
        // QEMU Pointer Motion Change: x says absolute (1) or relative (0); width and height are the screen's.
        bytes.extend(header(0, 0, 3, 2, -257));
        bytes.extend(header(1, 0, 3, 2, -257));
        bytes.extend(header(0, 0, 0, 0, 0));
        bytes.push(2); // bell
        let (events, fb) = run(&bytes, (3, 2));
        assert_eq!(
            events.unwrap(),
            [
                Event::UpdateStarted,
                Event::Painted(Rect::new(0, 0, 2, 1)),
                Event::Painted(Rect::new(1, 1, 2, 1)),
                Event::ExtendedKeyEvents,
                Event::PointerMode { absolute: false },
                Event::PointerMode { absolute: true },
                Event::UpdateFinished,
                Event::Bell,
            ]
        );
        assert_eq!(&fb.pixels()[16..24], &[1, 2, 3, 255, 4, 5, 6, 255]);
    }

    #[test]
    fn resize_and_last_rect() {
        let mut bytes = update(u16::MAX);
        bytes.extend(header(0, 0, 5, 4, -223));
        bytes.extend(header(4, 3, 1, 1, 0));
        bytes.extend_from_slice(&[9, 9, 9, 0]);
        bytes.extend(header(0, 0, 0, 0, -224));
        // ExtendedDesktopSize: reason 1, status 0, one screen.
        bytes.extend(update(1));
        bytes.extend(header(1, 0, 7, 6, -308));
        bytes.extend_from_slice(&[1, 0, 0, 0]);
        bytes.extend_from_slice(&[0; 16]);
        // A failed layout request (status 3) does not resize.
        bytes.extend(update(1));
        bytes.extend(header(1, 3, 9, 9, -308));
        bytes.extend_from_slice(&[0, 0, 0, 0]);
        let (events, fb) = run(&bytes, (2, 2));
        assert_eq!(
            events.unwrap(),
            [
                Event::UpdateStarted,
                Event::Resized { width: 5, height: 4 },
                Event::Painted(Rect::new(4, 3, 1, 1)),
                Event::UpdateFinished,
                Event::UpdateStarted,
                Event::Resized { width: 7, height: 6 },
                Event::UpdateFinished,
                Event::UpdateStarted,
                Event::UpdateFinished,
            ]
        );
        assert_eq!((fb.width(), fb.height()), (7, 6));
    }

    #[test]
    fn pointer_shapes_and_positions_leave_the_framebuffer_alone() {
        let mut bytes = update(5);
        // Cursor: 2x2, hot spot (1,0), four pixels, mask rows 10 and 01.
        bytes.extend(header(1, 0, 2, 2, -239));
        bytes.extend_from_slice(&[1, 1, 1, 0, 2, 2, 2, 0, 3, 3, 3, 0, 4, 4, 4, 0]);
        bytes.extend_from_slice(&[0b1000_0000, 0b0100_0000]);
        // XCursor: 3x1, primary white, secondary black, bitmap 100, mask 110.
        bytes.extend(header(0, 0, 3, 1, -240));
        bytes.extend_from_slice(&[255, 255, 255, 0, 0, 0, 0b1000_0000, 0b1100_0000]);
        // Hidden pointers: no data follows an empty shape in either encoding.
        bytes.extend(header(0, 0, 0, 0, -240));
        bytes.extend(header(5, 5, 0, 0, -239));
        // PointerPos beyond the 3x2 screen is clamped.
        bytes.extend(header(9, 1, 0, 0, -232));
        let (events, fb) = run(&bytes, (3, 2));
        let events = events.unwrap();
        assert_eq!(events.len(), 7, "{events:?}");
        let Event::CursorShape(rich) = &events[1] else { panic!("{events:?}") };
        assert_eq!((rich.width(), rich.height(), rich.hotspot()), (2, 2, (1, 0)));
        assert_eq!(rich.rgba(), &[1, 1, 1, 255, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 255]);
        let Event::CursorShape(x) = &events[2] else { panic!("{events:?}") };
        assert_eq!(x.rgba(), &[255, 255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 0]);
        assert!(matches!(&events[3], Event::CursorShape(c) if c.is_hidden()));
        assert!(matches!(&events[4], Event::CursorShape(c) if c.is_hidden()));
        assert_eq!(events[5], Event::PointerMoved { x: 2, y: 1 });
        assert_eq!(events[6], Event::UpdateFinished);
        assert_eq!(fb, Framebuffer::new(3, 2), "pointer shapes are not painted");
    }

    #[test]
    fn oversized_pointer_shapes_are_refused_before_their_data() {
        let mut d = Decoder::new(&ALL, Limits { max_cursor_size: 32, ..Limits::default() });
        let mut fb = Framebuffer::new(4, 4);
        for enc in [-239, -240] {
            let bytes = [update(1), header(0, 0, 33, 1, enc)].concat();
            let err = d.feed(&bytes, &mut fb, &mut vec![]).unwrap_err();
            assert_eq!(err, ProtocolError::CursorTooLarge { width: 33, height: 1, max: 32 });
            d = Decoder::new(&ALL, Limits { max_cursor_size: 32, ..Limits::default() });
        }
        // Not requested: an error like any other encoding.
        let mut d = Decoder::new(&[Encoding::Raw], Limits::default());
        let err = d.feed(&[update(1), header(0, 0, 1, 1, -239)].concat(), &mut fb, &mut vec![]).unwrap_err();
        assert!(matches!(err, ProtocolError::UnrequestedEncoding { encoding: -239, .. }), "{err}");
    }

    #[test]
    fn cut_text_colour_map_and_truncation() {
        let mut bytes = vec![3, 0, 0, 0, 0, 0, 0, 3];
        bytes.extend_from_slice(b"abc");
        bytes.extend_from_slice(&[1, 0, 0, 0, 0, 2]);
        bytes.extend_from_slice(&[0; 12]);
        let (events, _) = run(&bytes, (1, 1));
        assert_eq!(events.unwrap(), [Event::CutText { text: b"abc".to_vec(), truncated: false }]);

        let mut d = Decoder::new(&ALL, Limits { max_cut_text: 2, ..Limits::default() });
        let mut fb = Framebuffer::new(1, 1);
        let mut ev = vec![];
        let mut bytes = vec![3, 0, 0, 0, 0, 0, 0, 5];
        bytes.extend_from_slice(b"hello");
        bytes.push(2);
        assert_eq!(d.feed(&bytes, &mut fb, &mut ev).unwrap(), bytes.len());
        assert_eq!(ev, [Event::CutText { text: b"he".to_vec(), truncated: true }, Event::Bell]);
    }

    #[test]
    fn empty_cut_text_does_not_stall_the_stream() {
        let bytes = [vec![3, 0, 0, 0, 0, 0, 0, 0], update(0)].concat();
        let (events, _) = run(&bytes, (1, 1));
        assert_eq!(
            events.unwrap(),
            [Event::CutText { text: vec![], truncated: false }, Event::UpdateStarted, Event::UpdateFinished]
        );
    }

    #[test]
    fn hostile_input_is_an_error() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![7], "unknown server message type 7"),
            (vec![255, 1], "QEMU server message subtype 1"),
            ([update(1), header(0, 0, 3, 1, 0)].concat(), "outside the 2x2 framebuffer"),
            ([update(1), header(u16::MAX, 0, 2, 1, 0)].concat(), "outside"),
            ([update(1), header(0, 0, 1, 1, 5)].concat(), "encoding 5"),
            ([update(1), header(0, 0, 1, 1, 1), vec![0, 2, 0, 0]].concat(), "CopyRect source (2,0)"),
            ([update(1), header(0, 0, 9000, 10, -223)].concat(), "exceeds the limit"),
            ([update(1), header(0, 0, 1, 1, 16), vec![0xff, 0, 0, 0]].concat(), "ZRLE rectangle data"),
            ([update(1), header(0, 0, 1, 1, 16), vec![0, 0, 0, 2, 0x78, 0x9c]].concat(), "tile data ends early"),
            (vec![3, 0, 0, 0, 0x80, 0, 0, 0], "extended clipboard"),
        ];
        for (bytes, want) in cases {
            let (result, _) = run(&bytes, (2, 2));
            let err = result.unwrap_err().to_string();
            assert!(err.contains(want), "{bytes:?}: {err} (wanted {want:?})");
        }
    }

    #[test]
    fn zrle_rect_through_the_stream() {
        use flate2::{Compress, Compression, FlushCompress};
        let mut comp = Compress::new(Compression::default(), true);
        let mut bytes = update(2);
        for (x, colour) in [(0u16, [10u8, 20, 30]), (1, [40, 50, 60])] {
            let mut z = Vec::with_capacity(64);
            comp.compress_vec(&[&[1u8][..], &colour].concat(), &mut z, FlushCompress::Sync).unwrap();
            bytes.extend(header(x, 0, 1, 2, 16));
            bytes.extend_from_slice(&(z.len() as u32).to_be_bytes());
            bytes.extend(z);
        }
        let (events, fb) = run(&bytes, (2, 2));
        assert_eq!(events.unwrap().len(), 4);
        assert_eq!(&fb.pixels()[8..16], &[10, 20, 30, 255, 40, 50, 60, 255]);
    }

    #[test]
    fn idle_and_activity() {
        let mut d = Decoder::new(&ALL, Limits::default());
        assert!(d.is_idle());
        assert_eq!(d.activity(&[0]), "reading a FramebufferUpdate message");
        let mut fb = Framebuffer::new(4, 4);
        let mut bytes = update(1);
        bytes.extend(header(0, 0, 4, 4, 0));
        bytes.extend_from_slice(&[0; 20]);
        d.feed(&bytes, &mut fb, &mut vec![]).unwrap();
        assert!(!d.is_idle());
        assert_eq!(d.activity(&[]), "reading row 1 of a Raw rectangle 4x4+0+0");
    }
}
