# framing: v1/v2/v3 round trips, byte layout, malformed frames named clearly.
from firmware.framing import Framer
from host_tests.upy.checks import raises


def _frame(fr, payload, ts=0):
    buf = bytearray(fr.header_len + len(payload) + 8)  # spare room is not sent
    buf[fr.header_len : fr.header_len + len(payload)] = payload
    n = fr.encode_into(buf, len(payload), ts)
    return bytes(buf[:n])


def test_versions_and_header_len():
    assert [Framer(v).header_len for v in (1, 2, 3)] == [0, 16, 4]
    for bad in (0, 4, -1, "2", None):
        raises(lambda b=bad: Framer(b), "not 1, 2 or 3")


def test_round_trip_every_version():
    payload = bytes(range(200))
    for v in (1, 2, 3):
        fr = Framer(v)
        f = _frame(fr, payload, 1234)
        assert len(f) == fr.header_len + 200
        rx = Framer(v)
        off = rx.decode(memoryview(f))
        assert off == fr.header_len
        assert rx.payload_len == 200
        assert bytes(memoryview(f)[off : off + rx.payload_len]) == payload
        assert rx.timestamp == (1234 if v == 2 else 0)
        assert rx.type == 0


def test_v2_layout_is_big_endian():
    f = _frame(Framer(2), b"abc", 0x01020304)
    assert f[:16] == bytes([0, 2, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 3]), f[:16]
    # The largest u32 timestamp survives the trip.
    rx = Framer(2)
    rx.decode(_frame(Framer(2), b"x", 0xFFFFFFFF))
    assert rx.timestamp == 0xFFFFFFFF


def test_v3_layout_and_limit():
    f = _frame(Framer(3), b"\x00" * 0x0102)
    assert f[:4] == bytes([0, 0, 1, 2])
    fr = Framer(3)
    big = bytearray(4 + 65536)
    assert fr.encode_into(big, 65535) == 65539
    assert big[2:4] == b"\xff\xff"
    raises(lambda: fr.encode_into(big, 65536), "65536", "65535")


def test_empty_payload():
    for v in (1, 2, 3):
        fr = Framer(v)
        f = _frame(fr, b"")
        assert fr.decode(f) == fr.header_len and fr.payload_len == 0


def test_encode_errors():
    fr = Framer(2)
    raises(lambda: fr.encode_into(bytearray(20), 5), "buffer")
    raises(lambda: fr.encode_into(bytearray(20), -1), "payload")
    raises(lambda: fr.encode_into(bytearray(20), 1, -5), "timestamp")
    raises(lambda: Framer(1).encode_into(bytearray(3), 4), "buffer")


def test_decode_short():
    raises(lambda: Framer(2).decode(b"\x00\x02" + bytes(10)), "v2 frame", "12 bytes", "16-byte header")
    raises(lambda: Framer(3).decode(b"\x00\x00\x00"), "v3 frame", "3 bytes", "4-byte header")


def test_decode_lying_payload_size():
    f = bytearray(_frame(Framer(2), bytes(300)))
    f[12:16] = (5000).to_bytes(4, "big")
    msg = raises(lambda: Framer(2).decode(memoryview(f)), "payload_size 5000 > 300 bytes received")
    assert msg == "v2 frame: payload_size 5000 > 300 bytes received", msg
    f[12:16] = (10).to_bytes(4, "big")
    raises(lambda: Framer(2).decode(f), "payload_size 10 < 300")
    f[12:16] = b"\xff\xff\xff\xff"
    raises(lambda: Framer(2).decode(f), "payload_size")
    g = bytearray(_frame(Framer(3), bytes(50)))
    g[2:4] = b"\x00\x33"
    raises(lambda: Framer(3).decode(g), "v3 frame", "payload_size 51 > 50")


def test_decode_wrong_version_field():
    f = bytearray(_frame(Framer(2), b"hello"))
    f[1] = 3
    raises(lambda: Framer(2).decode(f), "version field 3")
    f[0], f[1] = 1, 2
    raises(lambda: Framer(2).decode(f), "version field 258")


def test_v3_frame_over_65535_cannot_decode():
    # 65536 payload bytes: no u16 payload_size can describe it.
    f = bytearray(4 + 65536)
    f[2:4] = b"\xff\xff"
    raises(lambda: Framer(3).decode(f), "payload_size 65535 < 65536")


def test_type_field_is_reported_not_enforced():
    # Reference devices ignore the type on receive (protocol ref 3.2).
    f = bytearray(_frame(Framer(2), b"{}"))
    f[3] = 1
    rx = Framer(2)
    assert rx.decode(f) == 16 and rx.type == 1


def test_failed_decode_keeps_previous_fields():
    rx = Framer(3)
    rx.decode(_frame(rx, b"abcd"))
    raises(lambda: rx.decode(b"\x00"), "v3 frame")
    assert rx.payload_len == 4
