"""Tests for tools/mock_server and tools/wav.py, driven by a CPython websockets client."""

import array
import json
import math
import struct
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tools.mock_server import MockServer, audio, framing
from tools.mock_server.record import read_record
from tools.wav import read_wav

REPO = Path(__file__).resolve().parent.parent
SPEECH = REPO / "tools" / "assets" / "weather_en_16k.wav"
DEV = "aa:bb:cc:dd:ee:ff"
CLIENT = "5f1c7c52-5d0f-4c1e-9d2a-3c1b2a4f6e70"
FAST = {"drain_s": 0.02, "pace_ms": 0, "abort_stop_delay": 0.05, "mcp_list_delay": 0.01,
            "ping_interval": None}


def tone(ms, freq=500.0, amp=0.1, rate=16000):
    n = rate * ms // 1000
    a = array.array("h", (int(amp * 32767 * math.sin(2 * math.pi * freq * i / rate))
                          for i in range(n)))
    return a.tobytes()


def dominant_freq(pcm, rate, candidates=(440.0, 550.0, 660.0, 880.0, 1000.0)):
    """Goertzel power at a few candidate frequencies; returns the strongest."""
    x = array.array("h")
    x.frombytes(pcm)
    best, best_p = None, -1.0
    for f in candidates:
        c = 2 * math.cos(2 * math.pi * f / rate)
        s1 = s2 = 0.0
        for v in x:
            s1, s2 = v + c * s1 - s2, s1
        p = s1 * s1 + s2 * s2 - c * s1 * s2
        if p > best_p:
            best, best_p = f, p
    return best


class Dev:
    """A minimal device-side client (sync websockets)."""

    def __init__(self, url, version=1, headers=None, device_id=DEV):
        h = {"Protocol-Version": str(version), "Client-Id": CLIENT}
        if device_id:
            h["Device-Id"] = device_id
        h.update(headers or {})
        self.version = version
        self.ws = connect(url, additional_headers=h, compression=None, max_size=None,
                          open_timeout=5).__enter__()

    def send(self, obj):
        self.ws.send(json.dumps(obj))

    def hello(self, fmt="pcm", mcp=False, params=True):
        msg = {"type": "hello", "version": self.version, "transport": "websocket",
               "features": {"mcp": mcp}}
        if params:
            msg["audio_params"] = {"format": fmt, "sample_rate": 16000, "channels": 1,
                                   "frame_duration": 60}
        self.send(msg)
        return self.recv_json()

    def recv(self, timeout=5):
        m = self.ws.recv(timeout=timeout)
        if isinstance(m, str):
            try:
                return json.loads(m)
            except ValueError:
                return m
        return m

    def recv_json(self, timeout=5):
        while True:
            m = self.recv(timeout)
            if isinstance(m, dict):
                return m

    def until(self, pred, timeout=5):
        """Messages (dicts / bytes / str) up to and including the first matching pred."""
        out = []
        while True:
            m = self.recv(timeout)
            out.append(m)
            if pred(m):
                return out

    def until_stop(self, timeout=5):
        return self.until(lambda m: isinstance(m, dict) and m.get("type") == "tts"
                          and m.get("state") == "stop", timeout)

    def audio(self, pcm, frame=1920):
        for i in range(0, len(pcm), frame):
            self.ws.send(framing.pack(self.version, pcm[i:i + frame]))

    def close(self):
        self.ws.close()


@pytest.fixture
def server(request):
    servers = []

    def make(**kw):
        opts = dict(FAST)
        opts.update(kw)
        srv = MockServer(port=0, **opts).start_in_thread()
        servers.append(srv)
        return srv

    yield make
    for s in servers:
        s.stop()


def kinds(msgs):
    """Summarise a message list: JSON as type[/state], binary as 'B'."""
    out = []
    for m in msgs:
        if isinstance(m, bytes):
            if not out or out[-1] != "B":
                out.append("B")
        elif isinstance(m, dict):
            out.append(m.get("type") + ("/" + m["state"] if "state" in m else ""))
        else:
            out.append("?")
    return out


# ---- pcm turns ---------------------------------------------------------------------------
def test_hello_pcm_mode(server):
    srv = server()
    d = Dev(srv.url, headers={"Authorization": "Bearer abc"})
    h = d.hello()
    assert list(h) == ["type", "version", "transport", "audio_params", "session_id"]
    assert h["audio_params"] == {"format": "pcm", "sample_rate": 24000, "channels": 1,
                                 "frame_duration": 60}
    s = srv.wait_session()
    assert s.header("device-id") == DEV and s.header("Authorization") == "Bearer abc"
    assert s.session_id == h["session_id"] and len(h["session_id"]) == 36
    d.close()


def test_manual_turn(server):
    srv = server(tts_rate=16000)
    d = Dev(srv.url)
    sid = d.hello()["session_id"]
    d.send({"session_id": sid, "type": "listen", "state": "start", "mode": "manual"})
    d.audio(tone(1200, amp=0.1))  # 20 frames
    d.send({"session_id": sid, "type": "listen", "state": "stop"})
    msgs = d.until_stop()
    assert kinds(msgs) == ["stt", "tts/start", "llm", "tts/sentence_start", "B",
                           "tts/sentence_start", "B", "tts/sentence_start", "B", "tts/stop"]
    stt = msgs[0]
    assert list(stt) == ["type", "text", "session_id"] and stt["session_id"] == sid
    # a sine of amplitude 0.1 has an RMS of 0.0707 = -23 dBFS
    assert stt["text"] == "heard 20 frames (1.20 s) of audio, level -23 dBFS"
    assert msgs[2] == {"type": "llm", "text": "🙂", "emotion": "happy", "session_id": sid}
    starts = [m for m in msgs if isinstance(m, dict) and m.get("state") == "sentence_start"]
    assert list(starts[0]) == ["type", "state", "session_id", "text"]
    assert " ".join(m["text"] for m in starts) == "You said: " + stt["text"]
    frames = [m for m in msgs if isinstance(m, bytes)]
    assert all(len(f) == 1920 for f in frames)  # 60 ms at 16 kHz
    total_s = len(frames) * 0.06
    assert 1.5 <= total_s <= 3.0
    # Each sentence is one tone with fades: frames between sentence_starts carry TONES[i].
    idx = [i for i, m in enumerate(msgs) if isinstance(m, dict) and m.get("state") in
           ("sentence_start", "stop")]
    for n in range(3):
        pcm = b"".join(m for m in msgs[idx[n] + 1:idx[n + 1]] if isinstance(m, bytes))
        assert dominant_freq(pcm, 16000) == audio.TONES[n]
    t = srv.sessions[0].turns[0]
    assert (t.source, t.mode, t.end, t.frames, t.audio_frames) == ("audio", "manual", "stop", 20,
                                                                    len(frames))
    assert t.t_done_ms is not None and not t.aborted
    d.close()


def test_manual_empty_utterance_gets_no_reply(server):
    srv = server()
    d = Dev(srv.url)
    d.hello()
    d.send({"type": "listen", "state": "start", "mode": "manual"})
    d.send({"type": "listen", "state": "stop"})
    srv.wait_for(lambda: srv.sessions[0].turns)
    d.send({"type": "listen", "state": "detect", "text": "marker"})
    msgs = d.until_stop()
    # the first stt seen is the marker's: the empty utterance produced nothing
    assert msgs[0] == {"type": "stt", "text": "marker", "session_id": srv.sessions[0].session_id}
    assert srv.sessions[0].turns[0].stt is None
    d.close()


def test_auto_turn_with_speech_wav(server):
    rate, ch, pcm = read_wav(SPEECH)
    assert (rate, ch) == (16000, 1)
    srv = server()
    d = Dev(srv.url)
    d.hello()
    d.send({"type": "listen", "state": "start", "mode": "auto"})
    d.audio(pcm + bytes(2 * 16000))  # speech then 1 s of silence; no listen stop
    msgs = d.until_stop()
    stt = msgs[0]["text"]
    t = srv.sessions[0].turns[0]
    assert t.end == "vad" and t.mode == "auto"
    # The VAD ends the utterance after 600 ms of silence, before the 1 s pad is used up.
    assert 2.0 <= t.bytes / 32000 < 3.0
    assert stt == f"heard {t.frames} frames ({t.bytes / 32000:.2f} s) of audio, level -22 dBFS"
    d.close()


def test_auto_turn_max_length(server):
    srv = server(max_utterance_ms=1200)
    d = Dev(srv.url)
    d.hello()
    d.send({"type": "listen", "state": "start", "mode": "auto"})
    d.audio(tone(3000))
    d.until_stop()
    t = srv.sessions[0].turns[0]
    assert t.end == "max" and t.frames == 20
    d.close()


def test_auto_mode_silence_only_never_ends(server):
    srv = server()
    d = Dev(srv.url)
    d.hello()
    d.send({"type": "listen", "state": "start", "mode": "auto"})
    d.audio(bytes(1920 * 30))
    d.send({"type": "listen", "state": "detect", "text": "marker"})
    msgs = d.until_stop()
    assert msgs[0]["text"] == "marker"
    assert [t.source for t in srv.sessions[0].turns] == ["text"]
    d.close()


def test_text_turn_and_wake_word(server):
    srv = server()
    d = Dev(srv.url)
    d.hello()
    d.send({"type": "listen", "state": "detect", "text": "hello xiaozhi"})
    msgs = d.until_stop()
    assert msgs[0]["text"] == "hello xiaozhi"
    d.send({"type": "listen", "state": "detect", "text": "你好小智"})
    msgs = d.until_stop()
    # stock greeting: no stt, no llm
    assert kinds(msgs) == ["tts/start", "tts/sentence_start", "B", "tts/stop"]
    assert msgs[1]["text"] == "我在这里哦！"
    d.close()


def test_pacing_and_drain(server):
    srv = server(pace_ms=60, drain_s=0.2)
    d = Dev(srv.url)
    d.hello()
    d.send({"type": "listen", "state": "detect", "text": "pace me"})
    d.until_stop()
    fr = srv.sessions[0].frames
    i0 = next(i for i, f in enumerate(fr) if f.kind == "text" and f.dir == "tx"
              and f.data.get("state") == "sentence_start")
    nxt = next(i for i, f in enumerate(fr) if i > i0 and f.kind == "text")
    audio_t = [f.t_ms for f in fr[i0 + 1:nxt]]
    assert len(audio_t) == 12  # "You said:" = 720 ms
    # frames 5.. are paced: frame k no earlier than (k-4)*60 ms after the burst
    for k in range(5, 12):
        assert audio_t[k] - audio_t[0] >= (k - 4) * 60 - 2
    stop = next(f for f in fr if f.kind == "text" and f.data.get("state") == "stop")
    last_audio = [f for f in fr if f.kind == "binary" and f.dir == "tx"][-1]
    assert stop.t_ms - last_audio.t_ms >= 195
    d.close()


def test_abort_sends_two_tts_stops(server):
    srv = server(pace_ms=60, abort_stop_delay=0.2)
    d = Dev(srv.url)
    sid = d.hello()["session_id"]
    d.send({"type": "listen", "state": "detect", "text": "tell me a long story"})
    d.until(lambda m: isinstance(m, bytes))
    d.send({"session_id": sid, "type": "abort", "reason": "wake_word_detected"})
    after_abort = d.until_stop()
    stop = {"type": "tts", "state": "stop", "session_id": sid}
    assert after_abort[-1] == stop
    second = d.recv_json(timeout=3)
    assert second == stop
    s = srv.sessions[0]
    stops = [f for f in s.frames if f.kind == "text" and f.data == stop]
    assert len(stops) == 2 and stops[1].t_ms - stops[0].t_ms >= 190
    # no audio after the first stop
    assert not [f for f in s.frames if f.kind == "binary" and f.dir == "tx"
                and f.t_ms > stops[0].t_ms]
    assert s.turns[0].aborted and s.turns[0].t_done_ms is None
    d.close()


def test_abort_when_idle_still_answers(server):
    srv = server()
    d = Dev(srv.url)
    d.hello()
    d.send({"type": "abort"})
    assert d.recv_json()["state"] == "stop"
    assert d.recv_json()["state"] == "stop"
    d.close()


def test_no_hello_needed_and_echo_of_non_json(server):
    srv = server()
    d = Dev(srv.url)
    d.ws.send("not json at all")
    assert d.ws.recv(timeout=5) == "not json at all"
    d.ws.send("42")
    assert d.ws.recv(timeout=5) == "42"
    d.send({"type": "goodbye"})
    d.send({"type": "listen", "state": "detect", "text": "no hello"})
    msgs = d.until_stop()
    assert msgs[0]["text"] == "no hello"
    assert srv.sessions[0].hello is None
    d.close()


def test_missing_device_id_closes_like_stock(server):
    srv = server()
    d = Dev(srv.url, device_id=None)
    assert d.ws.recv(timeout=5).startswith("端口正常")
    with pytest.raises(ConnectionClosed):
        d.ws.recv(timeout=5)
    assert d.ws.close_code == 1000
    # query-parameter form is accepted
    d = Dev(srv.url + f"?device-id={DEV}&client-id=x", device_id=None)
    assert d.hello()["type"] == "hello"
    d.close()


# ---- framing versions --------------------------------------------------------------------
@pytest.mark.parametrize("version", [1, 2, 3])
def test_framing_versions(server, version):
    srv = server()
    d = Dev(srv.url, version=version)
    d.hello()
    d.send({"type": "listen", "state": "start", "mode": "manual"})
    d.audio(tone(600))
    d.send({"type": "listen", "state": "stop"})
    msgs = d.until_stop()
    assert msgs[0]["text"].startswith("heard 10 frames (0.60 s)")
    frames = [m for m in msgs if isinstance(m, bytes)]
    stamps = []
    for f in frames:
        if version == 1:
            assert len(f) == 2880
        elif version == 2:
            ver, typ, res, ts, size = struct.unpack(">HHIII", f[:16])
            assert (ver, typ, res, size, len(f)) == (2, 0, 0, 2880, 2896)
            stamps.append(ts)
        else:
            typ, res, size = struct.unpack(">BBH", f[:4])
            assert (typ, res, size, len(f)) == (0, 0, 2880, 2884)
    if version == 2:
        assert stamps == [60 * i for i in range(len(frames))]
    assert srv.sessions[0].protocol_version == version
    d.close()


@pytest.mark.parametrize("version", [2, 3])
def test_bad_uplink_headers_are_dropped(server, version):
    srv = server()
    d = Dev(srv.url, version=version)
    d.hello()
    d.send({"type": "listen", "state": "start", "mode": "manual"})
    d.audio(tone(120))  # 2 good frames
    d.ws.send(framing.lying_frame(version, bytes(1920)))
    d.ws.send(b"\x00")
    d.send({"type": "listen", "state": "stop"})
    msgs = d.until_stop()
    assert msgs[0]["text"].startswith("heard 2 frames")
    d.close()


def test_framing_roundtrip_and_errors():
    for v in (1, 2, 3):
        assert framing.unpack(v, framing.pack(v, b"abc", 7))[0] == b"abc"
    assert framing.unpack(2, framing.pack(2, b"abc", 7))[1] == 7
    with pytest.raises(framing.FramingError, match="payload"):
        framing.unpack(3, framing.lying_frame(3, b"abc"))
    with pytest.raises(framing.FramingError, match="shorter"):
        framing.unpack(2, b"\x00\x02")
    with pytest.raises(framing.FramingError, match="65535"):
        framing.pack(3, bytes(70000))


# ---- recorder ----------------------------------------------------------------------------
def test_recorder_file_and_api(server, tmp_path):
    path = tmp_path / "rec.jsonl"
    srv = server(record=str(path))
    d = Dev(srv.url, headers={"Authorization": "Bearer tok"})
    d.hello()
    d.send({"type": "listen", "state": "start", "mode": "manual"})
    d.audio(tone(180))
    d.send({"type": "listen", "state": "stop"})
    msgs = d.until_stop()
    d.close()
    s = srv.wait_for(lambda: srv.sessions[0].closed and srv.sessions[0])
    assert s.close_code == 1000
    ntx = len([m for m in msgs if isinstance(m, bytes)])
    assert s.binary("rx") == [1920, 1920, 1920]
    assert s.binary("tx") == [2880] * ntx
    assert [m["type"] for m in s.texts("rx")] == ["hello", "listen", "listen"]
    assert s.tts_states() == ["start", "sentence_start", "sentence_start", "sentence_start",
                              "stop"]
    rec = read_record(path)
    assert rec[0]["event"] == "open" and rec[0]["headers"]["Authorization"] == "Bearer tok"
    assert rec[0]["headers"]["Device-Id"] == DEV and rec[0]["path"] == "/xiaozhi/v1/"
    assert rec[-1]["event"] == "close" and rec[-1]["code"] == 1000
    body = [r for r in rec if "dir" in r]
    assert len(body) == len(s.frames)
    assert body[0]["dir"] == "rx" and body[0]["data"]["type"] == "hello"
    assert body[1]["dir"] == "tx" and body[1]["data"]["type"] == "hello"
    assert [r["data"] for r in body if r["kind"] == "binary" and r["dir"] == "rx"] == [1920] * 3
    ts = [r["t"] for r in body]
    assert ts == sorted(ts)


def test_async_api():
    import asyncio

    from websockets.asyncio.client import connect as aconnect

    async def main():
        async with MockServer(port=0, **FAST) as srv:
            ws = await aconnect(srv.url, additional_headers={"Device-Id": DEV})
            await ws.send(json.dumps({"type": "hello", "features": {"mcp": True}}))
            json.loads(await ws.recv())  # hello
            init = json.loads(await ws.recv())
            assert init["payload"]["method"] == "initialize"
            await srv.until(lambda: srv.sessions[0].texts("tx", "mcp"))
            await srv.asend_json({"type": "alert", "status": "s", "message": "m",
                                  "emotion": "happy"})
            assert json.loads(await ws.recv())["type"] == "alert"
            await ws.close()

    asyncio.run(main())


def test_wait_for_times_out_clearly(server):
    srv = server()
    with pytest.raises(TimeoutError, match="session 1"):
        srv.wait_session(1, timeout=0.2)
