"""The gateway with an ADPCM device: hello rewrite, ADPCM up -> Opus, Opus down ->
ADPCM in whole self-contained frames, corrupt packets dropped and counted; and
the pacer that turns the upstream's bursts into real-time sending."""

import asyncio
import json

from gateway_fakes import (
    async_test,
    correlation,
    envelope,
    gateway_for,
    open_session,
    recv_until,
    speech_pcm,
    tone_freq,
)

from tools.gateway.pacer import Pacer
from tools.gateway.transcode import AdpcmEncoder, Downlink, Uplink, adpcm_decode


def is_tts_stop(m):
    return m.get("state") == "stop"


def _adpcm_frames(pcm):
    enc = AdpcmEncoder()
    return [enc.encode(pcm[i:i + 1920]) for i in range(0, len(pcm) // 1920 * 1920, 1920)]


@async_test
async def test_adpcm_turn_both_ways():
    async with gateway_for(None) as (up, gw):
        ws, sh = await open_session(gw, fmt="adpcm")
        assert sh["audio_params"] == {"format": "adpcm", "sample_rate": 16000, "channels": 1, "frame_duration": 60,
                                  "paced": True}
        uh = json.loads(up.connections[0]["text"][0])
        assert uh["audio_params"]["format"] == "opus"

        speech = speech_pcm()
        packets = _adpcm_frames(speech)
        await ws.send('{"session_id":"S-1","type":"listen","state":"start","mode":"manual"}')
        for p in packets:
            await ws.send(p)
        await ws.send(b"\x00\x00")  # too short for a header: dropped, counted, not fatal
        await ws.send('{"session_id":"S-1","type":"listen","state":"stop"}')
        texts, audio, sizes = await recv_until(ws, is_tts_stop)

        rec = up.connections[0]
        assert len(rec["binary"]) == len(packets) and rec["bad_packets"] == 0
        r = correlation(envelope(speech, 16000), envelope(rec["pcm"], 16000))
        assert r > 0.9, "uplink envelope correlation %.3f" % r

        # Downlink: 484-byte packets, each decodable on its own, tones kept.
        assert set(sizes) == {484} and len(sizes) == up.tts_frames + up.prompt_frames
        frames = [bytes(audio[i:i + 484]) for i in range(0, len(audio), 484)]
        pcm = b"".join(adpcm_decode(f) for f in frames)
        assert abs(tone_freq(pcm[:up.tts_frames * 1920], 16000) - 1000) < 15
        assert abs(tone_freq(pcm[up.tts_frames * 1920:], 16000) - 500) < 15
        await ws.close()
        await asyncio.wait_for(up.closed.wait(), 10)
        assert gw.audit.find("hello", format="adpcm")


def test_transcoder_adpcm_counts_corrupt_packets_and_resets():
    up = Uplink("adpcm", 16000)
    assert up.feed(b"\x00\x00\x60\x00" + bytes(480)) == []  # step index 96 > 88
    assert up.bad_packets == 1
    good = _adpcm_frames(speech_pcm()[:1920 * 2])
    assert [len(up.feed(p)) for p in good] == [1, 1]
    down = Downlink("adpcm", 16000)
    first = down.flush()
    assert first == []
    # The state carries across frames inside a turn and restarts at tts start.
    enc = AdpcmEncoder()
    frame = speech_pcm()[1920 * 10:1920 * 11]
    a = enc.encode(frame)
    assert a[:4] == b"\x00\x00\x00\x00" and enc.state != (0, 0)
    b = enc.encode(frame)
    assert b[:4] != a[:4]  # the second frame's header carries the running state
    enc.reset()
    assert enc.encode(frame) == a


class _Clock:
    def __init__(self):
        self.t = 100.0
        self.sleeps = []

    def __call__(self):
        return self.t

    async def sleep(self, s):
        self.sleeps.append(round(s, 6))
        self.t += s


def test_pacer_releases_a_burst_at_real_time():
    clk = _Clock()
    p = Pacer(frame_s=0.06, lead=3, clock=clk, sleep=clk.sleep)

    async def burst(n):
        for _ in range(n):
            await p.wait()

    asyncio.run(burst(8))
    # Four frames go at once (the device's prefill plus the one playing), then one per 60 ms.
    assert clk.sleeps == [0.06] * 4
    assert abs(p.waited_s - 0.24) < 1e-9
    # After a pause longer than what was queued, nothing is owed: the next burst starts fresh.
    clk.t += 5
    clk.sleeps.clear()
    asyncio.run(burst(4))
    assert clk.sleeps == []


def test_pacer_does_not_make_up_for_a_late_upstream():
    clk = _Clock()
    p = Pacer(frame_s=0.06, lead=0, clock=clk, sleep=clk.sleep)

    async def late():
        await p.wait()
        clk.t += 0.5  # the upstream stalls for 8 frames' time
        await p.wait()
        await p.wait()

    asyncio.run(late())
    assert clk.sleeps == [0.06]  # only the third frame waits, for one frame's time


@async_test
async def test_gateway_spreads_the_upstream_burst():
    # The fake upstream sends all 15 frames back to back; the device must get
    # them spread over at least (15 - 4) frame times: frame k no earlier than
    # k - 3 frame times after the upstream sent the first (the device's prefill
    # of 3 and the frame playing go at once). Timed from the upstream's send,
    # not from the first frame's arrival, which a loaded machine can delay
    # more than the last's; any delay only makes a frame later, so the bounds
    # hold under any load.
    async with gateway_for(None) as (up, gw):
        ws, _ = await open_session(gw, fmt="adpcm")
        await ws.send('{"session_id":"","type":"listen","state":"detect","text":"hi"}')
        loop = asyncio.get_running_loop()
        times = []
        while True:
            m = await asyncio.wait_for(ws.recv(), 10)
            if isinstance(m, bytes):
                times.append(loop.time())
            elif json.loads(m).get("state") == "stop":
                break
        assert len(times) == 15
        late = [round(t - up.audio_sent_at, 3) for t in times]
        assert all(t >= (k - 3) * 0.06 - 0.005 for k, t in enumerate(late)), late
        await ws.close()
