# wsframe: RFC 6455 headers and masking, run under both MicroPython (viper
# paths) and CPython (the pure versions in wsframe_ref).
import wsframe as F
import wsframe_ref as R

_SIZES = (0, 1, 125, 126, 127, 65535, 65536, 70000)


def test_header_round_trip():
    buf = bytearray(F.MAX_HEADER)
    for masked in (False, True):
        for n in _SIZES:
            for op in (F.OP_TEXT, F.OP_BINARY, F.OP_CONT, F.OP_PING):
                end = F.encode_header(buf, 0, op, n, masked, fin=(op != F.OP_CONT))
                assert end == F.header_len(n, masked), (n, masked, end)
                assert F.header_size(buf[0], buf[1]) == end
                assert F.payload_len(buf) == n, (n, F.payload_len(buf))
                fin, rsv, op2, m, n2, hl = R.parse_header(buf, end)
                assert (fin, rsv, op2, m, n2, hl) == (op != F.OP_CONT, 0, op, masked, n, end)
                assert R.parse_header(buf, end - 1) is None


def test_length_encodings_are_minimal():
    buf = bytearray(F.MAX_HEADER)
    F.encode_header(buf, 0, F.OP_BINARY, 125, False)
    assert bytes(buf[:2]) == b"\x82\x7d"
    F.encode_header(buf, 0, F.OP_BINARY, 126, False)
    assert bytes(buf[:4]) == b"\x82\x7e\x00\x7e"
    F.encode_header(buf, 0, F.OP_BINARY, 65535, True)
    assert bytes(buf[:4]) == b"\x82\xfe\xff\xff"
    F.encode_header(buf, 0, F.OP_TEXT, 65536, False)
    assert bytes(buf[:10]) == b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"


def test_header_at_offset():
    buf = bytearray(20)
    end = F.encode_header(buf, 3, F.OP_BINARY, 300, True)
    assert end == 3 + 8 and buf[3] == 0x82 and buf[4] == 0xFE and buf[5] == 1 and buf[6] == 44


def test_64bit_length_with_top_bit_is_rejected():
    hdr = bytearray(b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x01")
    assert F.payload_len(hdr) == -1


def test_rfc6455_masking_example():
    # RFC 6455 §5.7: masked "Hello" with key 37 fa 21 3d.
    frame = bytearray(b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58")
    F.mask(frame, 6, 5, frame, 2)
    assert bytes(frame[6:]) == b"Hello"
    R.mask(frame, 6, 5, frame, 2)
    assert bytes(frame[6:]) == b"\x7f\x9f\x4d\x51\x58"


def test_mask_matches_pure_fallback_all_alignments():
    key = bytearray(b"\x01\x80\xfe\x5a")
    for off in range(4):
        for n in (0, 1, 3, 4, 5, 1920, 1923):
            a = bytearray(off + n + 3)
            for i in range(len(a)):
                a[i] = (i * 7 + 3) & 0xFF
            b = bytearray(a)
            F.mask(a, off, n, key, 0)
            R.mask(b, off, n, key, 0)
            assert a == b, (off, n)
            F.mask(a, off, n, key, 0)
            assert a[off + n :] == b[off + n :] and a[:off] == b[:off]
            # masking twice is the identity
            for i in range(off, off + n):
                assert a[i] == (i * 7 + 3) & 0xFF


def test_copy_all_alignments():
    src = bytearray(bytes(range(256)) * 9)
    for soff in range(4):
        for doff in range(4):
            for n in (0, 1, 7, 8, 1920):
                d = bytearray(2000)
                F.copy(d, doff, src, soff, n)
                assert d[doff : doff + n] == src[soff : soff + n]
                assert d[doff + n :] == bytearray(2000 - doff - n)
                e = bytearray(2000)
                R.copy(e, doff, src, soff, n)
                assert d == e


def test_rng_matches_fallback_and_varies():
    s1 = bytearray(b"\x12\x34\x56\x78")
    s2 = bytearray(s1)
    o1 = bytearray(4)
    o2 = bytearray(4)
    seen = []
    for _ in range(50):
        F.rng_fill(s1, o1, 0)
        R.rng_fill(s2, o2, 0)
        assert o1 == o2 and s1 == s2
        seen.append(bytes(o1))
    assert len(set(seen)) == 50


def test_close_payload():
    assert F.close_payload(1000, "bye") == b"\x03\xe8bye"
    assert F.close_payload(None) == b""
    assert len(F.close_payload(1001, "x" * 300)) == 125
    # a 3-byte character across the cut goes whole, so the reason stays UTF-8
    p = F.close_payload(1001, "x" * 121 + "小智")
    assert p == b"\x03\xe9" + b"x" * 121 and str(p[2:], "utf-8")
    assert F.close_payload(1001, "x" * 120 + "小智") == b"\x03\xe9" + ("x" * 120 + "小").encode()
