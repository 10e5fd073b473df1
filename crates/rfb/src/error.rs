//! Errors of the RFB client.
//!
//! vmkit's automation engine reconnects when the connection drops but gives up (and reports) when a server
//! breaks the protocol, so the two are different variants ([`Error::is_connection_lost`],
//! [`Error::is_protocol_violation`]). Everything a server sends that does not fit the protocol becomes a
//! [`ProtocolError`] naming the field, its value and the limit it broke.
//!
//! [`Error`] is `Clone` (I/O errors are kept behind an `Arc`) because the background reader stores the error that
//! ended the session and hands a copy to every later call.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::Rect;

/// What went wrong talking to a VNC server.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TCP connection could not be made.
    #[error("cannot connect to VNC server {addr}: {source}")]
    Connect {
        /// The address as given.
        addr: String,
        /// The socket error.
        source: Arc<io::Error>,
    },
    /// The server did not answer in time (a stalled server, or one that never finished a message).
    #[error("VNC server did not answer within {after:?} while {doing}")]
    Timeout {
        /// What the client was waiting for.
        doing: String,
        /// The timeout that passed.
        after: Duration,
    },
    /// The connection closed or failed after it was established.
    #[error("connection to the VNC server lost while {doing}: {source}")]
    ConnectionLost {
        /// What the client was doing (e.g. which message it was reading).
        doing: String,
        /// The socket error; `UnexpectedEof` when the server closed the connection.
        source: Arc<io::Error>,
    },
    /// The server sent something the RFB protocol does not allow, or beyond this client's limits.
    #[error("VNC server broke the protocol: {0}")]
    Protocol(#[from] ProtocolError),
    /// The server refused the connection before authentication, with its reason.
    #[error("VNC server refused the connection: {reason}")]
    Refused {
        /// The server's reason string.
        reason: String,
    },
    /// VNC Authentication failed (usually a wrong password).
    #[error("VNC authentication failed{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_else(|| " (wrong password?)".to_owned()))]
    AuthFailed {
        /// The server's reason string (RFB 3.8 sends one).
        reason: Option<String>,
    },
    /// The server wants VNC Authentication and no password was given.
    #[error("VNC server requires a password (VNC Authentication) and none was given")]
    PasswordRequired,
    /// The server offers only security types this client does not implement.
    #[error(
        "VNC server offers no security type this client supports (offered: {offered:?}; supported: 1 = None, \
         2 = VNC Authentication)"
    )]
    UnsupportedSecurity {
        /// The security type numbers the server offered.
        offered: Vec<u8>,
    },
    /// The caller passed something that cannot be sent (a pointer position off the screen, an untypeable
    /// character, ...).
    #[error("{0}")]
    InvalidInput(String),
}

impl Error {
    /// True when the connection is gone or stalled (connect failure, closed socket, timeout): reconnecting may
    /// help.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Error::Connect { .. } | Error::ConnectionLost { .. } | Error::Timeout { .. })
    }

    /// True when the server broke the protocol; reconnecting to the same server will likely fail the same way.
    pub fn is_protocol_violation(&self) -> bool {
        matches!(self, Error::Protocol(_))
    }

    /// True when the server rejected the credentials or wants ones that were not given.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, Error::AuthFailed { .. } | Error::PasswordRequired)
    }

    pub(crate) fn lost(doing: impl Into<String>, source: io::Error) -> Self {
        Error::ConnectionLost { doing: doing.into(), source: Arc::new(source) }
    }
}

/// A violation of the RFB protocol (or of this client's limits) by the server. Each variant names what was
/// wrong and with which values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The first 12 bytes were not an RFB version line.
    #[error("expected an RFB version line like \"RFB 003.008\\n\", got {got:?}")]
    BadVersion {
        /// The bytes received, escaped.
        got: String,
    },
    /// The server speaks an RFB version older than 3.3.
    #[error("unsupported RFB version {major}.{minor} (this client speaks 3.3, 3.7 and 3.8)")]
    UnsupportedVersion {
        /// Major version.
        major: u32,
        /// Minor version.
        minor: u32,
    },
    /// An RFB 3.3 server chose a security type that does not exist in 3.3.
    #[error("RFB 3.3 server chose security type {0}, which is not 1 (None) or 2 (VNC Authentication)")]
    UnknownSecurityType(u32),
    /// The SecurityResult word was not 0 (OK), 1 (failed) or 2 (too many attempts).
    #[error("security result {0} is not 0 (OK), 1 (failed) or 2 (too many attempts)")]
    BadSecurityResult(u32),
    /// A length field is larger than this client accepts.
    #[error("{what} is {len} bytes long; the limit is {max}")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// The length the server announced.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The server announced a framebuffer larger than the configured limits.
    #[error("framebuffer size {width}x{height} exceeds the limit of {max_width}x{max_height} and {max_pixels} pixels")]
    FramebufferTooLarge {
        /// Announced width.
        width: u32,
        /// Announced height.
        height: u32,
        /// Width limit.
        max_width: u32,
        /// Height limit.
        max_height: u32,
        /// Pixel count limit.
        max_pixels: u64,
    },
    /// A server-to-client message type this client does not know (its length is unknown, so the stream cannot
    /// be resynchronised).
    #[error("unknown server message type {0}")]
    UnknownMessage(u8),
    /// A QEMU server message (type 255) with an unknown or unrequested subtype.
    #[error("unexpected QEMU server message subtype {0}")]
    UnknownQemuMessage(u8),
    /// A rectangle with an encoding the client did not request.
    #[error("rectangle {rect} uses encoding {encoding}, which this client did not request")]
    UnrequestedEncoding {
        /// The rectangle.
        rect: Rect,
        /// The encoding number.
        encoding: i32,
    },
    /// A rectangle that does not lie inside the framebuffer.
    #[error("rectangle {rect} ({encoding}) lies outside the {width}x{height} framebuffer")]
    RectOutOfBounds {
        /// The rectangle.
        rect: Rect,
        /// The encoding's name.
        encoding: &'static str,
        /// Framebuffer width.
        width: u32,
        /// Framebuffer height.
        height: u32,
    },
    /// A CopyRect whose source does not lie inside the framebuffer.
    #[error("CopyRect source ({src_x},{src_y}) for {rect} lies outside the {width}x{height} framebuffer")]
    CopySourceOutOfBounds {
        /// The destination rectangle.
        rect: Rect,
        /// Source x.
        src_x: u32,
        /// Source y.
        src_y: u32,
        /// Framebuffer width.
        width: u32,
        /// Framebuffer height.
        height: u32,
    },
    /// The server's pixel data did not follow the ZRLE encoding.
    #[error("ZRLE rectangle {rect}: {problem}")]
    Zrle {
        /// The rectangle being decoded.
        rect: Rect,
        /// What was wrong.
        problem: String,
    },
    /// A pointer shape (Cursor or XCursor pseudo-encoding) larger than [`crate::Limits::max_cursor_size`].
    #[error("pointer shape {width}x{height} exceeds the limit of {max}x{max}")]
    CursorTooLarge {
        /// Announced width.
        width: u32,
        /// Announced height.
        height: u32,
        /// The limit for either side.
        max: u32,
    },
    /// A ServerCutText length with the high bit set (the extended-clipboard form, which was not requested).
    #[error("ServerCutText length {0:#x} has the high bit set (extended clipboard, not requested)")]
    ExtendedCutText(u32),
}
