"""Gateway sessions over real loopback sockets: hello rewriting, audio both ways
(measured), framing v1/v2/v3, pass-through of JSON/MCP, pings, closes."""

import asyncio
import json
import os
import sys

import pytest
import websockets
from websockets.asyncio.client import connect

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gateway_fakes import (  # noqa: E402
    FakeUpstream,
    correlation,
    envelope,
    speech_pcm,
    tone,
    tone_freq,
)

from tools.gateway.config import Config  # noqa: E402
from tools.gateway.proxy import Gateway  # noqa: E402
from tools.mock_server import framing  # noqa: E402

DEV = "aa:bb:cc:dd:ee:ff"
CID = "5f1c7c52-5d0f-4c1e-9d2a-3c1b2a4f6e70"
T = 10  # seconds: bound on every wait, never a sleep-as-assertion


def hello(fmt="pcm", rate=16000, version=1):
    return json.dumps({"type": "hello", "version": version, "features": {"mcp": True, "glyph_push": False},
                       "transport": "websocket",
                       "audio_params": {"format": fmt, "sample_rate": rate, "channels": 1, "frame_duration": 60}},
                      separators=(",", ":"))


async def open_device(gw, version=1, headers=None):
    h = {"Device-Id": DEV, "Client-Id": CID, "Protocol-Version": str(version)}
    if headers is not None:
        h = headers
    return await connect("ws://127.0.0.1:%d/xiaozhi/v1/" % gw.port, additional_headers=h,
                         open_timeout=T, compression=None)


async def start(up_kwargs=None, **cfg):
    up = await FakeUpstream(**(up_kwargs or {})).start()
    gw = await Gateway(Config(listen_port=0, upstreams=[up.url], **cfg)).start()
    return up, gw


async def recv_until(ws, pred):
    """Collect (texts, audio bytes, frame sizes) until a text message satisfies pred."""
    texts, audio, sizes = [], bytearray(), []
    while True:
        m = await asyncio.wait_for(ws.recv(), T)
        if isinstance(m, bytes):
            audio += m
            sizes.append(len(m))
            continue
        texts.append(m)
        try:
            msg = json.loads(m)
        except ValueError:
            continue
        if isinstance(msg, dict) and pred(msg):
            return texts, audio, sizes


def run(coro):
    asyncio.run(asyncio.wait_for(coro, 30))


def test_pcm_turn_hello_rewrite_and_audio_both_ways():
    async def main():
        up, gw = await start()
        ws = await open_device(gw)
        await ws.send(hello())
        sh = json.loads(await asyncio.wait_for(ws.recv(), T))
        # The device sees its own format and rate; the upstream saw Opus 16k/60.
        assert sh["audio_params"] == {"format": "pcm", "sample_rate": 16000, "channels": 1, "frame_duration": 60}
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
        texts, audio, sizes = await recv_until(ws, lambda m: m.get("state") == "stop")

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
        await gw.stop()
        await up.stop()

    run(main())


@pytest.mark.parametrize("version", [2, 3])
def test_framing_v2_v3_device_side_v1_upstream(version):
    async def main():
        up, gw = await start()
        ws = await open_device(gw, version=version)
        await ws.send(hello(version=version))
        await asyncio.wait_for(ws.recv(), T)
        assert json.loads(up.connections[0]["text"][0])["version"] == 1
        pcm = tone(440, 16000, 600)
        await ws.send('{"session_id":"","type":"listen","state":"start","mode":"manual"}')
        for i in range(0, len(pcm), 1920):
            await ws.send(framing.pack(version, pcm[i:i + 1920]))
        await ws.send(framing.pack(version, b"\x00" * 10)[:-1] if version == 3 else b"\x00\x02")  # malformed
        await ws.send('{"session_id":"","type":"listen","state":"stop"}')
        texts, audio, sizes = await recv_until(ws, lambda m: m.get("state") == "stop")
        hdr = 16 if version == 2 else 4
        assert set(sizes) == {1920 + hdr}
        # every downlink frame carries a valid header for the device's version
        rec = up.connections[0]
        assert len(rec["binary"]) == 10 and rec["bad_packets"] == 0  # the malformed frame was dropped
        assert abs(tone_freq(rec["pcm"], 16000) - 440) < 15
        assert gw.audit.records  # sanity
        await ws.close()
        await gw.stop()
        await up.stop()

    run(main())


def test_downlink_frames_have_valid_headers_v2():
    async def main():
        up, gw = await start()
        ws = await open_device(gw, version=2)
        await ws.send(hello(version=2))
        await asyncio.wait_for(ws.recv(), T)
        await ws.send('{"session_id":"","type":"listen","state":"detect","text":"hi"}')
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
        await gw.stop()
        await up.stop()

    run(main())


def test_downlink_at_24k_when_device_asks_24k():
    async def main():
        up, gw = await start()
        ws = await open_device(gw)
        await ws.send(hello(rate=24000))
        sh = json.loads(await asyncio.wait_for(ws.recv(), T))
        assert sh["audio_params"]["sample_rate"] == 24000
        await ws.send('{"session_id":"","type":"listen","state":"detect","text":"hi"}')
        texts, audio, sizes = await recv_until(ws, lambda m: m.get("state") == "stop")
        assert set(sizes) == {2880}
        assert abs(tone_freq(audio[: up.tts_frames * 2880], 24000) - 1000) < 15
        await ws.close()
        await gw.stop()
        await up.stop()

    run(main())


def test_json_and_mcp_pass_through_unchanged():
    async def main():
        up, gw = await start()
        ws = await open_device(gw)
        await ws.send(hello())
        await asyncio.wait_for(ws.recv(), T)
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
        texts, _, _ = await recv_until(ws, lambda m: m.get("state") == "stop")
        assert texts[:2] == odd[:2]  # the upstream's echoes came back unchanged
        got = up.connections[0]["text"]
        assert got[1] == reply and got[2:6] == odd  # byte-exact upstream
        call = gw.audit.find("mcp_call")[0]
        assert call["tool"] == "self.audio_speaker.set_volume" and call["args"] == ["volume"]
        assert "42" not in json.dumps(call)  # argument values stay out of the audit
        assert gw.audit.find("mcp_result")[0]["is_error"] is False
        await ws.close()
        await gw.stop()
        await up.stop()

    run(main())


def test_opus_device_passes_audio_through():
    async def main():
        up, gw = await start()
        ws = await open_device(gw)
        await ws.send(hello(fmt="opus"))
        sh = json.loads(await asyncio.wait_for(ws.recv(), T))
        assert sh["audio_params"]["format"] == "opus"
        await ws.send(up.prompt_packets[0])
        await ws.send('{"type":"listen","state":"detect","text":"x"}')
        texts, audio, sizes = await recv_until(ws, lambda m: m.get("state") == "stop")
        assert up.connections[0]["binary"][0] == up.prompt_packets[0]
        assert sizes == [len(p) for p in up.tts_packets + up.prompt_packets]
        await ws.close()
        await gw.stop()
        await up.stop()

    run(main())


def test_unsupported_audio_format_is_refused_with_reason():
    async def main():
        up, gw = await start()
        ws = await open_device(gw)
        await ws.send(hello(fmt="adpcm"))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), T)
        assert ws.close_code == 4400 and "adpcm" in ws.close_reason
        await asyncio.wait_for(up.closed.wait(), T)
        assert up.connections[0]["close"][0] == 1000
        await gw.stop()
        await up.stop()

    run(main())


def test_server_pings_are_answered():
    async def main():
        up, gw = await start()
        ws = await open_device(gw)
        await ws.send(hello())
        await asyncio.wait_for(ws.recv(), T)
        upws = up.connections[0]["ws"]
        pong = await upws.ping(b"keepalive")
        latency = await asyncio.wait_for(pong, T)
        assert latency >= 0
        await ws.close()
        await gw.stop()
        await up.stop()

    run(main())


def test_upstream_normal_close_closes_device_with_reason():
    async def main():
        up, gw = await start()
        up.close_after_hello = True
        ws = await open_device(gw)
        await ws.send(hello())
        await asyncio.wait_for(ws.recv(), T)
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), T)
        assert ws.close_code == 1000 and ws.close_reason == "upstream closed (1000 bye)"
        close = gw.audit.find("close", device=DEV)[0]
        assert close["side"] == "upstream" and close["code"] == 1000 and close["reason"] == "bye"
        await gw.stop()
        await up.stop()

    run(main())


def test_device_close_closes_upstream():
    async def main():
        up, gw = await start()
        ws = await open_device(gw)
        await ws.send(hello())
        await asyncio.wait_for(ws.recv(), T)
        await ws.close(1000, "user")
        await asyncio.wait_for(up.closed.wait(), T)
        code, reason = up.connections[0]["close"]
        assert code == 1000 and reason.startswith("device session ended (device 1000 user)")
        assert gw.audit.find("close", side="device")
        await gw.stop()
        await up.stop()

    run(main())


def test_upstream_dying_mid_turn_closes_device_and_device_reconnects():
    async def main():
        up, gw = await start()
        up.die_mid_turn = True
        ws = await open_device(gw)
        await ws.send(hello())
        await asyncio.wait_for(ws.recv(), T)
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
        ws2 = await open_device(gw)
        await ws2.send(hello())
        await asyncio.wait_for(ws2.recv(), T)
        await ws2.send('{"type":"listen","state":"detect","text":"x"}')
        texts, audio, sizes = await recv_until(ws2, lambda m: m.get("state") == "stop")
        assert len(sizes) == up.tts_frames + up.prompt_frames
        await ws2.close()
        assert [c["side"] for c in gw.audit.find("close")][:1] == ["upstream"]
        await gw.stop()
        await up.stop()

    run(main())


def test_missing_device_id_and_bad_protocol_version_are_refused():
    async def main():
        up, gw = await start()
        ws = await open_device(gw, headers={"Client-Id": CID})
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), T)
        assert ws.close_code == 4400 and ws.close_reason == "missing Device-Id header"
        ws = await open_device(gw, headers={"Device-Id": DEV, "Protocol-Version": "7"})
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), T)
        assert ws.close_code == 4400 and "Protocol-Version" in ws.close_reason
        assert up.connections == []  # no upstream session was opened for them
        await gw.stop()
        await up.stop()

    run(main())


def test_query_parameter_identity_like_stock():
    async def main():
        up, gw = await start()
        ws = await connect("ws://127.0.0.1:%d/xiaozhi/v1/?device-id=%s&client-id=%s" % (gw.port, DEV, CID),
                           open_timeout=T)
        await ws.send(hello())
        await asyncio.wait_for(ws.recv(), T)
        assert up.connections[0]["headers"]["Device-Id"] == DEV
        await ws.close()
        await gw.stop()
        await up.stop()

    run(main())
