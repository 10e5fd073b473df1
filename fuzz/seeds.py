#!/usr/bin/env python3
"""Writes a seed corpus for the server_messages fuzz target into corpus/server_messages/ (not in git).

Each seed is: width, height, encoding mask (16 bits, little-endian, 0 = all), number of chunk sizes, the chunk
sizes, then a stream of valid server messages exercising every message type, encoding (pointer shapes included)
and ZRLE subencoding, so the fuzzer starts from deep inside the decoder rather than from the first byte check.
"""
import os
import struct
import zlib

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "server_messages")
os.makedirs(out, exist_ok=True)


def rect(x, y, w, h, enc):
    return struct.pack(">HHHHi", x, y, w, h, enc)


def update(*rects):
    return struct.pack(">BxH", 0, len(rects)) + b"".join(rects)


def zrle_stream(tiles_per_rect):
    z = zlib.compressobj()
    for data in tiles_per_rect:
        c = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
        yield struct.pack(">I", len(c)) + c


W, H = 20, 10
raw = rect(0, 0, 2, 2, 0) + bytes(range(16))
copy = rect(4, 4, 3, 3, 1) + struct.pack(">HH", 0, 0)
tiles = [
    bytes([0]) + bytes(range(12)),  # raw 2x2
    bytes([1, 9, 8, 7]),  # solid
    bytes([2, 1, 1, 1, 2, 2, 2, 0b01000000, 0b10000000]),  # packed palette, 1 bit
    bytes([3, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0b00011000, 0b10000000]),  # packed palette, 2 bits
    bytes([128, 5, 5, 5, 3]),  # plain RLE, one run of 4
    bytes([130, 1, 2, 3, 4, 5, 6, 0x80, 1, 1, 0]),  # palette RLE
]
zrle = b"".join(rect(2 * i, 0, 2, 2, 16) + c for i, c in enumerate(zrle_stream(tiles)))
messages = [
    update(rect(0, 0, 2, 2, 0) + bytes(range(16)), copy),
    struct.pack(">BxH", 0, len(tiles)) + zrle,
    update(rect(0, 0, 30, 12, -223)),
    update(rect(1, 0, 25, 15, -308) + bytes([1, 0, 0, 0]) + bytes(16)),
    struct.pack(">BxH", 0, 0xFFFF) + raw + rect(0, 0, 0, 0, -224),
    update(rect(0, 0, 0, 0, -258)),
    bytes([2]),
    bytes([3, 0, 0, 0]) + struct.pack(">I", 5) + b"hello",
    bytes([1, 0]) + struct.pack(">HH", 0, 2) + bytes(12),
    # Cursor: 3x2 with hot spot (1,1): pixels R, G, B, X, then a mask of one byte per row.
    update(rect(1, 1, 3, 2, -239) + bytes(range(24)) + bytes([0b10100000, 0b01000000])),
    # Cursor 9 wide (two mask bytes per row), and a hidden one.
    update(rect(8, 0, 9, 1, -239) + bytes(36) + bytes([0xFF, 0x80]), rect(0, 0, 0, 0, -239)),
    # XCursor: 10x2, two colours, bitmap and mask of two bytes per row; then a hidden one (no data).
    update(rect(2, 1, 10, 2, -240) + bytes([255, 0, 0, 0, 0, 255]) + bytes([0xF0, 0x40, 0x0F, 0x80]) + bytes([0xFF, 0xC0, 0xFF, 0xC0]),
           rect(0, 0, 0, 0, -240)),
    # PointerPos, inside and beyond the screen.
    update(rect(5, 3, 0, 0, -232), rect(500, 500, 0, 0, -232)),
]
for i, m in enumerate(messages):
    with open(os.path.join(out, f"seed-{i}"), "wb") as f:
        f.write(bytes([W, H, 0, 0, 2, 3, 0]) + m)
with open(os.path.join(out, "seed-all"), "wb") as f:
    f.write(bytes([W, H, 0, 0, 0]) + b"".join(messages))
print(f"wrote {len(messages) + 1} seeds to {out}")
