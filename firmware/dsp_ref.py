# Plain-Python versions of the firmware's viper sample loops (firmware/dsp.py,
# firmware/level.py, firmware/hal/i2s_slots.py), with the same arguments and
# results. CPython runs these (host tools, the tests), and the tests check the
# viper ones against them on random data. Nothing on the device imports this
# module, so none of it takes room in the device's heap. The sample loops
# allocate nothing (host_tests/test_audio_heap.py); copy() allocates two views.
_ST_HDR = 6  # the resampler state's header (firmware/dsp.py)
_MAX_MS = 0x3FFFFFFF  # largest small int on 32-bit ports


def copy(dst, doff, src, soff, n):
    """dst[doff:doff+n] = src[soff:soff+n]. A memoryview slice assignment is far
    faster than a byte loop in bytecode; it allocates two small views."""
    memoryview(dst)[doff : doff + n] = memoryview(src)[soff : soff + n]


def i2s32_to_s16(src, dst, n, shift):
    """n 32-bit little-endian I2S slots in src -> s16le in dst:
    clip(slot >> shift, -32767, 32767) (firmware/hal/i2s_slots.py)."""
    for i in range(n):
        j = i << 2
        hi = src[j + 2] | (src[j + 3] << 8)
        if hi & 0x8000:
            hi -= 0x10000
        v = ((hi << 16) | src[j] | (src[j + 1] << 8)) >> shift
        # The reference clips symmetrically to +-32767 (no_audio_codec.cc).
        if v > 32767:
            v = 32767
        elif v < -32767:
            v = -32767
        k = i << 1
        dst[k] = v & 0xFF
        dst[k + 1] = (v >> 8) & 0xFF


def gain(buf, n, gi, gf):
    """Scale n s16le samples in place by gi + gf/65536, rounding, saturating."""
    for i in range(n):
        k = i << 1
        v = buf[k] | (buf[k + 1] << 8)
        if v & 0x8000:
            v -= 0x10000
        v = v * gi + ((v * gf + 32768) >> 16)
        if v > 32767:
            v = 32767
        elif v < -32768:
            v = -32768
        buf[k] = v & 0xFF
        buf[k + 1] = (v >> 8) & 0xFF


def resample(src, n_in, dst, st):
    """One call of a Resampler (firmware/dsp.py): n_in samples of src into dst,
    the phase carried in st; returns samples written."""
    vi = st[0]
    f = st[1]
    prev = st[2]
    if prev & 0x8000:
        prev -= 0x10000
    si = st[3]
    sf = st[4]
    den = st[5]
    j = 0
    while vi < n_in or (vi == n_in and f == 0):
        if vi == 0:
            a = prev
        else:
            k = (vi - 1) << 1
            a = src[k] | (src[k + 1] << 8)
            if a & 0x8000:
                a -= 0x10000
        if f:
            k = vi << 1
            b = src[k] | (src[k + 1] << 8)
            if b & 0x8000:
                b -= 0x10000
            a += ((b - a) * st[_ST_HDR + f] + 16384) >> 15
        k = j << 1
        dst[k] = a & 0xFF
        dst[k + 1] = (a >> 8) & 0xFF
        j += 1
        vi += si
        f += sf
        if f >= den:
            f -= den
            vi += 1
    if n_in:
        k = (n_in - 1) << 1
        st[2] = src[k] | (src[k + 1] << 8)
        vi -= n_in
    st[0] = vi
    st[1] = f
    return j


def mean_square(buf, n):
    """Mean of sample^2 over n s16le samples, capped at 2^30 - 1 (firmware/level.py)."""
    acc = 0
    for i in range(n):
        k = i << 1
        v = buf[k] | (buf[k + 1] << 8)
        if v & 0x8000:
            v -= 0x10000
        acc += v * v
    m = acc // n
    return min(m, _MAX_MS)
