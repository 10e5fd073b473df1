//! Fuzzes the RFB server-message decoder: arbitrary bytes from a "server", fed whole and in arbitrary chunks.
//!
//! Properties checked beyond "no panic, no hang, no huge allocation": decoding in chunks gives exactly the same
//! events, error and framebuffer as decoding the whole input at once (the decoder must never depend on how the
//! socket split the stream); the framebuffer always has `width * height` opaque pixels; every painted
//! rectangle lies inside the framebuffer; every pointer shape is within the size limit, has `width * height`
//! RGBA pixels, fully opaque or fully transparent, and its hot spot inside it; every reported pointer position
//! lies inside the framebuffer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rfb::decode::{Decoder, Event, Limits};
use rfb::framebuffer::Framebuffer;
use rfb::{Encoding, ProtocolError};

const ALL: [Encoding; 11] = Encoding::ALL;

/// Small limits keep each run fast; the checks are the same at any size.
const LIMITS: Limits = Limits {
    max_width: 300,
    max_height: 300,
    max_pixels: 40_000,
    max_cut_text: 64,
    max_string: 64,
    max_cursor_size: 24,
};

type Outcome = (Vec<Event>, Option<ProtocolError>, Framebuffer);

fn decode(stream: &[u8], width: u32, height: u32, encodings: &[Encoding], chunks: &[u8]) -> Outcome {
    let mut decoder = Decoder::new(encodings, LIMITS);
    let mut fb = Framebuffer::new(width, height);
    let mut events = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut rest = stream;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = if chunks.is_empty() { rest.len() } else { (usize::from(*sizes.next().unwrap_or(&1)) + 1).min(rest.len()) };
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        let before = events.len();
        match decoder.feed(&buf, &mut fb, &mut events) {
            Ok(used) => {
                assert!(used <= buf.len());
                buf.drain(..used);
            }
            Err(e) => return (events, Some(e), fb),
        }
        check(&fb, &events[before..]);
    }
    (events, None, fb)
}

fn check(fb: &Framebuffer, new_events: &[Event]) {
    assert_eq!(fb.pixels().len(), fb.width() as usize * fb.height() as usize * 4);
    assert!(fb.pixels().chunks_exact(4).all(|p| p[3] == 255), "alpha must stay 255");
    // Rectangles painted before a resize in the same batch were checked against the old size.
    let resized = new_events.iter().any(|e| matches!(e, Event::Resized { .. }));
    for e in new_events {
        match e {
            Event::Painted(r) if !resized => {
                assert!(r.fits_in(fb.width(), fb.height()), "painted {r} outside {}x{}", fb.width(), fb.height());
            }
            Event::PointerMoved { x, y } if !resized => {
                assert!(fb.width() == 0 || *x < fb.width(), "pointer x {x} outside {}", fb.width());
                assert!(fb.height() == 0 || *y < fb.height(), "pointer y {y} outside {}", fb.height());
            }
            Event::CursorShape(c) => {
                let (w, h) = (c.width(), c.height());
                assert!(w <= LIMITS.max_cursor_size && h <= LIMITS.max_cursor_size, "{c:?} beyond the limit");
                assert_eq!(c.rgba().len(), w as usize * h as usize * 4);
                assert!(c.rgba().chunks_exact(4).all(|p| p[3] == 0 || p[3] == 255), "alpha is 0 or 255");
                let (hx, hy) = c.hotspot();
                assert!((w == 0 || hx < w) && (h == 0 || hy < h), "hot spot outside {c:?}");
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Header: width, height, which encodings were requested (16 bits, little-endian; 0 = all), how many chunk
    // sizes follow.
    let [w, h, mask_lo, mask_hi, n_chunks, rest @ ..] = data else { return };
    let (width, height) = (u32::from(*w % 80), u32::from(*h % 80));
    let mask = u16::from_le_bytes([*mask_lo, *mask_hi]);
    let encodings: Vec<Encoding> =
        ALL.iter().enumerate().filter(|(i, _)| mask == 0 || mask & (1 << i) != 0).map(|(_, e)| *e).collect();
    let n_chunks = usize::from(*n_chunks % 16).min(rest.len());
    let (chunks, stream) = rest.split_at(n_chunks);
    let whole = decode(stream, width, height, &encodings, &[]);
    let chunked = decode(stream, width, height, &encodings, if chunks.is_empty() { &[0] } else { chunks });
    assert_eq!(whole.0, chunked.0, "events differ between whole and chunked input");
    assert_eq!(whole.1, chunked.1, "errors differ between whole and chunked input");
    assert!(whole.2 == chunked.2, "framebuffers differ between whole and chunked input");
});
