"""Tests for tools/mock_server (driven by a CPython websockets client), tools/common/wav.py, and the
parts of tools/mock_ota.py that the device boot tests (test_boot_ota.py) do not reach."""

import array
import contextlib
import json
import math
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tools.common import framing, tokens
from tools.common.wav import WavError, read_wav, write_wav
from tools.mock_ota import MockOta, serve_in_thread
from tools.mock_server import MockServer, audio, auth, mcp_script
from tools.mock_server.record import read_record

REPO = Path(__file__).resolve().parent.parent
SPEECH = REPO / "tools" / "assets" / "weather_en_16k.wav"
DEV = "aa:bb:cc:dd:ee:ff"
CLIENT = "5f1c7c52-5d0f-4c1e-9d2a-3c1b2a4f6e70"
FAST = {"drain_s": 0.02, "pace_ms": 0, "abort_stop_delay": 0.05, "mcp_list_delay": 0.01,
        "ping_interval": None}
HEADER_BYTES = {1: 0, 2: 16, 3: 4}  # binary frame header size per protocol version


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

    def text_turn(self, text):
        """A listen detect; returns the messages up to and including its tts stop."""
        self.send({"type": "listen", "state": "detect", "text": text})
        return self.until_stop()

    def manual_turn(self, pcm):
        """listen start (manual), the audio, listen stop; returns the reply through tts stop."""
        self.send({"type": "listen", "state": "start", "mode": "manual"})
        self.audio(pcm)
        self.send({"type": "listen", "state": "stop"})
        return self.until_stop()

    def until_closed(self):
        """Every message the server sends until it ends the connection."""
        got = []
        with pytest.raises(ConnectionClosed):
            while True:
                got.append(self.recv())
        return got

    def close(self):
        self.ws.close()


@pytest.fixture
def server():
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


def closed_session(srv, timeout=10.0):
    """The first Session, once its connection has ended."""
    return srv.wait_for(lambda: srv.sessions[0].closed and srv.sessions[0], timeout, "session 1 closed")


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
    msgs = d.text_turn("marker")
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
    msgs = d.text_turn("marker")
    assert msgs[0]["text"] == "marker"
    assert [t.source for t in srv.sessions[0].turns] == ["text"]
    d.close()


def test_text_turn_and_wake_word(server):
    srv = server()
    d = Dev(srv.url)
    d.hello()
    msgs = d.text_turn("hello xiaozhi")
    assert msgs[0]["text"] == "hello xiaozhi"
    msgs = d.text_turn("你好小智")
    # stock greeting: no stt, no llm
    assert kinds(msgs) == ["tts/start", "tts/sentence_start", "B", "tts/stop"]
    assert msgs[1]["text"] == "我在这里哦！"
    d.close()


def test_pacing_and_drain(server):
    srv = server(pace_ms=60, drain_s=0.2)
    d = Dev(srv.url)
    d.hello()
    d.text_turn("pace me")
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
    msgs = d.text_turn("no hello")
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
    msgs = d.manual_turn(tone(600))
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
    msgs = d.manual_turn(tone(180))
    d.close()
    s = closed_session(srv)
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


# ---- fault knobs -------------------------------------------------------------------------
def test_no_hello_first_session_only(server):
    srv = server(no_hello=True)
    d = Dev(srv.url)
    d.send({"type": "hello", "version": 1, "transport": "websocket"})
    srv.wait_for(lambda: srv.sessions[0].hello)
    # The hello was received and nothing was sent back; the next message proves the order.
    msgs = d.text_turn("still there")
    assert msgs[0]["type"] == "stt"
    assert not srv.sessions[0].texts("tx", "hello")
    d.close()
    d2 = Dev(srv.url)  # the reconnect gets a healthy server
    assert d2.hello()["type"] == "hello"
    d2.close()


def test_no_hello_all_sessions(server):
    srv = server(no_hello=True, fault_sessions=0)
    for n in (1, 2):
        d = Dev(srv.url)
        d.send({"type": "hello"})
        s = srv.wait_for(lambda n=n: len(srv.sessions) == n and srv.sessions[-1].hello
                         and srv.sessions[-1])
        assert not s.texts("tx")
        d.close()


def test_stall_after_hello(server):
    srv = server(stall=True)
    d = Dev(srv.url)
    assert d.hello(mcp=True)["type"] == "hello"
    d.send({"type": "listen", "state": "detect", "text": "anyone?"})
    srv.wait_for(lambda: len(srv.sessions[0].texts("rx")) == 2)
    with pytest.raises(TimeoutError):
        d.recv(timeout=0.3)
    # no MCP initialize either
    assert [m["type"] for m in srv.sessions[0].texts("tx")] == ["hello"]
    d.close()


def test_slow_ms_delays_responses(server):
    srv = server(slow_ms=150)
    d = Dev(srv.url)
    d.hello()
    s = srv.sessions[0]
    rx = next(f for f in s.frames if f.dir == "rx")
    tx = next(f for f in s.frames if f.dir == "tx")
    assert tx.t_ms - rx.t_ms >= 145
    d.close()


@pytest.mark.parametrize(("knob", "device_sees", "server_sees"), [
    ("close_mid_tts", (1000,), 1000),  # a Close frame, echoed by the client
    ("drop_mid_tts", (None, 1006), 1006),  # the TCP connection just ends: no close frame
])
def test_cut_mid_tts(server, knob, device_sees, server_sees):
    srv = server(**{knob: 3})
    d = Dev(srv.url)
    d.hello()
    d.send({"type": "listen", "state": "detect", "text": "cut me off"})
    got = d.until_closed()
    assert len([m for m in got if isinstance(m, bytes)]) == 3
    assert d.ws.close_code in device_sees
    s = closed_session(srv)
    assert s.close_code == server_sees
    assert s.turns[0].interrupted and s.turns[0].audio_frames == 3
    d2 = Dev(srv.url)  # second connection: full reply
    d2.hello()
    assert d2.text_turn("again")[-1]["state"] == "stop"
    d2.close()


@pytest.mark.parametrize("version", [1, 2, 3])
def test_garbage(server, version):
    srv = server(garbage=True)
    d = Dev(srv.url, version=version)
    d.hello()
    msgs = d.text_turn("garbage please")
    assert kinds(msgs[:2]) == ["stt", "tts/start"]
    texts = [m for m in msgs if isinstance(m, str)]
    assert "this is {not json" in texts and "" in texts
    types = [m.get("type") for m in msgs if isinstance(m, dict)]
    assert "no_such_type" in types and None in types  # {"no_type": true}
    assert [1, 2, 3] in msgs and 42 in msgs
    binaries = [m for m in msgs if isinstance(m, bytes)]
    lying, rnd, empty = binaries[:3]
    if version == 3:
        assert struct.unpack(">BBH", lying[:4])[2] > len(lying) - 4
    else:
        assert struct.unpack(">I", lying[12:16])[0] > len(lying) - 16
    assert len(rnd) == 333 and empty == b""
    with pytest.raises(framing.FramingError):
        framing.unpack(version if version > 1 else 2, lying)
    # the reply goes on normally afterwards
    assert msgs[-1]["state"] == "stop"
    assert len([b for b in binaries[3:] if len(b) == 2880 + HEADER_BYTES[version]]) > 10
    d.close()


@pytest.mark.parametrize("version", [1, 2, 3])
def test_oversized(server, version):
    srv = server(oversized=True)
    d = Dev(srv.url, version=version)
    d.hello()
    msgs = d.text_turn("big")
    big = [m for m in msgs if isinstance(m, bytes) and len(m) > 100000]
    assert len(big) == 1 and len(big[0]) == HEADER_BYTES[version] + 200 * 1024
    huge = [m for m in msgs if isinstance(m, dict) and len(m.get("text", "")) > 100000]
    assert len(huge) == 1 and huge[0]["type"] == "stt"
    assert msgs[-1]["state"] == "stop"
    d.close()


def test_bad_knobs_are_refused():
    with pytest.raises(ValueError, match="format"):
        MockServer(format="mp3")
    with pytest.raises(ValueError, match="tts_rate"):
        MockServer(format="opus", tts_rate=22050)
    with pytest.raises(ValueError, match="close_mid_tts"):
        MockServer(close_mid_tts=-1)
    with pytest.raises(mcp_script.ScriptError, match="entry 0"):
        MockServer(mcp_script=[{"nope": 1}])


# ---- keepalive and plain HTTP ------------------------------------------------------------
def _raw_upgrade(port, path="/xiaozhi/v1/"):
    import socket

    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  f"Sec-WebSocket-Version: 13\r\nDevice-Id: {DEV}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    return sock


def test_server_pings_and_drops_silent_client(server):
    srv = server(ping_interval=0.2, ping_timeout=0.3)
    sock = _raw_upgrade(srv.port)
    first = sock.recv(2)
    assert first[0] == 0x89  # FIN + PING
    sock.recv(first[1] & 0x7F)
    # never answer: after ping_timeout the server sends Close 1011 (keepalive ping timeout)
    while True:
        hdr = sock.recv(2)
        body = sock.recv(hdr[1] & 0x7F) if hdr[1] & 0x7F else b""
        if hdr[0] == 0x88:
            break
    assert struct.unpack(">H", body[:2])[0] == 1011
    sock.close()
    s = closed_session(srv, timeout=5)
    assert (s.close_sent, s.close_code) == (1011, 1006)


def test_plain_http_get(server):
    import urllib.request

    srv = server()
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/xiaozhi/v1/", timeout=5) as r:
        assert r.status == 200 and r.read() == b"Server is running\n"


# ---- auth ------------------------------------------------------------------------------
VECTOR_TS = 1795784743
VECTOR_TOKEN = "C038gKFvHKgGMKpofPx4JagVqNqZB9Gbs5HNZaB_Kng.1795784743"


def test_auth_token_vector():
    assert tokens.sign("peer-test-secret", CLIENT, DEV, VECTOR_TS) == VECTOR_TOKEN
    assert auth.check("Bearer " + VECTOR_TOKEN, CLIENT, DEV, key="peer-test-secret",
                      now=VECTOR_TS + 10) is None


@pytest.fixture
def auth_server(server):
    return server(auth_key="peer-test-secret", auth_clock=lambda: VECTOR_TS + 3600,
                  allow_devices=["11:22:33:44:55:66"])


def _hello_first(srv, **kw):
    d = Dev(srv.url, **kw)
    try:
        # A refused client may find the connection already closed when it sends its hello;
        # the refusal text is still queued for recv().
        with contextlib.suppress(ConnectionClosed):
            d.send({"type": "hello"})
        m = d.ws.recv(timeout=5)
        if m == "认证失败":
            with pytest.raises(ConnectionClosed):
                d.ws.recv(timeout=5)
            assert d.ws.close_code == 1000
            return "refused"
        return json.loads(m)["type"]
    finally:
        d.close()


def test_auth_accepts_stock_token(auth_server):
    assert _hello_first(auth_server, headers={"Authorization": "Bearer " + VECTOR_TOKEN}) == "hello"
    assert auth_server.sessions[0].auth_ok is True


def test_auth_accepts_query_form_and_whitelist(auth_server):
    q = f"?device-id={DEV}&client-id={CLIENT}&authorization=Bearer+{VECTOR_TOKEN}"
    d = Dev(auth_server.url + q, device_id=None, headers={"Client-Id": ""})
    d.send({"type": "hello"})
    assert json.loads(d.ws.recv(timeout=5))["type"] == "hello"
    d.close()
    assert _hello_first(auth_server, device_id="11:22:33:44:55:66") == "hello"


def test_auth_refusals(auth_server):
    assert _hello_first(auth_server) == "refused"  # no Authorization
    assert _hello_first(auth_server, device_id="aa:bb:cc:dd:ee:00",
                        headers={"Authorization": "Bearer " + VECTOR_TOKEN}) == "refused"
    old = tokens.sign("peer-test-secret", CLIENT, DEV, VECTOR_TS + 3600 - 31 * 86400)
    assert _hello_first(auth_server, headers={"Authorization": "Bearer " + old}) == "refused"
    assert _hello_first(auth_server, headers={"Authorization": VECTOR_TOKEN}) == "refused"
    s = auth_server.sessions[0]
    assert s.auth_ok is False and s.texts("tx") == [] and s.frames[0].data == "认证失败"


def test_fixed_token(server):
    srv = server(token="let-me-in")
    assert _hello_first(srv, headers={"Authorization": "Bearer let-me-in"}) == "hello"
    assert _hello_first(srv, headers={"Authorization": "Bearer nope"}) == "refused"


# ---- MCP ---------------------------------------------------------------------------------
TOOLS = [{"name": "self.get_device_status", "description": "status",
          "inputSchema": {"type": "object", "properties": {}}},
         {"name": "self.audio_speaker.set_volume", "description": "volume",
          "inputSchema": {"type": "object", "properties": {"volume": {"type": "integer"}},
                          "required": ["volume"]}}]


class FakeMcpDevice:
    """Answers the mock's MCP requests from a thread, like a device MCP server."""

    def __init__(self, url):
        self.dev = Dev(url)
        self.requests = []
        self.other = []
        self.dev.hello(mcp=True)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            while True:
                m = self.dev.recv(timeout=10)
                if not (isinstance(m, dict) and m.get("type") == "mcp"):
                    self.other.append(m)
                    continue
                p = m["payload"]
                self.requests.append(p)
                if not isinstance(p.get("id"), int):
                    continue  # string ids get no reply (as the reference device)
                method = p.get("method")
                if method == "initialize":
                    res = {"protocolVersion": "2024-11-05", "capabilities": {"tools": {}},
                           "serverInfo": {"name": "fake", "version": "0"}}
                elif method == "tools/list":
                    cursor = (p.get("params") or {}).get("cursor")
                    res = {"tools": TOOLS[1:]} if cursor else {"tools": TOOLS[:1],
                                                               "nextCursor": TOOLS[1]["name"]}
                elif method == "tools/call":
                    name = p["params"]["name"]
                    if name not in [t["name"] for t in TOOLS]:
                        self.reply({"jsonrpc": "2.0", "id": p["id"],
                                    "error": {"message": "Unknown tool: " + name}})
                        continue
                    text = json.dumps({"tool": name, "args": p["params"].get("arguments")})
                    res = {"content": [{"type": "text", "text": text}], "isError": False}
                else:
                    self.reply({"jsonrpc": "2.0", "id": p["id"],
                                "error": {"message": "Method not implemented: %s" % method}})
                    continue
                self.reply({"jsonrpc": "2.0", "id": p["id"], "result": res})
        except (ConnectionClosed, TimeoutError):
            pass

    def reply(self, payload):
        self.dev.send({"session_id": "", "type": "mcp", "payload": payload})


def test_mcp_initialize_list_paging_and_script(server, tmp_path):
    script = [{"name": "self.get_device_status"},
              {"sleep": 0.01},
              {"name": "self.audio_speaker.set_volume", "arguments": {"volume": 50}},
              {"payload": {"jsonrpc": "2.0", "id": "s1", "method": "tools/call"}},
              {"raw": '{"type":"mcp","payload":{"jsonrpc":"2.0","id":7,"method":"nope"}}'},
              {"payload": {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                           "params": {"name": "self.x", "arguments": {"pad": "a" * 65536}}}}]
    srv = server(mcp_script=script, mcp_list_delay=0.1)
    dev = FakeMcpDevice(srv.url)
    s = srv.wait_session()
    srv.wait_for(lambda: len(s.mcp_results) == 4, what="script results")
    reqs = dev.requests
    assert [(r.get("id"), r.get("method")) for r in reqs[:5]] == [
        (1, "initialize"), (2, "tools/list"), (2, "tools/list"), (1, "tools/call"),
        (2, "tools/call")]
    init = reqs[0]
    assert list(init) == ["jsonrpc", "id", "method", "params"]
    caps = init["params"]["capabilities"]
    assert caps["roots"] == {"listChanged": True} and caps["sampling"] == {}
    assert caps["vision"]["url"] == "http://127.0.0.1:8003/mcp/vision/explain"
    assert caps["vision"]["token"].count(".") == 2
    assert init["params"]["clientInfo"] == {"name": "XiaozhiClient", "version": "1.0.0"}
    assert "params" not in reqs[1] and reqs[2]["params"] == {"cursor": TOOLS[1]["name"]}
    assert reqs[4]["params"] == {"name": "self.audio_speaker.set_volume",
                                 "arguments": {"volume": 50}}
    assert [t["name"] for t in s.mcp_tools] == [t["name"] for t in TOOLS]
    # tools/list came no sooner than mcp_list_delay after the initialize result
    fr = s.frames
    t_init_res = next(f.t_ms for f in fr if f.dir == "rx" and f.kind == "text"
                      and f.data.get("type") == "mcp" and f.data["payload"].get("id") == 1)
    t_list = next(f.t_ms for f in fr if f.dir == "tx" and f.kind == "text"
                  and f.data.get("type") == "mcp"
                  and f.data["payload"].get("method") == "tools/list")
    assert t_list - t_init_res >= 95
    # results: (request, reply)
    (p1, r1), (p2, r2), (p3, r3), (p4, r4) = s.mcp_results
    assert r1["id"] == 1 and "self.get_device_status" in r1["result"]["content"][0]["text"]
    assert json.loads(r2["result"]["content"][0]["text"])["args"] == {"volume": 50}
    assert p3["id"] == "s1" and r3 is None  # string id: no reply expected
    assert p4["id"] == 9 and r4["error"]["message"] == "Unknown tool: self.x"
    assert any(r.get("id") == 7 and r.get("method") == "nope" for r in reqs)
    # every device mcp message is recorded
    assert [r.get("id") for r in s.mcp_replies] == [1, 2, 2, 1, 2, 7, 9]
    # thread API: next id from the same counter (3)
    reply = srv.call_tool("self.get_device_status", timeout=5)
    assert reply["id"] == 3 and reply["result"]["isError"] is False
    assert dev.requests[-1]["id"] == 3
    dev.dev.close()


def test_mcp_call_fails_clearly_when_the_session_closes(server):
    srv = server()
    d = Dev(srv.url)
    d.hello()
    s = srv.wait_session()
    errors = []

    def call():
        try:
            srv.call_tool("self.get_device_status", timeout=10)
        except RuntimeError as e:
            errors.append(str(e))

    caller = threading.Thread(target=call)
    caller.start()
    srv.wait_for(lambda: s.texts("tx", "mcp"), what="the tools/call")
    d.close()  # the device goes away without answering
    caller.join(10)
    assert errors == ["session 0 closed before MCP reply 1"]


def test_mcp_not_started_without_feature(server):
    srv = server()
    d = Dev(srv.url)
    d.hello(mcp=False)
    d.text_turn("x")
    assert not srv.sessions[0].texts("tx", "mcp")
    d.close()


def test_mcp_script_file_errors(tmp_path):
    with pytest.raises(mcp_script.ScriptError, match="no such file"):
        mcp_script.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(mcp_script.ScriptError, match="invalid JSON"):
        mcp_script.load(bad)
    bad.write_text('{"name": "x"}')
    with pytest.raises(mcp_script.ScriptError, match="JSON list"):
        mcp_script.load(bad)
    bad.write_text('[{"name": "x", "arguments": []}]')
    with pytest.raises(mcp_script.ScriptError, match="arguments must be an object"):
        mcp_script.load(bad)
    bad.write_text('[{"sleep": -1}]')
    with pytest.raises(mcp_script.ScriptError, match="sleep"):
        mcp_script.load(bad)
    good = tmp_path / "good.json"
    good.write_text('[{"name": "self.get_device_status"}, {"raw": "x"}, {"sleep": 0}]')
    assert len(mcp_script.load(good)) == 3


# ---- opus mode --------------------------------------------------------------------------
def test_opus_mode(server):
    import opuslib_next

    srv = server(format="opus")
    d = Dev(srv.url)
    h = d.hello(fmt="opus")
    # hello echoes the client's audio_params verbatim (16000), though TTS is 24 kHz
    assert h["audio_params"] == {"format": "opus", "sample_rate": 16000, "channels": 1,
                                 "frame_duration": 60}
    enc = opuslib_next.Encoder(16000, 1, opuslib_next.APPLICATION_VOIP)
    pcm = tone(900, amp=0.1)
    d.send({"type": "listen", "state": "start", "mode": "manual"})
    for i in range(0, len(pcm), 1920):
        d.ws.send(enc.encode(pcm[i:i + 1920], 960))
    d.ws.send(b"\xff\xff\xff\xff")  # undecodable: dropped, not fatal
    d.send({"type": "listen", "state": "stop"})
    msgs = d.until_stop()
    assert msgs[0]["text"].startswith("heard 15 frames (0.90 s) of audio, level -2")
    dec = opuslib_next.Decoder(24000, 1)
    idx = [i for i, m in enumerate(msgs) if isinstance(m, dict) and m.get("state") in
           ("sentence_start", "stop")]
    assert len(idx) == 4
    for n in range(3):
        pkts = [m for m in msgs[idx[n] + 1:idx[n + 1]] if isinstance(m, bytes)]
        assert pkts and all(len(p) < 1000 for p in pkts)  # compressed, one packet per message
        out = [dec.decode(p, 1440) for p in pkts]
        assert all(len(o) == 2880 for o in out)  # 60 ms at 24 kHz
        assert dominant_freq(b"".join(out), 24000) == audio.TONES[n]
    d.send({"type": "abort"})
    assert d.recv_json()["state"] == "stop" and d.recv_json()["state"] == "stop"
    d.close()


def test_opus_mode_hello_without_audio_params(server):
    srv = server(format="opus")
    d = Dev(srv.url)
    assert d.hello(params=False)["audio_params"] == {"format": "opus", "sample_rate": 24000,
                                                     "channels": 1, "frame_duration": 60}
    d.close()


# ---- tools/common/wav.py ------------------------------------------------------------------------
def test_wav_roundtrip_and_refusals(tmp_path):
    p = tmp_path / "a.wav"
    write_wav(p, 24000, b"\x01\x00\x02\x00")
    assert read_wav(p) == (24000, 1, b"\x01\x00\x02\x00")
    write_wav(p, 16000, b"\x01\x00\x02\x00", channels=2)
    assert read_wav(p) == (16000, 2, b"\x01\x00\x02\x00")
    with pytest.raises(WavError, match="no such file"):
        read_wav(tmp_path / "missing.wav")
    (tmp_path / "t.txt").write_text("hello, this is not a WAV file at all")
    with pytest.raises(WavError, match="not a 16-bit PCM WAV"):
        read_wav(tmp_path / "t.txt")
    with pytest.raises(WavError, match="cannot read"):
        read_wav(tmp_path / "t.txt" / "under_a_file.wav")
    import wave

    with wave.open(str(tmp_path / "u8.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(b"\x80\x80")
    with pytest.raises(WavError, match="8-bit samples; only 16-bit"):
        read_wav(tmp_path / "u8.wav")
    # IEEE float WAV (format tag 3)
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)
    data = bytes(8)
    blob = (b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
            + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data"
            + struct.pack("<I", len(data)) + data)
    (tmp_path / "f.wav").write_bytes(blob)
    with pytest.raises(WavError, match="not a 16-bit PCM WAV"):
        read_wav(tmp_path / "f.wav")
    with pytest.raises(WavError, match="whole number"):
        write_wav(p, 16000, b"\x01")
    with pytest.raises(WavError, match="sample rate"):
        write_wav(p, 0, b"")


# ---- tools/mock_ota.py -------------------------------------------------------------------
def test_mock_ota_activate_path_with_query():
    mock = MockOta(code="123456", pending=1)
    assert mock.handle("POST", "/xiaozhi/ota/activate?attempt=1", {}, b"{}")[0] == 202
    assert mock.handle("POST", "/xiaozhi/ota/activate/", {}, b"{}")[0] == 200
    assert [r["path"] for r in mock.activations()] == ["/xiaozhi/ota/activate?attempt=1",
                                                       "/xiaozhi/ota/activate/"]
    assert mock.checks() == []


def test_mock_ota_bad_content_length_and_busy_port():
    import socket

    with serve_in_thread(MockOta()) as mock:
        port = int(mock.url.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"POST /xiaozhi/ota/ HTTP/1.1\r\nContent-Length: -5\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 400 ")
        # The bind error itself, at once (not a timeout)
        with pytest.raises(OSError), serve_in_thread(MockOta(), port=port):
            pass
    assert mock.requests == []


# ---- CLI ---------------------------------------------------------------------------------
def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "tools.mock_server", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=20, **kw)


def test_cli_bad_input_gives_one_line_errors(tmp_path):
    r = _cli("--mcp-script", str(tmp_path / "nope.json"))
    assert r.returncode != 0 and "no such file" in r.stderr and "Traceback" not in r.stderr
    r = _cli("--format", "opus", "--tts-rate", "22050")
    assert r.returncode != 0 and "tts_rate" in r.stderr and "Traceback" not in r.stderr
    r = _cli("--slow-ms", "abc")
    assert r.returncode == 2 and "expected an integer" in r.stderr
    r = _cli("--port", "70000")
    assert r.returncode == 2 and "expected a port 0..65535" in r.stderr and "Traceback" not in r.stderr
    r = _cli("--drain", "nan")
    assert r.returncode == 2 and "expected a number >= 0" in r.stderr
    r = _cli("--help")
    assert r.returncode == 0 and "--close-mid-tts" in r.stdout


def test_cli_serves_a_turn_and_records(tmp_path):
    rec = tmp_path / "rec.jsonl"
    p = subprocess.Popen([sys.executable, "-m", "tools.mock_server", "--port", "0", "--record",
                          str(rec), "--drain", "0", "--pace-ms", "0"], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in p.stdout:
            if line.startswith("mock xiaozhi server on "):
                url = line.split(" on ", 1)[1].strip()
                break
        assert url and url.startswith("ws://127.0.0.1:") and url.endswith("/xiaozhi/v1/")
        d = Dev(url)
        d.hello()
        assert d.text_turn("cli")[0]["text"] == "cli"
        d.close()
    finally:
        p.terminate()
        p.wait(10)
    lines = read_record(rec)
    assert lines[0]["event"] == "open"
    assert any(r.get("data", {}) == {"type": "listen", "state": "detect", "text": "cli"}
               for r in lines if r.get("kind") == "text")


def test_realtime_mode_keeps_listening(server):
    srv = server()
    d = Dev(srv.url)
    d.hello()
    d.send({"type": "listen", "state": "start", "mode": "realtime"})
    silence = bytes(1920 * 10)  # exactly the 600 ms that ends an utterance
    d.audio(tone(900, amp=0.1) + silence)
    assert d.until_stop()[0]["text"].startswith("heard 25 frames (1.50 s)")
    d.audio(tone(600, amp=0.3) + silence)  # no new listen start
    assert d.until_stop()[0]["text"].startswith("heard 20 frames (1.20 s)")
    assert [(t.mode, t.end) for t in srv.sessions[0].turns] == [("realtime", "vad")] * 2
    d.close()
