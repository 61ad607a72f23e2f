"""A mock xiaozhi server on CPython `websockets` (asyncio API).

It imitates the stock self-hosted server (xinnan-tech/xiaozhi-esp32-server, see
docs/protocol.md §12) closely enough to test a device against it, with
a scripted ASR/LLM/TTS, a scripted MCP client, fault knobs and a recorder.

Python API (pytest is synchronous, so the server can run in its own thread):

    srv = MockServer(port=0, drain_s=0.05)
    srv.start_in_thread()
    ... connect a device to srv.url ...
    s = srv.wait_for(lambda: srv.sessions and srv.sessions[0].turns and srv.sessions[0])
    srv.stop()

or, inside a running event loop:

    async with MockServer(port=0) as srv:
        await srv.until(lambda: ...)
"""

import asyncio
import json
import logging
import random
import threading
import time
import uuid
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from tools.common import framing

from . import audio, auth
from . import mcp_script as _script
from .record import Recorder, Session, Turn

log = logging.getLogger("mock_server")

PORT_MESSAGE = "端口正常，如需测试连接，请启动digital-human测试"
AUTH_FAILED = "认证失败"
DEFAULT_WAKE_WORDS = ("你好小智",)
WAKE_REPLY = "我在这里哦！"
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
# A JWT-shaped opaque string for initialize's capabilities.vision.token (the
# device treats it as opaque; the real one is an HS256 JWT, stock-server.md §3).
VISION_TOKEN = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJkYXRhIjoibW9jay14aWFvemhpLXNlcnZlciJ9."
                "bW9jay1zaWduYXR1cmUtbm90LWNoZWNrZWQ")


class _PcmCodec:
    """pcm mode: uplink and downlink are s16le mono, nothing to transcode."""

    name = "pcm"

    def decode(self, pkt):
        return pkt

    def encode(self, pcm):
        return pcm


class _OpusCodec:
    """opus mode, as stock: uplink decoded at 16 kHz (<= 60 ms), TTS encoded at the config rate."""

    name = "opus"

    def __init__(self, tts_rate):
        import opuslib_next

        self._err = opuslib_next.OpusError
        self._dec = opuslib_next.Decoder(16000, 1)
        self._enc = opuslib_next.Encoder(tts_rate, 1, opuslib_next.APPLICATION_AUDIO)
        self._enc_samples = tts_rate * audio.FRAME_MS // 1000

    def decode(self, pkt):
        try:
            return self._dec.decode(bytes(pkt), 960)
        except self._err as e:
            log.debug("dropping undecodable opus frame of %d bytes: %s", len(pkt), e)
            return None

    def encode(self, pcm):
        return self._enc.encode(bytes(pcm), self._enc_samples)


def _parse_text(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _poll(pred, deadline, timeout, what):
    """(pred()'s value, 0) once it is truthy, else (None, seconds left before the deadline).

    An IndexError/KeyError inside pred counts as "not yet"; TimeoutError (naming `what`
    or the predicate) once the deadline has passed.
    """
    try:
        v = pred()
    except (IndexError, KeyError):
        v = None
    if v:
        return v, 0
    left = deadline - time.monotonic()
    if left <= 0:
        name = what or getattr(pred, "__name__", "condition")
        raise TimeoutError(f"mock server: timed out after {timeout:.1f} s waiting for {name}")
    return None, left


class _Conn:
    """The live state of one connection (a Session is its public record)."""

    def __init__(self, srv, ws, session, faulty):
        self.srv = srv
        self.ws = ws
        self.s = session
        self.faulty = faulty
        self.version = 1
        self.sid = str(uuid.uuid4())
        self.codec = _OpusCodec(srv.tts_rate) if srv.format == "opus" else _PcmCodec()
        self.mode = "auto"
        self.listening = False
        self.buf = bytearray()
        self.nframes = 0
        self.t_listen = 0
        self.vad = audio.EnergyVAD(srv.vad_threshold_db, srv.vad_min_speech_ms,
                                   srv.vad_silence_ms, srv.max_utterance_ms)
        self.stalled = False
        self.hung = False  # hang_after_listen_stop: a peer that is there but answers nothing
        self.reply_task = None
        self.reply_turn = None
        self.replies = 0
        self.tx_audio_ms = 0
        self.tasks = set()
        # MCP client state (stock: fixed ids 1/2 for initialize/tools/list, then a
        # per-connection counter starting at 1 for calls).
        self.mcp_counter = 0
        self.mcp_pending = {}  # id -> future
        # None, then "init" (initialize sent), "list" (waiting mcp_list_delay),
        # "listing" (tools/list sent, pages coming), "ready".
        self.mcp_phase = None
        self.emoji = True

    # ---- plumbing ------------------------------------------------------------------
    def tag(self):
        return f"[s{self.s.index}]"

    def spawn(self, coro):
        t = asyncio.ensure_future(coro)
        self.tasks.add(t)
        t.add_done_callback(self._task_done)
        return t

    def _task_done(self, t):
        self.tasks.discard(t)
        if not t.cancelled() and t.exception() and not isinstance(t.exception(), ConnectionClosed):
            log.error("%s task failed: %r", self.tag(), t.exception())

    async def send_json(self, obj):
        if self.hung:
            return
        self.s.add_frame("tx", "text", obj)
        await self.ws.send(json.dumps(obj, ensure_ascii=False))

    async def send_text(self, text):
        if self.hung:
            return
        self.s.add_frame("tx", "text", _parse_text(text))
        await self.ws.send(text)

    async def send_frame(self, data):
        if self.hung:
            return
        self.s.add_frame("tx", "binary", len(data))
        await self.ws.send(bytes(data))

    async def send_audio(self, pkt):
        ts = self.tx_audio_ms
        self.tx_audio_ms += audio.FRAME_MS
        await self.send_frame(framing.pack(self.version, pkt, ts))

    # ---- connection lifecycle ------------------------------------------------------
    async def run(self):
        s, srv = self.s, self.srv
        pv = s.header("Protocol-Version", "1")
        try:
            self.version = int(pv)
            if self.version not in framing.VERSIONS:
                raise ValueError
        except ValueError:
            log.warning("%s Protocol-Version %r not 1/2/3; using 1", self.tag(), pv)
            self.version = 1
        s.protocol_version = self.version
        query = parse_qs(urlsplit(s.path).query)
        device_id = s.header("Device-Id") or (query.get("device-id") or [None])[0]
        client_id = s.header("Client-Id") or (query.get("client-id") or [None])[0]
        authz = s.header("Authorization") or (query.get("authorization") or [None])[0]
        log.info("%s open %s device=%s client=%s protocol=v%d%s", self.tag(), s.path, device_id,
                 client_id, self.version, " (faults on)" if self.faulty and srv.has_faults() else "")
        if not device_id:
            log.info("%s no Device-Id header or query parameter: closing like stock", self.tag())
            await self.send_text(PORT_MESSAGE)
            await self.ws.close(1000)
            return
        if srv.auth_enabled():
            why = auth.check(authz, client_id, device_id, key=srv.auth_key, token=srv.token,
                             allow_devices=srv.allow_devices, now=srv.auth_clock())
            s.auth_ok = why is None
            if why:
                log.info("%s auth refused: %s", self.tag(), why)
                await self.send_text(AUTH_FAILED)
                await self.ws.close(1000)
                return
            log.info("%s auth ok", self.tag())
        try:
            async for msg in self.ws:
                if isinstance(msg, str):
                    await self.on_text(msg)
                else:
                    self.on_binary(msg)
        except ConnectionClosed:
            pass

    def cleanup(self):
        if self.reply_turn is not None and self.reply_turn.t_done_ms is None:
            self.reply_turn.interrupted = True
        for t in list(self.tasks):
            t.cancel()
        for pid, f in self.mcp_pending.items():
            if not f.done():  # a caller still waits: tell it why there is no reply
                f.set_exception(RuntimeError(f"session {self.s.index} closed before MCP reply {pid!r}"))

    # ---- incoming ------------------------------------------------------------------
    async def on_text(self, text):
        msg = _parse_text(text)
        self.s.add_frame("rx", "text", msg)
        if self.stalled:
            return
        if self.srv.slow_ms and self.faulty:
            await asyncio.sleep(self.srv.slow_ms / 1000)
        if not isinstance(msg, dict):
            # Stock echoes non-JSON text and bare JSON values back.
            log.info("%s rx non-object text %r: echoing", self.tag(), text[:60])
            await self.send_text(text)
            return
        kind = msg.get("type")
        if kind == "hello":
            await self.on_hello(msg)
        elif kind == "listen":
            await self.on_listen(msg)
        elif kind == "abort":
            await self.on_abort(msg)
        elif kind == "mcp":
            self.on_mcp(msg.get("payload"))
        elif kind == "ping":
            log.info("%s rx ping (ignored, like stock without enable_websocket_ping)", self.tag())
        else:
            log.info("%s rx unknown message type %r (ignored)", self.tag(), kind)

    def on_binary(self, data):
        self.s.add_frame("rx", "binary", len(data))
        if self.stalled:
            return
        try:
            payload, _ts = framing.unpack(self.version, data)
        except framing.FramingError as e:
            log.warning("%s dropping uplink frame: %s", self.tag(), e)
            return
        if not self.listening:
            return
        pcm = self.codec.decode(payload)
        if pcm is None:
            return
        self.buf += pcm
        self.nframes += 1
        if self.mode in ("auto", "realtime"):
            reason = self.vad.feed(pcm)
            if reason:
                self.end_utterance(reason)

    async def on_hello(self, msg):
        srv = self.srv
        self.s.hello = msg
        feats = msg.get("features") if isinstance(msg.get("features"), dict) else {}
        self.emoji = feats.get("emoji", True) is not False
        params = msg.get("audio_params")
        if srv.format == "pcm" and isinstance(params, dict) and params.get("format") != "pcm":
            log.warning("%s client hello says format %r but this mock runs in pcm mode",
                        self.tag(), params.get("format"))
        if srv.no_hello and self.faulty:
            log.info("%s rx hello: not answering (no_hello)", self.tag())
            return
        if srv.format == "opus":
            # Stock echoes the client's audio_params verbatim (even a rate it will not use).
            if not isinstance(params, dict):
                params = {"format": "opus", "sample_rate": srv.tts_rate, "channels": 1,
                          "frame_duration": 60}
        else:
            params = {"format": "pcm", "sample_rate": srv.tts_rate, "channels": 1,
                      "frame_duration": 60}
        self.s.session_id = self.sid
        await self.send_json({"type": "hello", "version": 1, "transport": "websocket",
                              "audio_params": params, "session_id": self.sid})
        log.info("%s hello done (session %s)", self.tag(), self.sid)
        if srv.stall and self.faulty:
            log.info("%s stalling: ignoring everything from now on", self.tag())
            self.stalled = True
            return
        if feats.get("mcp"):
            self.mcp_phase = "init"
            await self.send_mcp({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2024-11-05",
                "capabilities": {"roots": {"listChanged": True}, "sampling": {},
                                 "vision": {"url": srv.vision_url, "token": VISION_TOKEN}},
                "clientInfo": {"name": "XiaozhiClient", "version": "1.0.0"}}})

    async def on_listen(self, msg):
        state = msg.get("state")
        if "mode" in msg:
            self.mode = msg["mode"]
        if state == "start":
            self.listening = True
            self.buf = bytearray()
            self.nframes = 0
            self.vad.reset()
            self.t_listen = self.s.t_ms()
            log.info("%s listen start (%s)", self.tag(), self.mode)
        elif state == "stop":
            log.info("%s listen stop", self.tag())
            if self.srv.hang_after_listen_stop and self.faulty:
                self.hang()
                return
            if self.listening:
                self.end_utterance("stop")
        elif state == "detect":
            text = msg.get("text")
            self.listening = False
            if not isinstance(text, str) or not text:
                log.info("%s listen detect without text (ignored)", self.tag())
                return
            now = self.s.t_ms()
            if text in self.srv.wake_words:
                log.info("%s wake word %r: greeting turn", self.tag(), text)
                turn = Turn(len(self.s.turns), "wake", self.mode, "detect", t_start_ms=now,
                            t_end_ms=now, reply=WAKE_REPLY, sentences=[WAKE_REPLY])
            else:
                log.info("%s text turn %r", self.tag(), text)
                turn = Turn(len(self.s.turns), "text", self.mode, "detect", t_start_ms=now,
                            t_end_ms=now, stt=text)
            self.start_reply(turn)
        else:
            log.info("%s listen with unknown state %r (ignored)", self.tag(), state)

    def hang(self):
        """Stop reading the socket (so PINGs get no PONG) and sending, with
        no FIN: what a peer behind a dead NAT or a frozen server looks like."""
        log.info("%s hanging: reading and sending nothing from now on", self.tag())
        self.hung = True
        self.ws.transport.pause_reading()
        if self.ws.keepalive_task is not None:
            self.ws.keepalive_task.cancel()

    def end_utterance(self, reason):
        level = audio.rms_dbfs(self.buf)
        turn = Turn(len(self.s.turns), "audio", self.mode, reason, frames=self.nframes,
                    bytes=len(self.buf), level_db=level, t_start_ms=self.t_listen,
                    t_end_ms=self.s.t_ms(), pcm=bytes(self.buf))
        self.buf = bytearray()
        self.nframes = 0
        # Realtime mode: the device keeps its mic open through the reply and sends no new
        # listen start, so the next utterance is detected on the same stream (a new one
        # replaces a reply still in progress, i.e. barge-in).
        self.listening = self.mode == "realtime" and reason != "stop"
        if self.listening:
            self.vad.reset()
            self.t_listen = turn.t_end_ms
        if not turn.bytes:
            # Stock: an empty ASR result starts no reply.
            log.info("%s utterance ended (%s) with no audio: no reply", self.tag(), reason)
            self.s.turns.append(turn)
            self.s.changed()
            return
        turn.stt = audio.stt_text(turn.frames, turn.bytes, level)
        log.info("%s utterance ended (%s): %s", self.tag(), reason, turn.stt)
        self.start_reply(turn)

    async def on_abort(self, msg):
        log.info("%s abort (reason %r)", self.tag(), msg.get("reason"))
        if self.reply_task and not self.reply_task.done():
            self.reply_turn.aborted = True
            self.reply_task.cancel()
        # Like stock, abort touches only the reply; listening goes on until the device
        # sends a new listen start (which clears the buffer) or stop.
        stop = {"type": "tts", "state": "stop", "session_id": self.sid}
        await self.send_json(stop)
        self.spawn(self._second_stop(stop))

    async def _second_stop(self, stop):
        # Stock: the cancelled TTS pipeline sends an identical tts stop ~0.4 s later.
        await asyncio.sleep(self.srv.abort_stop_delay)
        await self.send_json(dict(stop))

    # ---- the reply ------------------------------------------------------------------
    def start_reply(self, turn):
        if self.reply_task and not self.reply_task.done():
            self.reply_turn.interrupted = True
            self.reply_task.cancel()
        if turn.source != "wake":
            turn.reply = "You said: " + turn.stt
            turn.sentences = audio.split_sentences(turn.reply)
        self.s.turns.append(turn)
        self.s.changed()
        self.reply_turn = turn
        self.reply_task = self.spawn(self.reply(turn))

    async def reply(self, turn):
        srv, sid = self.srv, self.sid
        first = self.replies == 0
        self.replies += 1
        try:
            if srv.slow_ms and self.faulty and turn.end in ("vad", "max"):
                # Turns ended by text messages were already delayed in on_text.
                await asyncio.sleep(srv.slow_ms / 1000)
            if srv.think_ms:
                await asyncio.sleep(srv.think_ms / 1000)
            if turn.stt is not None:
                await self.send_json({"type": "stt", "text": turn.stt, "session_id": sid})
            await self.send_json({"type": "tts", "state": "start", "session_id": sid})
            if turn.source != "wake" and self.emoji:
                await self.send_json({"type": "llm", "text": "🙂", "emotion": "happy",
                                      "session_id": sid})
            if first and self.faulty:
                if srv.garbage:
                    await self.inject_garbage()
                if srv.oversized:
                    await self.inject_oversized()
            loop = asyncio.get_running_loop()
            for i, text in enumerate(turn.sentences):
                await self.send_json({"type": "tts", "state": "sentence_start", "session_id": sid,
                                      "text": text})
                pcm = audio.synth(text, i, srv.tts_rate)
                t0 = loop.time()
                for k, frame in enumerate(audio.frames(pcm, srv.tts_rate)):
                    if srv.pace_ms and k >= srv.burst:
                        delay = t0 + (k - srv.burst + 1) * srv.pace_ms / 1000 - loop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    await self.send_audio(self.codec.encode(frame))
                    turn.audio_frames += 1
                    if first and self.faulty and await self.maybe_cut(turn):
                        return
            await asyncio.sleep(srv.drain_s)
            # Update the record before the wire, so a test that saw tts stop sees it too.
            turn.t_done_ms = self.s.t_ms()
            await self.send_json({"type": "tts", "state": "stop", "session_id": sid})
            log.info("%s reply done: %d sentences, %d audio frames", self.tag(),
                     len(turn.sentences), turn.audio_frames)
        except ConnectionClosed:
            turn.interrupted = True

    async def maybe_cut(self, turn):
        srv = self.srv
        if srv.close_mid_tts and turn.audio_frames >= srv.close_mid_tts:
            log.info("%s closing mid-TTS after %d frames (close_mid_tts)", self.tag(),
                     turn.audio_frames)
            turn.interrupted = True
            await self.ws.close(1000)
            return True
        if srv.drop_mid_tts and turn.audio_frames >= srv.drop_mid_tts:
            log.info("%s dropping TCP mid-TTS after %d frames (drop_mid_tts)", self.tag(),
                     turn.audio_frames)
            turn.interrupted = True
            self.ws.transport.abort()
            return True
        return False

    async def inject_garbage(self):
        log.info("%s injecting garbage", self.tag())
        rnd = random.Random(1234)
        for text in ("this is {not json", f'{{"type":"no_such_type","session_id":"{self.sid}"}}',
                     f'{{"type":"tts","state":"no_such_state","session_id":"{self.sid}"}}',
                     '{"no_type":true}', "[1, 2, 3]", '"just a string"', "42", ""):
            await self.send_text(text)
        await self.send_frame(framing.lying_frame(self.version, bytes(32)))
        await self.send_frame(bytes(rnd.getrandbits(8) for _ in range(333)))
        await self.send_frame(b"")

    async def inject_oversized(self):
        log.info("%s injecting oversized frames", self.tag())
        big = bytes(200 * 1024)
        if self.version == 3:
            data = framing.lying_frame(3, big)
        else:
            data = framing.pack(self.version, big)
        await self.send_frame(data)
        await self.send_json({"type": "stt", "text": "x" * (200 * 1024), "session_id": self.sid})

    # ---- MCP client --------------------------------------------------------------------
    async def send_mcp(self, payload):
        await self.send_json({"type": "mcp", "payload": payload})

    def on_mcp(self, payload):
        s = self.s
        s.mcp_replies.append(payload)
        s.changed()
        if not isinstance(payload, dict):
            log.warning("%s mcp payload is not an object: %r", self.tag(), payload)
            return
        pid = payload.get("id")
        if "method" in payload and "result" not in payload and "error" not in payload:
            log.info("%s device sent mcp request %r (only logged, like stock)", self.tag(),
                     payload.get("method"))
            return
        fut = self.mcp_pending.pop(pid, None) if isinstance(pid, int) else None
        if fut is not None:
            # Pending calls are matched before the init/list ids (as stock), which is
            # what makes the id reuse work.
            if not fut.done():
                fut.set_result(payload)
            return
        if pid == 1 and self.mcp_phase == "init":
            if "error" in payload:
                log.warning("%s initialize failed: %s", self.tag(), payload["error"])
                return
            log.info("%s mcp initialized; tools/list in %.1f s", self.tag(),
                     self.srv.mcp_list_delay)
            self.mcp_phase = "list"
            self.spawn(self._list_after_delay())
        elif pid == 2 and self.mcp_phase == "listing":
            result = payload.get("result")
            if not isinstance(result, dict):
                log.warning("%s tools/list failed: %s", self.tag(), payload.get("error"))
                return
            tools = result.get("tools") or []
            s.mcp_tools.extend(t for t in tools if isinstance(t, dict))
            cursor = result.get("nextCursor")
            if cursor:
                log.info("%s tools/list page of %d tools, nextCursor %r", self.tag(), len(tools),
                         cursor)
                self.spawn(self.send_mcp({"jsonrpc": "2.0", "id": 2, "method": "tools/list",
                                          "params": {"cursor": cursor}}))
                return
            self.mcp_phase = "ready"
            s.changed()
            log.info("%s mcp ready: %d tools: %s", self.tag(), len(s.mcp_tools),
                     ", ".join(str(t.get("name")) for t in s.mcp_tools))
            if self.srv.mcp_script:
                self.spawn(self.run_script(self.srv.mcp_script))
        else:
            log.info("%s unmatched mcp reply id %r", self.tag(), pid)

    async def _list_after_delay(self):
        await asyncio.sleep(self.srv.mcp_list_delay)
        self.mcp_phase = "listing"
        await self.send_mcp({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})

    async def request(self, payload, wait=True, timeout=None):
        """Send an MCP payload; if it has a numeric id and wait, return the reply (None on timeout)."""
        pid = payload.get("id") if isinstance(payload, dict) else None
        fut = None
        if wait and isinstance(pid, int) and not isinstance(pid, bool):
            fut = asyncio.get_running_loop().create_future()
            self.mcp_pending[pid] = fut
        await self.send_mcp(payload)
        if fut is None:
            return None
        try:
            return await asyncio.wait_for(fut, self.srv.mcp_timeout if timeout is None else timeout)
        except TimeoutError:
            self.mcp_pending.pop(pid, None)
            log.warning("%s mcp id %r: no reply in time", self.tag(), pid)
            return None

    async def call_tool(self, name, arguments=None, timeout=None):
        self.mcp_counter += 1
        payload = {"jsonrpc": "2.0", "id": self.mcp_counter, "method": "tools/call",
                   "params": {"name": name, "arguments": arguments or {}}}
        log.info("%s tools/call id %d %s %s", self.tag(), self.mcp_counter, name,
                 json.dumps(arguments or {}, ensure_ascii=False))
        reply = await self.request(payload, timeout=timeout)
        self.s.mcp_results.append((payload, reply))
        self.s.changed()
        return reply

    async def run_script(self, entries):
        for e in entries:
            if "sleep" in e:
                await asyncio.sleep(e["sleep"])
            elif "name" in e:
                await self.call_tool(e["name"], e.get("arguments"))
            elif "payload" in e:
                reply = await self.request(e["payload"], wait=e.get("wait", True))
                self.s.mcp_results.append((e["payload"], reply))
                self.s.changed()
            elif "raw" in e:
                await self.send_text(e["raw"])
        log.info("%s mcp script done", self.tag())


class MockServer:
    """The mock xiaozhi server. See the module docstring and `python -m tools.mock_server --help`.

    Knobs (all keyword arguments):
      format          "pcm" (default: s16le 16 kHz up, s16le tts_rate down) or "opus" (as stock)
      tts_rate        downlink sample rate (24000)
      auth_key        enable stock token checking with this key; token: accept this fixed
                      bearer token; allow_devices: device ids that skip the check
      mcp_script      list of script entries (see mcp_script.py) run after tools/list
      mcp_list_delay  seconds between the initialize result and tools/list (1.0)
      mcp_timeout     seconds to wait for each MCP reply (30)
      record          path of a JSON-lines recording
      drain_s         wait after the last audio frame before tts stop (0.42)
      abort_stop_delay  delay of the duplicate tts stop after abort (0.4)
      pace_ms, burst  downlink pacing: `burst` frames at once, then one per pace_ms (60, 5);
                      pace_ms=0 sends as fast as possible
      vad_threshold_db, vad_min_speech_ms, vad_silence_ms, max_utterance_ms  auto-mode VAD
      wake_words      listen-detect texts answered with the stock greeting turn (no stt)
      ping_interval, ping_timeout  WebSocket keepalive (20, 20; None disables)
      think_ms        silence between the end of an utterance and its reply, every turn: a
                      slow LLM on a live server (0)
    Faults (applied to the first `fault_sessions` connections; 0 = all; default 1 so a
    reconnecting device then finds a healthy server):
      no_hello, stall, slow_ms, close_mid_tts=N, drop_mid_tts=N, garbage, oversized,
      hang_after_listen_stop (read nothing, send nothing, no FIN: a hung peer)
    """

    def __init__(self, host="127.0.0.1", port=0, *, format="pcm", tts_rate=24000,
                 auth_key=None, token=None, allow_devices=(), auth_clock=None,
                 mcp_script=None, mcp_list_delay=1.0, mcp_timeout=30.0, record=None,
                 drain_s=0.42, abort_stop_delay=0.4, pace_ms=60, burst=5,
                 vad_threshold_db=-45.0, vad_min_speech_ms=500, vad_silence_ms=600,
                 max_utterance_ms=15000, wake_words=DEFAULT_WAKE_WORDS,
                 ping_interval=20.0, ping_timeout=20.0, max_size=1 << 20, vision_url=None,
                 no_hello=False, stall=False, slow_ms=0, close_mid_tts=0, drop_mid_tts=0,
                 garbage=False, oversized=False, hang_after_listen_stop=False, fault_sessions=1, tls_cert=None,
                 tls_key=None, think_ms=0):
        if format not in ("pcm", "opus"):
            raise ValueError(f"format must be pcm or opus, not {format!r}")
        if format == "opus" and tts_rate not in OPUS_RATES:
            raise ValueError(f"opus mode needs tts_rate in {OPUS_RATES}, not {tts_rate!r}")
        if not isinstance(tts_rate, int) or not 8000 <= tts_rate <= 48000:
            raise ValueError(f"tts_rate must be an integer 8000..48000, not {tts_rate!r}")
        for name, v in (("close_mid_tts", close_mid_tts), ("drop_mid_tts", drop_mid_tts),
                        ("slow_ms", slow_ms), ("fault_sessions", fault_sessions),
                        ("burst", burst), ("pace_ms", pace_ms)):
            if v < 0:
                raise ValueError(f"{name} must be >= 0, not {v!r}")
        self.host = host
        self.port = port
        self.format = format
        self.tts_rate = tts_rate
        self.auth_key = auth_key
        self.token = token
        self.allow_devices = tuple(allow_devices)
        self._auth_clock = auth_clock
        self.mcp_script = None if mcp_script is None else _script.validate(mcp_script)
        self.mcp_list_delay = mcp_list_delay
        self.mcp_timeout = mcp_timeout
        self.record_path = record
        self.drain_s = drain_s
        self.abort_stop_delay = abort_stop_delay
        self.pace_ms = pace_ms
        self.burst = burst
        self.vad_threshold_db = vad_threshold_db
        self.vad_min_speech_ms = vad_min_speech_ms
        self.vad_silence_ms = vad_silence_ms
        self.max_utterance_ms = max_utterance_ms
        self.wake_words = tuple(wake_words or ())
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_size = max_size
        self._vision_url = vision_url
        self.no_hello = no_hello
        self.stall = stall
        self.slow_ms = slow_ms
        self.close_mid_tts = close_mid_tts
        self.drop_mid_tts = drop_mid_tts
        self.garbage = garbage
        self.oversized = oversized
        self.hang_after_listen_stop = hang_after_listen_stop
        self.fault_sessions = fault_sessions
        # wss:// when given a certificate (PEM) and its key, e.g. from tools/testca.py.
        self.tls = None
        if tls_cert:
            import ssl

            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                self.tls.load_cert_chain(tls_cert, tls_key)
            except (OSError, ssl.SSLError) as e:
                raise ValueError(f"TLS certificate {tls_cert} / key {tls_key} unusable: {e}") from None
        self.think_ms = think_ms

        self.sessions = []
        self._conns = {}  # session index -> _Conn
        self._server = None
        self._loop = None
        self._recorder = None
        self._cond = threading.Condition()
        self._aevent = None
        self._thread = None
        self._stop_fut = None

    # ---- knobs -----------------------------------------------------------------------
    def has_faults(self):
        return bool(self.no_hello or self.stall or self.slow_ms or self.close_mid_tts
                    or self.drop_mid_tts or self.garbage or self.oversized or self.hang_after_listen_stop)

    def auth_enabled(self):
        return self.auth_key is not None or self.token is not None

    def auth_clock(self):
        return self._auth_clock() if self._auth_clock else time.time()

    @property
    def vision_url(self):
        return self._vision_url or f"http://{self.host}:8003/mcp/vision/explain"

    @property
    def url(self):
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}/xiaozhi/v1/"

    # ---- change notification (thread-safe waits for tests) ------------------------------
    def _notify(self):
        with self._cond:
            self._cond.notify_all()
        if self._aevent is not None:
            self._aevent.set()

    def wait_for(self, pred, timeout=10.0, what=None):
        """Block (from another thread) until pred() is truthy; return its value.

        pred is re-evaluated whenever a frame is recorded or a session changes; an
        IndexError/KeyError inside it (e.g. sessions[0] before anyone connected) counts
        as "not yet".
        Raises TimeoutError naming `what` (or the predicate) after `timeout` s.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                v, left = _poll(pred, deadline, timeout, what)
                if v:
                    return v
                self._cond.wait(min(left, 0.5))

    async def until(self, pred, timeout=10.0, what=None):
        """The async twin of wait_for, for code running in the server's own loop."""
        deadline = time.monotonic() + timeout
        while True:
            v, left = _poll(pred, deadline, timeout, what)
            if v:
                return v
            self._aevent.clear()
            try:
                await asyncio.wait_for(self._aevent.wait(), min(left, 0.5))
            except TimeoutError:
                pass

    def wait_session(self, n=1, timeout=10.0):
        """Wait until at least n connections were seen; return the n-th Session."""
        return self.wait_for(lambda: len(self.sessions) >= n and self.sessions[n - 1],
                             timeout, f"session {n}")

    # ---- serving ---------------------------------------------------------------------
    async def _process_request(self, connection, request):
        if "websocket" not in request.headers.get("Upgrade", "").lower():
            # Stock answers a plain GET with 200 "Server is running".
            return connection.respond(200, "Server is running\n")
        return None

    async def _handler(self, ws):
        req = ws.request
        index = len(self.sessions)
        s = Session(index, req.path, req.headers.raw_items(), self._notify, self._recorder)
        faulty = self.fault_sessions == 0 or index < self.fault_sessions
        conn = _Conn(self, ws, s, faulty)
        s._conn = conn
        self._conns[index] = conn
        self.sessions.append(s)
        if self._recorder:
            self._recorder.open(s)
        self._notify()
        try:
            await conn.run()
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("%s handler crashed", conn.tag())
            raise
        finally:
            conn.cleanup()
            s.close_code = ws.close_code
            sent = ws.protocol.close_sent
            s.close_sent = sent.code if sent is not None else None
            self._conns.pop(index, None)
            if self._recorder:
                self._recorder.close(s)
            # Last: whoever waits on closed (another thread) then finds the code and the record written.
            s.closed = True
            log.info("%s closed (code %s)", conn.tag(), s.close_code)
            self._notify()

    async def start(self):
        """Start serving in the running loop; returns self (port is resolved)."""
        self._loop = asyncio.get_running_loop()
        self._aevent = asyncio.Event()
        if self.record_path:
            self._recorder = Recorder(self.record_path)
        self._server = await serve(
            self._handler, self.host, self.port, process_request=self._process_request,
            ping_interval=self.ping_interval, ping_timeout=self.ping_timeout,
            max_size=self.max_size, compression=None, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("mock xiaozhi server on %s (format %s, tts %d Hz)", self.url, self.format,
                 self.tts_rate)
        return self

    async def aclose(self):
        if self._server is not None:
            # A hung session reads nothing, so it would sit out the whole
            # closing handshake's timeout: drop it as the dead peer it plays.
            for conn in list(self._conns.values()):
                if conn.hung:
                    conn.ws.transport.abort()
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._recorder:
            self._recorder.shutdown()

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.aclose()

    async def serve_forever(self):
        await self.start()
        try:
            await self._server.serve_forever()
        finally:
            await self.aclose()

    # ---- running in a background thread (for synchronous pytest code) ------------------
    def start_in_thread(self, timeout=10.0):
        ready = threading.Event()
        err = []

        async def main():
            try:
                await self.start()
                self._stop_fut = asyncio.get_running_loop().create_future()
            except (OSError, ValueError) as e:  # reported to the caller below
                err.append(e)
                ready.set()
                return
            ready.set()
            try:
                await self._stop_fut
            finally:
                await self.aclose()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),),
                                        name="mock-xiaozhi-server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"mock server did not start within {timeout:.1f} s")
        if err:
            self._thread.join()
            raise err[0]
        return self

    def stop(self, timeout=10.0):
        if self._thread is None:
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(
                lambda: self._stop_fut.done() or self._stop_fut.set_result(None))
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self):
        return self.start_in_thread()

    def __exit__(self, *exc):
        self.stop()

    def _run(self, coro, timeout):
        """Run a coroutine in the server loop from another thread and return its result."""
        if self._thread is None:
            coro.close()
            raise RuntimeError("the sync API needs start_in_thread(); use the async methods")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _conn(self, session):
        s = self.sessions[session] if isinstance(session, int) else session
        conn = self._conns.get(s.index)
        if conn is None:
            raise RuntimeError(f"session {s.index} is closed")
        return conn

    # ---- talking to a live session (index into sessions, default the newest) ------------
    async def acall_tool(self, name, arguments=None, session=-1, timeout=10.0):
        return await self._conn(session).call_tool(name, arguments, timeout)

    async def amcp_request(self, payload, session=-1, wait=True, timeout=10.0):
        return await self._conn(session).request(payload, wait, timeout)

    async def asend_json(self, obj, session=-1):
        await self._conn(session).send_json(obj)

    async def asend_text(self, text, session=-1):
        await self._conn(session).send_text(text)

    async def asend_audio(self, pcm, session=-1):
        """One downlink audio frame (pcm s16le at tts_rate), encoded and framed as the session's replies are."""
        conn = self._conn(session)
        await conn.send_audio(conn.codec.encode(pcm))

    async def aclose_session(self, session=-1, code=1000):
        await self._conn(session).ws.close(code)

    def call_tool(self, name, arguments=None, session=-1, timeout=10.0):
        """tools/call with the next id of the session's counter; returns the reply payload."""
        return self._run(self.acall_tool(name, arguments, session, timeout), timeout + 5)

    def mcp_request(self, payload, session=-1, wait=True, timeout=10.0):
        """Send a raw JSON-RPC payload; returns the reply if it has a numeric id and wait."""
        return self._run(self.amcp_request(payload, session, wait, timeout), timeout + 5)

    def send_json(self, obj, session=-1, timeout=10.0):
        return self._run(self.asend_json(obj, session), timeout)

    def send_text(self, text, session=-1, timeout=10.0):
        return self._run(self.asend_text(text, session), timeout)

    def send_audio(self, pcm, session=-1, timeout=10.0):
        return self._run(self.asend_audio(pcm, session), timeout)

    def close_session(self, session=-1, code=1000, timeout=10.0):
        return self._run(self.aclose_session(session, code), timeout)
