# IMA/DVI ADPCM, 4 bits a sample (4:1 against s16le), written from the
# published IMA algorithm (IMA Digital Audio Focus and Technical Working
# Groups, "Recommended Practices for Enhancing Digital Audio Compatibility in
# Multimedia Systems", 1992): an 89-entry step table and a 16-entry index table.
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
# encode()/decode() run once per frame: the viper versions allocate nothing
# (host_tests/test_audio_heap.py); the pure versions serve CPython and ports
# without the native emitter. All intermediates fit in int32 (|diff| < 2**17).
# The encoder state is the next frame's header, so it is read and written as
# bytes: no 32-bit loads, whose sign extension differs between ports.
from array import array

HEADER = 4
MAX_INDEX = 88

STEPS = array("H", (
    7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 21, 23, 25, 28, 31, 34, 37, 41, 45,
    50, 55, 60, 66, 73, 80, 88, 97, 107, 118, 130, 143, 157, 173, 190, 209, 230,
    253, 279, 307, 337, 371, 408, 449, 494, 544, 598, 658, 724, 796, 876, 963,
    1060, 1166, 1282, 1411, 1552, 1707, 1878, 2066, 2272, 2499, 2749, 3024, 3327,
    3660, 4026, 4428, 4871, 5358, 5894, 6484, 7132, 7845, 8630, 9493, 10442,
    11487, 12635, 13899, 15289, 16818, 18500, 20350, 22385, 24623, 27086, 29794,
    32767))
# Index change per code, stored +1 so it fits unsigned bytes for ptr8 (0 = -1).
_INDEX_UP1 = bytes((0, 0, 0, 0, 3, 5, 7, 9, 0, 0, 0, 0, 3, 5, 7, 9))


def _encode_py(pcm, n, out, st, steps, iup1):
    pred = st[0] | (st[1] << 8)
    if pred & 0x8000:
        pred -= 0x10000
    index = st[2]
    out[0] = st[0]
    out[1] = st[1]
    out[2] = index
    out[3] = 0
    step = steps[index]
    for i in range(n):
        v = pcm[2 * i] | (pcm[2 * i + 1] << 8)
        if v & 0x8000:
            v -= 0x10000
        diff = v - pred
        code = 0
        if diff < 0:
            code = 8
            diff = -diff
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
        index += iup1[code] - 1
        if index < 0:
            index = 0
        elif index > 88:
            index = 88
        step = steps[index]
        k = HEADER + (i >> 1)
        if i & 1:
            out[k] |= code
        else:
            out[k] = code << 4
    st[0] = pred & 0xFF
    st[1] = (pred >> 8) & 0xFF
    st[2] = index


def _decode_py(pkt, off, n, pcm, steps, iup1):
    pred = pkt[off] | (pkt[off + 1] << 8)
    if pred & 0x8000:
        pred -= 0x10000
    index = pkt[off + 2]
    step = steps[index]
    for i in range(n):
        b = pkt[off + HEADER + (i >> 1)]
        code = b & 0x0F if i & 1 else b >> 4
        index += iup1[code] - 1
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
        step = steps[index]
        pcm[2 * i] = pred & 0xFF
        pcm[2 * i + 1] = (pred >> 8) & 0xFF


try:
    import micropython

    @micropython.viper
    def _encode_v(pcm, n: int, out, st, steps, iup1):
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
    def _decode_v(pkt, off: int, n: int, pcm, steps, iup1):
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

    _encode = _encode_v
    _decode = _decode_v
except (ImportError, AttributeError):  # CPython, or a port without viper
    _encode_v = _decode_v = None
    _encode = _encode_py
    _decode = _decode_py


def packet_bytes(samples):
    """Bytes of a packet holding `samples` samples (an even count)."""
    return HEADER + samples // 2


def new_state():
    """Encoder state, carried from frame to frame: the next frame's 4-byte
    header (predictor 0, step index 0 at the start of a stream)."""
    return bytearray(HEADER)


def encode(pcm, samples, out, state):
    """Encode `samples` s16le samples (even count) of pcm into out, advancing
    state; returns the packet length."""
    if samples < 0 or samples & 1:
        raise ValueError("adpcm encode: sample count %d must be even and >= 0" % samples)
    size = HEADER + (samples >> 1)
    if len(pcm) < 2 * samples:
        raise ValueError("adpcm encode: %d bytes < %d samples" % (len(pcm), samples))
    if len(out) < size:
        raise ValueError("adpcm encode: output %d bytes < %d" % (len(out), size))
    if len(state) < HEADER or state[2] > MAX_INDEX:
        raise ValueError("adpcm encode: state is not a valid %d-byte header" % HEADER)
    _encode(pcm, samples, out, state, STEPS, _INDEX_UP1)
    return size


def decode(pkt, off, n, pcm):
    """Decode the n-byte packet at pkt[off:] into pcm; returns pcm bytes
    written. n == HEADER (no codes) decodes to nothing."""
    if off < 0 or n < 0 or off + n > len(pkt):
        raise ValueError("adpcm packet: %d bytes at %d outside %d-byte buffer" % (n, off, len(pkt)))
    if n < HEADER:
        raise ValueError("adpcm packet: %d bytes < %d-byte header" % (n, HEADER))
    samples = 2 * (n - HEADER)
    if len(pcm) < 2 * samples:
        raise ValueError("adpcm decode: output %d bytes < %d" % (len(pcm), 2 * samples))
    index = pkt[off + 2]
    if index > MAX_INDEX:
        raise ValueError("adpcm packet: step index %d > 88 (corrupt header)" % index)
    _decode(pkt, off, samples, pcm, STEPS, _INDEX_UP1)
    return 2 * samples
