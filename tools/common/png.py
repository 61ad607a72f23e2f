"""A minimal PNG writer (greyscale, 8-bit) for the simulator's display frames:
zlib and struct are all a PNG needs, so no imaging library is pinned for it."""

import struct
import zlib


def _chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def encode_grey(width, height, pixels):
    """pixels: bytes of width*height grey levels, row by row -> PNG bytes."""
    if len(pixels) != width * height:
        raise ValueError("png: %d pixels for %dx%d" % (len(pixels), width, height))
    rows = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows, 9))
            + _chunk(b"IEND", b""))


def vlsb_to_grey(buf, width, height, scale=1):
    """An SSD1306 page buffer (MONO_VLSB) -> (w, h, grey pixels), each pixel scale x scale."""
    if len(buf) != width * height // 8:
        raise ValueError("display frame: %d bytes, expected %d for %dx%d"
                         % (len(buf), width * height // 8, width, height))
    out = bytearray(width * height * scale * scale)
    w2 = width * scale
    for y in range(height):
        page, bit = divmod(y, 8)
        row = bytearray(w2)
        for x in range(width):
            if buf[page * width + x] >> bit & 1:
                row[x * scale:(x + 1) * scale] = b"\xff" * scale
        for k in range(scale):
            start = (y * scale + k) * w2
            out[start:start + w2] = row
    return w2, height * scale, bytes(out)


def frame_to_png(src, dst, width=128, height=64, scale=4):
    with open(src, "rb") as f:
        w, h, px = vlsb_to_grey(f.read(), width, height, scale)
    with open(dst, "wb") as f:
        f.write(encode_grey(w, h, px))
