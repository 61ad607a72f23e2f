# RFC 6455 pieces with no I/O that a connection uses per frame: frame headers,
# masking, copying and a cheap mask-key generator. Kept apart from the asyncio
# client so both CPython and MicroPython can test them against each other.
# What only the opening handshake needs (URL, Sec-WebSocket-Key/Accept) is in
# wshandshake, and what only a server or a test needs (parsing a client's
# frame, the pure loops) in wsframe_ref: neither stays in the device's heap.
#
# Hot-path functions take (buffer, offset, ...) and return ints so the client
# can build and parse frames in preallocated buffers without allocating.
# ruff: noqa: F821 (viper's ptr8/ptr32/uint are compiler builtins)
from micropython import const

OP_CONT = const(0)
OP_TEXT = const(1)
OP_BINARY = const(2)
OP_CLOSE = const(8)
OP_PING = const(9)
OP_PONG = const(10)

# Longest header: 2 + 8 (64-bit length) + 4 (mask key).
MAX_HEADER = const(14)


def header_len(n, masked):
    """Bytes of header a frame with an n-byte payload needs."""
    h = 2 if n < 126 else (4 if n < 65536 else 10)
    return h + 4 if masked else h


def encode_header(buf, off, op, n, masked, fin=True):
    """Write a frame header at buf[off:]; return the offset just past it.

    With `masked`, the last 4 header bytes are left for the caller's mask key
    (see rng_fill), so no key object is created per frame."""
    buf[off] = (0x80 if fin else 0) | op
    m = 0x80 if masked else 0
    if n < 126:
        buf[off + 1] = m | n
        off += 2
    elif n < 65536:
        buf[off + 1] = m | 126
        buf[off + 2] = n >> 8
        buf[off + 3] = n & 0xFF
        off += 4
    else:
        buf[off + 1] = m | 127
        # Top 4 bytes: payloads >= 4 GiB are not a thing on this hardware.
        buf[off + 2] = buf[off + 3] = buf[off + 4] = buf[off + 5] = 0
        buf[off + 6] = (n >> 24) & 0xFF
        buf[off + 7] = (n >> 16) & 0xFF
        buf[off + 8] = (n >> 8) & 0xFF
        buf[off + 9] = n & 0xFF
        off += 10
    return off + 4 if masked else off


def header_size(b0, b1):
    """Total header length given its first two bytes (2..14)."""
    n = b1 & 0x7F
    h = 2 if n < 126 else (4 if n == 126 else 10)
    return h + 4 if b1 & 0x80 else h


def payload_len(hdr):
    """Payload length from a complete header in hdr[0:]. Returns -1 for a
    64-bit length with the top bit set (forbidden by RFC 6455 §5.2)."""
    n = hdr[1] & 0x7F
    if n < 126:
        return n
    if n == 126:
        return (hdr[2] << 8) | hdr[3]
    if hdr[2] & 0x80:
        return -1
    # Only the oversize path ever builds a big int here (the client rejects
    # anything over its max_message before touching the payload).
    v = 0
    for i in range(2, 10):
        v = (v << 8) | hdr[i]
    return v


def close_payload(code, reason=""):
    """CLOSE frame payload: 2-byte code plus UTF-8 reason cut to fit 125 bytes,
    at a character boundary (a peer must refuse a reason that is not UTF-8)."""
    if code is None:
        return b""
    r = reason.encode() if isinstance(reason, str) else bytes(reason)
    if len(r) > 123:
        end = 123
        while end and r[end] & 0xC0 == 0x80:  # r[end] continues a character
            end -= 1
        r = r[:end]
    return bytes(((code >> 8) & 0xFF, code & 0xFF)) + r


# ---- masking, copying and the mask-key RNG ------------------------------
# Viper loops where the emitter exists (the device, the unix port); elsewhere
# (CPython tools and tests) the pure versions in wsframe_ref, which tests and
# benches also compare these against.


def random_bytes(n):
    """n bytes of seed material: the mask RNG's seed, the handshake key."""
    try:
        import os

        return os.urandom(n)
    except (ImportError, AttributeError):
        import random

        return bytes(random.getrandbits(8) for _ in range(n))


try:
    import micropython

    @micropython.viper
    def _mask_v(buf: ptr8, off: int, n: int, key: ptr8, koff: int):
        p = uint(buf) + uint(off)
        i = 0
        if (p & 3) == uint(0):
            # Word-aligned payload (the client's audio slots are): 4 bytes a
            # step. Both targets (xtensa, x86/arm hosts) are little-endian.
            k = uint(key[koff]) | (uint(key[koff + 1]) << 8) | (uint(key[koff + 2]) << 16) | (uint(key[koff + 3]) << 24)
            w = ptr32(p)
            nw = n >> 2
            j = 0
            while j < nw:
                w[j] = w[j] ^ k
                j += 1
            i = nw << 2
        b = ptr8(p)
        while i < n:
            b[i] = b[i] ^ key[koff + (i & 3)]
            i += 1

    @micropython.viper
    def _copy_v(dst: ptr8, doff: int, src: ptr8, soff: int, n: int):
        d = uint(dst) + uint(doff)
        s = uint(src) + uint(soff)
        i = 0
        if ((d | s) & 3) == uint(0):
            dw = ptr32(d)
            sw = ptr32(s)
            nw = n >> 2
            j = 0
            while j < nw:
                dw[j] = sw[j]
                j += 1
            i = nw << 2
        db = ptr8(d)
        sb = ptr8(s)
        while i < n:
            db[i] = sb[i]
            i += 1

    @micropython.viper
    def _rng_fill_v(state: ptr32, buf: ptr8, off: int):
        # Store/reload truncates to 32 bits on 64-bit hosts too.
        x = uint(state[0])
        state[0] = x ^ (x << 13)
        x = uint(state[0])
        state[0] = x ^ (x >> 17)
        x = uint(state[0])
        state[0] = x ^ (x << 5)
        x = uint(state[0])
        buf[off] = x & 0xFF
        buf[off + 1] = (x >> 8) & 0xFF
        buf[off + 2] = (x >> 16) & 0xFF
        buf[off + 3] = (x >> 24) & 0xFF

    mask = _mask_v
    copy = _copy_v
    rng_fill = _rng_fill_v
except (ImportError, AttributeError, NameError):
    from wsframe_ref import copy, mask, rng_fill  # noqa: F401 (wsframe.mask etc. are the API)
