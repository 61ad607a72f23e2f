# codec: pcm passthrough and IMA-ADPCM behind the encode_into/decode_into interface.
import math
import sys

from firmware import adpcm, adpcm_ref, codec
from host_tests.upy.checks import raises


def test_sizes_follow_rate_and_duration():
    c = codec.create("pcm", 16000, 60)
    assert (c.frame_samples, c.max_packet, c.fmt) == (960, 1920, "pcm")
    d = codec.create("pcm", 24000, 60)
    assert (d.frame_samples, d.max_packet) == (1440, 2880)
    assert codec.create("pcm", 16000, 20).frame_samples == 320


def test_unknown_format_and_params():
    raises(lambda: codec.create("opus", 16000, 60), "'opus'", "pcm")
    raises(lambda: codec.create("mp3", 16000, 60), "'mp3'", "pcm, adpcm")
    raises(lambda: codec.create("pcm", 44100, 60), "sample_rate 44100")
    raises(lambda: codec.create("pcm", 16000, 61), "frame_duration 61")


def test_encode_decode_round_trip():
    c = codec.create("pcm", 16000, 60)
    pcm = bytearray(i * 7 & 0xFF for i in range(1920))
    pkt = bytearray(c.max_packet)
    n = c.encode_into(memoryview(pcm), memoryview(pkt))
    assert n == 1920 and pkt == pcm
    out = bytearray(1920)
    assert c.decode_into(memoryview(pkt)[:n], out) == 1920 and out == pcm
    c.reset()


def test_encode_takes_exactly_one_frame():
    c = codec.create("pcm", 16000, 60)
    big = bytearray(4000)
    big[1919] = 9
    big[1920] = 5
    pkt = bytearray(4000)
    assert c.encode_into(big, pkt) == 1920
    assert pkt[1919] == 9 and pkt[1920] == 0
    raises(lambda: c.encode_into(bytearray(1918), pkt), "1918 bytes")
    raises(lambda: c.encode_into(big, bytearray(100)), "output 100")


def test_short_last_packet_decodes():
    c = codec.create("pcm", 24000, 60)
    out = bytearray(c.max_packet)
    assert c.decode_into(b"\x01\x02\x03\x04", out) == 4 and out[:4] == b"\x01\x02\x03\x04"
    assert c.decode_into(b"", out) == 0


def test_decode_errors():
    c = codec.create("pcm", 16000, 60)
    out = bytearray(1920)
    raises(lambda: c.decode_into(bytes(11), out), "odd length 11")
    raises(lambda: c.decode_into(bytes(1922), out), "1922 bytes > 1920")
    raises(lambda: c.decode_into(bytes(100), bytearray(50)), "output 50")


def test_decode_from_inside_a_frame():
    # The reader passes the whole received frame plus the payload offset.
    c = codec.create("pcm", 16000, 60)
    frame = bytearray(b"HDR!") + bytearray(range(10))
    out = bytearray(1920)
    assert c.decode_into(frame, out, 4, 10) == 10 and out[:10] == bytearray(range(10))
    assert c.decode_into(memoryview(frame), out, 4) == 10
    raises(lambda: c.decode_into(frame, out, 4, 12), "12 bytes at 4 outside 14-byte")
    raises(lambda: c.decode_into(frame, out, 20), "outside")
    raises(lambda: c.decode_into(frame, out, 5, 9), "odd length 9")


# ------------------------------------------------------------------ adpcm


def _tone(samples, amp, period):
    # A sine plus a small square wave: ADPCM must track both slopes and steps.
    out = bytearray(2 * samples)
    for i in range(samples):
        v = int(amp * math.sin(2 * math.pi * i / period)) + (300 if i % 40 < 20 else -300)
        out[2 * i] = v & 0xFF
        out[2 * i + 1] = (v >> 8) & 0xFF
    return out


def _s16(buf, i):
    v = buf[2 * i] | (buf[2 * i + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


def _rms(buf, n):
    return math.sqrt(sum(_s16(buf, i) ** 2 for i in range(n)) / n)


def test_adpcm_sizes():
    c = codec.create("adpcm", 16000, 60)
    assert (c.fmt, c.frame_samples, c.frame_bytes, c.max_packet) == ("adpcm", 960, 1920, 484)
    assert codec.create("adpcm", 24000, 60).max_packet == 4 + 720


def test_adpcm_round_trip_keeps_the_waveform():
    c = codec.create("adpcm", 16000, 60)
    pcm = _tone(3 * 960, 12000, 37)
    pkt = bytearray(c.max_packet)
    out = bytearray(1920)
    for f in range(3):
        frame = memoryview(pcm)[f * 1920:(f + 1) * 1920]
        assert c.encode_into(frame, pkt) == 484
        assert c.decode_into(pkt, out) == 1920
        if f == 0:
            assert pkt[:4] == b"\x00\x00\x00\x00"  # a stream starts at predictor 0, index 0
        else:
            assert pkt[2] > 0 and pkt[3] == 0  # the header carries the running state
        err = [_s16(out, i) - _s16(frame, i) for i in range(200, 960)]
        # Once the step has adapted, the error is a small fraction of the signal.
        assert math.sqrt(sum(e * e for e in err) / len(err)) < 0.05 * _rms(frame, 960)


def test_adpcm_frames_are_self_contained():
    # Decoding frame 2 alone gives the same samples as decoding the stream:
    # a lost frame 1 does not corrupt it.
    c = codec.create("adpcm", 16000, 60)
    pcm = _tone(2 * 960, 9000, 53)
    p1 = bytearray(484)
    p2 = bytearray(484)
    c.encode_into(memoryview(pcm)[:1920], p1)
    c.encode_into(memoryview(pcm)[1920:], p2)
    alone = bytearray(1920)
    codec.create("adpcm", 16000, 60).decode_into(p2, alone)
    after = bytearray(1920)
    c.decode_into(p1, after)
    c.decode_into(p2, after)
    assert alone == after
    c.reset()
    again = bytearray(484)
    c.encode_into(memoryview(pcm)[:1920], again)
    assert again == p1  # reset() starts a new stream


def test_adpcm_decode_from_inside_a_frame_and_short_packets():
    c = codec.create("adpcm", 16000, 60)
    pkt = bytearray(484)
    c.encode_into(_tone(960, 5000, 20), pkt)
    whole = bytearray(1920)
    c.decode_into(pkt, whole)
    framed = bytearray(b"HDR!") + pkt
    out = bytearray(1920)
    assert c.decode_into(framed, out, 4, 484) == 1920 and out == whole
    # A short last packet: the first 100 codes give the first 200 samples.
    assert c.decode_into(framed, out, 4, 104) == 400 and out[:400] == whole[:400]
    assert c.decode_into(framed, out, 4, 4) == 0


def test_adpcm_errors():
    c = codec.create("adpcm", 16000, 60)
    out = bytearray(1920)
    raises(lambda: c.decode_into(bytes(3), out), "3 bytes < 4-byte header")
    raises(lambda: c.decode_into(bytes(485), out), "485 bytes > 484")
    raises(lambda: c.decode_into(b"\x00\x00\x59\x00" + bytes(10), out), "step index 89")
    raises(lambda: c.decode_into(bytes(484), bytearray(100)), "output 100")
    raises(lambda: c.decode_into(bytes(10), out, 8, 4), "outside")
    raises(lambda: c.encode_into(bytearray(1918), bytearray(484)), "1918 bytes")
    raises(lambda: c.encode_into(bytearray(1920), bytearray(100)), "output 100")
    raises(lambda: adpcm.AdpcmCodec(11025, 60), "661 samples", "even")


def test_adpcm_clips_at_full_scale():
    # A full-scale square wave drives the predictor to the int16 limits.
    c = codec.create("adpcm", 16000, 60)
    pcm = bytearray(1920)
    for i in range(960):
        v = 32767 if (i // 100) & 1 else -32768
        pcm[2 * i] = v & 0xFF
        pcm[2 * i + 1] = (v >> 8) & 0xFF
    pkt = bytearray(484)
    out = bytearray(1920)
    for _ in range(2):
        c.encode_into(pcm, pkt)
        c.decode_into(pkt, out)
    assert max(_s16(out, i) for i in range(960)) > 30000
    assert min(_s16(out, i) for i in range(960)) < -30000


def test_adpcm_packed_step_table_is_the_published_one():
    assert len(adpcm.STEPS) == 2 * len(adpcm_ref.STEP_TABLE) == 2 * (adpcm.MAX_INDEX + 1)
    for i, step in enumerate(adpcm_ref.STEP_TABLE):
        assert adpcm.STEPS[2 * i] | (adpcm.STEPS[2 * i + 1] << 8) == step, i


def test_adpcm_viper_matches_pure():
    if adpcm._encode is adpcm_ref.encode:
        return  # CPython: only the pure versions exist (and are tested above)
    pcm = _tone(960, 14000, 29)
    a, b = bytearray(484), bytearray(484)
    sa, sb = bytearray(b"\x10\x80\x20\x00"), bytearray(b"\x10\x80\x20\x00")
    for _ in range(3):
        adpcm._encode(pcm, 960, a, sa, adpcm.STEPS, adpcm._INDEX_UP1)
        adpcm_ref.encode(pcm, 960, b, sb, adpcm.STEPS, adpcm._INDEX_UP1)
        assert a == b and sa == sb
    da, db = bytearray(1920), bytearray(1920)
    adpcm._decode(a, 0, 960, da, adpcm.STEPS, adpcm._INDEX_UP1)
    adpcm_ref.decode(a, 0, 960, db, adpcm.STEPS, adpcm._INDEX_UP1)
    assert da == db


def test_each_format_loads_only_its_own_codec():
    for fmt, other in (("adpcm", "firmware.pcm"), ("pcm", "firmware.adpcm")):
        for name in ("firmware.pcm", "firmware.adpcm"):
            sys.modules.pop(name, None)
        assert codec.create(fmt, 16000, 60).fmt == fmt
        assert "firmware." + fmt in sys.modules and other not in sys.modules, fmt
