//! The messages a VNC viewer sends to the server, decoded from the byte stream `vmkit automate record` relays.
//!
//! The recorder forwards the viewer's bytes to the server unchanged and reads them on the way: pointer and key
//! events become the script. Every client-to-server message type a viewer may send once the server has
//! accepted the matching encoding has to be understood, because a message of unknown length ends the decoding
//! (nothing after it can be found again). [`Decoder`] is sans-IO: [`Decoder::push`] takes whatever bytes the
//! socket delivered, however split, and returns the messages completed by them. It allocates nothing the viewer
//! can grow: clipboard text (which may be gigabytes, or a password) is skipped, not stored, and the few
//! variable-length messages are capped. Fuzzed: `fuzz/fuzz_targets/client_messages.rs`.

/// Message types (RFB 3.8 and its registered extensions).
mod kind {
    pub const SET_PIXEL_FORMAT: u8 = 0;
    pub const SET_ENCODINGS: u8 = 2;
    pub const UPDATE_REQUEST: u8 = 3;
    pub const KEY_EVENT: u8 = 4;
    pub const POINTER_EVENT: u8 = 5;
    pub const CLIENT_CUT_TEXT: u8 = 6;
    pub const ENABLE_CONTINUOUS_UPDATES: u8 = 150;
    pub const CLIENT_FENCE: u8 = 248;
    pub const XVP: u8 = 250;
    pub const SET_DESKTOP_SIZE: u8 = 251;
    pub const GII: u8 = 253;
    pub const QEMU: u8 = 255;
}

/// The longest fence payload the protocol allows.
const MAX_FENCE_PAYLOAD: usize = 64;

/// One message from the viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// SetPixelFormat (the format itself does not matter to the recorder).
    SetPixelFormat,
    /// SetEncodings with the encoding numbers asked for.
    SetEncodings(Vec<i32>),
    /// FramebufferUpdateRequest.
    UpdateRequest {
        /// Only changes wanted.
        incremental: bool,
        /// Area asked for.
        x: u16,
        /// Area asked for.
        y: u16,
        /// Area asked for.
        width: u16,
        /// Area asked for.
        height: u16,
    },
    /// KeyEvent (X keysym).
    Key {
        /// Pressed or released.
        down: bool,
        /// The X keysym.
        keysym: u32,
    },
    /// QEMU Extended Key Event: a keysym with its PC scancode.
    QemuKey {
        /// Pressed or released.
        down: bool,
        /// The X keysym (may be 0 when the viewer knows only the scancode).
        keysym: u32,
        /// The XT scancode.
        keycode: u32,
    },
    /// PointerEvent: the buttons held (bit 0 left, 1 middle, 2 right, 3/4 wheel) and where.
    Pointer {
        /// Button mask.
        buttons: u8,
        /// Framebuffer pixels.
        x: u16,
        /// Framebuffer pixels.
        y: u16,
    },
    /// ClientCutText: the viewer's clipboard was sent to the server. Only its length is kept.
    CutText {
        /// Bytes of clipboard data (extended clipboard messages included).
        len: u32,
    },
    /// Any other message a viewer may send (continuous updates, fences, desktop size, XVP, GII, QEMU audio):
    /// understood so the stream stays in step, of no interest to a script.
    Other(u8),
}

/// Why the viewer's stream cannot be read on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// A message type this decoder does not know: its length is unknown, so nothing after it can be read.
    #[error("the viewer sent a message of unknown type {kind} at byte {offset} of its stream")]
    UnknownType {
        /// The type byte.
        kind: u8,
        /// Where it was, counted from the first message after the handshake.
        offset: u64,
    },
    /// A known message with a value the protocol does not allow.
    #[error("the viewer sent a malformed {what} message at byte {offset} of its stream")]
    Malformed {
        /// Which message.
        what: &'static str,
        /// Where it started.
        offset: u64,
    },
}

/// Incremental decoder of the viewer-to-server stream (after ServerInit).
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Clipboard bytes still to pass over.
    skip: u64,
    /// Stream offset of `buf[0]`.
    offset: u64,
    failed: Option<MessageError>,
}

/// What one attempt to read a message at the start of the buffer found.
enum Step {
    Need,
    Done(ClientMessage, usize),
    Skip(ClientMessage, usize, u64),
}

impl Decoder {
    /// A decoder at the start of the message stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes; returns every message they complete, in order. After an error every later call
    /// returns the same error.
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<Vec<ClientMessage>, MessageError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut out = Vec::new();
        loop {
            if self.skip > 0 {
                let n = usize::try_from(self.skip).unwrap_or(usize::MAX).min(bytes.len());
                bytes = &bytes[n..];
                self.skip -= n as u64;
                self.offset += n as u64;
                if self.skip > 0 {
                    return Ok(out);
                }
            }
            self.buf.extend_from_slice(bytes);
            bytes = &[];
            match self.step() {
                Err(e) => {
                    self.failed = Some(e.clone());
                    return Err(e);
                }
                Ok(Step::Need) => return Ok(out),
                Ok(Step::Done(msg, len)) => {
                    self.buf.drain(..len);
                    self.offset += len as u64;
                    out.push(msg);
                }
                Ok(Step::Skip(msg, len, skip)) => {
                    self.buf.drain(..len);
                    self.offset += len as u64;
                    out.push(msg);
                    // What is already buffered of the skipped part goes first.
                    let n = usize::try_from(skip).unwrap_or(usize::MAX).min(self.buf.len());
                    self.buf.drain(..n);
                    self.offset += n as u64;
                    self.skip = skip - n as u64;
                }
            }
        }
    }

    /// Bytes buffered for a message not complete yet.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    fn step(&self) -> Result<Step, MessageError> {
        let b = &self.buf;
        let Some(&kind) = b.first() else { return Ok(Step::Need) };
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let malformed = |what| MessageError::Malformed { what, offset: self.offset };
        // The fixed part needed before the length is known, then the whole length.
        let need = |n: usize| b.len() < n;
        let msg = match kind {
            kind::SET_PIXEL_FORMAT => {
                if need(20) {
                    return Ok(Step::Need);
                }
                Step::Done(ClientMessage::SetPixelFormat, 20)
            }
            kind::SET_ENCODINGS => {
                if need(4) {
                    return Ok(Step::Need);
                }
                let count = usize::from(u16_at(2));
                let len = 4 + 4 * count;
                if need(len) {
                    return Ok(Step::Need);
                }
                let encodings = (0..count).map(|i| u32_at(4 + 4 * i) as i32).collect();
                Step::Done(ClientMessage::SetEncodings(encodings), len)
            }
            kind::UPDATE_REQUEST => {
                if need(10) {
                    return Ok(Step::Need);
                }
                Step::Done(
                    ClientMessage::UpdateRequest {
                        incremental: b[1] != 0,
                        x: u16_at(2),
                        y: u16_at(4),
                        width: u16_at(6),
                        height: u16_at(8),
                    },
                    10,
                )
            }
            kind::KEY_EVENT => {
                if need(8) {
                    return Ok(Step::Need);
                }
                Step::Done(ClientMessage::Key { down: b[1] != 0, keysym: u32_at(4) }, 8)
            }
            kind::POINTER_EVENT => {
                if need(6) {
                    return Ok(Step::Need);
                }
                Step::Done(ClientMessage::Pointer { buttons: b[1], x: u16_at(2), y: u16_at(4) }, 6)
            }
            kind::CLIENT_CUT_TEXT => {
                if need(8) {
                    return Ok(Step::Need);
                }
                // Extended clipboard messages give the length negated.
                let raw = u32_at(4) as i32;
                let len = raw.unsigned_abs();
                Step::Skip(ClientMessage::CutText { len }, 8, u64::from(len))
            }
            kind::ENABLE_CONTINUOUS_UPDATES => {
                if need(10) {
                    return Ok(Step::Need);
                }
                Step::Done(ClientMessage::Other(kind), 10)
            }
            kind::CLIENT_FENCE => {
                if need(9) {
                    return Ok(Step::Need);
                }
                let payload = usize::from(b[8]);
                if payload > MAX_FENCE_PAYLOAD {
                    return Err(malformed("ClientFence"));
                }
                if need(9 + payload) {
                    return Ok(Step::Need);
                }
                Step::Done(ClientMessage::Other(kind), 9 + payload)
            }
            kind::XVP => {
                if need(4) {
                    return Ok(Step::Need);
                }
                Step::Done(ClientMessage::Other(kind), 4)
            }
            kind::SET_DESKTOP_SIZE => {
                if need(8) {
                    return Ok(Step::Need);
                }
                let len = 8 + 16 * usize::from(b[6]);
                if need(len) {
                    return Ok(Step::Need);
                }
                Step::Done(ClientMessage::Other(kind), len)
            }
            kind::GII => {
                if need(4) {
                    return Ok(Step::Need);
                }
                // Bit 7 of the second byte says the length is big-endian.
                let len = if b[1] & 0x80 != 0 { u16_at(2) } else { u16::from_le_bytes([b[2], b[3]]) };
                let len = 4 + usize::from(len);
                if need(len) {
                    return Ok(Step::Need);
                }
                Step::Done(ClientMessage::Other(kind), len)
            }
            kind::QEMU => {
                if need(2) {
                    return Ok(Step::Need);
                }
                match b[1] {
                    0 => {
                        if need(12) {
                            return Ok(Step::Need);
                        }
                        Step::Done(
                            ClientMessage::QemuKey { down: u16_at(2) != 0, keysym: u32_at(4), keycode: u32_at(8) },
                            12,
                        )
                    }
                    1 => {
                        if need(4) {
                            return Ok(Step::Need);
                        }
                        let len = match u16_at(2) {
                            0 | 1 => 4,
                            2 => 10,
                            _ => return Err(malformed("QEMU audio")),
                        };
                        if need(len) {
                            return Ok(Step::Need);
                        }
                        Step::Done(ClientMessage::Other(kind), len)
                    }
                    _ => return Err(malformed("QEMU")),
                }
            }
            other => return Err(MessageError::UnknownType { kind: other, offset: self.offset }),
        };
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointer(buttons: u8, x: u16, y: u16) -> Vec<u8> {
        let mut m = vec![5, buttons];
        m.extend_from_slice(&x.to_be_bytes());
        m.extend_from_slice(&y.to_be_bytes());
        m
    }

    fn key(down: bool, keysym: u32) -> Vec<u8> {
        let mut m = vec![4, u8::from(down), 0, 0];
        m.extend_from_slice(&keysym.to_be_bytes());
        m
    }

    /// A session as a TigerVNC viewer opens it, then input.
    fn session() -> (Vec<u8>, Vec<ClientMessage>) {
        let mut bytes = vec![0; 20];
        let mut expect = vec![ClientMessage::SetPixelFormat];
        bytes.extend_from_slice(&[2, 0, 0, 3]);
        for e in [16i32, 0, -223] {
            bytes.extend_from_slice(&e.to_be_bytes());
        }
        expect.push(ClientMessage::SetEncodings(vec![16, 0, -223]));
        bytes.extend_from_slice(&[3, 0, 0, 0, 0, 0, 7, 128, 4, 56]);
        expect.push(ClientMessage::UpdateRequest { incremental: false, x: 0, y: 0, width: 1920, height: 1080 });
        bytes.extend_from_slice(&[150, 1, 0, 0, 0, 0, 7, 128, 4, 56]);
        expect.push(ClientMessage::Other(150));
        bytes.extend_from_slice(&[248, 0, 0, 0, 0, 0, 0, 3, 2, 0xaa, 0xbb]);
        expect.push(ClientMessage::Other(248));
        bytes.extend_from_slice(&[251, 0, 3, 0, 2, 0, 1, 0]);
        bytes.extend_from_slice(&[0; 16]);
        expect.push(ClientMessage::Other(251));
        bytes.extend(pointer(1, 300, 200));
        expect.push(ClientMessage::Pointer { buttons: 1, x: 300, y: 200 });
        bytes.extend(key(true, 0xff0d));
        expect.push(ClientMessage::Key { down: true, keysym: 0xff0d });
        bytes.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 5]);
        bytes.extend_from_slice(b"s3crt");
        expect.push(ClientMessage::CutText { len: 5 });
        bytes.extend_from_slice(&[6, 0, 0, 0]);
        bytes.extend_from_slice(&(-3i32).to_be_bytes());
        bytes.extend_from_slice(&[1, 2, 3]);
        expect.push(ClientMessage::CutText { len: 3 });
        bytes.extend_from_slice(&[255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e]);
        expect.push(ClientMessage::QemuKey { down: true, keysym: 0x61, keycode: 0x1e });
        bytes.extend_from_slice(&[255, 1, 0, 2, 3, 2, 0, 0, 0xac, 0x44]);
        expect.push(ClientMessage::Other(255));
        bytes.extend_from_slice(&[253, 0x81, 0, 2, 9, 9]);
        expect.push(ClientMessage::Other(253));
        bytes.extend_from_slice(&[250, 0, 1, 2]);
        expect.push(ClientMessage::Other(250));
        bytes.extend(pointer(0, 301, 200));
        expect.push(ClientMessage::Pointer { buttons: 0, x: 301, y: 200 });
        (bytes, expect)
    }

    #[test]
    fn decodes_every_message_whole() {
        let (bytes, expect) = session();
        let mut d = Decoder::new();
        assert_eq!(d.push(&bytes).expect("decodes"), expect);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn decodes_the_same_however_the_bytes_are_split() {
        let (bytes, expect) = session();
        for chunk in [1, 2, 3, 5, 7, 13] {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for piece in bytes.chunks(chunk) {
                got.extend(d.push(piece).expect("decodes"));
            }
            assert_eq!(got, expect, "chunks of {chunk}");
        }
    }

    #[test]
    fn clipboard_text_is_skipped_not_kept() {
        let mut d = Decoder::new();
        let mut bytes = vec![6, 0, 0, 0];
        bytes.extend_from_slice(&1_000_000u32.to_be_bytes());
        assert_eq!(d.push(&bytes).expect("header"), [ClientMessage::CutText { len: 1_000_000 }]);
        for _ in 0..999 {
            assert!(d.push(&[b'x'; 1000]).expect("text").is_empty());
        }
        assert_eq!(d.pending(), 0);
        let mut last = vec![b'x'; 1000];
        last.extend(key(false, 0x61));
        assert_eq!(d.push(&last).expect("rest"), [ClientMessage::Key { down: false, keysym: 0x61 }]);
    }

    #[test]
    fn an_unknown_message_stops_the_stream_with_its_offset() {
        let mut d = Decoder::new();
        let mut bytes = pointer(0, 1, 1);
        bytes.push(77);
        let e = d.push(&bytes).expect_err("unknown");
        assert_eq!(e, MessageError::UnknownType { kind: 77, offset: 6 });
        assert_eq!(d.push(&key(true, 1)).expect_err("stays failed"), e);
        let mut d = Decoder::new();
        let e = d.push(&[248, 0, 0, 0, 0, 0, 0, 0, 65]).expect_err("fence too long");
        assert!(e.to_string().contains("malformed ClientFence"), "{e}");
        assert!(Decoder::new().push(&[255, 7]).is_err());
    }
}
