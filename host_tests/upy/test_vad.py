# The voice detector on synthetic frames, under MicroPython and CPython.
import random

from firmware import vad
from host_tests.upy.checks import raises

N = 960


def frame(fill):
    buf = bytearray(2 * N)
    for i in range(N):
        v = int(fill(i))
        if v > 32767:
            v = 32767
        elif v < -32767:
            v = -32767
        buf[2 * i] = v & 0xFF
        buf[2 * i + 1] = (v >> 8) & 0xFF
    return buf


def quiet(seed):
    random.seed(seed)
    return frame(lambda i: random.getrandbits(5) - 16)


def voiced(amp=6000, period=80):
    # A 200 Hz square-ish wave: about 20 zero crossings per 60 ms frame, like voiced speech.
    return frame(lambda i: amp if (i // (period // 2)) % 2 == 0 else -amp)


def hiss(amp=6000):
    # Alternating samples: 959 crossings a frame, far beyond speech.
    return frame(lambda i: amp if i % 2 else -amp)


def settled():
    v = vad.Vad()
    q = quiet(1)
    for _ in range(20):
        assert not v.feed(q)
    return v


def test_zero_crossings_counts_sign_changes():
    assert vad.zero_crossings(hiss(), N) == N - 1
    assert vad.zero_crossings(voiced(), N) == N // 40 - 1
    assert vad.zero_crossings(frame(lambda i: 5), N) == 0
    raises(lambda: vad.zero_crossings(bytearray(10), 6), "6 samples")


def test_pure_and_viper_zero_crossings_agree():
    if vad._zc_v is None:
        return  # CPython: only the pure version exists
    random.seed(3)
    buf = bytearray(random.getrandbits(8) for _ in range(2 * N))
    assert vad._zc_v(buf, N) == vad._zc_py(buf, N)


def test_speech_onset_fires_once_after_three_frames():
    v = settled()
    s = voiced()
    fired = [v.feed(s) for _ in range(6)]
    assert fired == [False, False, True, False, False, False], fired
    assert v.triggers == 1


def test_hiss_and_steady_noise_never_fire():
    v = settled()
    h = hiss()
    assert not any(v.feed(h) for _ in range(30))
    # A steady loud tone-like rumble becomes the floor: after learning it, no more triggers.
    v = settled()
    loud = voiced(600)
    count = sum(1 for _ in range(400) if v.feed(loud))
    assert count <= 1, count
    assert not any(v.feed(loud) for _ in range(100))


def test_warmup_learns_a_noisy_room_first():
    v = vad.Vad()
    s = voiced(300)  # a room already this loud at power-up is not speech
    assert not any(v.feed(s) for _ in range(40))


def test_too_quiet_is_never_speech():
    v = vad.Vad()
    silent = bytearray(2 * N)
    for _ in range(20):
        v.feed(silent)
    assert not any(v.feed(voiced(40)) for _ in range(10))  # ~ -58 dBFS


def test_muted_while_speaker_plays_then_hangover():
    v = settled()
    s = voiced()
    v.mute()
    assert not any(v.feed(s) for _ in range(20))
    v.unmute()
    fired = [v.feed(s) for _ in range(vad.HANGOVER_FRAMES + 2)]
    # Speech through the hangover fires on the first frame after it.
    assert fired.index(True) == vad.HANGOVER_FRAMES, fired


def test_preroll_keeps_the_last_600_ms_in_order():
    v = vad.Vad()
    assert v.slots == 10 and v.preroll_frames() == 0
    for k in range(13):
        v.feed(frame(lambda i, k=k: k))
    assert v.preroll_frames() == 10
    got = [v.preroll(i)[0] for i in range(10)]
    assert got == list(range(3, 13)), got
    raises(lambda: v.preroll(10), "preroll frame 10")
    v.reset()
    assert v.preroll_frames() == 0
