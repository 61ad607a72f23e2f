# The channel to the server (the reference firmware calls it Protocol): it
# owns the transport, the session id, the typed sends, the binary audio
# framing, liveness and the reconnect backoff. The app never touches the
# transport, so a second one (MQTT + UDP, docs/protocol.md §4) is another
# class with the same names:
#
#   ch = WebSocketChannel(cfg, identity, max_packet, listener, burst=0)
#       max_packet: the uplink codec's largest packet (sizes the send slots)
#       listener:   on_json(msg, size), on_audio(mv, n), on_dead(reason)
#       burst:      extra send slots for frames queued at once (a pre-roll)
#   MAX_HEADER, ch.header_len   uplink packets keep MAX_HEADER bytes free in
#                               front; this session's header takes header_len
#   await ch.open(settings, codec_up, accept) -> hello.ServerHello
#       connect + hellos; accept(hello) raises ValueError to refuse it. After
#       a failed open the next one first waits out a backoff with jitter.
#       Raises ChannelError whose str() is the one line for the user.
#       The connect and the hellos are firmware/channel_open.py, loaded for
#       each open and dropped before accept(): a session's heap holds only
#       the per-frame path (firmware/resident.py CONNECT_ONLY).
#   await ch.run() -> (by, reason)   deliver frames until the channel ends;
#       by is "device" when close() ended it, else "server"
#   await ch.close(reason)           the device hangs up
#   ch.is_open, ch.session_id
#   ch.listen_start(mode), listen_stop(), abort(reason), mcp(reply) -> bool sent
#   ch.send_audio(pkt, n)            pkt[header_len:header_len+n] is the payload
#   ch.receive(op, mv)               one received message (run()'s reader calls it)
#
# One WebSocket serves every session: its message buffer (ws_max_message,
# 4 KB by default; a stock server's messages are a few hundred bytes) and its
# audio slots are allocated once instead of fragmenting the heap every turn.
import asyncio
import time

from micropython import const

from backoff import Backoff
from firmware import clock, log, protocol, resident
from firmware.framing import Framer
from firmware.liveness import DEAD, PING, Liveness
from wsclient import OP_BINARY, OP_TEXT, WebSocket, WSClosed, WSError

_TAG = "channel"
MAX_HEADER = const(16)  # binary protocol v2's header, the largest (docs/protocol.md §3.2)
# 8 audio slots hold ~0.5 s of uplink for a slow link; older frames are
# dropped first (the reference queues 40 Opus packets, but those are ~100
# bytes, not 1920: 16 pcm slots were 31 KB).
_UP_SLOTS = const(8)
# The socket read buffer, which also bounds the server's handshake response
# head (a 101 from the gateway or nginx is a few hundred bytes).
_RX_BUF = const(2048)
_CHECK_MS = const(1000)  # how often liveness is looked at
_BACKOFF_MIN_MS = const(1000)
# Opens happen on a press, so a person never waits more than a few seconds;
# a script pressing in a loop against a refusing server still backs off.
_BACKOFF_MAX_MS = const(5000)


class ChannelError(Exception):
    """The channel could not open; str() is the reason for the log."""


class WebSocketChannel:
    def __init__(self, cfg, identity, max_packet, listener, burst=0):
        """burst: uplink frames queued at once on top of the live stream (the
        hands-free pre-roll): the send ring gets room for them too."""
        self.cfg = cfg
        self.identity = identity
        self.listener = listener
        # The receive buffer holds one whole message; a longer one is skipped
        # as it streams in (an MCP request gets an error reply, see _oversize).
        self._max_message = cfg.get("ws_max_message")
        self.ws = WebSocket(max_message=self._max_message, audio_slots=_UP_SLOTS + burst,
                            audio_slot_size=MAX_HEADER + max_packet, rx_buf=_RX_BUF,
                            on_oversize=self._oversize)
        self.session_id = ""  # kept across sessions: a hello without one keeps the last (docs/protocol.md §1.4)
        self.header_len = 0
        self._framer = None
        keepalive, timeout = cfg.get("keepalive_s"), cfg.get("link_timeout_s")
        if keepalive >= timeout:
            log.warn(_TAG, "keepalive_s %d >= link_timeout_s %d: an idle live link would look dead; "
                     "pinging every %d s" % (keepalive, timeout, max(1, timeout // 2)))
            keepalive = max(1, timeout // 2)
        self._live = Liveness(keepalive * 1000, timeout * 1000)
        self._timeout_s = timeout
        self._backoff = Backoff(_BACKOFF_MIN_MS, _BACKOFF_MAX_MS, jitter=0.5)
        self._failed = False  # the last open failed: back off before the next
        self._hung_up = None  # the device's reason, once close() was called
        self._rx_src = None  # the last received frame view and its payload view
        self._rx_body = None

    @property
    def is_open(self):
        return self.ws.open

    # -- open ----------------------------------------------------------------
    async def open(self, settings, codec_up, accept):
        if self._failed:
            delay = self._backoff.next()
            log.info(_TAG, "retrying in %d ms (%d failures)" % (delay, self._backoff.attempts))
            await clock.sleep_ms(delay)
        try:
            try:
                hello = await self._connect(settings, codec_up)
            finally:
                # The connect-time code goes before accept() makes the
                # downlink's buffers, so they get the room it took.
                resident.drop(resident.CONNECT_ONLY)
            self.session_id = hello.session_id
            try:
                accept(hello)
            except ValueError as e:
                raise ChannelError(str(e))
        except Exception as e:  # ChannelError, a bad CA file or secret, MemoryError
            self._failed = True
            await self.ws.close()
            if isinstance(e, ChannelError):
                raise
            raise ChannelError("%s: %s" % (type(e).__name__, e))
        self._framer = Framer(settings["protocol_version"])
        self.header_len = self._framer.header_len
        self._rx_src = self._rx_body = None
        self._hung_up = None
        self._failed = False
        self._backoff.reset()
        return hello

    async def _connect(self, settings, codec_up):
        # Imported here, not at the top: nothing of it may stay bound once
        # the open is over, or dropping it would free nothing.
        from firmware.channel_open import open_session

        return await open_session(self, settings, codec_up)

    # -- run -------------------------------------------------------------------
    async def run(self):
        self._live.start(time.ticks_ms())
        keepalive = asyncio.create_task(self._keepalive())
        try:
            # recv_loop, not a recv() per frame: audio arrives 16 times a
            # second and each recv() costs a coroutine and a tuple.
            await self.ws.recv_loop(self.receive)
            reason = "connection ended"
        except WSClosed as e:
            reason = "server closed (code %s%s)" % (e.code, ", " + e.reason if e.reason else "")
        except (WSError, OSError) as e:
            reason = "connection error: %s %s" % (type(e).__name__, e)
        finally:
            keepalive.cancel()
            await self.ws.close()  # idempotent; whatever ended the session, the socket goes
        if self._hung_up is not None:
            return "device", self._hung_up
        return "server", reason

    async def _keepalive(self):
        """Our own PING while the session is open (stock servers stopped
        sending theirs), and the verdict when nothing answers."""
        while True:
            await asyncio.sleep_ms(_CHECK_MS)  # real time, like the peer's answers
            verdict = self._live.check(time.ticks_ms(), self.ws.last_rx)
            if verdict == DEAD:
                self.listener.on_dead("no answer for %d s" % self._timeout_s)
                return
            if verdict == PING:
                try:
                    self.ws.ping()
                    if self.cfg.get("json_ping"):
                        self.ws.send_text(protocol.ping())  # answered only with enable_websocket_ping
                except WSError:
                    pass  # the link just died: the reader reports it

    def receive(self, op, mv):
        """One message from the server. Per audio frame: no allocation."""
        try:
            if op == OP_BINARY:
                self._audio(mv)
                return
            try:
                msg = protocol.parse(protocol.as_text(mv))
            except ValueError as e:
                log.warn(_TAG, "dropped bad frame: %s" % e)
                return
            self.listener.on_json(msg, len(mv))
        except Exception as e:  # a bug behind one message must not end the session
            log.exc(_TAG, "handling a message failed", e)

    def _audio(self, mv):
        try:
            off = self._framer.decode(mv)
        except ValueError as e:
            log.warn(_TAG, "dropped downlink frame: %s" % e)
            return
        if off:
            # The WebSocket hands out one view while frames keep one size, so
            # the payload view behind this session's header is made once too.
            if mv is not self._rx_src:
                self._rx_src = mv
                self._rx_body = mv[off:]
            mv = self._rx_body
        self.listener.on_audio(mv, self._framer.payload_len)

    # -- send ------------------------------------------------------------------
    def send_audio(self, pkt, n):
        """Frame and queue one uplink packet. Per frame: no allocation."""
        return self.ws.send_binary(pkt, self._framer.encode_into(pkt, n))

    def _send(self, text, details):
        """A control message. A link that just died is reported by the reader,
        so a send into it is logged here and never raised into the button or
        MCP task that called it."""
        if not self.ws.open:
            log.warn(_TAG, "no channel; %s not sent" % details["type"])
            return False
        try:
            self.ws.send_text(text)
        except WSError as e:
            log.warn(_TAG, "not sent (%s): %s" % (e, text[:60]))
            return False
        log.event("tx", details)
        return True

    def listen_start(self, mode):
        return self._send(protocol.listen_start(self.session_id, mode),
                          {"type": "listen", "state": "start", "mode": mode})

    def listen_stop(self):
        return self._send(protocol.listen_stop(self.session_id), {"type": "listen", "state": "stop"})

    def abort(self, reason=None):
        return self._send(protocol.abort(self.session_id, reason), {"type": "abort", "reason": reason})

    def mcp(self, reply, rid):
        """Send a JSON-RPC reply (JSON text) to the request with id rid."""
        return self._send(protocol.mcp(self.session_id, reply), {"type": "mcp", "id": rid})

    def _oversize(self, op, size, head):
        """A message longer than the receive buffer was skipped unread. If it
        was an MCP request, the server gets a JSON-RPC error for its id instead
        of a silent drop; the session goes on either way."""
        log.warn(_TAG, "skipped a %d-byte message (receive buffer %d bytes)" % (size, self._max_message))
        rid = protocol.mcp_request_id(head) if op == OP_TEXT else None
        if rid is not None:
            msg = "Request too large: %d bytes (limit %d)" % (size, self._max_message)
            self.mcp(protocol.mcp_error(rid, -32600, msg), rid)

    # -- close -----------------------------------------------------------------
    async def close(self, reason=""):
        """The device hangs up; run() then returns ("device", reason)."""
        if self.ws.open and self._hung_up is None:
            self._hung_up = reason
        await self.ws.close(1000, reason)

