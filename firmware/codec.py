# The device audio codec behind one small interface (DESIGN.md section 3.2):
#   c = create(fmt, sample_rate, frame_ms)
#   c.frame_samples, c.max_packet, c.fmt, c.sample_rate, c.frame_ms
#   c.encode_into(pcm, out) -> packet bytes   (one frame of s16le mono)
#   c.decode_into(pkt, pcm[, off, n]) -> pcm bytes (s16le mono)
#   c.reset()                                 (new stream; decoder state)
# Formats: "pcm" (s16le passthrough, firmware/pcm.py) and "adpcm" (IMA-ADPCM,
# 4:1, each frame self-contained; firmware/adpcm.py has the packet layout).
# Each format's module is loaded by its first create(), so a device holds only
# the codecs it speaks. The edge gateway transcodes either to Opus. A native
# Opus module would become another class with the same methods, picked in
# create() when importable, so the callers do not change. Both calls run per
# frame and allocate nothing.
# frame_bytes is one frame of s16le (what encode_into reads, decode_into
# writes at most); max_packet is the largest packet on the wire, which is what
# uplink slots and a jitter buffer of compressed packets are sized by.
FORMATS = ("pcm", "adpcm")
_RATES = (8000, 12000, 16000, 24000, 48000)  # Opus's rates; pcm accepts them too
_FRAME_MS = (10, 20, 40, 60, 80, 100, 120)


def create(fmt, sample_rate, frame_ms):
    """Codec for the negotiated hello.audio_params; ValueError when unsupported."""
    if fmt not in FORMATS:
        raise ValueError("audio format %r not supported (have: %s)" % (fmt, ", ".join(FORMATS)))
    if sample_rate not in _RATES:
        raise ValueError("sample_rate %r not one of %s" % (sample_rate, _RATES))
    if frame_ms not in _FRAME_MS:
        raise ValueError("frame_duration %r ms not one of %s" % (frame_ms, _FRAME_MS))
    if fmt == "adpcm":
        from firmware.adpcm import AdpcmCodec as impl
    else:
        from firmware.pcm import PcmCodec as impl
    return impl(sample_rate, frame_ms)
