# IMA/DVI ADPCM, 4 bits a sample (4:1 against s16le), written from the
# published IMA algorithm (IMA Digital Audio Focus and Technical Working
# Groups, "Recommended Practices for Enhancing Digital Audio Compatibility in
# Multimedia Systems", 1992): an 89-entry step table and a 16-entry index table.
# AdpcmCodec is the codec interface over it (firmware/codec.py); only a
# device whose uplink, downlink or prompts are adpcm loads this module.
#
# Frame format (one 60 ms frame = one packet, see README "Audio formats"):
#   byte 0-1  int16 LE  predictor at the start of the frame
#   byte 2    uint8     step index at the start of the frame (0..88)
#   byte 3    uint8     reserved, 0 (ignored on decode)
#   byte 4..  4-bit codes, two samples a byte, FIRST sample in the HIGH nibble
# 960 samples at 16 kHz -> 4 + 480 = 484 bytes. Every frame carries its own
# decoder state, so a lost frame does not corrupt the next one. The nibble
# order and the arithmetic match CPython's audioop.lin2adpcm/adpcm2lin, so the
# gateway uses that C implementation and each packet is exactly
#   header + audioop.lin2adpcm(pcm, 2, (predictor, index))[0].
#
# encode_into()/decode_into() run once per frame: the viper loops allocate
# nothing (host_tests/test_audio_heap.py). CPython runs the plain-Python loops
# in firmware/adpcm_ref.py instead; the device never loads that module. All
# intermediates fit in int32 (|diff| < 2**17). The encoder state is the next
# frame's header, so it is read and written as bytes: no 32-bit loads, whose
# sign extension differs between ports.
HEADER = 4
MAX_INDEX = 88

# The step table as little-endian u16 for ptr16, in a bytes constant: the
# module keeps its constants for as long as it is loaded, and a tuple of ints
# (or an array built from one) would cost four times the room.
STEPS = (
    b"\x07\x00\x08\x00\x09\x00\x0a\x00\x0b\x00\x0c\x00\x0d\x00\x0e\x00"  # 7 8 9 10 11 12 13 14
    b"\x10\x00\x11\x00\x13\x00\x15\x00\x17\x00\x19\x00\x1c\x00\x1f\x00"  # 16 17 19 21 23 25 28 31
    b"\x22\x00\x25\x00\x29\x00\x2d\x00\x32\x00\x37\x00\x3c\x00\x42\x00"  # 34 37 41 45 50 55 60 66
    b"\x49\x00\x50\x00\x58\x00\x61\x00\x6b\x00\x76\x00\x82\x00\x8f\x00"  # 73 80 88 97 107 118 130 143
    b"\x9d\x00\xad\x00\xbe\x00\xd1\x00\xe6\x00\xfd\x00\x17\x01\x33\x01"  # 157 173 190 209 230 253 279 307
    b"\x51\x01\x73\x01\x98\x01\xc1\x01\xee\x01\x20\x02\x56\x02\x92\x02"  # 337 371 408 449 494 544 598 658
    b"\xd4\x02\x1c\x03\x6c\x03\xc3\x03\x24\x04\x8e\x04\x02\x05\x83\x05"  # 724 796 876 963 1060 1166 1282 1411
    b"\x10\x06\xab\x06\x56\x07\x12\x08\xe0\x08\xc3\x09\xbd\x0a\xd0\x0b"  # 1552 1707 1878 2066 2272 2499 2749 3024
    b"\xff\x0c\x4c\x0e\xba\x0f\x4c\x11\x07\x13\xee\x14\x06\x17\x54\x19"  # 3327 3660 4026 4428 4871 5358 5894 6484
    b"\xdc\x1b\xa5\x1e\xb6\x21\x15\x25\xca\x28\xdf\x2c\x5b\x31\x4b\x36"  # 7132 7845 8630 9493 10442 11487 12635 13899
    b"\xb9\x3b\xb2\x41\x44\x48\x7e\x4f\x71\x57\x2f\x60\xce\x69"  # 15289 16818 18500 20350 22385 24623 27086
    b"\x62\x74\xff\x7f"  # 29794 32767
)
# Index change per code, stored +1 so it fits unsigned bytes for ptr8 (0 = -1).
_INDEX_UP1 = bytes((0, 0, 0, 0, 3, 5, 7, 9, 0, 0, 0, 0, 3, 5, 7, 9))

try:
    import micropython

    @micropython.viper
    def _encode(pcm, n: int, out, st, steps, iup1):
        s = ptr16(pcm)
        o = ptr8(out)
        state = ptr8(st)
        tab = ptr16(steps)
        up = ptr8(iup1)
        pred = state[0] | (state[1] << 8)
        if pred & 0x8000:
            pred -= 0x10000
        index = state[2]
        o[0] = state[0]
        o[1] = state[1]
        o[2] = index
        o[3] = 0
        step = tab[index]
        for i in range(n):
            v = s[i]
            if v & 0x8000:
                v -= 0x10000
            diff = v - pred
            code = 0
            if diff < 0:
                code = 8
                diff = 0 - diff
            vpdiff = step >> 3
            if diff >= step:
                code |= 4
                diff -= step
                vpdiff += step
            half = step >> 1
            if diff >= half:
                code |= 2
                diff -= half
                vpdiff += half
            quarter = step >> 2
            if diff >= quarter:
                code |= 1
                vpdiff += quarter
            if code & 8:
                pred -= vpdiff
                if pred < -32768:
                    pred = -32768
            else:
                pred += vpdiff
                if pred > 32767:
                    pred = 32767
            index += up[code] - 1
            if index < 0:
                index = 0
            elif index > 88:
                index = 88
            step = tab[index]
            k = 4 + (i >> 1)
            if i & 1:
                o[k] = o[k] | code
            else:
                o[k] = code << 4
        state[0] = pred & 0xFF
        state[1] = (pred >> 8) & 0xFF
        state[2] = index

    @micropython.viper
    def _decode(pkt, off: int, n: int, pcm, steps, iup1):
        p = ptr8(uint(ptr8(pkt)) + uint(off))
        d = ptr16(pcm)
        tab = ptr16(steps)
        up = ptr8(iup1)
        pred = p[0] | (p[1] << 8)
        if pred & 0x8000:
            pred -= 0x10000
        index = p[2]
        step = tab[index]
        for i in range(n):
            b = p[4 + (i >> 1)]
            if i & 1:
                code = b & 0x0F
            else:
                code = b >> 4
            index += up[code] - 1
            if index < 0:
                index = 0
            elif index > 88:
                index = 88
            vpdiff = step >> 3
            if code & 4:
                vpdiff += step
            if code & 2:
                vpdiff += step >> 1
            if code & 1:
                vpdiff += step >> 2
            if code & 8:
                pred -= vpdiff
                if pred < -32768:
                    pred = -32768
            else:
                pred += vpdiff
                if pred > 32767:
                    pred = 32767
            step = tab[index]
            d[i] = pred

except (ImportError, AttributeError):  # CPython
    from firmware.adpcm_ref import decode as _decode
    from firmware.adpcm_ref import encode as _encode


class AdpcmCodec:
    """IMA-ADPCM: a 4-byte state header, then 4 bits a sample."""

    fmt = "adpcm"

    def __init__(self, sample_rate, frame_ms):
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_samples = sample_rate * frame_ms // 1000
        if self.frame_samples & 1:
            raise ValueError("adpcm: %d samples a frame; the count must be even" % self.frame_samples)
        self.frame_bytes = 2 * self.frame_samples
        self.max_packet = HEADER + self.frame_samples // 2
        # The encoder state, carried from frame to frame: the next frame's
        # header (predictor 0, step index 0 at the start of a stream).
        self._state = bytearray(HEADER)

    def reset(self):
        """A new uplink stream starts from predictor 0, step index 0."""
        for i in range(HEADER):
            self._state[i] = 0

    def encode_into(self, pcm, out):
        """Encode the first frame_samples samples of pcm into out; returns the
        packet length."""
        if len(pcm) < self.frame_bytes:
            raise ValueError("adpcm encode: %d bytes < %d samples" % (len(pcm), self.frame_samples))
        if len(out) < self.max_packet:
            raise ValueError("adpcm encode: output %d bytes < %d" % (len(out), self.max_packet))
        _encode(pcm, self.frame_samples, out, self._state, STEPS, _INDEX_UP1)
        return self.max_packet

    def decode_into(self, pkt, pcm, off=0, n=None):
        """Decode one packet (pkt[off:off+n], default the rest) into pcm;
        returns bytes of s16le written. A packet may hold fewer samples than
        a frame, and one of just the header decodes to nothing; every packet
        carries its own state, so there is none here."""
        if n is None:
            n = len(pkt) - off
        if off < 0 or n < 0 or off + n > len(pkt):
            raise ValueError("adpcm packet: %d bytes at %d outside %d-byte buffer" % (n, off, len(pkt)))
        if n < HEADER:
            raise ValueError("adpcm packet: %d bytes < %d-byte header" % (n, HEADER))
        if n > self.max_packet:
            raise ValueError("adpcm packet: %d bytes > %d-byte frame" % (n, self.max_packet))
        samples = 2 * (n - HEADER)
        if len(pcm) < 2 * samples:
            raise ValueError("adpcm decode: output %d bytes < %d" % (len(pcm), 2 * samples))
        index = pkt[off + 2]
        if index > MAX_INDEX:
            raise ValueError("adpcm packet: step index %d > 88 (corrupt header)" % index)
        _decode(pkt, off, samples, pcm, STEPS, _INDEX_UP1)
        return 2 * samples
