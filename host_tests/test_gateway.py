"""Gateway sessions over real loopback sockets: hello rewriting, audio both ways
(measured), framing v1/v2/v3, pass-through of JSON/MCP, pings, closes; and the
transcoder's frame re-cutting on its own."""

import asyncio
import json

import opuslib_next
import pytest
import websockets
from gateway_fakes import (
    CID,
    DEV,
    T,
    async_test,
    closed_with,
    correlation,
    envelope,
    gateway_for,
    hello,
    open_device,
    open_session,
    recv_until,
    speech_pcm,
    tone,
    tone_freq,
)
from websockets.asyncio.client import connect

from tools.common import framing
from tools.gateway.transcode import Downlink, TranscodeError, Uplink

DETECT = '{"session_id":"","type":"listen","state":"detect","text":"hi"}'


def is_tts_stop(m):
    return m.get("state") == "stop"


@async_test
async def test_pcm_turn_hello_rewrite_and_audio_both_ways():
    async with gateway_for(None) as (up, gw):
        ws, sh = await open_session(gw)
        # The device sees its own format and rate, paced; the upstream saw Opus 16k/60.
        assert sh["audio_params"] == {"format": "pcm", "sample_rate": 16000, "channels": 1, "frame_duration": 60,
                                      "paced": True}
        assert sh["transport"] == "websocket" and sh["session_id"] == "S-1"
        uh = json.loads(up.connections[0]["text"][0])
        assert uh["audio_params"] == {"format": "opus", "sample_rate": 16000, "channels": 1, "frame_duration": 60}
        assert uh["version"] == 1 and uh["features"] == {"mcp": True, "glyph_push": False}
        hdrs = up.connections[0]["headers"]
        assert hdrs["Device-Id"] == DEV and hdrs["Client-Id"] == CID and hdrs["Protocol-Version"] == "1"

        speech = speech_pcm()
        await ws.send('{"session_id":"S-1","type":"listen","state":"start","mode":"manual"}')
        for i in range(0, len(speech), 1920):
            await ws.send(speech[i:i + 1920])
        await ws.send('{"session_id":"S-1","type":"listen","state":"stop"}')
        texts, audio, sizes = await recv_until(ws, is_tts_stop)

        # Uplink: the server decoded Opus; the speech keeps its energy envelope.
        rec = up.connections[0]
        assert rec["bad_packets"] == 0
        assert len(rec["binary"]) == len(speech) // 1920
        assert all(len(p) < 400 for p in rec["binary"])  # Opus, not 1920-byte PCM
        env_in, env_out = envelope(speech, 16000), envelope(rec["pcm"], 16000)
        r = correlation(env_in, env_out)
        assert r > 0.9, "uplink envelope correlation %.3f" % r

        # Downlink: 24 kHz hybrid TTS + 16 kHz SILK prompt, both decoded to 16 kHz
        # PCM in whole 60 ms frames, tones keep their frequency.
        assert set(sizes) == {1920}
        assert len(sizes) == up.tts_frames + up.prompt_frames
        tts = audio[: up.tts_frames * 1920]
        prompt = audio[up.tts_frames * 1920:]
        f1, f2 = tone_freq(tts, 16000), tone_freq(prompt, 16000)
        assert abs(f1 - 1000) < 15, f1
        assert abs(f2 - 500) < 15, f2
        kinds = [json.loads(t)["type"] for t in texts]
        assert kinds == ["stt", "tts", "llm", "tts", "tts"]
        await ws.close()
        await asyncio.wait_for(up.closed.wait(), T)
        ends = gw.audit.find("session_end", device=DEV)
        assert ends and ends[0]["frames_up"] == len(speech) // 1920


@pytest.mark.parametrize("version", [2, 3])
@async_test
async def test_framing_v2_v3_device_side_v1_upstream(version):
    async with gateway_for(None) as (up, gw):
        ws, _ = await open_session(gw, version=version)
        assert json.loads(up.connections[0]["text"][0])["version"] == 1
        pcm = tone(440, 16000, 600)
        await ws.send('{"session_id":"","type":"listen","state":"start","mode":"manual"}')
        for i in range(0, len(pcm), 1920):
            await ws.send(framing.pack(version, pcm[i:i + 1920]))
        await ws.send(framing.pack(version, b"\x00" * 10)[:-1] if version == 3 else b"\x00\x02")  # malformed
        await ws.send('{"session_id":"","type":"listen","state":"stop"}')
        texts, audio, sizes = await recv_until(ws, is_tts_stop)
        hdr = 16 if version == 2 else 4
        assert set(sizes) == {1920 + hdr}
        rec = up.connections[0]
        assert len(rec["binary"]) == 10 and rec["bad_packets"] == 0  # the malformed frame was dropped
        assert abs(tone_freq(rec["pcm"], 16000) - 440) < 15
        await ws.close()


@async_test
async def test_downlink_frames_have_valid_headers_v2():
    async with gateway_for(None) as (up, gw):
        ws, _ = await open_session(gw, version=2)
        await ws.send(DETECT)
        frames = []
        while True:
            m = await asyncio.wait_for(ws.recv(), T)
            if isinstance(m, bytes):
                payload, _ts = framing.unpack(2, m)  # raises on a bad header
                frames.append(payload)
            elif json.loads(m).get("state") == "stop":
                break
        assert len(frames) == up.tts_frames + up.prompt_frames
        assert abs(tone_freq(b"".join(frames[: up.tts_frames]), 16000) - 1000) < 15
        await ws.close()


@async_test
async def test_downlink_at_24k_when_device_asks_24k():
    async with gateway_for(None) as (up, gw):
        ws, sh = await open_session(gw, rate=24000)
        assert sh["audio_params"]["sample_rate"] == 24000
        await ws.send(DETECT)
        texts, audio, sizes = await recv_until(ws, is_tts_stop)
        assert set(sizes) == {2880}
        assert abs(tone_freq(audio[: up.tts_frames * 2880], 24000) - 1000) < 15
        await ws.close()


@async_test
async def test_json_and_mcp_pass_through_unchanged():
    async with gateway_for(None) as (up, gw):
        ws, _ = await open_session(gw)
        upws = up.connections[0]["ws"]
        init = ('{"type":"mcp","payload":{"jsonrpc":"2.0","id":1,"method":"tools/call","params":'
                '{"name":"self.audio_speaker.set_volume","arguments":{"volume":42}}}}')
        await upws.send(init)
        assert await asyncio.wait_for(ws.recv(), T) == init  # byte-exact downstream
        reply = ('{"session_id":"S-1","type":"mcp","payload":{"jsonrpc":"2.0","id":1,"result":'
                 '{"content":[{"type":"text","text":"true"}],"isError":false}}}')
        odd = ["not json at all", "[1,2]", '{"type":"iot","x":"\\u4f60"}', '{"session_id":"","type":"goodbye"}']
        await ws.send(reply)
        for t in odd:
            await ws.send(t)
        await ws.send('{"type":"listen","state":"detect","text":"x"}')
        texts, _, _ = await recv_until(ws, is_tts_stop)
        assert texts[:2] == odd[:2]  # the upstream's echoes came back unchanged
        got = up.connections[0]["text"]
        assert got[1] == reply and got[2:6] == odd  # byte-exact upstream
        call = gw.audit.find("mcp_call")[0]
        assert call["tool"] == "self.audio_speaker.set_volume" and call["args"] == ["volume"]
        # Argument values stay out of the audit (the timestamp may contain "42" by chance).
        assert "42" not in json.dumps({k: v for k, v in call.items() if k != "ts"})
        assert gw.audit.find("mcp_result")[0]["is_error"] is False
        await ws.close()


@async_test
async def test_mcp_ids_that_cannot_key_a_dict_pass_through_without_breaking_the_session():
    async with gateway_for(None) as (up, gw):
        ws, _ = await open_session(gw)
        down = '{"type":"mcp","payload":{"jsonrpc":"2.0","id":{"x":1},"method":"tools/call","params":{}}}'
        await up.connections[0]["ws"].send(down)
        assert await asyncio.wait_for(ws.recv(), T) == down
        await ws.send('{"type":"mcp","payload":{"jsonrpc":"2.0","id":[1],"result":{}}}')
        await ws.send('{"type":"listen","state":"detect","text":"x"}')
        texts, _, sizes = await recv_until(ws, is_tts_stop)  # the session lives on
        assert len(sizes) == up.tts_frames + up.prompt_frames
        assert gw.audit.find("mcp_call")[0]["id"] == {"x": 1} and not gw.audit.find("mcp_result")
        await ws.close()


@async_test
async def test_opus_device_passes_audio_through():
    async with gateway_for(None) as (up, gw):
        ws, sh = await open_session(gw, fmt="opus")
        assert sh["audio_params"]["format"] == "opus"
        await ws.send(up.prompt_packets[0])
        await ws.send('{"type":"listen","state":"detect","text":"x"}')
        texts, audio, sizes = await recv_until(ws, is_tts_stop)
        assert up.connections[0]["binary"][0] == up.prompt_packets[0]
        assert sizes == [len(p) for p in up.tts_packets + up.prompt_packets]
        await ws.close()


@pytest.mark.parametrize("fmt, rate, named", [("mp3", 16000, "mp3"), ("pcm", 16000.0, "16000.0")])
@async_test
async def test_unsupported_audio_is_refused_with_reason(fmt, rate, named):
    async with gateway_for(None) as (up, gw):
        ws = await open_device(gw)
        await ws.send(json.dumps({"type": "hello", "version": 1, "transport": "websocket",
                                  "audio_params": {"format": fmt, "sample_rate": rate, "channels": 1,
                                                   "frame_duration": 60}}))
        code, reason = await closed_with(ws)
        assert code == 4400 and reason.startswith("unsupported audio: ") and named in reason
        await asyncio.wait_for(up.closed.wait(), T)
        assert up.connections[0]["close"][0] == 1000


@async_test
async def test_server_pings_are_answered():
    async with gateway_for(None) as (up, gw):
        ws, _ = await open_session(gw)
        pong = await up.connections[0]["ws"].ping(b"keepalive")
        latency = await asyncio.wait_for(pong, T)
        assert latency >= 0
        await ws.close()


@async_test
async def test_upstream_normal_close_closes_device_with_reason():
    async with gateway_for(None) as (up, gw):
        up.close_after_hello = True
        ws, _ = await open_session(gw)
        assert await closed_with(ws) == (1000, "upstream closed (1000 bye)")
        close = gw.audit.find("close", device=DEV)[0]
        assert close["side"] == "upstream" and close["code"] == 1000 and close["reason"] == "bye"


@async_test
async def test_device_close_closes_upstream():
    async with gateway_for(None) as (up, gw):
        ws, _ = await open_session(gw)
        await ws.close(1000, "user")
        await asyncio.wait_for(up.closed.wait(), T)
        code, reason = up.connections[0]["close"]
        assert code == 1000 and reason.startswith("device session ended (device 1000 user)")
        assert gw.audit.find("close", side="device")


@async_test
async def test_upstream_dying_mid_turn_closes_device_and_device_reconnects():
    async with gateway_for(None) as (up, gw):
        up.die_mid_turn = True
        ws, _ = await open_session(gw)
        await ws.send('{"type":"listen","state":"detect","text":"x"}')
        frames = 0
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                m = await asyncio.wait_for(ws.recv(), T)
                frames += isinstance(m, bytes)
        assert 0 < frames < up.tts_frames
        assert ws.close_code == 1011 and ws.close_reason.startswith("upstream connection lost (1006")
        # The device reconnects and gets a full turn.
        up.die_mid_turn = False
        ws2, _ = await open_session(gw)
        await ws2.send('{"type":"listen","state":"detect","text":"x"}')
        texts, audio, sizes = await recv_until(ws2, is_tts_stop)
        assert len(sizes) == up.tts_frames + up.prompt_frames
        await ws2.close()
        assert [c["side"] for c in gw.audit.find("close")][:1] == ["upstream"]


@async_test
async def test_missing_device_id_and_bad_protocol_version_are_refused():
    async with gateway_for(None) as (up, gw):
        ws = await open_device(gw, headers={"Client-Id": CID})
        assert await closed_with(ws) == (4400, "missing Device-Id header")
        ws = await open_device(gw, headers={"Device-Id": DEV, "Protocol-Version": "7"})
        code, reason = await closed_with(ws)
        assert code == 4400 and "Protocol-Version" in reason
        assert up.connections == []  # no upstream session was opened for them


@async_test
async def test_query_parameter_identity_like_stock():
    async with gateway_for(None) as (up, gw):
        ws = await connect("ws://127.0.0.1:%d/xiaozhi/v1/?device-id=%s&client-id=%s" % (gw.port, DEV, CID),
                           open_timeout=T)
        await ws.send(hello())
        await asyncio.wait_for(ws.recv(), T)
        assert up.connections[0]["headers"]["Device-Id"] == DEV
        await ws.close()


def test_transcoder_recuts_odd_chunks_into_whole_frames():
    up = Uplink("pcm", 16000)
    pcm = tone(440, 16000, 600)  # 10 frames of 1920 bytes
    packets = [p for i in range(0, len(pcm), 1000) for p in up.feed(pcm[i:i + 1000])]
    assert len(packets) == 10 and up.packets_out == 10
    down = Downlink("pcm", 16000)
    frames = [f for p in packets for f in down.feed(p)]
    assert [len(f) for f in frames] == [1920] * 10
    # 20 ms packets come out as 60 ms frames; the tail of a turn is padded to a whole frame.
    enc = opuslib_next.Encoder(16000, 1, opuslib_next.APPLICATION_VOIP)
    short = [enc.encode(pcm[i:i + 640], 320) for i in range(0, 640 * 7, 640)]
    down = Downlink("pcm", 16000)
    got = [f for p in short for f in down.feed(p)]
    assert [len(f) for f in got] == [1920, 1920]
    tail = down.flush()
    assert [len(f) for f in tail] == [1920] and tail[0][640:] == bytes(1280) and down.frames_out == 3
    assert down.flush() == []


def test_transcoder_refuses_what_it_cannot_carry():
    for fmt, rate in (("mp3", 16000), ("pcm", 44100), ("pcm", 16000.0), ("pcm", True)):
        with pytest.raises(TranscodeError):
            Uplink(fmt, rate)
