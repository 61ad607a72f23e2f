# Plain-Python versions of firmware/adpcm.py's viper loops, with the same
# arguments and results (steps: the step table as little-endian u16 bytes,
# iup1: the index table stored +1). CPython runs these (host tools, the tests),
# and the tests check the viper ones against them. Nothing on the device
# imports this module, so none of it takes room in the device's heap. The
# loops allocate nothing (host_tests/test_audio_heap.py).

# The published IMA step table, readable: firmware/adpcm.py STEPS holds it
# packed (host_tests/upy/test_codec.py checks the two agree).
STEP_TABLE = (
    7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 21, 23, 25, 28, 31, 34, 37, 41, 45,
    50, 55, 60, 66, 73, 80, 88, 97, 107, 118, 130, 143, 157, 173, 190, 209, 230,
    253, 279, 307, 337, 371, 408, 449, 494, 544, 598, 658, 724, 796, 876, 963,
    1060, 1166, 1282, 1411, 1552, 1707, 1878, 2066, 2272, 2499, 2749, 3024, 3327,
    3660, 4026, 4428, 4871, 5358, 5894, 6484, 7132, 7845, 8630, 9493, 10442,
    11487, 12635, 13899, 15289, 16818, 18500, 20350, 22385, 24623, 27086, 29794,
    32767)


def encode(pcm, n, out, st, steps, iup1):
    """Encode n s16le samples of pcm into the packet out (header first),
    starting from and advancing the 4-byte state st (firmware/adpcm.py)."""
    pred = st[0] | (st[1] << 8)
    if pred & 0x8000:
        pred -= 0x10000
    index = st[2]
    out[0] = st[0]
    out[1] = st[1]
    out[2] = index
    out[3] = 0
    step = steps[2 * index] | (steps[2 * index + 1] << 8)
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
        step = steps[2 * index] | (steps[2 * index + 1] << 8)
        k = 4 + (i >> 1)
        if i & 1:
            out[k] |= code
        else:
            out[k] = code << 4
    st[0] = pred & 0xFF
    st[1] = (pred >> 8) & 0xFF
    st[2] = index


def decode(pkt, off, n, pcm, steps, iup1):
    """Decode n samples of the packet at pkt[off:] into pcm (s16le)."""
    pred = pkt[off] | (pkt[off + 1] << 8)
    if pred & 0x8000:
        pred -= 0x10000
    index = pkt[off + 2]
    step = steps[2 * index] | (steps[2 * index + 1] << 8)
    for i in range(n):
        b = pkt[off + 4 + (i >> 1)]
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
        step = steps[2 * index] | (steps[2 * index + 1] << 8)
        pcm[2 * i] = pred & 0xFF
        pcm[2 * i + 1] = (pred >> 8) & 0xFF
