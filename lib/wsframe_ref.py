# Pure-Python versions of wsframe's viper loops (CPython runs these; tests and
# benches check the viper ones against them) and a server's view of a frame,
# for tests and tools that read what a client sent. Nothing on the device
# imports this module, so none of it takes room in the device's heap.


def mask(buf, off, n, key, koff):
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


def copy(dst, doff, src, soff, n):
    """dst[doff:doff+n] = src[soff:soff+n] without slice objects."""
    for i in range(n):
        dst[doff + i] = src[soff + i]


def rng_fill(state, buf, off):
    """Advance the xorshift32 in state (4-byte bytearray) and write the
    4 new bytes to buf[off:off+4]. Not cryptographic; RFC 6455 only needs the
    mask unpredictable to web content, which a device client does not run."""
    x = state[0] | (state[1] << 8) | (state[2] << 16) | (state[3] << 24)
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    for i in range(4):
        state[i] = buf[off + i] = (x >> (8 * i)) & 0xFF


def parse_header(buf, avail):
    """(fin, rsv, op, masked, n, hlen) of the frame at buf[0:], or None if
    buf[:avail] does not yet hold its whole header."""
    # Imported here: on CPython wsframe imports this module for its loops.
    from wsframe import header_size, payload_len

    if avail < 2:
        return None
    hl = header_size(buf[0], buf[1])
    if avail < hl:
        return None
    return (buf[0] >> 7, (buf[0] >> 4) & 7, buf[0] & 0x0F, buf[1] >> 7, payload_len(buf), hl)
