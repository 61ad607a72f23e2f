# RFC 6455 pieces with no I/O: URL parsing, the handshake key check, frame
# headers, masking and a cheap mask-key generator. Kept apart from the asyncio
# client so both CPython and MicroPython can test them against each other.
#
# Hot-path functions take (buffer, offset, ...) and return ints so the client
# can build and parse frames in preallocated buffers without allocating.
# ruff: noqa: F821 (viper's ptr8/ptr32/uint are compiler builtins)
import binascii
import hashlib

from micropython import const

OP_CONT = const(0)
OP_TEXT = const(1)
OP_BINARY = const(2)
OP_CLOSE = const(8)
OP_PING = const(9)
OP_PONG = const(10)

# Longest header: 2 + 8 (64-bit length) + 4 (mask key).
MAX_HEADER = const(14)

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def parse_url(url):
    """ws[s]://host[:port][/path?query] -> (secure, host, port, path, host_header).

    The path and query go out verbatim; Host carries the port only when it is
    not the scheme's default (what the xiaozhi reference sends). IPv6 literals
    are written in brackets. Raises ValueError naming the URL."""
    if not isinstance(url, str):
        raise ValueError("bad WebSocket URL: not a string")
    if url.startswith("ws://"):
        secure, rest, port = False, url[5:], 80
    elif url.startswith("wss://"):
        secure, rest, port = True, url[6:], 443
    else:
        raise ValueError("bad WebSocket URL (need ws:// or wss://): " + url)
    i = 0
    while i < len(rest) and rest[i] not in "/?#":
        i += 1
    netloc, path = rest[:i], rest[i:]
    if "#" in path:
        raise ValueError("bad WebSocket URL (fragment not allowed): " + url)
    if "@" in netloc:
        raise ValueError("bad WebSocket URL (userinfo not supported): " + url)
    if not path:
        path = "/"
    elif path[0] == "?":
        path = "/" + path
    default = port
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 2:
            raise ValueError("bad WebSocket URL (IPv6 host): " + url)
        host, tail = netloc[1:end], netloc[end + 1 :]
        shown = netloc[: end + 1]
    else:
        j = netloc.find(":")
        host, tail = (netloc, "") if j < 0 else (netloc[:j], netloc[j:])
        shown = host
    if not host or " " in host:
        raise ValueError("bad WebSocket URL (no host): " + url)
    if tail:
        if tail[0] != ":" or not tail[1:].isdigit():
            raise ValueError("bad WebSocket URL (port): " + url)
        port = int(tail[1:])
        if not 0 < port < 65536:
            raise ValueError("bad WebSocket URL (port out of range): " + url)
    if port != default:
        shown = shown + ":" + str(port)
    return secure, host, port, path, shown


def make_key(rand16):
    """Sec-WebSocket-Key: base64 of 16 random bytes."""
    if len(rand16) != 16:
        raise ValueError("key needs 16 random bytes")
    return binascii.b2a_base64(rand16).strip().decode()


def accept_key(key):
    """The Sec-WebSocket-Accept a correct server answers to `key`."""
    if isinstance(key, str):
        key = key.encode()
    d = hashlib.sha1(key + _GUID).digest()
    return binascii.b2a_base64(d).strip().decode()


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


def parse_header(buf, avail):
    """Convenience for tests and tools: (fin, rsv, op, masked, n, hlen) or
    None if buf[:avail] does not yet hold the whole header."""
    if avail < 2:
        return None
    hl = header_size(buf[0], buf[1])
    if avail < hl:
        return None
    return (buf[0] >> 7, (buf[0] >> 4) & 7, buf[0] & 0x0F, buf[1] >> 7, payload_len(buf), hl)


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
# Pure versions are always defined (tests and the bench compare against them);
# viper versions replace them where the emitter exists.


def mask_py(buf, off, n, key, koff):
    """XOR buf[off:off+n] in place with the 4-byte key at key[koff:]."""
    k0, k1, k2, k3 = key[koff], key[koff + 1], key[koff + 2], key[koff + 3]
    i = 0
    while i + 4 <= n:
        buf[off + i] ^= k0
        buf[off + i + 1] ^= k1
        buf[off + i + 2] ^= k2
        buf[off + i + 3] ^= k3
        i += 4
    k = (k0, k1, k2, k3)
    while i < n:
        buf[off + i] ^= k[i & 3]
        i += 1


def copy_py(dst, doff, src, soff, n):
    """dst[doff:doff+n] = src[soff:soff+n] without slice objects."""
    for i in range(n):
        dst[doff + i] = src[soff + i]


def rng_fill_py(state, buf, off):
    """Advance the xorshift32 in state (4-byte bytearray) and write the
    4 new bytes to buf[off:off+4]. Not cryptographic; RFC 6455 only needs the
    mask unpredictable to web content, which a device client does not run."""
    x = state[0] | (state[1] << 8) | (state[2] << 16) | (state[3] << 24)
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    for i in range(4):
        state[i] = buf[off + i] = (x >> (8 * i)) & 0xFF


mask = mask_py
copy = copy_py
rng_fill = rng_fill_py

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
    pass
