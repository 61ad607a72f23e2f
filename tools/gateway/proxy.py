"""The gateway listener and one Session per device connection.

One port serves both sides, plain or TLS (--tls-cert): a request with
"Upgrade: websocket" becomes a device session, anything else is HTTP: GET
/healthz, GET /metrics (health.py, metrics.py) or the OTA proxy
(ota_proxy.py). The sniffing happens in GatewayConnection.data_received
before websockets sees a byte, because websockets' own HTTP parser only
accepts GET (no OTA POSTs).

Session, after the upgrade:
  0. the device's IP: the TCP peer, or behind a trusted proxy its X-Real-IP /
     X-Forwarded-For (clientip.py); every limit, audit record and log uses it
  1. with auth on: connections per minute per IP, then the signed token →
     close 4401 "auth failed" (the precise reason goes to the log and audit
     only). A failed check counts against the IP, never against the Device-Id
     it claimed, so forged connects cannot lock a real device out.
  2. rate limits (connections per minute per IP / per device) → close 4429
  3. one upstream connection (failover across upstreams) → close 1013 if none
  4. two pumps until either side closes, plus an upstream keepalive; the
     other side is then closed with the reason, everything is in the audit
     log and one "session end" log line.
Close codes the device sees: 4400 bad request (no or bad Device-Id / bad
Protocol-Version / unsupported audio format), 4401 auth failed, 4429 rate
limit, 1013 no upstream reachable, 1000 upstream ended the session normally,
1011 upstream connection lost or not answering its keepalive.
"""

import asyncio
import json
import logging
import time
import urllib.parse

import websockets
from websockets.asyncio.server import ServerConnection, serve

from tools.common import framing

from . import clientip, logsafe, metrics, ota_proxy
from .audit import Audit
from .auth import TokenVerifier, bearer_token
from .health import HealthCheck
from .pacer import Pacer
from .policy import BlockedWords, RateLimits
from .store import SharedState
from .tls import server_tls
from .transcode import DEVICE_FORMATS, Downlink, TranscodeError, Uplink
from .upstreams import NoUpstream, UpstreamPool
from .warm import WarmPool

log = logging.getLogger("gateway")
session_log = logging.getLogger("gateway.session")
logsafe.install()

CLOSE_BAD_REQUEST = 4400
CLOSE_AUTH = 4401
CLOSE_RATE = 4429
CLOSE_NO_UPSTREAM = 1013
CLOSE_UPSTREAM_LOST = 1011
UPSTREAM_AUDIO = {"format": "opus", "sample_rate": 16000, "channels": 1, "frame_duration": 60}
_MAX_DEVICE_MESSAGE = 65536
_MAX_ID_CHARS = 128  # Device-Id / Client-Id: a MAC or a UUID in practice
_JSON_PING = '{"type":"ping"}'


def _dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _clip(reason):
    # A close reason must fit the 123-byte limit of a close frame.
    b = reason.encode()[:123]
    return b.decode("utf-8", "ignore")


def _rpc_id(payload):
    """The JSON-RPC id of an MCP payload if it can key the calls dict (a string or
    a number), else None: a list or object from a broken peer must not crash the pump."""
    i = payload.get("id")
    return i if isinstance(i, (str, int, float)) else None


async def _close_flooder(ws, code, reason):
    """Close a client that sends too fast, without waiting close_timeout for its reply.

    Its reply sits behind everything it already sent, and websockets stops
    reading once its message queue is full, so a plain close() would wait the
    whole close_timeout (10 s) before the client sees the end. Reading (and
    dropping) those messages while the close runs lets the handshake finish.
    """
    closing = asyncio.create_task(ws.close(code, reason))
    try:
        async for _ in ws:
            pass
    except websockets.ConnectionClosed:
        pass
    await closing


def _valid_id(text):
    return len(text) <= _MAX_ID_CHARS and text.isprintable()


def _closed_info(ws):
    sent = ws.protocol.close_sent
    if ws.protocol.close_rcvd is None and sent is not None:
        # The peer never answered the close we sent (e.g. websockets' keepalive
        # found it dead): our own code and reason say what happened, 1006 would not.
        return int(sent.code), f"{sent.reason} (no close reply)"
    code = int(ws.close_code) if ws.close_code is not None else 1006  # CloseCode enum -> plain int
    return code, ws.close_reason or ""


class GatewayConnection(ServerConnection):
    """A websockets server connection that diverts plain HTTP to the OTA proxy."""

    gateway = None  # set on the per-gateway subclass

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._mode = None  # None (sniffing) | "ws" | "http"
        self._buf = bytearray()
        self._req = None
        self._need = 0
        self._answered = False  # the request is complete: being served, or answered already
        self._http_task = None

    def data_received(self, data):
        if self._mode == "ws":
            super().data_received(data)
            return
        if self._mode == "http":
            self._http_more(data)
            return
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > ota_proxy.MAX_HEAD:
                self._http_reply(ota_proxy.response(431, "request head too large\n", "text/plain"))
            return
        try:
            req = ota_proxy.parse_head(bytes(self._buf[:end]))
        except ota_proxy.HttpError:
            req = None
        if req is None or ota_proxy.is_ws_upgrade(req):
            # websockets validates the handshake (and answers 400 for garbage).
            self._mode = "ws"
            data, self._buf = bytes(self._buf), None
            super().data_received(data)
            return
        self._mode = "http"
        self._req = req
        try:
            self._need = ota_proxy.body_length(req)
        except ota_proxy.HttpError as e:
            self._http_reply(ota_proxy.json_response(e.status, {"success": False, "message": str(e)}))
            return
        rest = bytes(self._buf[end + 4:])
        self._buf = bytearray()
        self._http_more(rest)

    def _http_more(self, data):
        if self._answered:
            return
        self._buf += data
        if len(self._buf) >= self._need:
            self._req.body = bytes(self._buf[: self._need])
            self._answered = True
            self._http_task = self.loop.create_task(self._serve_http(self._req))

    async def _serve_http(self, req):
        peer = self.transport.get_extra_info("peername") or ("?", 0)
        try:
            resp = await self.gateway.serve_http(req, self.gateway.client_ip(peer[0], req.headers))
        except Exception:
            log.exception("OTA proxy failed on %s %s", req.method, req.path)
            resp = ota_proxy.json_response(500, {"success": False, "message": "gateway error"})
        self._http_reply(resp)

    def _http_reply(self, resp):
        self._mode = "http"
        self._answered = True
        if not self.transport.is_closing():
            self.transport.write(resp)
            self.transport.close()

    def eof_received(self):
        if self._mode == "http":
            # The client may half-close after its body; keep the socket to answer.
            return True
        return super().eof_received()


class Session:
    """One device connection and its upstream connection."""

    def __init__(self, gw, dev, ip, device_id, client_id, version):
        self.gw = gw
        self.dev = dev
        self.up = None
        self.upstream = None
        self.ip = ip
        self.device_id = device_id
        self.client_id = client_id
        self.version = version
        self.session_id = ""
        self.fmt = None
        self.rate = None
        self.uplink = Uplink("opus")  # until the hello says otherwise: pass through
        self.downlink = Downlink("opus")
        self.pacer = None  # transcoded formats: whole 60 ms frames, sent at real time
        self.suppress = False  # a blocked turn: drop its reply until tts stop
        self.calls = {}  # MCP request id -> tool name, to pair results in the audit
        self.bad_frames = 0
        self.up_heard = asyncio.Event()  # set by every upstream frame: proof of life for the keepalive
        self.json_pings = 0  # our {"type":"ping"}s whose pong is still to come (not the device's to see)
        self.t0 = time.monotonic()

    # -- device -> upstream ------------------------------------------------
    def _device_hello(self, msg):
        ap = msg.get("audio_params") if isinstance(msg.get("audio_params"), dict) else {}
        fmt = ap.get("format", "opus")
        rate = ap.get("sample_rate", 16000)
        cfg = self.gw.cfg.opus
        self.uplink = Uplink(fmt, rate, cfg.bitrate, cfg.complexity, cfg.application)
        self.downlink = Downlink(fmt, rate)
        self.fmt, self.rate = fmt, rate
        self.pacer = Pacer() if fmt in DEVICE_FORMATS else None
        out = dict(msg)
        out["version"] = 1  # the upstream always gets bare Opus frames
        if fmt in DEVICE_FORMATS:
            out["audio_params"] = dict(UPSTREAM_AUDIO)
        return _dumps(out)

    def device_text(self, text):
        """The text to forward upstream (usually unchanged), or raise TranscodeError."""
        try:
            msg = json.loads(text)
        except ValueError:
            return text
        if not isinstance(msg, dict):
            return text
        t = msg.get("type")
        if t == "hello":
            text = self._device_hello(msg)
            self.gw.audit.write("hello", device=self.device_id, format=self.fmt, rate=self.rate,
                                version=self.version)
        elif t == "listen":
            if msg.get("state") == "start":
                self.uplink.reset()
            self.gw.audit.write("listen", device=self.device_id, state=msg.get("state"), mode=msg.get("mode"))
        elif t == "abort":
            self.gw.audit.write("abort", device=self.device_id, reason=msg.get("reason"))
        elif t == "mcp":
            p = msg.get("payload")
            if isinstance(p, dict) and ("result" in p or "error" in p) and _rpc_id(p) in self.calls:
                r = p.get("result")
                is_error = "error" in p or (isinstance(r, dict) and bool(r.get("isError")))
                self.gw.audit.write("mcp_result", device=self.device_id, id=p["id"],
                                    tool=self.calls.pop(p["id"]), is_error=is_error)
        return text

    async def pump_up(self):
        """Device → upstream. Returns (who ended it, code, reason)."""
        limits = self.gw.limits
        up = self.up
        try:
            async for data in self.dev:
                over = limits.message(self.ip, self.device_id)
                if over:
                    reason = "rate limit: " + over
                    metrics.RATE_LIMIT_HITS.inc(limit=metrics.reason_label(over))
                    await _close_flooder(self.dev, CLOSE_RATE, _clip(reason))
                    return "policy", CLOSE_RATE, reason
                if isinstance(data, str):
                    try:
                        data = self.device_text(data)
                    except TranscodeError as e:
                        reason = f"unsupported audio: {e}"
                        await self.dev.close(CLOSE_BAD_REQUEST, _clip(reason))
                        return "policy", CLOSE_BAD_REQUEST, reason
                    await up.send(data)
                    continue
                try:
                    payload, _ts = framing.unpack(self.version, data)
                except framing.FramingError as e:
                    self.bad_frames += 1
                    if self.bad_frames == 1:
                        log.warning("%s: dropping malformed audio frame (%s)", self.device_id, e)
                    continue
                metrics.FRAMES.inc(direction="up")
                t0 = time.perf_counter_ns()
                pkts = self.uplink.feed(payload)
                if self.fmt not in (None, "opus"):
                    metrics.TRANSCODE_US.observe((time.perf_counter_ns() - t0) / 1000, direction="up")
                for pkt in pkts:
                    await up.send(pkt)
        except websockets.ConnectionClosed:
            pass
        return self._who_closed(first_guess="device")

    # -- upstream -> device ------------------------------------------------
    async def _send_dev_audio(self, frames):
        v = self.version
        for f in frames:
            metrics.FRAMES.inc(direction="down")
            if self.pacer is not None:
                await self.pacer.wait()
            await self.dev.send(f if v == 1 else framing.pack(v, f))

    async def upstream_text(self, text):
        try:
            msg = json.loads(text)
        except ValueError:
            await self.dev.send(text)
            return
        if not isinstance(msg, dict):
            await self.dev.send(text)
            return
        t = msg.get("type")
        if t == "pong" and self.json_pings:
            self.json_pings -= 1  # the answer to our keepalive, not to the device
            return
        if t == "hello":
            if isinstance(msg.get("session_id"), str):
                self.session_id = msg["session_id"]
            if self.fmt in DEVICE_FORMATS:
                # paced: the pacer sends at real time, so the device keeps a
                # shallow jitter ring (docs/protocol.md §1.4).
                msg["audio_params"] = {"format": self.fmt, "sample_rate": self.rate, "channels": 1,
                                       "frame_duration": 60, "paced": True}
                text = _dumps(msg)
            self.gw.audit.write("session_start", device=self.device_id, upstream=self.upstream.url,
                                session_id=self.session_id, format=self.fmt, rate=self.rate)
        elif t == "stt":
            word = self.gw.blocked.find(msg.get("text"))
            if word is not None:
                await self._block(word)
                return
            self.gw.audit.write("stt", device=self.device_id, text=msg.get("text"))
        elif t == "tts":
            state = msg.get("state")
            if state == "start":
                self.downlink.reset()
                self.gw.audit.write("tts", device=self.device_id, state=state)
            elif state == "stop":
                await self._send_dev_audio(self.downlink.flush())
                metrics.TURNS.inc()
                self.gw.audit.write("tts", device=self.device_id, state=state, suppressed=self.suppress)
                self.suppress = False
            elif self.suppress:
                return
        elif t == "llm" and self.suppress:
            return
        elif t == "mcp":
            p = msg.get("payload")
            if isinstance(p, dict) and p.get("method") == "tools/call":
                params = p.get("params") if isinstance(p.get("params"), dict) else {}
                name = params.get("name")
                args = params.get("arguments")
                if _rpc_id(p) is not None:
                    self.calls[p["id"]] = name
                # Argument names only: values may be personal data.
                self.gw.audit.write("mcp_call", device=self.device_id, id=p.get("id"), tool=name,
                                    args=sorted(args) if isinstance(args, dict) else [])
        await self.dev.send(text)

    async def _block(self, word):
        """A blocked word in the user's speech: abort the turn upstream, tell the device."""
        self.suppress = True
        self.gw.audit.write("blocked", device=self.device_id, word=word)
        log.info("%s: blocked word in stt, aborting the turn", self.device_id)
        await self.up.send(_dumps({"session_id": self.session_id, "type": "abort", "reason": "blocked_word"}))
        await self.dev.send(_dumps({"session_id": self.session_id, "type": "alert", "status": "blocked",
                                    "message": self.gw.cfg.blocked_alert, "emotion": "sad"}))

    async def pump_down(self):
        """Upstream → device. Returns (who ended it, code, reason)."""
        up = self.up
        try:
            async for data in up:
                self.up_heard.set()
                if isinstance(data, str):
                    await self.upstream_text(data)
                elif not self.suppress:
                    t0 = time.perf_counter_ns()
                    frames = self.downlink.feed(data)
                    if self.fmt not in (None, "opus"):
                        metrics.TRANSCODE_US.observe((time.perf_counter_ns() - t0) / 1000, direction="down")
                    await self._send_dev_audio(frames)
        except websockets.ConnectionClosed:
            pass
        return self._who_closed(first_guess="upstream")

    async def keepalive_up(self):
        """Returns only when the upstream stopped answering: ("keepalive", 1011, reason).

        "ws": a WebSocket PING, which every server's library answers.
        "json": {"type":"ping"}, for a stock server with enable_websocket_ping
        on. In both modes any frame from the upstream also counts as the
        answer: while the pacer holds downlink audio, websockets stops reading
        once its queue is full and the PONG waits behind the queued frames, so
        a busy upstream must never be taken for a dead one.
        """
        ka = self.gw.cfg.keepalive
        if not ka.upstream_ping_s:
            await asyncio.Event().wait()  # keepalive off: only the pumps end the session
        while True:
            await asyncio.sleep(ka.upstream_ping_s)
            self.up_heard.clear()
            try:
                if ka.upstream_mode == "ws":
                    answers = {await self.up.ping()}
                else:
                    self.json_pings += 1
                    await self.up.send(_JSON_PING)
                    answers = set()
            except websockets.ConnectionClosed:
                return self._who_closed(first_guess="upstream")
            heard = asyncio.ensure_future(self.up_heard.wait())
            try:
                done, _ = await asyncio.wait(answers | {heard}, timeout=ka.upstream_timeout_s,
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                heard.cancel()
            pong = next(iter(answers), None)
            if pong is not None and pong.done() and (pong.cancelled() or pong.exception() is not None):
                return self._who_closed(first_guess="upstream")  # the ping ended with the connection
            if not done:
                metrics.UPSTREAM_KEEPALIVE_TIMEOUTS.inc()
                return "keepalive", CLOSE_UPSTREAM_LOST, \
                    f"upstream not answering (no keepalive reply within {ka.upstream_timeout_s:g} s)"

    # -- lifetime ----------------------------------------------------------
    def _who_closed(self, first_guess):
        """Which side ended a pump: the one whose connection is no longer open.
        When both are, the side the pump was reading from."""
        dev_open = self.dev.state is websockets.State.OPEN
        up_open = self.up.state is websockets.State.OPEN
        if dev_open and not up_open:
            return "upstream", None, None
        if up_open and not dev_open:
            return "device", None, None
        return first_guess, None, None

    async def _final(self, ws):
        """Close code and reason of a connection that is closing or closed."""
        try:
            await asyncio.wait_for(ws.wait_closed(), 2.0)
        except TimeoutError:
            pass
        return _closed_info(ws)

    async def run(self):
        metrics.SESSIONS_OPEN.inc()
        try:
            await self._run()
        finally:
            metrics.SESSIONS_OPEN.dec()

    async def _run(self):
        t_up = asyncio.create_task(self.pump_up())
        t_down = asyncio.create_task(self.pump_down())
        t_alive = asyncio.create_task(self.keepalive_up())
        done, pending = await asyncio.wait({t_up, t_down, t_alive}, return_when=asyncio.FIRST_COMPLETED)
        t_alive.cancel()
        pending.discard(t_alive)
        first = t_alive if t_alive in done else done.pop()
        try:
            side, code, reason = first.result()
        except Exception as e:  # a bug, not a network event: still close both sides
            log.exception("%s: session failed", self.device_id)
            side, code, reason = "gateway", 1011, f"gateway error: {type(e).__name__}"
        if code is None:
            code, reason = await self._final(self.up if side == "upstream" else self.dev)
        # Audit first: the close frames below are what observers wait for.
        self.gw.audit.write("close", device=self.device_id, side=side, code=code, reason=reason)
        if side == "keepalive":
            # A dead peer never answers a close frame: drop the TCP connection instead.
            self.up.transport.abort()
            await self.dev.close(code, _clip(reason))
            log.warning("%s: upstream %s: %s", self.device_id, self.upstream.url, reason)
        elif side == "upstream":
            if code in (1000, 1001):
                dcode, dreason = 1000, f"upstream closed ({code} {reason})"
            else:
                dcode, dreason = CLOSE_UPSTREAM_LOST, f"upstream connection lost ({code} {reason})"
            await self.dev.close(dcode, _clip(dreason.strip()))
            log.info("%s: upstream %s ended the session: %d %s", self.device_id, self.upstream.url, code, reason)
        else:
            if side == "gateway":
                await self.dev.close(code, _clip(reason))
            await self.up.close(1000, _clip(f"device session ended ({side} {code} {reason})"))
            log.info("%s: %s ended the session: %d %s", self.device_id, side, code, reason)
        for t in pending:
            try:
                await asyncio.wait_for(t, 2.0)
            except (TimeoutError, websockets.ConnectionClosed):
                pass
            except Exception:
                log.exception("%s: pump failed while closing", self.device_id)
        end = {"device": self.device_id, "seconds": round(time.monotonic() - self.t0, 3),
               "upstream": self.upstream.url, "frames_up": self.uplink.frames_in,
               "packets_up": self.uplink.packets_out, "packets_down": self.downlink.packets_in,
               "frames_down": self.downlink.frames_out, "bad_packets": self.downlink.bad_packets,
               "bad_frames": self.bad_frames}
        self.gw.audit.write("session_end", **end)
        metrics.SESSIONS.inc(side=side)
        end.update(side=side, code=code, reason=reason)
        session_log.info("session end %s: %.1f s, frames %d up / %d down, %s %s %s", self.device_id,
                         end["seconds"], end["frames_up"], end["frames_down"], side, code, reason,
                         extra={"fields": dict(end, event="session_end")})


class Gateway:
    def __init__(self, cfg, clock=time.time, mono=time.monotonic):
        self.cfg = cfg
        self.clock = clock
        self.audit = Audit(cfg.audit_log, clock)
        self.limits = RateLimits(cfg.limits, mono)
        self.trusted_proxies = clientip.networks(cfg.trusted_proxies)
        self.verifier = TokenVerifier(cfg.auth.devices, cfg.auth.window_s, clock) if cfg.auth.enabled else None
        self.blocked = BlockedWords(cfg.blocked_words)
        self.pool = UpstreamPool(cfg.upstreams, cfg.upstream_connect_timeout_s, cfg.upstream_retry_s, mono)
        self.tokens = {}  # device id -> upstream token learned from the upstream OTA reply
        self.ota = ota_proxy.OtaProxy(cfg, self.tokens, self.audit, clock)
        self.health = HealthCheck(cfg.upstreams, mono)
        self._server = None
        # Scaling (store.py, warm.py): state shared across processes, warm upstream connections.
        self.shared = SharedState(cfg.redis.url, self.limits, cfg.redis.fail_open) if cfg.redis.url else None
        self.warm = WarmPool(self.pool, cfg.upstream_pool, cfg.upstream_token) if cfg.upstream_pool else None

    @property
    def port(self):
        return self._server.sockets[0].getsockname()[1]

    async def start(self, reuse_port=False):
        """reuse_port: several worker processes listen on one port (workers.py)."""
        conn_cls = type("BoundGatewayConnection", (GatewayConnection,), {"gateway": self})
        ka = self.cfg.keepalive
        self._server = await serve(
            self._handle, self.cfg.listen_host, self.cfg.listen_port,
            create_connection=conn_cls,
            ssl=server_tls(self.cfg.tls),
            open_timeout=30,  # also bounds an OTA request, which waits for the upstream OTA
            max_size=_MAX_DEVICE_MESSAGE,
            compression=None,
            server_header=None,
            # Device keepalive: websockets PINGs and closes (1011) a device that stops answering.
            ping_interval=ka.device_ping_s or None,
            ping_timeout=ka.device_timeout_s,
            reuse_port=reuse_port,
        )
        if self.shared:
            await self.shared.check()
        if self.warm:
            self.warm.start()
        log.info("gateway listening on %s:%d%s, upstreams %s, upstream OTA %s, auth %s",
                 self.cfg.listen_host, self.port, " (TLS)" if self.cfg.tls.cert else "",
                 ", ".join(self.cfg.upstreams), self.cfg.upstream_ota or "(none: answering from config)",
                 f"on ({len(self.cfg.auth.devices)} devices)" if self.verifier else "off")
        return self

    def client_ip(self, peer_ip, headers):
        """The address limits, audit and logs use: the device's, also behind a trusted proxy."""
        return clientip.client_ip(peer_ip, headers, self.trusted_proxies)

    async def serve_http(self, req, peer_ip):
        """The whole HTTP response (bytes) for a plain HTTP request on the listener."""
        if req.path in ("/healthz", "/metrics"):
            if req.method != "GET":
                return ota_proxy.json_response(405, {"success": False, "message": "use GET"})
            if req.path == "/metrics":
                return ota_proxy.response(200, metrics.REGISTRY.render(), "text/plain; version=0.0.4; charset=utf-8")
            status, body = await self.health.check()
            return ota_proxy.response(status, body)
        return await self.ota.handle(req, peer_ip)

    async def stop(self):
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self.warm:
            await self.warm.close()
        if self.shared:
            await self.shared.close()
        self.audit.close()

    def _upstream_headers(self, device_id, client_id, authorization):
        h = [("Device-Id", device_id)]
        if client_id:
            h.append(("Client-Id", client_id))
        # The upstream always gets v1 (bare Opus) framing, so that is what we announce.
        h.append(("Protocol-Version", "1"))
        token = self.tokens.get(device_id) or self.cfg.upstream_token
        if token:
            h.append(("Authorization", token if " " in token else "Bearer " + token))
        elif authorization and self.verifier is None:
            h.append(("Authorization", authorization))  # transparent when the gateway does no auth
        return h

    async def _handle(self, dev):
        req = dev.request
        peer = dev.remote_address or ("?", 0)
        ip = self.client_ip(peer[0], req.headers.raw_items())
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(req.path).query))
        device_id = req.headers.get("Device-Id") or query.get("device-id") or ""
        client_id = req.headers.get("Client-Id") or query.get("client-id") or ""
        authorization = req.headers.get("Authorization") or query.get("authorization")
        pv = req.headers.get("Protocol-Version", "1").strip()
        self.audit.write("connect", device=device_id, client=client_id, ip=ip, protocol_version=pv)

        async def refuse(code, reason, detail=None):
            """reason goes to the client; detail, more precise, only to the audit and the log."""
            rec = {"detail": detail} if detail else {}
            self.audit.write("close", device=device_id, ip=ip, side="gateway", code=code, reason=reason, **rec)
            log.info("refused %s from %s: %s", device_id or "(no Device-Id)", ip,
                     f"{reason} ({detail})" if detail else reason)
            await dev.close(code, _clip(reason))

        async def refuse_rate(over):
            metrics.RATE_LIMIT_HITS.inc(limit=metrics.reason_label(over))
            await refuse(CLOSE_RATE, "rate limit: " + over)

        if not device_id:
            return await refuse(CLOSE_BAD_REQUEST, "missing Device-Id header")
        if not _valid_id(device_id) or not _valid_id(client_id):
            return await refuse(CLOSE_BAD_REQUEST, f"bad Device-Id or Client-Id (printable, at most "
                                                   f"{_MAX_ID_CHARS} characters)")
        if pv not in ("1", "2", "3"):
            return await refuse(CLOSE_BAD_REQUEST, f"unsupported Protocol-Version {pv[:8]!r}")
        taken = None  # the attempt's entry in the shared IP window, held across the token check
        if self.verifier is not None:
            # Until the token is checked the Device-Id is a claim: failures count
            # against the source address only (the IP limit also bounds guessing).
            # With Redis the IP's budget and its failures are shared by every process.
            # The attempt takes its place in the IP's window before the check (see store.py).
            if self.shared:
                full, taken = await self.shared.ip_take(ip)
            else:
                full = self.limits.conn_ip.would_exceed(ip)
            if full:
                return await refuse_rate(f"connections per minute per IP ({self.limits.conn_ip.limit})")
            ok, why = self.verifier.verify(authorization, client_id, device_id)
            if ok and self.shared:  # accepted here; now once across every process
                ok, why = await self.shared.first_use(bearer_token(authorization), 2 * self.cfg.auth.window_s + 1)
            self.audit.write("auth", device=device_id, ip=ip, ok=ok, reason=why)
            if not ok:
                if taken is None:  # no entry was taken in Redis: this process counts the failure
                    self.limits.conn_ip.add(ip)
                metrics.AUTH_REFUSALS.inc(reason=metrics.reason_label(why))
                # One reason for every failure, so a client cannot tell which device ids exist.
                return await refuse(CLOSE_AUTH, "auth failed", why)
        # Counted only now, by the device the token proved (or claimed, without auth),
        # shared across workers and instances when Redis is configured.
        over = await self.shared.admit(ip, device_id, taken) if self.shared else self.limits.admit(ip, device_id)
        if over:
            return await refuse_rate(over)
        s = Session(self, dev, ip, device_id, client_id, int(pv))
        try:
            # ping_interval=None: Session.keepalive_up checks this link, the way the upstream accepts.
            warm = self.warm.take() if self.warm else None
            s.up, s.upstream = warm or await self.pool.connect(
                self._upstream_headers(device_id, client_id, authorization), ping_interval=None)
        except NoUpstream as e:
            self.audit.write("upstream_fail", device=device_id, reason=str(e))
            return await refuse(CLOSE_NO_UPSTREAM, "no upstream reachable")
        if s.upstream.url != self.cfg.upstreams[0]:
            metrics.UPSTREAM_FAILOVERS.inc()
        log.info("%s (%s) connected via %s, protocol v%s", device_id, ip, s.upstream.url, pv)
        try:
            await s.run()
        finally:
            await s.up.close()
