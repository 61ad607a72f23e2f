# The device audio codec behind one small interface (DESIGN.md section 3.2):
#   c = create(fmt, sample_rate, frame_ms)
#   c.frame_samples, c.max_packet, c.fmt, c.sample_rate, c.frame_ms
#   c.encode_into(pcm, out) -> packet bytes   (one frame of s16le mono)
#   c.decode_into(pkt, pcm[, off, n]) -> pcm bytes (s16le mono)
#   c.reset()                                 (new stream; decoder state)
# Formats: "pcm" (s16le passthrough) and "adpcm" (IMA-ADPCM, 4:1, each frame
# self-contained; firmware/adpcm.py has the packet layout). The edge gateway
# transcodes either to Opus. A native Opus module would become another class
# with the same methods, picked in create() when importable, so the callers do
# not change. Both calls run per frame and allocate nothing.
# frame_bytes is one frame of s16le (what encode_into reads, decode_into
# writes at most); max_packet is the largest packet on the wire, which is what
# uplink slots and a jitter buffer of compressed packets are sized by.
from firmware.dsp import copy_bytes

FORMATS = ("pcm", "adpcm")
_RATES = (8000, 12000, 16000, 24000, 48000)  # Opus's rates; pcm accepts them too
_FRAME_MS = (10, 20, 40, 60, 80, 100, 120)


class PcmCodec:
    """s16le mono passthrough: a packet is exactly one frame of samples."""

    fmt = "pcm"

    def __init__(self, sample_rate, frame_ms):
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_samples = sample_rate * frame_ms // 1000
        self.frame_bytes = 2 * self.frame_samples
        self.max_packet = self.frame_bytes

    def reset(self):
        pass

    def encode_into(self, pcm, out):
        """Encode the first frame_samples samples of pcm into out."""
        n = self.frame_bytes
        if len(pcm) < n:
            raise ValueError("pcm encode: %d bytes < one %d-byte frame" % (len(pcm), n))
        if len(out) < n:
            raise ValueError("pcm encode: output %d bytes < %d" % (len(out), n))
        copy_bytes(out, 0, pcm, 0, n)
        return n

    def decode_into(self, pkt, pcm, off=0, n=None):
        """Decode one packet into pcm; returns bytes of s16le written. A packet
        may be shorter than a frame (the server's last TTS frame often is).
        off/n select the packet inside a larger buffer (e.g. a received
        frame after its header) without slicing, which would allocate a view."""
        if n is None:
            n = len(pkt) - off
        if off < 0 or n < 0 or off + n > len(pkt):
            raise ValueError("pcm packet: %d bytes at %d outside %d-byte buffer" % (n, off, len(pkt)))
        if n & 1:
            raise ValueError("pcm packet: odd length %d" % n)
        if n > self.max_packet:
            raise ValueError("pcm packet: %d bytes > %d-byte frame" % (n, self.max_packet))
        if len(pcm) < n:
            raise ValueError("pcm decode: output %d bytes < %d" % (len(pcm), n))
        copy_bytes(pcm, 0, pkt, off, n)
        return n


class AdpcmCodec:
    """IMA-ADPCM: a 4-byte state header, then 4 bits a sample."""

    fmt = "adpcm"

    def __init__(self, sample_rate, frame_ms):
        # Imported here: a pcm device never loads the ADPCM tables and loops (4 KB of heap).
        from firmware import adpcm

        self._adpcm = adpcm
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_samples = sample_rate * frame_ms // 1000
        self.frame_bytes = 2 * self.frame_samples
        self.max_packet = adpcm.packet_bytes(self.frame_samples)
        self._state = adpcm.new_state()

    def reset(self):
        """A new uplink stream starts from predictor 0, step index 0."""
        for i in range(len(self._state)):
            self._state[i] = 0

    def encode_into(self, pcm, out):
        """Encode the first frame_samples samples of pcm into out."""
        return self._adpcm.encode(pcm, self.frame_samples, out, self._state)

    def decode_into(self, pkt, pcm, off=0, n=None):
        """Decode one packet (pkt[off:off+n], default the rest) into pcm;
        returns bytes of s16le written. A packet may hold fewer samples than
        a frame; every packet carries its own state, so there is none here."""
        if n is None:
            n = len(pkt) - off
        if n > self.max_packet:
            raise ValueError("adpcm packet: %d bytes > %d-byte frame" % (n, self.max_packet))
        return self._adpcm.decode(pkt, off, n, pcm)


_CODECS = {"pcm": PcmCodec, "adpcm": AdpcmCodec}


def create(fmt, sample_rate, frame_ms):
    """Codec for the negotiated hello.audio_params; ValueError when unsupported."""
    if fmt not in _CODECS:
        raise ValueError("audio format %r not supported (have: %s)" % (fmt, ", ".join(FORMATS)))
    if sample_rate not in _RATES:
        raise ValueError("sample_rate %r not one of %s" % (sample_rate, _RATES))
    if frame_ms not in _FRAME_MS:
        raise ValueError("frame_duration %r ms not one of %s" % (frame_ms, _FRAME_MS))
    return _CODECS[fmt](sample_rate, frame_ms)
