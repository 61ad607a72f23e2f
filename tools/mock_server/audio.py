"""Scripted ASR, energy VAD and tone TTS for the mock server.

Everything here is deterministic so tests can assert on exact texts and
frequencies: the "ASR" reports what it heard (frames, seconds, RMS level), the
"TTS" renders every sentence as one tone (TONES[i] for the i-th sentence) in
word-sized bursts with short fades, so its energy envelope looks like speech.
"""

import array
import math
import re

UPLINK_RATE = 16000
FRAME_MS = 60
# Sentence i of a reply is rendered at TONES[i % len(TONES)] Hz.
TONES = (440.0, 660.0, 880.0)
_AMPLITUDE = 0.3 * 32767
_FADE_MS = 15
_WORD_MS = 300
_SENTENCE_MIN_MS = 720
_SENTENCE_MAX_MS = 1200


def samples(pcm):
    a = array.array("h")
    a.frombytes(bytes(pcm[: len(pcm) & ~1]))
    return a


def rms_dbfs(pcm):
    """RMS level of s16le PCM in dBFS; -inf for no samples or digital silence."""
    a = samples(pcm)
    if not a:
        return float("-inf")
    acc = 0
    for x in a:
        acc += x * x
    if not acc:
        return float("-inf")
    return 20.0 * math.log10(math.sqrt(acc / len(a)) / 32768.0)


def fmt_db(db):
    return "-inf" if db == float("-inf") else str(round(db))


def stt_text(nframes, nbytes, level_db, rate=UPLINK_RATE):
    """The scripted recogniser's result for an utterance."""
    secs = nbytes / (2.0 * rate)
    return f"heard {nframes} frames ({secs:.2f} s) of audio, level {fmt_db(level_db)} dBFS"


class EnergyVAD:
    """End-of-utterance detector on 60 ms blocks of 16 kHz s16le PCM.

    The utterance ends once at least `min_speech_ms` of blocks were above
    `threshold_db` and then `silence_ms` of consecutive blocks were below it,
    or when `max_ms` of audio has been buffered.
    """

    def __init__(self, threshold_db=-45.0, min_speech_ms=500, silence_ms=600, max_ms=15000,
                 rate=UPLINK_RATE):
        self.threshold_db = threshold_db
        self.min_speech_ms = min_speech_ms
        self.silence_ms = silence_ms
        self.max_ms = max_ms
        self._block = rate * FRAME_MS // 1000 * 2
        self.reset()

    def reset(self):
        self._pending = bytearray()
        self.speech_ms = 0
        self.trailing_silence_ms = 0
        self.total_ms = 0
        self.reason = None

    def feed(self, pcm):
        """Feed PCM; returns None while the utterance goes on, else "vad" or "max"."""
        if self.reason:
            return self.reason
        self._pending += pcm
        while len(self._pending) >= self._block:
            block = self._pending[: self._block]
            del self._pending[: self._block]
            self.total_ms += FRAME_MS
            if rms_dbfs(block) >= self.threshold_db:
                self.speech_ms += FRAME_MS
                self.trailing_silence_ms = 0
            else:
                self.trailing_silence_ms += FRAME_MS
            if self.speech_ms >= self.min_speech_ms and self.trailing_silence_ms >= self.silence_ms:
                self.reason = "vad"
            elif self.total_ms >= self.max_ms:
                self.reason = "max"
            if self.reason:
                return self.reason
        return None


def split_sentences(text, max_sentences=3):
    """Split a reply into 2-3 sentences at punctuation, merging any surplus."""
    parts = [p.strip() for p in re.split(r"(?<=[,.:;!?，。：；！？])\s+", text) if p.strip()]
    if len(parts) > max_sentences:
        parts = parts[: max_sentences - 1] + [" ".join(parts[max_sentences - 1:])]
    return parts or [text]


def sentence_ms(text):
    words = max(1, len(text.split()))
    ms = min(max(words * _WORD_MS, _SENTENCE_MIN_MS), _SENTENCE_MAX_MS)
    return ms // FRAME_MS * FRAME_MS


def synth(text, index, rate):
    """Render one sentence as s16le PCM: word bursts of tone TONES[index]."""
    freq = TONES[index % len(TONES)]
    total = rate * sentence_ms(text) // 1000
    words = max(1, len(text.split()))
    slot = total // words
    burst = slot * 3 // 4
    fade = rate * _FADE_MS // 1000
    out = array.array("h", bytes(2 * total))
    w = 2.0 * math.pi * freq / rate
    for k in range(words):
        start = k * slot
        for n in range(burst):
            g = 1.0
            if n < fade:
                g = n / fade
            elif n >= burst - fade:
                g = (burst - 1 - n) / fade
            out[start + n] = int(_AMPLITUDE * g * math.sin(w * n))
    return out.tobytes()


def frames(pcm, rate):
    """Cut PCM into 60 ms frames, zero-padding the last one."""
    size = rate * FRAME_MS // 1000 * 2
    out = []
    for i in range(0, len(pcm), size):
        f = pcm[i:i + size]
        if len(f) < size:
            f = f + bytes(size - len(f))
        out.append(f)
    return out
