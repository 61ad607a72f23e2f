"""Test doubles, harness and audio measurements for the gateway tests (not collected by pytest).

FakeUpstream: a stock-like xiaozhi server (websockets) that speaks Opus only:
it answers the hello like the stock server (echoes audio_params), decodes the
uplink at 16 kHz, and on listen stop/detect runs a turn: stt, tts start, llm,
sentence_start, tone frames as 24 kHz CELT/hybrid Opus plus a 16 kHz SILK
prompt, tts stop. Every frame is recorded.
FakeOta: a stock-like OTA HTTP endpoint (asyncio streams).
Harness: async_test, FakeClock, serving / gateway_for (start and always stop
servers), open_device / open_session, recv_until, closed_with, dead_port, http.
"""

import array
import asyncio
import contextlib
import functools
import json
import math
import os
import socket

import opuslib_next
import pytest
import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from tools.common.wav import read_wav
from tools.gateway.config import Config
from tools.gateway.proxy import Gateway

HERE = os.path.dirname(os.path.abspath(__file__))
SPEECH_WAV = os.path.join(HERE, "fixtures", "gateway", "speech_en_16k.wav")
DEV = "aa:bb:cc:dd:ee:ff"
CID = "5f1c7c52-5d0f-4c1e-9d2a-3c1b2a4f6e70"
T = 10  # seconds: bound on every wait, never a sleep-as-assertion


# -- harness -----------------------------------------------------------------
class FakeClock:
    """A clock the test moves by hand: clock.t += 61."""

    def __init__(self, t=0.0):
        self.t = t

    def __call__(self):
        return self.t


def async_test(fn):
    """Run an async test (fixtures and parameters pass through) under asyncio.run, bounded at 30 s."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 30))
    return wrapper


@contextlib.asynccontextmanager
async def serving(*servers):
    """Start the servers in order; stop them in reverse order on the way out, also when the test fails."""
    async with contextlib.AsyncExitStack() as stack:
        for s in servers:
            await s.start()
            stack.push_async_callback(s.stop)
        yield servers


@contextlib.asynccontextmanager
async def gateway_for(up, clock=None, mono=None, **cfg):
    """A started FakeUpstream `up` (None: a default one) and a Gateway in front of it on an
    ephemeral port: (up, gw), both stopped on the way out. clock/mono: the Gateway's clocks."""
    up = up or FakeUpstream()
    clocks = {k: v for k, v in (("clock", clock), ("mono", mono)) if v is not None}
    async with serving(up):
        gw = Gateway(Config(listen_port=0, upstreams=[up.url], **cfg), **clocks)
        async with serving(gw):
            yield up, gw


def hello(fmt="pcm", rate=16000, version=1):
    return json.dumps({"type": "hello", "version": version, "features": {"mcp": True, "glyph_push": False},
                       "transport": "websocket",
                       "audio_params": {"format": fmt, "sample_rate": rate, "channels": 1, "frame_duration": 60}},
                      separators=(",", ":"))


async def open_device(gw, version=1, headers=None):
    """A device WebSocket to the gateway; headers replace the default Device-Id/Client-Id/Protocol-Version."""
    if headers is None:
        headers = {"Device-Id": DEV, "Client-Id": CID, "Protocol-Version": str(version)}
    return await connect("ws://127.0.0.1:%d/xiaozhi/v1/" % gw.port, additional_headers=headers,
                         open_timeout=T, compression=None)


async def open_session(gw, fmt="pcm", rate=16000, version=1, headers=None):
    """open_device plus the hello exchange: (ws, the server hello as the device got it)."""
    ws = await open_device(gw, version, headers)
    await ws.send(hello(fmt, rate, version))
    return ws, json.loads(await asyncio.wait_for(ws.recv(), T))


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


def dead_port():
    """A loopback port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def closed_with(ws):
    """Wait for the other side to close ws: (close code, reason)."""
    with pytest.raises(websockets.ConnectionClosed):
        await asyncio.wait_for(ws.recv(), T)
    return ws.close_code, ws.close_reason


# -- audio helpers -----------------------------------------------------------
def tone(freq, rate, ms, amp=0.3):
    n = rate * ms // 1000
    a = array.array("h", (int(amp * 32767 * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)))
    return a.tobytes()


def samples(pcm):
    a = array.array("h")
    a.frombytes(bytes(pcm[: len(pcm) & ~1]))
    return a


def tone_freq(pcm, rate, skip_ms=30):
    """Frequency of a (near) pure tone from its zero crossings, skipping the
    decoder's start-up; accurate to a few Hz over a few hundred ms."""
    x = samples(pcm)[rate * skip_ms // 1000:]
    crossings = 0
    for i in range(1, len(x)):
        if (x[i - 1] < 0) != (x[i] < 0):
            crossings += 1
    return crossings / 2.0 / (len(x) / rate)


def envelope(pcm, rate, win_ms=60):
    """RMS per window (a speech energy envelope)."""
    x = samples(pcm)
    n = rate * win_ms // 1000
    out = []
    for i in range(0, len(x) - n + 1, n):
        acc = 0
        for v in x[i:i + n]:
            acc += v * v
        out.append(math.sqrt(acc / n))
    return out


def correlation(a, b):
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    ma, mb = sum(a) / n, sum(b) / n
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    da = math.sqrt(sum((x - ma) ** 2 for x in a))
    db = math.sqrt(sum((y - mb) ** 2 for y in b))
    return num / (da * db) if da and db else 0.0


def speech_pcm():
    rate, ch, pcm = read_wav(SPEECH_WAV)
    assert rate == 16000 and ch == 1
    return pcm[: len(pcm) // 1920 * 1920]


def opus_frames(pcm, rate, app=opuslib_next.APPLICATION_AUDIO, bitrate=None):
    enc = opuslib_next.Encoder(rate, 1, app)
    if bitrate:
        enc.bitrate = bitrate
    n = rate * 60 // 1000
    return [enc.encode(pcm[i:i + 2 * n], n) for i in range(0, len(pcm) - 2 * n + 1, 2 * n)]


def toc_config(pkt):
    return pkt[0] >> 3


# -- fake upstream ---------------------------------------------------------
class FakeUpstream:
    """Stock-like Opus-only server. behaviour knobs:
    tts_freq: the tone the 24 kHz TTS speaks; prompt_freq: the 16 kHz SILK prompt
    die_mid_turn: abort the TCP connection after sending half the TTS frames
    close_after_hello: close(1000) right after the server hello
    json_ping: answer {"type":"ping"} with a pong (stock with enable_websocket_ping on)
    stop_answering(): stop reading every connection, so PINGs and pings go unanswered
    """

    def __init__(self, tts_freq=1000, prompt_freq=500, tts_frames=10, prompt_frames=5):
        self.tts_freq = tts_freq
        self.prompt_freq = prompt_freq
        self.tts_frames = tts_frames
        self.prompt_frames = prompt_frames
        self.die_mid_turn = False
        self.close_after_hello = False
        self.json_ping = False
        self.json_pings = 0  # {"type":"ping"} messages received
        self.silent = False
        self.audio_sent_at = None  # loop time the last turn's first audio frame was sent
        self.pinged = asyncio.Event()
        self.connections = []  # one dict per connection
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()
        self._server = None
        self.tts_packets = opus_frames(tone(tts_freq, 24000, 60 * tts_frames), 24000)
        self.prompt_packets = opus_frames(tone(prompt_freq, 16000, 60 * prompt_frames), 16000,
                                          opuslib_next.APPLICATION_VOIP, bitrate=16000)
        self.stt_text = "what is the weather"

    @property
    def url(self):
        return "ws://127.0.0.1:%d/xiaozhi/v1/" % self.port

    async def start(self):
        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self):
        if self.silent:  # a silent connection would wait out its close_timeout: drop it
            for rec in self.connections:
                rec["ws"].transport.abort()
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, ws):
        rec = {"ws": ws, "headers": ws.request.headers, "text": [], "binary": [], "pcm": bytearray(),
               "bad_packets": 0, "close": None}
        self.connections.append(rec)
        self.connected.set()
        dec = opuslib_next.Decoder(16000, 1)  # exactly what the stock server does
        try:
            async for msg in ws:
                if isinstance(msg, bytes):
                    rec["binary"].append(msg)
                    try:
                        rec["pcm"] += dec.decode(msg, 960)
                    except opuslib_next.OpusError:
                        rec["bad_packets"] += 1
                    continue
                rec["text"].append(msg)
                try:
                    m = json.loads(msg)
                except ValueError:
                    m = None
                if not isinstance(m, dict):
                    await ws.send(msg)  # stock echoes non-JSON text and bare values
                    continue
                t = m.get("type")
                if t == "hello":
                    out = {"type": "hello", "version": 1, "transport": "websocket",
                           "audio_params": m.get("audio_params") or
                           {"format": "opus", "sample_rate": 24000, "channels": 1, "frame_duration": 60},
                           "session_id": "S-%d" % len(self.connections)}
                    await ws.send(json.dumps(out, separators=(",", ":")))
                    if self.close_after_hello:
                        await ws.close(1000, "bye")
                        break
                elif t == "listen" and m.get("state") in ("stop", "detect"):
                    text = m.get("text") or self.stt_text
                    await self.turn(ws, text)
                elif t == "ping":
                    self.json_pings += 1
                    self.pinged.set()
                    if self.json_ping:
                        await ws.send('{"type":"pong","timestamp":"2026-12-02 06:00:00"}')
                elif t == "abort":
                    await ws.send('{"type":"tts","state":"stop","session_id":"S"}')
        except websockets.ConnectionClosed:
            pass
        finally:
            rec["close"] = (ws.close_code, ws.close_reason)
            self.closed.set()

    def stop_answering(self):
        self.silent = True
        for rec in self.connections:
            rec["ws"].transport.pause_reading()

    async def turn(self, ws, text):
        sid = "S-%d" % len(self.connections)
        await ws.send(json.dumps({"type": "stt", "text": text, "session_id": sid}))
        await ws.send(json.dumps({"type": "tts", "state": "start", "session_id": sid}))
        await ws.send(json.dumps({"type": "llm", "text": "🙂", "emotion": "happy", "session_id": sid},
                                 ensure_ascii=False))
        await ws.send(json.dumps({"type": "tts", "state": "sentence_start", "session_id": sid, "text": "hi"}))
        self.audio_sent_at = asyncio.get_running_loop().time()
        for i, p in enumerate(self.tts_packets):
            if self.die_mid_turn and i == len(self.tts_packets) // 2:
                ws.transport.abort()
                return
            await ws.send(p)
        for p in self.prompt_packets:
            await ws.send(p)
        await ws.send(json.dumps({"type": "tts", "state": "stop", "session_id": sid}))


# -- fake OTA --------------------------------------------------------------
class FakeOta:
    """Answers POST …/ota/ like the stock server (plus a firmware URL and a token)
    and POST …/ota/activate with 202 then 200."""

    def __init__(self, token="upstream-issued-token"):
        self.token = token
        self.requests = []
        self.ws_url = "ws://10.9.8.7:8000/xiaozhi/v1/"
        self.mqtt = False
        self.raw_reply = None  # bytes to send verbatim instead

    async def start(self):
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self):
        return "http://127.0.0.1:%d/xiaozhi/ota/" % self.port

    async def stop(self):
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        method, path, _ = lines[0].split(" ")
        headers = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append({"method": method, "path": path, "headers": headers, "body": body})
        if self.raw_reply is not None:
            writer.write(self.raw_reply)
        else:
            if path.endswith("/activate"):
                status, payload = 202, b'{"pending":true}'
            else:
                reply = {"server_time": {"timestamp": 1795784881299, "timezone_offset": 480},
                         "firmware": {"version": "9.9.9", "url": "http://x/esp-idf.bin"}}
                if self.mqtt:
                    reply["mqtt"] = {"endpoint": "mqtt.example", "client_id": "GID_x"}
                else:
                    reply["websocket"] = {"url": self.ws_url, "token": self.token}
                status, payload = 200, json.dumps(reply).encode()
            # chunked, like some aiohttp replies, to exercise the client
            writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                         b"Connection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (status, len(payload), payload))
        await writer.drain()
        writer.close()


async def http(port, method, path, body=b"", headers=()):
    """One raw HTTP/1.1 request to 127.0.0.1:port: (status, headers dict, body bytes)."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    h = "".join("%s: %s\r\n" % kv for kv in headers)
    w.write(("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sContent-Length: %d\r\n\r\n"
             % (method, path, port, h, len(body))).encode() + body)
    await w.drain()
    data = await asyncio.wait_for(r.read(), 10)
    w.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hd = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hd[k.strip().lower()] = v.strip()
    return int(lines[0].split(" ")[1]), hd, rest
