# wsparser.FrameParser through its public methods only, under MicroPython and
# CPython: bytes in through read_buffer()/got(), events out of parse().
import struct

import wsparser as P
from wsframe import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT


def frame(op, payload=b"", fin=True, rsv=0, mask=None):
    n = len(payload)
    h = bytearray([(0x80 if fin else 0) | rsv | op, 0x80 if mask else 0])
    if n < 126:
        h[1] |= n
    elif n < 65536:
        h[1] |= 126
        h += struct.pack(">H", n)
    else:
        h[1] |= 127
        h += struct.pack(">Q", n)
    if mask:
        h += mask
        payload = bytes(c ^ mask[i & 3] for i, c in enumerate(payload))
    return bytes(h) + payload


def feed(p, data, chunk=100000):
    """Feed data the way socket reads would (at most `chunk` bytes a read)
    and return every event as (ev, bytes of message or control payload)."""
    events = []
    i = 0
    while True:
        ev = p.parse()
        if ev:
            if ev == OP_TEXT or ev == OP_BINARY or ev == P.SKIPPED:
                events.append((ev, bytes(p.message())))
            else:
                events.append((ev, bytes(p.control())))
            continue
        if i == len(data):
            return events
        buf = p.read_buffer()
        n = min(len(buf), chunk, len(data) - i)
        buf[:n] = data[i : i + n]
        p.got(n)
        i += n


def pattern(n):
    return bytes((i * 7 + 1) & 0xFF for i in range(n))


def test_messages_of_every_length_encoding():
    sizes = (0, 1, 125, 126, 4000, 65535, 65536, 70000)
    data = b"".join(frame(OP_BINARY, pattern(n)) for n in sizes) + frame(OP_TEXT, "小智".encode())
    for chunk in (1, 7, 4096, 100000):
        if chunk == 1:
            data_used, sizes_used = data[: 2 * 1000], None  # byte by byte: the small frames only
        else:
            data_used, sizes_used = data, sizes
        p = P.FrameParser(max_message=70000, rx_buf=4096)
        events = feed(p, data_used, chunk)
        if sizes_used:
            assert [len(m) for _, m in events[:-1]] == list(sizes), chunk
            assert all(m == pattern(len(m)) for _, m in events[:-1])
            assert events[-1] == (OP_TEXT, "小智".encode())
        else:
            assert [len(m) for _, m in events] == [0, 1, 125, 126], [len(m) for _, m in events]


def test_fragments_are_joined_around_control_frames():
    data = (frame(OP_TEXT, b"frag", fin=False) + frame(OP_PING, b"p1") + frame(0, b"men", fin=False)
            + frame(OP_PONG, b"") + frame(0, b"ted") + frame(OP_CLOSE, b"\x03\xe8bye"))
    p = P.FrameParser(max_message=1000, rx_buf=256)
    assert feed(p, data, 5) == [(OP_PING, b"p1"), (OP_PONG, b""), (OP_TEXT, b"fragmented"),
                                (OP_CLOSE, b"\x03\xe8bye")]


def test_oversized_message_is_skipped_and_the_next_one_arrives():
    big = pattern(64 * 1024)
    data = frame(OP_TEXT, big) + frame(OP_BINARY, b"next")
    for chunk in (300, 4096, 100000):
        p = P.FrameParser(max_message=16384, rx_buf=4096)
        events = feed(p, data, chunk)
        assert events == [(P.SKIPPED, big[:16384]), (OP_BINARY, b"next")], chunk
        assert p.skipped_op == OP_TEXT and p.skipped_size == 65536


def test_fragmented_message_over_the_limit_is_skipped_whole():
    data = (frame(OP_BINARY, b"a" * 600, fin=False) + frame(OP_PING, b"x") + frame(0, b"b" * 600, fin=False)
            + frame(0, b"c" * 10) + frame(OP_TEXT, b"ok"))
    p = P.FrameParser(max_message=1000, rx_buf=256)
    events = feed(p, data, 64)
    assert events == [(OP_PING, b"x"), (P.SKIPPED, b"a" * 600 + b"b" * 400), (OP_TEXT, b"ok")]
    assert p.skipped_op == OP_BINARY and p.skipped_size == 1210


def test_a_message_of_exactly_the_limit_is_delivered():
    p = P.FrameParser(max_message=1000, rx_buf=256)
    assert feed(p, frame(OP_BINARY, pattern(1000))) == [(OP_BINARY, pattern(1000))]


def test_protocol_violations_name_the_close_code():
    cases = [
        (frame(OP_TEXT, b"x", rsv=0x40), "reserved bits set"),
        (frame(3, b"x"), "unknown opcode 3"),
        (frame(11, b"x"), "unknown opcode 11"),
        (frame(OP_TEXT, b"x", mask=b"abcd"), "masked frame from server"),
        (frame(0, b"x"), "continuation without a message"),
        (frame(OP_PING, b"x", fin=False), "fragmented control frame"),
        (frame(OP_PING, b"x" * 126), "control frame too long"),
        (frame(OP_TEXT, b"a", fin=False) + frame(OP_TEXT, b"b"), "new message inside a fragmented one"),
        (frame(OP_CLOSE, b"\x03"), "close frame with 1-byte payload"),
        (b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x01", "bad 64-bit length"),
    ]
    for data, reason in cases:
        p = P.FrameParser(max_message=1000, rx_buf=256)
        try:
            feed(p, data)
            raise AssertionError("no error for " + reason)
        except P.ProtocolError as e:
            assert (e.code, e.reason) == (1002, reason), (e.code, e.reason)


def test_head_before_frames_in_one_read():
    p = P.FrameParser(max_message=1000, rx_buf=256)
    buf = p.read_buffer()
    data = b"HTTP/1.1 101 OK\r\nX: y\r\n\r\n" + frame(OP_TEXT, b"first")
    buf[: len(data)] = data
    p.got(len(data))
    assert p.take_until(b"\r\n\r\n") == b"HTTP/1.1 101 OK\r\nX: y"
    assert p.parse() == OP_TEXT and bytes(p.message()) == b"first"


def test_head_in_pieces_and_too_long():
    p = P.FrameParser(max_message=1000, rx_buf=256)
    for piece in (b"HTTP/1.1 101", b" OK\r\n\r", b"\n"):
        assert p.take_until(b"\r\n\r\n") is None
        buf = p.read_buffer()
        buf[: len(piece)] = piece
        p.got(len(piece))
    assert p.take_until(b"\r\n\r\n") == b"HTTP/1.1 101 OK"
    p.reset()
    buf = p.read_buffer()
    buf[:256] = b"x" * 256
    p.got(256)
    try:
        p.take_until(b"\r\n\r\n")
        raise AssertionError("no error for a full buffer")
    except ValueError:
        pass


def test_reset_forgets_a_half_read_message():
    p = P.FrameParser(max_message=1000, rx_buf=256)
    assert feed(p, frame(OP_TEXT, b"abcdef")[:4]) == []
    p.reset()
    assert feed(p, frame(OP_TEXT, b"new")) == [(OP_TEXT, b"new")]


def test_large_payload_is_read_straight_into_the_message_buffer():
    # Past the rx buffer's size, read_buffer() is the message buffer itself:
    # one read fills what would otherwise take many rx buffer rounds.
    p = P.FrameParser(max_message=10000, rx_buf=256)
    data = frame(OP_BINARY, pattern(9000))
    assert feed(p, data[:4]) == []
    assert len(p.read_buffer()) == 9000
    assert feed(p, data[4:]) == [(OP_BINARY, pattern(9000))]
