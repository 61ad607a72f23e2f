"""Audio between the device's format and Opus.

Uplink: device PCM (s16le mono, usually 16 kHz, 60 ms frames) → libopus
encoder → one 60 ms Opus packet per frame for the upstream.
Downlink: upstream Opus at whatever rate and frame size the server encoded
(stock: 24 kHz hybrid TTS plus 16 kHz SILK prompts) → one libopus decoder
running at the device's rate (Opus decodes any stream at any of its rates, so
no resampler and no reopening on rate changes) → re-cut into exact 60 ms
device frames, because the device's jitter buffer works in whole frames.

A device that speaks "opus" itself gets its audio passed through untouched.
"""

import opuslib_next

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
FRAME_MS = 60
_MAX_DECODE_MS = 120  # the longest Opus packet; sizing for it means no frame fails to fit
_APPS = {"voip": opuslib_next.APPLICATION_VOIP, "audio": opuslib_next.APPLICATION_AUDIO}


class TranscodeError(ValueError):
    pass


def check_format(fmt, rate):
    if fmt not in ("pcm", "opus"):
        raise TranscodeError(f"unsupported audio format {fmt!r} (pcm or opus)")
    if type(rate) is not int or rate not in OPUS_RATES:  # 16000.0 would pass `in` and break the frame maths
        raise TranscodeError(f"sample rate {rate!r} not one of {OPUS_RATES}")


def _whole_frames(buf, chunk, size):
    """The whole `size`-byte frames in buf + chunk; the remainder stays in buf."""
    if not buf and len(chunk) == size:
        return [bytes(chunk)]  # the common case: exactly one frame, no trip through buf
    buf += chunk
    out = []
    while len(buf) >= size:
        out.append(bytes(buf[:size]))
        del buf[:size]
    return out


class Uplink:
    """Device audio → Opus packets."""

    def __init__(self, fmt="pcm", rate=16000, bitrate=24000, complexity=5, application="voip"):
        check_format(fmt, rate)
        self.fmt = fmt
        self.rate = rate
        self.frame_samples = rate * FRAME_MS // 1000
        self.frame_bytes = self.frame_samples * 2
        self._buf = bytearray()
        self._enc = None
        if fmt == "pcm":
            self._enc = opuslib_next.Encoder(rate, 1, _APPS[application])
            self._enc.complexity = complexity
            if bitrate:
                self._enc.bitrate = bitrate
        self.frames_in = 0
        self.packets_out = 0

    def reset(self):
        """A new utterance: drop a partial frame and start the encoder fresh."""
        self._buf.clear()
        if self._enc is not None:
            self._enc.reset_state()

    def feed(self, payload):
        """Return the Opus packets for this chunk of device audio (often exactly one)."""
        self.frames_in += 1
        if self._enc is None:
            self.packets_out += 1
            return [bytes(payload)]
        frames = _whole_frames(self._buf, payload, self.frame_bytes)
        self.packets_out += len(frames)
        return [self._enc.encode(f, self.frame_samples) for f in frames]


class Downlink:
    """Opus packets → device frames of exactly 60 ms at the device's rate."""

    def __init__(self, fmt="pcm", rate=16000):
        check_format(fmt, rate)
        self.fmt = fmt
        self.rate = rate
        self.frame_bytes = rate * FRAME_MS // 1000 * 2
        self._max_samples = rate * _MAX_DECODE_MS // 1000
        self._buf = bytearray()
        self._dec = opuslib_next.Decoder(rate, 1) if fmt == "pcm" else None
        self.packets_in = 0
        self.frames_out = 0
        self.bad_packets = 0

    def reset(self):
        """A new TTS turn: forget the previous turn's tail and decoder history."""
        self._buf.clear()
        if self._dec is not None:
            self._dec.reset_state()

    def feed(self, pkt):
        """Device frames for one Opus packet; [] for an undecodable packet (counted)."""
        self.packets_in += 1
        if self._dec is None:
            self.frames_out += 1
            return [bytes(pkt)]
        try:
            pcm = self._dec.decode(bytes(pkt), self._max_samples)
        except opuslib_next.OpusError:
            self.bad_packets += 1
            return []
        frames = _whole_frames(self._buf, pcm, self.frame_bytes)
        self.frames_out += len(frames)
        return frames

    def flush(self):
        """The end of a TTS turn: the partial tail, padded with silence to a whole frame."""
        if self._dec is None or not self._buf:
            return []
        tail = bytes(self._buf) + bytes(self.frame_bytes - len(self._buf))
        self._buf.clear()
        self.frames_out += 1
        return [tail]
