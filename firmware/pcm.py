# The pcm codec (firmware/codec.py has the interface): s16le mono passed
# through as it is. Loaded by the first codec.create("pcm"): a device whose
# audio and prompts are all adpcm never holds it. Both calls run per frame and
# allocate nothing.
from firmware.dsp import copy_bytes


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
