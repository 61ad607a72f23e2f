# Level metering of s16le frames: the mean square (what the voice detector,
# firmware/vad.py, compares with its noise floor) and the RMS level in whole
# dBFS. Loaded only with the detector (listen_trigger "vad"). The mean square
# is a viper loop that allocates nothing (host_tests/test_audio_heap.py);
# CPython runs the plain-Python one in firmware/dsp_ref.py.
try:
    from micropython import const
except ImportError:  # CPython host tools can reuse this module
    def const(x):
        return x

_MAX_LEVEL_SAMPLES = const(16384)  # the sum of squares' split stays in int32
_MAX_MS = const(0x3FFFFFFF)  # largest small int on 32-bit ports
LEVEL_FLOOR = const(-96)  # level_dbfs() of digital silence

try:
    import micropython

    @micropython.viper
    def _ms(buf, n: int) -> int:
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

except (ImportError, AttributeError, NameError):  # CPython
    from firmware.dsp_ref import mean_square as _ms


def mean_square(buf, n_samples):
    """Mean of sample^2 over n s16le samples (<= 16384), capped at 2^30 - 1."""
    if not 0 < n_samples <= _MAX_LEVEL_SAMPLES or len(buf) < 2 * n_samples:
        raise ValueError("level: n_samples %d not in 1..%d or buffer too small" % (n_samples, _MAX_LEVEL_SAMPLES))
    return _ms(buf, n_samples)


# Thresholds for rounding 10*log10(mean_square / 32768^2) to whole dB with
# integers only: _DB[k] = 2^30 * 10^(-(k + 0.5)/10). All below 2^30, so the
# comparison never touches a big int. Rounded up: the mean square is an
# integer, so m >= T exactly when m >= ceil(T). Built by the first
# db_of_mean_square(): the voice detector never needs it.
_DB = None


def _ceil(x):
    i = int(x)
    return i + 1 if x > i else i


def db_of_mean_square(m):
    """Whole-dB RMS level relative to full scale (32768) for a mean square."""
    global _DB
    if _DB is None:
        _DB = tuple(_ceil(1073741824 * 10 ** (-(k + 0.5) / 10)) for k in range(-LEVEL_FLOOR))
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
