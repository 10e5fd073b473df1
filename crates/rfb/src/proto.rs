//! RFB wire constants and the client-to-server messages.
//!
//! Client messages are small fixed layouts, built here into byte vectors by typed functions so no caller glues
//! bytes by hand. The pixel format is fixed: 32 bits per pixel, depth 24, little-endian true colour with red in
//! the lowest byte, so every pixel arrives as the bytes R, G, B, X — the framebuffer's RGBA layout minus alpha —
//! and ZRLE's 3-byte compressed pixels arrive as R, G, B.

use std::fmt;

/// A rectangle of the framebuffer, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl Rect {
    /// A rectangle from its left/top edge and size.
    pub const fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Self { x, y, width, height }
    }

    /// Number of pixels covered.
    pub fn area(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// True when the rectangle covers no pixel.
    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// True when the rectangle lies inside a `width`×`height` screen.
    pub fn fits_in(&self, width: u32, height: u32) -> bool {
        u64::from(self.x) + u64::from(self.width) <= u64::from(width)
            && u64::from(self.y) + u64::from(self.height) <= u64::from(height)
    }

    /// The smallest rectangle covering both (an empty rectangle is ignored).
    pub fn union(&self, other: &Rect) -> Rect {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        let x = self.x.min(other.x);
        let y = self.y.min(other.y);
        let right = self.x.saturating_add(self.width).max(other.x.saturating_add(other.width));
        let bottom = self.y.saturating_add(self.height).max(other.y.saturating_add(other.height));
        Rect { x, y, width: right - x, height: bottom - y }
    }
}

impl fmt::Display for Rect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}+{}+{}", self.width, self.height, self.x, self.y)
    }
}

/// The RFB protocol version in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// RFB 3.3: the server picks the security type; no failure reasons.
    V3_3,
    /// RFB 3.7: the client picks the security type.
    V3_7,
    /// RFB 3.8: like 3.7, and failures carry a reason string.
    V3_8,
}

impl Version {
    /// The 12-byte version line the client answers with.
    pub(crate) fn line(self) -> &'static [u8; 12] {
        match self {
            Version::V3_3 => b"RFB 003.003\n",
            Version::V3_7 => b"RFB 003.007\n",
            Version::V3_8 => b"RFB 003.008\n",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V3_3 => "3.3",
            Version::V3_7 => "3.7",
            Version::V3_8 => "3.8",
        })
    }
}

/// An encoding the client may ask the server to use. Pixel encodings come first in the list sent to the server
/// in the caller's order of preference; pseudo-encodings announce capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Uncompressed pixels: the fastest over loopback.
    Raw,
    /// Copy of another part of the screen (scrolling, moved windows).
    CopyRect,
    /// Zlib-compressed run-length tiles, one zlib stream per connection: the smallest on a slow link.
    Zrle,
    /// Pseudo-encoding: the server may change the framebuffer size.
    DesktopSize,
    /// Pseudo-encoding: size changes with screen layouts (TigerVNC, QEMU).
    ExtendedDesktopSize,
    /// Pseudo-encoding: an update may end early with a LastRect marker.
    LastRect,
    /// Pseudo-encoding: QEMU Extended Key Event (key events carry PC scancodes).
    QemuExtendedKeyEvent,
    /// Pseudo-encoding: the server sends the pointer's shape (in the session's pixel format) and leaves the
    /// pointer out of the framebuffer.
    Cursor,
    /// Pseudo-encoding: the same with a two-colour shape (servers that know only this one).
    XCursor,
    /// Pseudo-encoding: the server reports pointer moves made by others (the guest, another client).
    PointerPos,
    /// Pseudo-encoding: QEMU Pointer Motion Change — the server says whether the guest's pointer device is
    /// absolute (a USB tablet) or relative (QEMU's default PS/2 mouse), and in relative mode takes each pointer
    /// event's position as a motion relative to (0x7FFF, 0x7FFF).
    PointerTypeChange,
}

impl Encoding {
    /// The encoding's number on the wire.
    pub const fn number(self) -> i32 {
        match self {
            Encoding::Raw => 0,
            Encoding::CopyRect => 1,
            Encoding::Zrle => 16,
            Encoding::DesktopSize => -223,
            Encoding::ExtendedDesktopSize => -308,
            Encoding::LastRect => -224,
            Encoding::QemuExtendedKeyEvent => -258,
            Encoding::Cursor => -239,
            Encoding::XCursor => -240,
            Encoding::PointerPos => -232,
            Encoding::PointerTypeChange => -257,
        }
    }

    /// The encoding with this wire number, if this client implements it.
    pub const fn from_number(n: i32) -> Option<Encoding> {
        Some(match n {
            0 => Encoding::Raw,
            1 => Encoding::CopyRect,
            16 => Encoding::Zrle,
            -223 => Encoding::DesktopSize,
            -308 => Encoding::ExtendedDesktopSize,
            -224 => Encoding::LastRect,
            -258 => Encoding::QemuExtendedKeyEvent,
            -239 => Encoding::Cursor,
            -240 => Encoding::XCursor,
            -232 => Encoding::PointerPos,
            -257 => Encoding::PointerTypeChange,
            _ => return None,
        })
    }

    /// A short name for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Encoding::Raw => "Raw",
            Encoding::CopyRect => "CopyRect",
            Encoding::Zrle => "ZRLE",
            Encoding::DesktopSize => "DesktopSize",
            Encoding::ExtendedDesktopSize => "ExtendedDesktopSize",
            Encoding::LastRect => "LastRect",
            Encoding::QemuExtendedKeyEvent => "QEMU Extended Key Event",
            Encoding::Cursor => "Cursor",
            Encoding::XCursor => "XCursor",
            Encoding::PointerPos => "PointerPos",
            Encoding::PointerTypeChange => "QEMU Pointer Motion Change",
        }
    }

    /// True for pseudo-encodings (capabilities rather than pixel data).
    pub const fn is_pseudo(self) -> bool {
        self.number() < 0
    }

    /// Every pseudo-encoding this client implements. The pointer shape encodings are among them, so servers
    /// leave the pointer out of the framebuffer, where it would hide text from OCR.
    pub const PSEUDO: [Encoding; 8] = [
        Encoding::ExtendedDesktopSize,
        Encoding::DesktopSize,
        Encoding::LastRect,
        Encoding::QemuExtendedKeyEvent,
        Encoding::Cursor,
        Encoding::XCursor,
        Encoding::PointerPos,
        Encoding::PointerTypeChange,
    ];

    /// Every encoding this client implements: the pixel encodings, then the pseudo-encodings (in the order the
    /// fuzz target's encoding mask and its seeds number them).
    pub const ALL: [Encoding; 11] = [
        Encoding::Raw,
        Encoding::CopyRect,
        Encoding::Zrle,
        Encoding::DesktopSize,
        Encoding::ExtendedDesktopSize,
        Encoding::LastRect,
        Encoding::QemuExtendedKeyEvent,
        Encoding::Cursor,
        Encoding::XCursor,
        Encoding::PointerPos,
        Encoding::PointerTypeChange,
    ];
}

/// Client-to-server message types.
mod msg {
    pub const SET_PIXEL_FORMAT: u8 = 0;
    pub const SET_ENCODINGS: u8 = 2;
    pub const FRAMEBUFFER_UPDATE_REQUEST: u8 = 3;
    pub const KEY_EVENT: u8 = 4;
    pub const POINTER_EVENT: u8 = 5;
    pub const QEMU: u8 = 255;
    pub const QEMU_EXTENDED_KEY_EVENT: u8 = 0;
}

/// The pixel format the client asks for: 32 bpp, depth 24, little-endian, true colour, 8 bits per channel with
/// red at shift 0, green at 8, blue at 16 (bytes R, G, B, X in memory).
pub(crate) const PIXEL_FORMAT: [u8; 16] = [
    32, // bits per pixel
    24, // depth
    0,  // big-endian: no
    1,  // true colour: yes
    0, 255, // red max
    0, 255, // green max
    0, 255, // blue max
    0,   // red shift
    8,   // green shift
    16,  // blue shift
    0, 0, 0, // padding
];

/// SetPixelFormat with [`PIXEL_FORMAT`].
pub(crate) fn set_pixel_format() -> Vec<u8> {
    let mut m = vec![msg::SET_PIXEL_FORMAT, 0, 0, 0];
    m.extend_from_slice(&PIXEL_FORMAT);
    m
}

/// SetEncodings with `encodings` in order.
pub(crate) fn set_encodings(encodings: &[Encoding]) -> Vec<u8> {
    let count = u16::try_from(encodings.len()).unwrap_or(u16::MAX);
    let mut m = vec![msg::SET_ENCODINGS, 0];
    m.extend_from_slice(&count.to_be_bytes());
    for e in encodings.iter().take(usize::from(count)) {
        m.extend_from_slice(&e.number().to_be_bytes());
    }
    m
}

/// FramebufferUpdateRequest for `w`×`h` at (x, y). Sizes beyond the wire's 16 bits are clamped.
pub(crate) fn update_request(incremental: bool, x: u32, y: u32, w: u32, h: u32) -> [u8; 10] {
    let mut m = [0u8; 10];
    m[0] = msg::FRAMEBUFFER_UPDATE_REQUEST;
    m[1] = u8::from(incremental);
    m[2..4].copy_from_slice(&clamp16(x).to_be_bytes());
    m[4..6].copy_from_slice(&clamp16(y).to_be_bytes());
    m[6..8].copy_from_slice(&clamp16(w).to_be_bytes());
    m[8..10].copy_from_slice(&clamp16(h).to_be_bytes());
    m
}

/// KeyEvent: a keysym pressed or released.
pub(crate) fn key_event(down: bool, keysym: u32) -> [u8; 8] {
    let mut m = [0u8; 8];
    m[0] = msg::KEY_EVENT;
    m[1] = u8::from(down);
    m[4..8].copy_from_slice(&keysym.to_be_bytes());
    m
}

/// QEMU Extended Key Event: a keysym and the PC (XT) scancode that produced it.
pub(crate) fn qemu_key_event(down: bool, keysym: u32, scancode: u32) -> [u8; 12] {
    let mut m = [0u8; 12];
    m[0] = msg::QEMU;
    m[1] = msg::QEMU_EXTENDED_KEY_EVENT;
    m[2..4].copy_from_slice(&u16::from(down).to_be_bytes());
    m[4..8].copy_from_slice(&keysym.to_be_bytes());
    m[8..12].copy_from_slice(&scancode.to_be_bytes());
    m
}

/// PointerEvent: the pointer at (x, y) with the buttons in `mask` held.
pub(crate) fn pointer_event(mask: u8, x: u16, y: u16) -> [u8; 6] {
    let mut m = [0u8; 6];
    m[0] = msg::POINTER_EVENT;
    m[1] = mask;
    m[2..4].copy_from_slice(&x.to_be_bytes());
    m[4..6].copy_from_slice(&y.to_be_bytes());
    m
}

/// The position a pointer event carries for a motion of (dx, dy) in QEMU's relative mode (after the server
/// announced it with [`Encoding::PointerTypeChange`]): QEMU subtracts 0x7FFF from each coordinate.
pub(crate) fn relative_position(dx: i32, dy: i32) -> (u16, u16) {
    let f = |d: i32| u16::try_from((d + 0x7FFF).clamp(0, 0xFFFF)).unwrap_or(0x7FFF);
    (f(dx), f(dy))
}

fn clamp16(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_numbers_round_trip() {
        for e in Encoding::ALL {
            assert_eq!(Encoding::from_number(e.number()), Some(e));
        }
        assert!(Encoding::PSEUDO.iter().all(|p| Encoding::ALL.contains(p) && p.is_pseudo()));
        assert_eq!(Encoding::from_number(5), None);
    }

    #[test]
    fn messages_have_the_wire_layout() {
        assert_eq!(key_event(true, 0xff0d), [4, 1, 0, 0, 0, 0, 0xff, 0x0d]);
        assert_eq!(qemu_key_event(false, 0x41, 0x1e), [255, 0, 0, 0, 0, 0, 0, 0x41, 0, 0, 0, 0x1e]);
        assert_eq!(pointer_event(1, 0x102, 3), [5, 1, 1, 2, 0, 3]);
        assert_eq!(relative_position(0, 0), (0x7FFF, 0x7FFF));
        assert_eq!(relative_position(-5, 7), (0x7FFA, 0x8006));
        assert_eq!(relative_position(-100_000, 100_000), (0, 0xFFFF));
        assert_eq!(update_request(true, 0, 0, 1920, 1080), [3, 1, 0, 0, 0, 0, 0x07, 0x80, 0x04, 0x38]);
        assert_eq!(
            set_encodings(&[Encoding::Raw, Encoding::DesktopSize]),
            [2, 0, 0, 2, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x21]
        );
        assert_eq!(set_pixel_format().len(), 20);
    }

    #[test]
    fn rect_union_and_bounds() {
        let a = Rect::new(10, 10, 5, 5);
        let b = Rect::new(0, 12, 2, 10);
        assert_eq!(a.union(&b), Rect::new(0, 10, 15, 12));
        assert!(a.fits_in(15, 15));
        assert!(!a.fits_in(14, 15));
        assert!(!Rect::new(u32::MAX, 0, 1, 1).fits_in(10, 10));
    }
}
