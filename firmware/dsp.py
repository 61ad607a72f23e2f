# Sample-level DSP for the audio path: a byte copy, volume and rate
# conversion. Everything here runs once per 60 ms frame on the device, so with
# viper every call allocates nothing (proved with micropython.heap_lock() in
# host_tests/test_audio_heap.py).
#
# Each sample loop is a viper function (native code, ptr16/ptr32). CPython
# (host tools, and the tests, which compare the two on random data) runs the
# plain-Python versions in firmware/dsp_ref.py instead; the device never loads
# that module. A MicroPython port without the native emitter cannot use this
# module at all: @micropython.viper is a SyntaxError at compile time. The
# public functions validate their arguments, then call the loop.
# The mic's I2S slot conversion is the ESP32 HAL's (firmware/hal/i2s_slots.py)
# and level metering the voice detector's (firmware/level.py).
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
_MAX_DEN = const(16384)  # resampler weight table bound (Q15 weights < 32768)
# Resampler state lives in an array('i') so the viper and Python versions share it:
#   [0] vi    virtual index of the left sample: 0 = last sample of the previous
#             call, k >= 1 = src[k-1]. Never negative (ptr32 loads are
#             zero-extended on 64-bit hosts).
#   [1] f     fractional position, in 1/den of an input sample
#   [2] prev  last input sample of the previous call, as a u16 bit pattern
#   [3] si, [4] sf   step (in_rate/out_rate) = si + sf/den
#   [5] den
#   [6..6+den) Q15 interpolation weights round(f * 32768 / den)
_ST_HDR = const(6)

try:
    import micropython

    @micropython.viper
    def _copy(dst, doff: int, src, soff: int, n: int):
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

    @micropython.viper
    def _gain(buf, n: int, gi: int, gf: int):
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

    @micropython.viper
    def _resample(src, n_in: int, dst, st) -> int:
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

except (ImportError, AttributeError, NameError):  # CPython
    from firmware.dsp_ref import copy as _copy
    from firmware.dsp_ref import gain as _gain
    from firmware.dsp_ref import resample as _resample


def copy_bytes(dst, dst_off, src, src_off, n):
    """dst[dst_off:dst_off+n] = src[src_off:src_off+n] without allocating.

    Buffers must not overlap (unless dst_off <= src_off in the same buffer)."""
    if n < 0 or dst_off < 0 or src_off < 0 or dst_off + n > len(dst) or src_off + n > len(src):
        raise ValueError("copy_bytes: %d bytes at %d/%d out of range" % (n, dst_off, src_off))
    if n:
        _copy(dst, dst_off, src, src_off, n)


# ------------------------------------------------------------------- volume


def volume_gain(volume):
    """Volume 0..100 -> Q16 gain, the reference curve (volume/100)^2 * 65536.

    Truncated like the reference's double-to-int32 assignment: 70 -> 32112."""
    if not isinstance(volume, int) or not 0 <= volume <= 100:
        raise ValueError("volume %r not an int in 0..100" % (volume,))
    # 100*100*65536 = 655360000 < 2**30: stays a small int on 32-bit ports.
    return volume * volume * _UNITY // 10000


def apply_gain(buf, n_samples, gain_q16):
    """Scale n s16le samples in place by gain_q16/65536, rounding, saturating."""
    if not 0 <= gain_q16 <= _MAX_GAIN:
        raise ValueError("apply_gain: gain %d not in 0..%d" % (gain_q16, _MAX_GAIN))
    if n_samples < 0 or len(buf) < 2 * n_samples:
        raise ValueError("apply_gain: buffer too small for %d samples" % n_samples)
    if gain_q16 != _UNITY:
        _gain(buf, n_samples, gain_q16 >> 16, gain_q16 & 0xFFFF)


# ---------------------------------------------------------------- resampler


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
