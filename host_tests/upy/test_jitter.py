# jitter: prefill, underrun, overflow (new frame dropped), flush, drain, wrap.
from firmware.jitter import JitterBuffer
from host_tests.upy.checks import raises


def _f(i, n=8):
    return bytes([i & 0xFF]) * n


def _pop(jb):
    buf = bytearray(jb.max_packet)
    n = jb.pop_into(buf)
    return bytes(buf[:n]) if n else None


def test_prefill_then_play_in_order():
    jb = JitterBuffer(5, 8, 3)
    assert _pop(jb) is None
    assert jb.push(_f(1)) and jb.push(_f(2))
    assert _pop(jb) is None and jb.level == 2  # still prefilling
    assert jb.push(_f(3))
    assert [_pop(jb), _pop(jb), _pop(jb)] == [_f(1), _f(2), _f(3)]
    assert jb.level == 0 and jb.underruns == 0


def test_underrun_counts_and_prefills_again():
    jb = JitterBuffer(5, 8, 2)
    jb.push(_f(1))
    jb.push(_f(2))
    assert _pop(jb) == _f(1)
    jb.push(_f(3))  # playing: no prefill needed while frames keep coming
    assert _pop(jb) == _f(2) and _pop(jb) == _f(3)
    assert _pop(jb) is None and jb.underruns == 1
    assert _pop(jb) is None and jb.underruns == 1  # one underrun, not one per pop
    jb.push(_f(4))
    assert _pop(jb) is None  # prefilling again after the underrun
    jb.push(_f(5))
    assert _pop(jb) == _f(4) and jb.underruns == 1


def test_overflow_drops_the_new_frame():
    jb = JitterBuffer(3, 8, 1)
    assert jb.push(_f(1)) and jb.push(_f(2)) and jb.push(_f(3))
    assert jb.push(_f(4)) is False and jb.push(_f(5)) is False
    assert jb.dropped == 2 and jb.level == 3
    assert [_pop(jb), _pop(jb), _pop(jb)] == [_f(1), _f(2), _f(3)]


def test_flush_drops_everything_and_prefills():
    jb = JitterBuffer(4, 8, 2)
    for i in range(4):
        jb.push(_f(i))
    assert _pop(jb) == _f(0)
    jb.flush()
    assert jb.level == 0 and _pop(jb) is None and jb.underruns == 0
    jb.push(_f(9))
    assert _pop(jb) is None
    jb.push(_f(10))
    assert _pop(jb) == _f(9)


def test_drain_plays_a_short_tail_without_underrun():
    jb = JitterBuffer(8, 8, 3)
    jb.push(_f(1))
    jb.push(_f(2))
    assert _pop(jb) is None  # below prefill
    jb.drain()  # tts stop: nothing more is coming
    assert _pop(jb) == _f(1) and _pop(jb) == _f(2)
    assert _pop(jb) is None and jb.underruns == 0
    jb.push(_f(3))
    assert _pop(jb) is None  # next stream prefills again
    jb.drain()
    jb.drain()
    assert _pop(jb) == _f(3) and _pop(jb) is None and jb.underruns == 0


def test_ring_wraps_and_keeps_lengths():
    # Interleaved pushes and pops walk the head around the ring many times;
    # frames come out in push order with their own lengths.
    jb = JitterBuffer(3, 8, 0)
    seq = []
    popped = 0
    for i in range(60):
        if jb.level < 3:
            assert jb.push(_f(i, 1 + i % 8))
            seq.append(_f(i, 1 + i % 8))
        if i % 3:
            assert _pop(jb) == seq.pop(0), i
            popped += 1
    assert popped == 40 and jb.level == len(seq) and jb.dropped == 0


def test_prefill_zero_plays_immediately():
    jb = JitterBuffer(2, 4, 0)
    assert _pop(jb) is None and jb.underruns == 0
    jb.push(b"ab")
    assert _pop(jb) == b"ab"
    assert _pop(jb) is None and jb.underruns == 1


def test_empty_frame_ignored():
    jb = JitterBuffer(2, 4, 0)
    assert jb.push(b"") and jb.level == 0


def test_errors():
    raises(lambda: JitterBuffer(0, 8, 0), "frames 0")
    raises(lambda: JitterBuffer(4, 0, 0), "max_packet 0")
    raises(lambda: JitterBuffer(4, 8, 5), "prefill 5")
    jb = JitterBuffer(2, 8, 0)
    raises(lambda: jb.push(bytes(9)), "9-byte packet > 8")
    jb.push(bytes(8))
    raises(lambda: jb.pop_into(bytearray(4)), "4-byte buffer < 8")
    assert jb.level == 1  # a failed pop loses nothing


def test_push_first_n_bytes():
    jb = JitterBuffer(2, 8, 0)
    big = bytearray(b"abcdefgh")
    assert jb.push(big, 3) and _pop(jb) == b"abc"
    assert jb.push(memoryview(big), 0) and jb.level == 0
    raises(lambda: jb.push(big, 9), "n 9 not in 0..8")
    raises(lambda: jb.push(big, -1), "n -1")


def test_holds_compressed_packets_and_playback_decodes_them():
    # 24 ADPCM slots at 16 kHz are 24 * 484 bytes, not 24 * 1920 of PCM.
    from firmware import codec

    c = codec.create("adpcm", 16000, 60)
    jb = JitterBuffer(24, c.max_packet, 2)
    assert sum(len(s) for s in jb._slots) == 24 * 484
    pcm = bytearray(1920)
    for i in range(960):
        v = (i * 37 % 2000) - 1000
        pcm[2 * i] = v & 0xFF
        pcm[2 * i + 1] = (v >> 8) & 0xFF
    whole = bytearray(c.max_packet)
    c.encode_into(pcm, whole)
    jb.push(whole)
    jb.push(whole, 104)  # a short last packet keeps its own length
    pkt = bytearray(c.max_packet)
    out = bytearray(1920)
    n = jb.pop_into(pkt)
    assert n == 484 and c.decode_into(pkt, out, 0, n) == 1920
    first = bytes(out)
    n = jb.pop_into(pkt)
    assert n == 104 and c.decode_into(pkt, out, 0, n) == 400 and bytes(out[:400]) == first[:400]


def test_push_from_inside_a_received_frame():
    jb = JitterBuffer(4, 8, 0)
    frame = b"HDR!" + _f(7, 6)
    assert jb.push(frame, 6, 4) and jb.push(frame, None, 4) and jb.push(frame, 2, 8)
    assert [_pop(jb), _pop(jb), _pop(jb)] == [_f(7, 6), _f(7, 6), _f(7, 2)]
    raises(lambda: jb.push(frame, 7, 4), "n 7 not in 0..6")
    raises(lambda: jb.push(frame, None, 11), "off 11 not in 0..10")
