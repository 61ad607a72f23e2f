# firmware/audio_path: buffers sized from the codec objects and the hello,
# packets kept compressed until playback, refusal of audio it cannot play,
# and per-turn figures. Run under CPython and MicroPython.
from firmware import codec
from firmware.audio_path import AudioPath, cannot_decode
from firmware.hello import server_hello
from host_tests.upy.checks import raises


def _hello(fmt="pcm", rate=24000, frame_ms=60, paced=True):
    return server_hello({"type": "hello", "transport": "websocket",
                        "audio_params": {"format": fmt, "sample_rate": rate, "frame_duration": frame_ms,
                                         "paced": paced}})


def _path(speaker=24000):
    return AudioPath("pcm", speaker, 3, 100, 16)


def test_uplink_buffers_come_from_the_uplink_codec():
    a = _path()
    up = codec.create("pcm", 16000, 60)
    assert len(a.pcm_up) == 2 * up.frame_samples and len(a.pkt_up) == 16 + up.max_packet
    for i in range(len(a.pcm_up)):
        a.pcm_up[i] = i & 0xFF
    a.start_uplink(4)  # v3's header
    assert a.encode_uplink() == up.max_packet
    assert a.pkt_up[4:8] == a.pcm_up[0:4] and a.frames_up == 1


def test_downlink_buffers_follow_the_codec_and_the_negotiated_rate():
    a = _path(speaker=24000)
    # Made at start-up for the usual hello: the gateway's, at the uplink's 16 kHz and 60 ms.
    usual = codec.create("pcm", 16000, 60)
    jitter = a.jitter
    assert len(a.pkt_play) == usual.max_packet and len(a.pcm_play) == 2 * usual.frame_samples
    # ... and so are the resampler to the 24 kHz speaker and its buffer, which that hello keeps.
    resampler, spk = a.resampler, a.pcm_spk
    assert resampler.in_rate == 16000 and len(spk) == 2 * resampler.max_out(usual.frame_samples)
    a.start_downlink(_hello(rate=16000))
    assert a.resampler is resampler and a.pcm_spk is spk and a.jitter is jitter
    a.start_downlink(_hello(rate=8000))  # smaller frames: the same buffers
    assert a.jitter is jitter and a.resampler is not None and len(a.pcm_spk) >= 2 * 1440
    a.start_downlink(_hello(rate=16000))
    assert a.jitter is jitter and a.resampler is not None
    a.start_downlink(_hello(rate=24000))  # larger (a server without the gateway): regrown
    assert a.jitter is not jitter and a.resampler is None
    jitter = a.jitter
    a.start_downlink(_hello(rate=48000))  # larger still: regrown to the codec's packet
    big = codec.create("pcm", 48000, 60)
    assert a.jitter is not jitter and len(a.pkt_play) == big.max_packet and len(a.pcm_play) == 2 * big.frame_samples


def test_the_jitter_ring_is_shallow_behind_a_paced_server_and_deep_behind_a_bursting_one():
    a = _path()
    jitter = a.jitter
    assert jitter.frames == 4 + 4  # made for the gateway's paced hello: its 4-frame start and 240 ms
    a.start_downlink(_hello(rate=16000))
    assert a.jitter is jitter
    a.start_downlink(_hello(rate=16000, paced=False))  # 5-frame bursts per sentence: regrown
    assert a.jitter is not jitter and a.jitter.frames == 3 + 16
    jitter = a.jitter
    a.start_downlink(_hello(rate=16000))  # a deep ring serves a paced server too
    assert a.jitter is jitter


def test_packets_stay_compressed_until_playback():
    a = _path()
    a.start_downlink(_hello())
    pkt = bytearray(2880)
    for i in range(0, 2880, 2):
        pkt[i + 1] = 0x10  # sample 0x1000
    for _ in range(3):
        assert a.push_downlink(pkt, 2880)
    assert a.jitter.level == 3 and a.frames_down == 3
    out = a.next_render()
    assert len(out) == 2880 and out[1] == 0x10 and a.frames_played == 1  # volume 100: unchanged


def test_a_hello_format_it_cannot_decode_is_refused_naming_the_gateway():
    a = _path()
    msg = raises(lambda: a.start_downlink(_hello("opus")), "server sends opus audio", "gateway")
    assert msg == cannot_decode("opus")


def test_a_run_of_short_packets_is_an_opus_stream():
    a = _path()
    a.start_downlink(_hello())
    full, short = bytearray(2880), bytearray(200)
    assert a.push_downlink(full, 2880) and a.push_downlink(short, 120)  # a sentence's last frame
    assert a.push_downlink(full, 2880) and a.refused is None
    assert a.push_downlink(short, 160) and a.push_downlink(short, 96)
    assert not a.push_downlink(short, 180)
    assert a.refused == cannot_decode("opus")


def test_figures_are_per_turn():
    a = _path()
    a.start_downlink(_hello())
    a.ignore_downlink()
    for _ in range(4):
        a.push_downlink(bytearray(2880), 2880)
    while a.next_render() is not None:
        pass
    assert a.downlink_figures() == {"dir": "down", "frames": 4, "dropped": 0, "ignored": 1}
    assert a.downlink_figures() == {"dir": "down", "frames": 0, "dropped": 0, "ignored": 0}
    # Ran dry without the reply's end (drain): one underrun.
    assert a.playback_figures() == {"dir": "play", "frames": 4, "underruns": 1}
    for _ in range(2):
        a.push_downlink(bytearray(2880), 2880)
    a.drain()  # tts stop: the tail plays below the prefill mark, and running empty is no underrun
    while a.next_render() is not None:
        pass
    assert a.playback_figures() == {"dir": "play", "frames": 2, "underruns": 0}
    a.push_downlink(bytearray(2880), 2880)
    a.flush()  # a new reply: a cut-short one's frames do not count toward it
    assert a.jitter.level == 0 and a.playback_figures() == {"dir": "play", "frames": 0, "underruns": 0}
