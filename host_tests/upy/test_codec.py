# codec: the pcm passthrough behind the encode_into/decode_into interface.
from firmware import codec
from host_tests.upy.checks import raises


def test_sizes_follow_rate_and_duration():
    c = codec.create("pcm", 16000, 60)
    assert (c.frame_samples, c.max_packet, c.fmt) == (960, 1920, "pcm")
    d = codec.create("pcm", 24000, 60)
    assert (d.frame_samples, d.max_packet) == (1440, 2880)
    assert codec.create("pcm", 16000, 20).frame_samples == 320


def test_unknown_format_and_params():
    raises(lambda: codec.create("opus", 16000, 60), "'opus'", "pcm")
    raises(lambda: codec.create("adpcm", 16000, 60), "adpcm")
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
