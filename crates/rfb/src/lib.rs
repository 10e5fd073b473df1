//! An RFB (VNC) client written for vmkit: RFB 3.3/3.7/3.8, security None and VNC Authentication, Raw, CopyRect
//! and ZRLE, server-side resizes (DesktopSize, ExtendedDesktopSize), LastRect, QEMU Extended Key Events so
//! keys reach a QEMU guest as PC scancodes, QEMU Pointer Motion Change (absolute or relative guest pointers, see
//! [`PointerMode`]), and the pointer shape pseudo-encodings (Cursor, XCursor, PointerPos)
//! so servers keep the pointer out of the framebuffer that vmkit reads text from ([`Client::cursor`] has it).
//!
//! [`Client`] keeps a framebuffer current in the background and tells its consumer what changed
//! ([`Client::wait_for_damage`] wakes on the next screen update, no polling). Input goes out as key events
//! ([`Client::key`], [`Client::press_chord`], [`Client::type_text`]) and pointer events ([`Client::click`]).
//! Key names and chords live in [`keys`], shared with vmkit's CLI and automation engine.
//!
//! Everything a server sends is bounds-checked ([`decode`] is a sans-IO decoder, fuzzed by `fuzz/`): a broken
//! or hostile server yields an [`Error`], never a panic, a hang without a timeout, or an unbounded allocation.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rfb::Error> {
//! use std::time::Duration;
//! let vnc = rfb::Client::connect("127.0.0.1:5900", rfb::ConnectOptions::default()).await?;
//! let frame = vnc.frame(); // RGBA, frame.width() x frame.height()
//! vnc.click(100, 200, rfb::Button::Left).await?;
//! vnc.type_text("hello\n", &rfb::TypeOptions::default()).await?;
//! vnc.press_chord(&"ctrl+alt+delete".parse()?).await?;
//! if let Some(changed) = vnc.wait_for_damage(Duration::from_secs(5)).await? {
//!     assert!(!changed.is_empty(), "damage comes as changed rectangles");
//! }
//! # let _ = frame; Ok(()) }
//! ```

mod auth;
mod client;
mod coverage;
mod cursor;
pub mod decode;
mod error;
mod frame;
pub mod framebuffer;
mod handshake;
pub mod keys;
mod proto;
mod zrle;

pub use client::{
    Button, ClickTiming, Client, ConnectOptions, PointerMode, RelativeMotion, TypeOptions, default_encodings,
};
pub use cursor::Cursor;
pub use decode::Limits;
pub use error::{Error, ProtocolError};
pub use frame::Frame;
pub use keys::{Chord, Key, KeyError};
pub use proto::{Encoding, Rect, Version};

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        Error::InvalidInput(e.to_string())
    }
}
