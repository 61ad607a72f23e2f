# The mic's I2S samples as the audio path wants them: the ESP32 HAL reads
# 32-bit slots (the INMP441 gives 24-bit samples in them) and converts each
# frame to s16le here, once per 60 ms frame, allocating nothing
# (host_tests/test_audio_heap.py). A viper loop (see firmware/dsp.py on
# integer widths); CPython runs the plain-Python one in firmware/dsp_ref.py.
try:
    import micropython

    @micropython.viper
    def _i2s(src, dst, n: int, shift: int):
        # Read each 32-bit slot as two 16-bit halves: a ptr32 load is
        # zero-extended on 64-bit hosts, the signed high half is portable.
        s = ptr16(src)
        d = ptr16(dst)
        for i in range(n):
            hi = s[2 * i + 1]
            if hi & 0x8000:
                hi -= 0x10000
            v = ((hi << 16) | s[2 * i]) >> shift
            # The reference clips symmetrically to +-32767 (no_audio_codec.cc).
            if v > 32767:
                v = 32767
            elif v < -32767:
                v = -32767
            d[i] = v

except (ImportError, AttributeError, NameError):  # CPython
    from firmware.dsp_ref import i2s32_to_s16 as _i2s


def i2s32_to_s16(src, dst, n_samples, shift):
    """Convert n 32-bit little-endian I2S slots in src to s16le in dst.

    sample = clip(slot >> shift, -32767, 32767), arithmetic shift; INMP441 on
    the reference firmware uses shift=12. src and dst may be the same buffer
    (sample i is read before it is overwritten), which saves a 3.8 KB buffer."""
    if not 0 <= shift <= 31:
        raise ValueError("i2s32_to_s16: shift %d not in 0..31" % shift)
    if n_samples < 0 or len(src) < 4 * n_samples or len(dst) < 2 * n_samples:
        raise ValueError("i2s32_to_s16: buffers too small for %d samples" % n_samples)
    _i2s(src, dst, n_samples, shift)
