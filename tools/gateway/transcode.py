"""Audio between the device's format and Opus.

Device formats: "pcm" (s16le mono, usually 16 kHz, 60 ms frames) and "adpcm"
(IMA-ADPCM: per frame a 4-byte header, int16 LE predictor, uint8 step index,
uint8 reserved 0, then 4-bit codes with the first sample in the high nibble;
960 samples at 16 kHz make 484 bytes). That layout is exactly what CPython's
audioop.lin2adpcm/adpcm2lin produce and consume with the header as their
state, so the gateway runs the C codec; the device's own encoder agrees with it
byte for byte (host_tests/test_adpcm.py).

Uplink: device frames (ADPCM decoded to PCM first) → libopus encoder → one
60 ms Opus packet per frame for the upstream.
Downlink: upstream Opus at whatever rate and frame size the server encoded
(stock: 24 kHz hybrid TTS plus 16 kHz SILK prompts) → one libopus decoder
running at the device's rate (Opus decodes any stream at any of its rates, so
no resampler and no reopening on rate changes) → re-cut into exact 60 ms
device frames, because the device's jitter buffer works in whole frames;
for "adpcm" each frame is then encoded with the running encoder state.

A device that speaks "opus" itself gets its audio passed through untouched.
"""

import struct
import warnings

import opuslib_next

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # the stdlib module warns once, on import
    # stdlib up to Python 3.12; from 3.13 the audioop-lts package (requirements.txt)
    # installs the same module under the same name.
    import audioop

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
FRAME_MS = 60
_MAX_DECODE_MS = 120  # the longest Opus packet; sizing for it means no frame fails to fit
_APPS = {"voip": opuslib_next.APPLICATION_VOIP, "audio": opuslib_next.APPLICATION_AUDIO}


DEVICE_FORMATS = ("pcm", "adpcm")  # what the gateway transcodes; "opus" passes through
ADPCM_HEADER = 4
_MAX_ADPCM_INDEX = 88


class TranscodeError(ValueError):
    pass


def check_format(fmt, rate):
    if fmt not in DEVICE_FORMATS + ("opus",):
        raise TranscodeError(f"unsupported audio format {fmt!r} (pcm, adpcm or opus)")
    if type(rate) is not int or rate not in OPUS_RATES:  # 16000.0 would pass `in` and break the frame maths
        raise TranscodeError(f"sample rate {rate!r} not one of {OPUS_RATES}")


class AdpcmEncoder:
    """s16le frames → device ADPCM packets; the state runs on from frame to
    frame and each packet's header records it, so the device needs no history."""

    def __init__(self):
        self.state = (0, 0)

    def reset(self):
        self.state = (0, 0)

    def encode(self, pcm):
        pred, index = self.state
        codes, self.state = audioop.lin2adpcm(pcm, 2, self.state)
        return struct.pack("<hBB", pred, index, 0) + codes


def adpcm_decode(pkt):
    """One device ADPCM packet → s16le; None when the header is not one."""
    if len(pkt) < ADPCM_HEADER:
        return None
    pred, index, _reserved = struct.unpack_from("<hBB", pkt)
    if index > _MAX_ADPCM_INDEX:
        return None
    return audioop.adpcm2lin(bytes(pkt[ADPCM_HEADER:]), 2, (pred, index))[0]


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
        if fmt in DEVICE_FORMATS:
            self._enc = opuslib_next.Encoder(rate, 1, _APPS[application])
            self._enc.complexity = complexity
            if bitrate:
                self._enc.bitrate = bitrate
        self.frames_in = 0
        self.packets_out = 0
        self.bad_packets = 0

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
        if self.fmt == "adpcm":
            payload = adpcm_decode(payload)
            if payload is None:
                self.bad_packets += 1
                return []
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
        self._dec = opuslib_next.Decoder(rate, 1) if fmt in DEVICE_FORMATS else None
        self._adpcm = AdpcmEncoder() if fmt == "adpcm" else None
        self.packets_in = 0
        self.frames_out = 0
        self.bad_packets = 0

    def reset(self):
        """A new TTS turn: forget the previous turn's tail and decoder history."""
        self._buf.clear()
        if self._dec is not None:
            self._dec.reset_state()
        if self._adpcm is not None:
            self._adpcm.reset()

    def _device(self, frames):
        if self._adpcm is None:
            return frames
        return [self._adpcm.encode(f) for f in frames]

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
        return self._device(frames)

    def flush(self):
        """The end of a TTS turn: the partial tail, padded with silence to a whole frame."""
        if self._dec is None or not self._buf:
            return []
        tail = bytes(self._buf) + bytes(self.frame_bytes - len(self._buf))
        self._buf.clear()
        self.frames_out += 1
        return self._device([tail])
