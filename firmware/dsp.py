# Sample-level DSP for the audio path: I2S slot conversion, volume, rate
# conversion, level metering and a byte copy. Everything here runs once per
# 60 ms frame on the device, so with viper every call allocates nothing (proved
# with micropython.heap_lock() in host_tests/test_audio_heap.py; only the
# no-viper copy fallback allocates, two small views).
#
# Each sample loop exists twice: a viper version (native code, ptr16/ptr32) and
# a plain-Python fallback for CPython (host tools, and the tests, which compare
# the two on random data). A MicroPython port without the native emitter cannot
# use this module at all: @micropython.viper is a SyntaxError at compile time.
# The public functions validate their arguments, then call whichever
# implementation was selected at import.
#
# Integer width: viper ints are machine words, 32-bit on the ESP32. Every
# intermediate below is kept inside int32 by construction (see the comments), and
# values handed back to Python stay below 2**30 so they remain small ints on
# 32-bit ports (bigger ints would be heap objects). Clipping is spelled out with
# if/elif because min()/max() would be Python calls inside viper.
from array import array

try:
    from micropython import const
except ImportError:  # CPython host tools can reuse this module
    def const(x):
        return x

_Q15 = const(15)
_UNITY = const(65536)  # Q16 gain of 1.0
_MAX_GAIN = const(1048576)  # Q16 16.0 (+24 dB): keeps sample*gain inside int32
_MAX_LEVEL_SAMPLES = const(16384)  # level_dbfs: sum of squares split stays in int32
_MAX_DEN = const(16384)  # resampler weight table bound (Q15 weights < 32768)
_MAX_MS = const(0x3FFFFFFF)  # largest small int on 32-bit ports
LEVEL_FLOOR = const(-96)  # level_dbfs() of digital silence

# ---------------------------------------------------------------- copy_bytes


def _copy_py(dst, doff, src, soff, n):
    # No native emitter: a memoryview slice assignment is far faster than a
    # byte loop in bytecode; it allocates two small views per call.
    memoryview(dst)[doff : doff + n] = memoryview(src)[soff : soff + n]


try:
    import micropython

    @micropython.viper
    def _copy_v(dst, doff: int, src, soff: int, n: int):
        # Word copies when both ends and the length are 4-byte aligned (the
        # usual case: heap buffers and even frame sizes), bytes otherwise.
        d = uint(ptr8(dst)) + uint(doff)
        s = uint(ptr8(src)) + uint(soff)
        if int((d | s | uint(n)) & 3) == 0:
            d32 = ptr32(d)
            s32 = ptr32(s)
            for i in range(n >> 2):
                d32[i] = s32[i]
        else:
            d8 = ptr8(d)
            s8 = ptr8(s)
            for i in range(n):
                d8[i] = s8[i]

    _copy = _copy_v
except (ImportError, AttributeError):
    _copy_v = None
    _copy = _copy_py


def copy_bytes(dst, dst_off, src, src_off, n):
    """dst[dst_off:dst_off+n] = src[src_off:src_off+n] without allocating.

    Buffers must not overlap (unless dst_off <= src_off in the same buffer)."""
    if n < 0 or dst_off < 0 or src_off < 0 or dst_off + n > len(dst) or src_off + n > len(src):
        raise ValueError("copy_bytes: %d bytes at %d/%d out of range" % (n, dst_off, src_off))
    if n:
        _copy(dst, dst_off, src, src_off, n)


# ------------------------------------------------------------- i2s32_to_s16


def _i2s_py(src, dst, n, shift):
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


try:

    @micropython.viper
    def _i2s_v(src, dst, n: int, shift: int):
        # Read each 32-bit slot as two 16-bit halves: a ptr32 load is
        # zero-extended on 64-bit hosts, the signed high half is portable.
        s = ptr16(src)
        d = ptr16(dst)
        for i in range(n):
            hi = s[2 * i + 1]
            if hi & 0x8000:
                hi -= 0x10000
            v = ((hi << 16) | s[2 * i]) >> shift
            if v > 32767:
                v = 32767
            elif v < -32767:
                v = -32767
            d[i] = v

    _i2s = _i2s_v
except (NameError, AttributeError):
    _i2s_v = None
    _i2s = _i2s_py


def i2s32_to_s16(src, dst, n_samples, shift):
    """Convert n 32-bit little-endian I2S slots in src to s16le in dst.

    sample = clip(slot >> shift, -32767, 32767), arithmetic shift; INMP441 on
    the reference firmware uses shift=12. src and dst may be the same buffer
    (sample i is read before it is overwritten), which saves a 3.8 KB buffer."""
    if not 0 <= shift <= 31:
        raise ValueError("i2s32_to_s16: shift %d not in 0..31" % shift)
    if n_samples < 0 or len(src) < 4 * n_samples or len(dst) < 2 * n_samples:
        raise ValueError("i2s32_to_s16: buffers too small for %d samples" % n_samples)
    _i2s(src, dst, n_samples, shift)


# ------------------------------------------------------------------- volume


def volume_gain(volume):
    """Volume 0..100 -> Q16 gain, the reference curve (volume/100)^2 * 65536.

    Truncated like the reference's double-to-int32 assignment: 70 -> 32112."""
    if not isinstance(volume, int) or not 0 <= volume <= 100:
        raise ValueError("volume %r not an int in 0..100" % (volume,))
    # 100*100*65536 = 655360000 < 2**30: stays a small int on 32-bit ports.
    return volume * volume * _UNITY // 10000


def _gain_py(buf, n, gi, gf):
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


try:

    @micropython.viper
    def _gain_v(buf, n: int, gi: int, gf: int):
        # gain = gi + gf/65536 with gi <= 16, gf < 65536: both products and the
        # rounding term stay below 2**31.
        p = ptr16(buf)
        for i in range(n):
            v = p[i]
            if v & 0x8000:
                v -= 0x10000
            v = v * gi + ((v * gf + 32768) >> 16)
            if v > 32767:
                v = 32767
            elif v < -32768:
                v = -32768
            p[i] = v

    _gain = _gain_v
except (NameError, AttributeError):
    _gain_v = None
    _gain = _gain_py


def apply_gain(buf, n_samples, gain_q16):
    """Scale n s16le samples in place by gain_q16/65536, rounding, saturating."""
    if not 0 <= gain_q16 <= _MAX_GAIN:
        raise ValueError("apply_gain: gain %d not in 0..%d" % (gain_q16, _MAX_GAIN))
    if n_samples < 0 or len(buf) < 2 * n_samples:
        raise ValueError("apply_gain: buffer too small for %d samples" % n_samples)
    if gain_q16 != _UNITY:
        _gain(buf, n_samples, gain_q16 >> 16, gain_q16 & 0xFFFF)


# ---------------------------------------------------------------- resampler
# State lives in an array('i') so the viper and Python versions share it:
#   [0] vi    virtual index of the left sample: 0 = last sample of the previous
#             call, k >= 1 = src[k-1]. Never negative (ptr32 loads are
#             zero-extended on 64-bit hosts).
#   [1] f     fractional position, in 1/den of an input sample
#   [2] prev  last input sample of the previous call, as a u16 bit pattern
#   [3] si, [4] sf   step (in_rate/out_rate) = si + sf/den
#   [5] den
#   [6..6+den) Q15 interpolation weights round(f * 32768 / den)
_ST_HDR = const(6)


def _resample_py(src, n_in, dst, st):
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
            a += ((b - a) * st[_ST_HDR + f] + 16384) >> _Q15
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


try:

    @micropython.viper
    def _resample_v(src, n_in: int, dst, st) -> int:
        s = ptr16(src)
        d = ptr16(dst)
        t = ptr32(st)
        vi = int(t[0])
        f = int(t[1])
        prev = int(t[2])
        if prev & 0x8000:
            prev -= 0x10000
        si = int(t[3])
        sf = int(t[4])
        den = int(t[5])
        j = 0
        while vi < n_in or (vi == n_in and f == 0):
            if vi == 0:
                a = prev
            else:
                a = s[vi - 1]
                if a & 0x8000:
                    a -= 0x10000
            if f:
                b = s[vi]
                if b & 0x8000:
                    b -= 0x10000
                # |b - a| <= 65535, weight <= 32766: product plus the
                # rounding term stays below 2**31.
                a += ((b - a) * int(t[_ST_HDR + f]) + 16384) >> _Q15
            d[j] = a
            j += 1
            vi += si
            f += sf
            if f >= den:
                f -= den
                vi += 1
        if n_in:
            t[2] = s[n_in - 1]
            vi -= n_in
        t[0] = vi
        t[1] = f
        return j

    _resample = _resample_v
except (NameError, AttributeError):
    _resample_v = None
    _resample = _resample_py


def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


class Resampler:
    """Linear-interpolation rate converter for s16le mono.

    Keeps the fractional phase and the last input sample between calls, so a
    stream cut into frames comes out as if converted in one piece (no clicks
    at frame edges). There is no anti-alias filter: fine for speech 16k<->24k,
    where the content of interest is below 8 kHz.
    Output count varies by one between calls (e.g. 16k->24k on 960-sample
    frames gives 1439, then 1440 each); max_out() bounds it."""

    def __init__(self, in_rate, out_rate, max_in_samples):
        for name, v in (("in_rate", in_rate), ("out_rate", out_rate), ("max_in_samples", max_in_samples)):
            if not isinstance(v, int) or v <= 0:
                raise ValueError("Resampler: %s %r must be a positive int" % (name, v))
        g = _gcd(in_rate, out_rate)
        step, den = in_rate // g, out_rate // g
        if den > _MAX_DEN:
            raise ValueError("Resampler: %d->%d Hz needs %d phases (max %d)" % (in_rate, out_rate, den, _MAX_DEN))
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.max_in_samples = max_in_samples
        self._step = step
        self._den = den
        self._same = in_rate == out_rate
        st = array("i", bytes(4 * (_ST_HDR + den)))
        st[3] = step // den
        st[4] = step % den
        st[5] = den
        for f in range(den):
            st[_ST_HDR + f] = (f * 32768 + den // 2) // den
        self._st = st
        self.reset()

    def reset(self):
        """Forget the previous stream (new TTS stream, new capture)."""
        st = self._st
        st[0] = 1  # first output is src[0] exactly: no added delay
        st[1] = 0
        st[2] = 0

    def max_out(self, n_in):
        """Most samples process() can produce from n_in input samples."""
        return n_in * self._den // self._step + 1

    def process(self, src, n_in, dst):
        """Convert n_in samples from src into dst; returns samples written."""
        if n_in < 0 or n_in > self.max_in_samples or len(src) < 2 * n_in:
            raise ValueError("Resampler: n_in %d invalid (max %d, src %d bytes)"
                             % (n_in, self.max_in_samples, len(src)))
        if self._same:
            if len(dst) < 2 * n_in:
                raise ValueError("Resampler: dst too small for %d samples" % n_in)
            if n_in:
                _copy(dst, 0, src, 0, 2 * n_in)
            return n_in
        if len(dst) < 2 * self.max_out(n_in):
            raise ValueError("Resampler: dst holds %d samples, need %d" % (len(dst) // 2, self.max_out(n_in)))
        return _resample(src, n_in, dst, self._st)


# ------------------------------------------------------------------- level
# Thresholds for rounding 10*log10(mean_square / 32768^2) to whole dB with
# integers only: _DB[k] = 2^30 * 10^(-(k + 0.5)/10). All below 2^30, so the
# comparison never touches a big int. Built once at import, rounded up:
# the mean square is an integer, so m >= T exactly when m >= ceil(T).
def _ceil(x):
    i = int(x)
    return i + 1 if x > i else i


_DB = tuple(_ceil(1073741824 * 10 ** (-(k + 0.5) / 10)) for k in range(-LEVEL_FLOOR))


def _ms_py(buf, n):
    acc = 0
    for i in range(n):
        k = i << 1
        v = buf[k] | (buf[k + 1] << 8)
        if v & 0x8000:
            v -= 0x10000
        acc += v * v
    m = acc // n
    return min(m, _MAX_MS)


try:

    @micropython.viper
    def _ms_v(buf, n: int) -> int:
        # Sum of squares as hi * 2^16 + lo: each square is <= 2^30 and hi grows
        # by <= 2^14 per sample, so n <= 16384 keeps everything in int32.
        p = ptr16(buf)
        hi = 0
        lo = 0
        for i in range(n):
            v = p[i]
            if v & 0x8000:
                v -= 0x10000
            lo += v * v
            hi += lo >> 16
            lo &= 0xFFFF
        q = hi // n
        m = (q << 16) + (((hi - q * n) << 16) + lo) // n
        if m > _MAX_MS:
            m = _MAX_MS
        return m

    _ms = _ms_v
except (NameError, AttributeError):
    _ms_v = None
    _ms = _ms_py


def mean_square(buf, n_samples):
    """Mean of sample^2 over n s16le samples (<= 16384), capped at 2^30 - 1."""
    if not 0 < n_samples <= _MAX_LEVEL_SAMPLES or len(buf) < 2 * n_samples:
        raise ValueError("level: n_samples %d not in 1..%d or buffer too small" % (n_samples, _MAX_LEVEL_SAMPLES))
    return _ms(buf, n_samples)


def db_of_mean_square(m):
    """Whole-dB RMS level relative to full scale (32768) for a mean square."""
    # Binary search over the threshold table: _DB is decreasing.
    lo = 0
    hi = -LEVEL_FLOOR
    while lo < hi:
        mid = (lo + hi) >> 1
        if m >= _DB[mid]:
            hi = mid
        else:
            lo = mid + 1
    return -lo


def level_dbfs(buf, n_samples):
    """RMS level of n s16le samples in whole dBFS: 0 for a full-scale square
    wave, about -3 for a full-scale sine, LEVEL_FLOOR (-96) for silence."""
    return db_of_mean_square(mean_square(buf, n_samples))
