# The sample loops: I2S conversion (firmware/hal/i2s_slots.py), volume curve
# and gain, resampler (firmware/dsp.py), level (firmware/level.py); and, under
# MicroPython, the viper versions agree with the pure ones (firmware/dsp_ref.py)
# on random data.
import math
import random

from firmware import dsp, dsp_ref, level
from firmware.hal import i2s_slots
from host_tests.upy.checks import raises


def _pack16(vals):
    b = bytearray(2 * len(vals))
    for i, v in enumerate(vals):
        v &= 0xFFFF
        b[2 * i] = v & 0xFF
        b[2 * i + 1] = v >> 8
    return b


def _unpack16(b, n=None):
    out = []
    for i in range((len(b) // 2) if n is None else n):
        v = b[2 * i] | (b[2 * i + 1] << 8)
        out.append(v - 0x10000 if v & 0x8000 else v)
    return out


def _pack32(vals):
    b = bytearray(4 * len(vals))
    for i, v in enumerate(vals):
        v &= 0xFFFFFFFF
        for k in range(4):
            b[4 * i + k] = (v >> (8 * k)) & 0xFF
    return b


def _sine(freq, rate, n, amp=20000, phase=0.0):
    return [int(amp * math.sin(2 * math.pi * freq * i / rate + phase)) for i in range(n)]


def _rand_bytes(n, seed):
    random.seed(seed)
    return bytearray(random.getrandbits(8) for _ in range(n))


def _crossings(vals):
    c = 0
    for i in range(1, len(vals)):
        if (vals[i - 1] < 0) != (vals[i] < 0):
            c += 1
    return c


# ------------------------------------------------------------- i2s32_to_s16


def test_i2s_shift_and_clip():
    slots = [0, 0x1000, 0xFFFFF000, 0xFFFFFFFF, 0x07FFF000, 0x08000000, 0x7FFFFFFF, 0x80000000, 0xF8001000, 0xF7FFF000]
    dst = bytearray(2 * len(slots))
    i2s_slots.i2s32_to_s16(_pack32(slots), dst, len(slots), 12)
    # >> is arithmetic (-1 stays -1); clipping is symmetric at +-32767 like
    # the reference, so the most negative slot gives -32767, not -32768.
    assert _unpack16(dst) == [0, 1, -1, -1, 32767, 32767, 32767, -32767, -32767, -32767], _unpack16(dst)


def test_i2s_other_shifts():
    src = _pack32([0x12345678, 0xFEDCBA98])
    dst = bytearray(4)
    i2s_slots.i2s32_to_s16(src, dst, 2, 16)
    assert _unpack16(dst) == [0x1234, 0xFEDC - 0x10000]
    i2s_slots.i2s32_to_s16(_pack32([100, -100]), dst, 2, 0)
    assert _unpack16(dst) == [100, -100]
    i2s_slots.i2s32_to_s16(_pack32([-(1 << 31), (1 << 31) - 1]), dst, 2, 31)
    assert _unpack16(dst) == [-1, 0]


def test_i2s_in_place_and_partial():
    vals = [(i * 40503) << 12 for i in range(-50, 50)]
    src = _pack32(vals)
    ref = bytearray(200)
    i2s_slots.i2s32_to_s16(bytes(src), ref, 100, 12)
    i2s_slots.i2s32_to_s16(src, src, 100, 12)  # one buffer, converted in place
    assert src[:200] == ref
    dst = bytearray(b"\x55" * 8)
    i2s_slots.i2s32_to_s16(_pack32([4096, 8192, 0, 0]), dst, 2, 12)
    assert dst == b"\x01\x00\x02\x00\x55\x55\x55\x55"


def test_i2s_errors():
    raises(lambda: i2s_slots.i2s32_to_s16(bytearray(16), bytearray(8), 5, 12), "5 samples")
    raises(lambda: i2s_slots.i2s32_to_s16(bytearray(16), bytearray(6), 4, 12), "4 samples")
    raises(lambda: i2s_slots.i2s32_to_s16(bytearray(16), bytearray(8), 4, 32), "shift 32")
    raises(lambda: i2s_slots.i2s32_to_s16(bytearray(16), bytearray(8), 4, -1), "shift -1")


# ------------------------------------------------------------------- volume


def test_volume_curve():
    assert dsp.volume_gain(0) == 0
    assert dsp.volume_gain(100) == 65536
    assert dsp.volume_gain(50) == 16384
    assert dsp.volume_gain(70) == 32112  # int((0.7 ** 2) * 65536), as the reference
    gains = [dsp.volume_gain(v) for v in range(101)]
    assert all(gains[i] < gains[i + 1] for i in range(100))
    for bad in (-1, 101, 50.0, None, "70"):
        raises(lambda b=bad: dsp.volume_gain(b), "volume")


def test_gain_endpoints():
    vals = [0, 1, -1, 1000, -1000, 32767, -32768, 12345]
    b = _pack16(vals)
    dsp.apply_gain(b, len(vals), dsp.volume_gain(100))
    assert _unpack16(b) == vals
    dsp.apply_gain(b, len(vals), dsp.volume_gain(0))
    assert _unpack16(b) == [0] * len(vals)


def test_gain_rounds_and_saturates():
    b = _pack16([1000, -1000, 3, -3, 32767, -32768])
    dsp.apply_gain(b, 6, 32768)  # 0.5
    assert _unpack16(b) == [500, -500, 2, -1, 16384, -16384], _unpack16(b)
    b = _pack16([20000, -20000, 100, -100, 16384, -16385])
    dsp.apply_gain(b, 6, 131072)  # 2.0 saturates at the int16 limits
    assert _unpack16(b) == [32767, -32768, 200, -200, 32767, -32768], _unpack16(b)
    b = _pack16([1, -1, 2047, -2048])
    dsp.apply_gain(b, 4, 16 * 65536)  # the maximum, +24 dB
    assert _unpack16(b) == [16, -16, 32752, -32768]


def test_gain_only_touches_n_samples():
    b = _pack16([1000, 1000, 1000])
    dsp.apply_gain(b, 2, 0)
    assert _unpack16(b) == [0, 0, 1000]


def test_gain_errors():
    raises(lambda: dsp.apply_gain(bytearray(4), 2, -1), "gain -1")
    raises(lambda: dsp.apply_gain(bytearray(4), 2, 16 * 65536 + 1), "gain")
    raises(lambda: dsp.apply_gain(bytearray(4), 3, 100), "3 samples")


# ---------------------------------------------------------------- resampler


def _resample_all(r, vals, chunk):
    src = _pack16(vals)
    dst = bytearray(2 * r.max_out(chunk))
    out = []
    i = 0
    while i < len(vals):
        n = min(chunk, len(vals) - i)
        part = src[2 * i : 2 * (i + n)]
        m = r.process(part, n, dst)
        assert m <= r.max_out(n), (m, n)
        out.extend(_unpack16(dst, m))
        i += n
    return out


def test_resample_16k_to_24k_keeps_frequency():
    vals = _sine(440, 16000, 16000)
    out = _resample_all(dsp.Resampler(16000, 24000, 960), vals, 960)
    assert abs(len(out) - 24000) <= 2, len(out)
    f_in = _crossings(vals) / 2 / (len(vals) / 16000)
    f_out = _crossings(out) / 2 / (len(out) / 24000)
    assert abs(f_out - f_in) / f_in < 0.01, (f_in, f_out)
    assert abs(f_out - 440) < 5, f_out


def test_resample_24k_to_16k_keeps_frequency():
    vals = _sine(440, 24000, 24000)
    out = _resample_all(dsp.Resampler(24000, 16000, 1440), vals, 1440)
    assert abs(len(out) - 16000) <= 2, len(out)
    f_out = _crossings(out) / 2 / (len(out) / 16000)
    assert abs(f_out - 440) / 440 < 0.01, f_out


def test_resample_frames_equal_one_pass():
    # Continuity across frame edges: cutting the stream anywhere gives the
    # same samples as converting it in one call.
    vals = _sine(1000, 16000, 1200, 30000, 0.3)
    for a, b in ((16000, 24000), (24000, 16000), (16000, 44100), (48000, 16000)):
        whole = _resample_all(dsp.Resampler(a, b, 1200), vals, 1200)
        for chunk in (1, 7, 160, 960):
            cut = _resample_all(dsp.Resampler(a, b, 1200), vals, chunk)
            assert cut == whole, (a, b, chunk)


def test_resample_no_clicks_at_edges():
    # Linear interpolation of a sine never steps further than the input does.
    vals = _sine(440, 16000, 4800, 32000)
    out = _resample_all(dsp.Resampler(16000, 24000, 960), vals, 960)
    max_in = max(abs(vals[i] - vals[i - 1]) for i in range(1, len(vals)))
    max_out = max(abs(out[i] - out[i - 1]) for i in range(1, len(out)))
    assert max_out <= max_in, (max_in, max_out)


def test_resample_exact_points():
    r = dsp.Resampler(16000, 24000, 16)
    dst = bytearray(2 * r.max_out(4))
    n = r.process(_pack16([0, 300, 600, 900]), 4, dst)
    # Output positions 0, 2/3, 4/3, 2, 8/3; 10/3 needs the next frame.
    assert _unpack16(dst, n) == [0, 200, 400, 600, 800], _unpack16(dst, n)
    # 10/3 interpolates between the previous frame's last sample and this one.
    n = r.process(_pack16([1200, 1500]), 2, dst)
    assert _unpack16(dst, n) == [1000, 1200, 1400], _unpack16(dst, n)  # 16/3 waits
    r.reset()
    n = r.process(_pack16([-3000, 3000]), 2, dst)
    assert _unpack16(dst, n) == [-3000, 1000], _unpack16(dst, n)  # no memory of 1500


def test_resample_same_rate_is_passthrough():
    r = dsp.Resampler(16000, 16000, 960)
    src = _rand_bytes(1920, 1)
    dst = bytearray(1920)
    assert r.process(src, 960, dst) == 960 and dst == src


def test_resample_extremes_do_not_wrap():
    # Full-scale steps: the interpolation must neither wrap nor overshoot, and
    # output points that land on input samples reproduce them exactly.
    vals = [32767, 32767, 32767, -32768, -32768, -32768] * 20
    out = _resample_all(dsp.Resampler(16000, 24000, 120), vals, 120)
    assert max(out) <= 32767 and min(out) >= -32768
    assert 32767 in out and -32768 in out


def test_resample_errors():
    raises(lambda: dsp.Resampler(0, 16000, 960), "in_rate")
    raises(lambda: dsp.Resampler(16000, 24000, 0), "max_in_samples")
    raises(lambda: dsp.Resampler(16000, 16999, 960), "16999 phases")
    r = dsp.Resampler(16000, 24000, 960)
    assert r.max_out(960) == 1441
    raises(lambda: r.process(bytearray(1922), 961, bytearray(4000)), "n_in 961")
    raises(lambda: r.process(bytearray(100), 960, bytearray(4000)), "n_in 960")
    raises(lambda: r.process(bytearray(1920), 960, bytearray(2880)), "need 1441")


# ------------------------------------------------------------------- level


def test_level_dbfs():
    assert level.level_dbfs(bytearray(1920), 960) == level.LEVEL_FLOOR == -96
    assert level.level_dbfs(_pack16([32767, -32767] * 480), 960) == 0
    assert level.level_dbfs(_pack16([-32768] * 960), 960) == 0
    assert level.level_dbfs(_pack16(_sine(500, 16000, 960, 32767)), 960) == -3
    assert level.level_dbfs(_pack16(_sine(500, 16000, 960, 3277)), 960) == -23
    assert level.level_dbfs(_pack16([1, -1] * 480), 960) == -90
    assert level.level_dbfs(_pack16([1000] * 10), 10) == -30  # 20*log10(1000/32768) = -30.3


def test_level_errors():
    raises(lambda: level.level_dbfs(bytearray(10), 0), "n_samples 0")
    raises(lambda: level.level_dbfs(bytearray(10), 6), "n_samples 6")
    raises(lambda: level.level_dbfs(bytearray(40000), 20000), "n_samples 20000")


# ------------------------------------------------------------------- copy


def test_copy_bytes():
    src = bytes(range(40))
    dst = bytearray(48)
    for doff, soff, n in ((0, 0, 40), (4, 8, 32), (1, 3, 13), (5, 0, 0)):
        dst[:] = bytes(48)
        dsp.copy_bytes(dst, doff, src, soff, n)
        assert dst[doff : doff + n] == src[soff : soff + n]
        assert dst[:doff] == bytes(doff) and dst[doff + n :] == bytes(48 - doff - n)
    raises(lambda: dsp.copy_bytes(dst, 40, src, 0, 9), "9 bytes")
    raises(lambda: dsp.copy_bytes(dst, 0, src, 35, 6), "6 bytes")


# ---------------------------------------------------- viper == pure fallback


def test_viper_matches_pure():
    if dsp._copy is dsp_ref.copy:
        return  # CPython: only the pure versions exist (and are tested above)
    src = _rand_bytes(4 * 960, 2)
    for shift in (0, 8, 12, 16, 20):
        a, b = bytearray(1920), bytearray(1920)
        i2s_slots._i2s(src, a, 960, shift)
        dsp_ref.i2s32_to_s16(src, b, 960, shift)
        assert a == b, shift
    pcm = _rand_bytes(2880, 3)
    for g in (0, 1, 20000, 32112, 65535, 65537, 200000, 1 << 20):
        a, b = bytearray(pcm), bytearray(pcm)
        dsp._gain(a, 1440, g >> 16, g & 0xFFFF)
        dsp_ref.gain(b, 1440, g >> 16, g & 0xFFFF)
        assert a == b, g
    for n in (1, 7, 960, 1440):
        assert level._ms(pcm, n) == dsp_ref.mean_square(pcm, n), n
    assert level._ms(_pack16([-32768] * 16), 16) == dsp_ref.mean_square(_pack16([-32768] * 16), 16)
    for a_rate, b_rate in ((16000, 24000), (24000, 16000), (22050, 16000)):
        rv = dsp.Resampler(a_rate, b_rate, 1440)
        rp = dsp.Resampler(a_rate, b_rate, 1440)
        dv = bytearray(2 * rv.max_out(1440))
        dp = bytearray(len(dv))
        for k in range(4):
            chunk = pcm[: 2 * (1440 - 333 * k)]
            n = len(chunk) // 2
            nv = dsp._resample(chunk, n, dv, rv._st)
            np_ = dsp_ref.resample(chunk, n, dp, rp._st)
            assert nv == np_ and dv[: 2 * nv] == dp[: 2 * np_], (a_rate, b_rate, k)
            assert list(rv._st[:3]) == list(rp._st[:3])
    for doff, soff, n in ((0, 0, 1920), (1, 2, 1001), (4, 4, 12)):
        a, b = bytearray(2000), bytearray(2000)
        dsp._copy(a, doff, pcm, soff, n)
        dsp_ref.copy(b, doff, pcm, soff, n)
        assert a == b

