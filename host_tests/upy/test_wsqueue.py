# wsqueue.SendQueue under MicroPython and CPython: masked frames, control
# before audio, audio dropped oldest first.
import wsframe_ref as R
from wsframe import OP_BINARY, OP_PING, OP_TEXT
from wsqueue import SendQueue


def unmask(frame):
    fin, rsv, op, masked, n, hl = R.parse_header(frame, len(frame))
    assert masked == 1 and fin == 1 and rsv == 0 and hl + n == len(frame)
    body = bytearray(frame[hl:])
    R.mask(body, 0, n, frame, hl - 4)
    return op, bytes(body)


def numbered(i, n=1920):
    b = bytearray(n)
    b[0], b[1] = i >> 8, i & 0xFF
    return b


def test_frames_are_masked_and_sized():
    q = SendQueue(2, 70000, b"seed")
    for n in (0, 1, 125, 126, 65535, 65536):
        q.put_audio(bytes(range(256)) * (n // 256) + bytes(range(n % 256)), n)
        op, body = unmask(q.pop())
        assert op == OP_BINARY and len(body) == n and body[:3] == bytes(range(min(3, n)))
    q.put_control(OP_TEXT, b"hello", 5)
    assert unmask(q.pop()) == (OP_TEXT, b"hello")
    assert q.pop() is None


def test_mask_keys_differ_between_frames():
    q = SendQueue(4, 100, b"\x00\x00\x00\x00")  # an all-zero seed still gives keys
    keys = set()
    for _ in range(4):
        q.put_audio(b"abcd", 4)
        keys.add(bytes(q.pop()[2:6]))
    assert len(keys) == 4 and b"\x00\x00\x00\x00" not in keys


def test_control_goes_first_audio_oldest_first():
    q = SendQueue(4, 2048, b"seed")
    q.put_audio(numbered(0), 1920)
    q.put_audio(numbered(1), 1920)
    q.put_control(OP_TEXT, b"a", 1)
    q.put_control(OP_PING, b"", 0)
    out = []
    while True:
        f = q.pop()
        if f is None:
            break
        op, body = unmask(f)
        out.append((op, body if op != OP_BINARY else body[1]))
    assert out == [(OP_TEXT, b"a"), (OP_PING, b""), (OP_BINARY, 0), (OP_BINARY, 1)]


def test_full_ring_drops_the_oldest():
    q = SendQueue(3, 2048, b"seed")
    kept = [q.put_audio(numbered(i), 1920) for i in range(5)]
    assert kept == [True, True, True, False, False]
    assert q.dropped == 2 and q.audio_queued == 3
    assert [unmask(q.pop())[1][1] for _ in range(3)] == [2, 3, 4]
    assert q.pop() is None and q.audio_queued == 0


def test_ring_wraps_and_frame_sizes_change():
    q = SendQueue(2, 2048, b"seed")
    for i in range(7):
        n = 100 if i % 3 else 1920
        q.put_audio(numbered(i, n), n)
        op, body = unmask(q.pop())
        assert len(body) == n and body[1] == i


def test_drop_audio_and_clear():
    q = SendQueue(2, 100, b"seed")
    q.put_audio(b"x", 1)
    q.put_control(OP_TEXT, b"t", 1)
    q.drop_audio()
    assert q.audio_queued == 0 and q.control_queued == 1
    q.put_audio(b"y", 1)
    q.put_audio(b"z", 1)
    q.put_audio(b"w", 1)
    q.clear()
    assert q.pop() is None and q.control_queued == 0 and q.dropped == 1


def test_frame_too_big_for_a_slot():
    q = SendQueue(1, 10, b"seed")
    try:
        q.put_audio(bytes(11), 11)
        raise AssertionError("no error")
    except ValueError as e:
        assert str(e) == "audio frame too big for slot"
