# Hands-free listening (config listen_trigger = "vad"): an energy and
# zero-crossing voice detector that runs on the mic while the device is idle,
# plus a ring of the last frames so a session can start with the audio from
# before the detector fired (the pre-roll: the first syllable reaches the server).
#
# A frame counts as speech when its energy is well above the adaptive noise
# floor and above an absolute minimum, and its zero-crossing count is in the
# range of voiced speech (hiss and clicks cross zero far more often). Speech
# onset is ONSET_FRAMES speech frames in a row. The floor follows the quiet
# frames: it drops fast and rises slowly, so a steady fan or street noise is
# learned within seconds and never triggers, while a voice does.
#
# While the device's own speaker plays, mute() keeps the detector from firing
# on that output (no echo canceller here); after unmute() it waits a short
# hangover for the room's echo to die away.
#
# feed() runs once per 60 ms frame: the sample loops are viper (level.mean_square
# and _zc below) and all state is small ints and preallocated buffers, so it
# allocates nothing (proved with micropython.heap_lock() in
# host_tests/test_voice_heap.py).
from firmware import dsp, level

try:
    from micropython import const
except ImportError:  # CPython host tools and tests
    def const(x):
        return x

PREROLL_MS = const(600)
ONSET_FRAMES = const(3)  # 180 ms of speech at 60 ms frames
HANGOVER_FRAMES = const(8)  # 480 ms after the speaker stops
_WARMUP_FRAMES = const(8)  # the floor is learned before the first trigger
# Energy ratio over the floor, as a shift: speech needs floor << 3 (+9 dB).
_RATIO_SHIFT = const(3)
# Absolute minimum mean square: about -55 dBFS (32768^2 * 10^-5.5).
_MIN_ENERGY = const(3400)
# Zero crossings per 1000 samples: voiced speech sits well inside 5..250
# (pitch and first formant); white noise crosses about 500 times.
_ZC_MIN_PER_K = const(5)
_ZC_MAX_PER_K = const(250)
# The floor rises by 1/16 of the difference per quiet frame, falls by 1/4.
_RISE_SHIFT = const(4)
_FALL_SHIFT = const(2)
_FLOOR_MIN = const(16)


def _zc_py(buf, n):
    count = 0
    prev = buf[1] & 0x80
    for i in range(1, n):
        neg = buf[2 * i + 1] & 0x80
        if neg != prev:
            count += 1
        prev = neg
    return count


try:
    import micropython

    @micropython.viper
    def _zc_v(buf, n: int) -> int:
        p = ptr16(buf)
        count = 0
        prev = int(p[0]) & 0x8000
        for i in range(1, n):
            neg = int(p[i]) & 0x8000
            if neg != prev:
                count += 1
            prev = neg
        return count

    _zc = _zc_v
except (ImportError, AttributeError, NameError):
    _zc_v = None
    _zc = _zc_py


def zero_crossings(buf, n_samples):
    """Sign changes between neighbouring samples of n s16le samples."""
    if n_samples < 1 or len(buf) < 2 * n_samples:
        raise ValueError("zero_crossings: %d samples do not fit %d bytes" % (n_samples, len(buf)))
    return _zc(buf, n_samples)


class Vad:
    def __init__(self, frame_samples=960, frame_ms=60, preroll_ms=PREROLL_MS):
        self.frame_samples = frame_samples
        self.frame_bytes = 2 * frame_samples
        self.slots = max(1, preroll_ms // frame_ms)
        self.ring = bytearray(self.slots * self.frame_bytes)
        mv = memoryview(self.ring)
        # One view per slot, made once, so preroll() hands them out without allocating.
        self._views = [mv[i * self.frame_bytes:(i + 1) * self.frame_bytes] for i in range(self.slots)]
        self._zc_min = _ZC_MIN_PER_K * frame_samples // 1000
        self._zc_max = _ZC_MAX_PER_K * frame_samples // 1000
        self.triggers = 0  # onsets since creation (benchmarks count them)
        self.frames = 0  # frames fed since creation: the mic's frame index (events, tests)
        self.floor = 0  # mean square of the noise, learned while quiet
        self.seen = 0  # frames the floor has learned from (saturates at the warm-up)
        self.reset()

    def reset(self):
        """Forget the ring and the run of speech frames (the floor is kept)."""
        self.head = 0  # slot the next frame goes into
        self.filled = 0  # valid frames in the ring
        self.run = 0  # consecutive speech frames
        self.hold = 0  # frames left before a trigger is allowed again
        self.muted = False

    def mute(self):
        """The speaker is playing: its output must not trigger the detector."""
        self.muted = True
        self.run = 0

    def unmute(self):
        self.muted = False
        self.hold = HANGOVER_FRAMES

    def feed(self, pcm):
        """Take one frame (frame_samples of s16le); True on speech onset.
        The frame is kept in the ring for preroll(). No allocation."""
        n = self.frame_samples
        self.frames += 1
        dsp.copy_bytes(self.ring, self.head * self.frame_bytes, pcm, 0, self.frame_bytes)
        self.head += 1
        if self.head == self.slots:
            self.head = 0
        if self.filled < self.slots:
            self.filled += 1
        energy = level.mean_square(pcm, n)
        if self.muted:
            return False
        if self.seen < _WARMUP_FRAMES:
            # Learn the floor from the loudest of the first frames, so a noisy
            # room does not look like speech at power-up.
            if energy > self.floor:
                self.floor = energy
            self.seen += 1
            return False
        zc = _zc(pcm, n)
        floor = self.floor
        speech = (energy > _MIN_ENERGY and (energy >> _RATIO_SHIFT) > floor
                  and self._zc_min <= zc <= self._zc_max)
        if speech:
            self.run += 1
        else:
            self.run = 0
            # Only quiet frames teach the floor: fall fast, rise slowly.
            if energy < floor:
                floor -= (floor - energy) >> _FALL_SHIFT
            else:
                # Capped at +0.5 dB a frame: a soft syllable between loud ones
                # must not lift the floor over the rest of the word.
                rise = (energy - floor) >> _RISE_SHIFT
                cap = floor >> 3
                floor += (rise if rise < cap else cap) + 1
            self.floor = floor if floor > _FLOOR_MIN else _FLOOR_MIN
        if self.hold:
            self.hold -= 1
            if self.run >= ONSET_FRAMES:
                self.run = ONSET_FRAMES - 1  # speech through the hangover fires right after it
            return False
        if self.run == ONSET_FRAMES:
            self.triggers += 1
            return True
        return False

    def preroll_frames(self):
        """How many frames preroll() holds (up to the ring's slots)."""
        return self.filled

    def preroll(self, i):
        """The i-th oldest kept frame (0 = oldest) as a view into the ring."""
        if not 0 <= i < self.filled:
            raise ValueError("preroll frame %d of %d" % (i, self.filled))
        j = self.head - self.filled + i
        if j < 0:
            j += self.slots
        return self._views[j]
