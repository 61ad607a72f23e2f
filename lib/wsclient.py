# asyncio WebSocket client (RFC 6455) for MicroPython, unix port and ESP32.
#
#   ws = WebSocket(max_message=16384, audio_slots=40, audio_slot_size=4096)
#   await ws.connect("wss://host/path", headers=[("Device-Id", mac)], cadata=der)
#   op, mv = await ws.recv()      # OP_TEXT / OP_BINARY, payload valid until next recv()
#   await ws.recv_loop(handler)   # or: handler(op, mv) per message, no allocation each
#   ws.send_text(s)               # queued, never dropped
#   ws.send_binary(buf, n)        # preallocated slot; oldest dropped when full
#   ws.ping()                     # keepalive; ws.pongs / ws.last_pong count the answers
#   await ws.close()
#
# A message longer than max_message does not end the connection: it is read
# through and dropped without buffering it, and on_oversize(op, size, head)
# is called (head: its first max_message bytes, valid during the call), so an
# app can answer an oversized request with an error. The default logs a line.
#
# Why our own: the built-in `websocket` module never masks (servers reject
# it), and micropython-lib's aiohttp surfaces PINGs, masks byte by byte and has
# no deadlines. The parts:
# - wsparser.FrameParser turns received bytes into messages and control
#   frames; wsqueue.SendQueue builds masked frames and picks the next one to
#   send (control first, audio drop-oldest); wsframe has the byte-level pieces.
# - This module does the I/O and the close handshake; wshandshake, which
#   connect() imports, the opening handshake. That runs once per connection,
#   so a caller short of RAM may drop it from sys.modules meanwhile.
# - One writer task owns the socket's write side; MicroPython asyncio asserts
#   if two tasks wait to write on one stream. PONG and CLOSE go through it.
# - Tasks wait with the public asyncio API (Event.wait(), Stream.readinto()).
#   Each wait costs a generator object; parking the tasks in asyncio's
#   private queues saved it (96 B per wait on the unix port, half the loop's
#   bytes per frame, no measurable time; docs/benchmarks.md). At 16 frames a
#   second that is one sub-millisecond GC pause every few seconds: not worth
#   depending on asyncio internals that any release may change.
import asyncio
import time

from micropython import const

import wsframe as F
from wsframe import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT
from wsparser import SKIPPED, FrameParser, ProtocolError
from wsqueue import SendQueue

__all__ = ("OP_BINARY", "OP_TEXT", "WSClosed", "WSError", "WebSocket")

_HEAD_MAX = const(4096)  # default rx buffer, which also bounds the handshake response head
_CTL_MAX = const(64)  # queued control frames before send_text refuses

_CLOSED = const(0)
_OPEN = const(1)
_CLOSING = const(2)  # CLOSE queued or sent; no new data frames


class WSError(Exception):
    """Connect/handshake failure or a protocol violation."""


class WSClosed(WSError):
    """The connection is gone. code is the peer's (or our) close code, None
    when the transport just ended; reason is text."""

    def __init__(self, code, reason):
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self):
        return "closed (%s): %s" % (self.code, self.reason)


def _log(msg):
    print("ws: " + msg)


class WebSocket:
    def __init__(self, max_message=16384, audio_slots=40, audio_slot_size=4096, rx_buf=_HEAD_MAX, log=_log,
                 on_oversize=None):
        if max_message < 125 or audio_slots < 1 or audio_slot_size < 1 or rx_buf < 256:
            raise ValueError("WebSocket: bad buffer sizes")
        self.max_message = max_message
        self.log = log  # callable(str) for the few things worth a line (TLS opt-out, skipped messages)
        self.on_oversize = on_oversize  # callable(op, size, head), or None to log
        # The two pure parts, public so proofs and benchmarks can drive them.
        self.parser = FrameParser(max_message, rx_buf)
        self.queue = SendQueue(audio_slots, audio_slot_size, F.random_bytes(4))
        self._wake_writer = asyncio.Event()
        self._done = asyncio.Event()
        self.last_rx = time.ticks_ms()  # any bytes received count as life
        self.pongs = 0  # PONGs received on this connection (answers to ping())
        self.last_pong = None  # time.ticks_ms() of the last one
        self._stream = None
        self._writer_task = None
        self._state = _CLOSED
        self._closed = (None, "not connected")
        self._reader = None  # the task in recv()/recv_loop(), while one is
        # (reader task, close reason) from _teardown() cancelling that
        # reader, until it has raised the WSClosed; a reconnect, which may
        # come first, leaves it alone.
        self._cut = None
        self._close_after = False  # the writer shuts the transport after its CLOSE

    @property
    def dropped(self):
        """Audio frames dropped (oldest first) on this connection."""
        return self.queue.dropped

    @property
    def open(self):
        return self._state == _OPEN

    # ---- connect -------------------------------------------------------

    async def connect(self, url, headers=(), cadata=None, verify=True, timeout_ms=10000):
        """Open TCP (+TLS), do the upgrade and start the writer, all within
        timeout_ms. Raises WSError with a one-line reason."""
        if self._state != _CLOSED:
            raise WSError("already connected")
        import wshandshake  # once per connection; see the top of this file

        self.parser.reset()
        self.queue.clear()
        self.queue.dropped = 0
        self._close_after = False
        self._wake_writer.clear()
        self._done.clear()
        self.pongs = 0
        self.last_pong = None
        self._closed = (None, "not connected")
        self._stream = await wshandshake.connect(url, headers, cadata, verify, timeout_ms, self.parser, self.log)
        self._state = _OPEN
        self.last_rx = time.ticks_ms()
        self._writer_task = asyncio.create_task(self._writer())

    # ---- receive -------------------------------------------------------

    async def recv(self):
        """Next TEXT/BINARY message as (op, memoryview). The view points into
        the receive buffer and is valid until the next recv(). PING, PONG and
        CLOSE are handled here; CLOSE and EOF raise WSClosed. One task
        receives at a time: a second gets WSError while the first waits."""
        op = await self.recv_loop(None)
        return op, self.parser.message()

    async def recv_loop(self, handler):
        """Call handler(op, mv) for each TEXT/BINARY message until the
        connection ends, which raises as recv() does; mv is valid until the
        handler returns. Exceptions from the handler pass through untouched.
        Made for a reader task: one coroutine for the whole connection
        instead of a coroutine and a tuple per message, and the view is reused
        while messages keep one size (audio frames do), so a frame that is
        already buffered costs no allocation. With handler None it returns
        the first message's opcode instead (that is recv())."""
        if self._reader is not None:
            raise WSError("another task is already receiving")
        p = self.parser
        stream = self._stream
        me = self._reader = asyncio.current_task()
        try:
            while True:
                if self._state == _CLOSED or self._close_after:
                    # Closed, or the peer's CLOSE / our protocol-error CLOSE
                    # is done: nothing more will be delivered.
                    raise WSClosed(*self._closed)
                try:
                    ev = p.parse()
                except ProtocolError as e:
                    self._fail(e.code, e.reason)
                if ev == OP_TEXT or ev == OP_BINARY:
                    if handler is None:
                        return ev
                    handler(ev, p.message())
                    continue
                if ev:
                    self._on_event(ev)
                    continue
                # Only the I/O is inside this try: the handler's own errors
                # must not read as a lost connection.
                try:
                    r = await stream.readinto(p.read_buffer())
                except asyncio.CancelledError:
                    cut = self._cut
                    if cut is not None and cut[0] is me:  # by _teardown
                        self._cut = None
                        raise WSClosed(*cut[1])
                    raise
                except OSError as e:
                    self._teardown(None, "connection lost: %s %s" % (type(e).__name__, e))
                    raise WSClosed(*self._closed)
                if r is None:
                    continue  # TLS: readable socket but no complete record yet
                if not r:
                    self._teardown(None, "connection lost")
                    raise WSClosed(*self._closed)
                self.last_rx = time.ticks_ms()
                p.got(r)
        finally:
            if self._reader is me:
                self._reader = None

    def _on_event(self, ev):
        # Control frames and skipped messages (allocating here is fine: rare).
        p = self.parser
        if ev == SKIPPED:
            if self.on_oversize is not None:
                self.on_oversize(p.skipped_op, p.skipped_size, p.message())
            elif self.log:
                self.log("skipped a %d-byte %s message (limit %d)"
                         % (p.skipped_size, "text" if p.skipped_op == OP_TEXT else "binary", self.max_message))
        elif ev == OP_PING:
            if self._state == _OPEN:
                payload = p.control()
                self.queue.put_control(OP_PONG, payload, len(payload))
                self._wake_writer.set()
        elif ev == OP_PONG:
            self.pongs += 1
            self.last_pong = time.ticks_ms()
        elif ev == OP_CLOSE:
            payload = p.control()
            n = len(payload)
            code = (payload[0] << 8) | payload[1] if n >= 2 else 1005
            try:
                reason = str(bytes(payload[2:]), "utf-8")
            except UnicodeError:
                reason = repr(bytes(payload[2:]))
            self._closed = (code, reason)
            if self._state != _OPEN:
                # We started closing, so this answers our CLOSE: hang up.
                # (Should the peer have closed at the same moment, a CLOSE
                # of ours still queued is dropped; the peer is done anyway.)
                self._teardown(code, reason)
            else:
                self._start_closing(payload if code != 1005 else b"")
            raise WSClosed(code, reason)

    def _fail(self, code, msg):
        # Protocol violation: tell the peer why, end the connection, raise.
        if self._state == _OPEN:
            self._start_closing(F.close_payload(code, msg))
        self._closed = (code, msg)
        raise WSError(msg)

    def _start_closing(self, close_payload):
        # Queue our CLOSE; no more audio; the writer hangs up once it is out.
        self._state = _CLOSING
        self.queue.drop_audio()
        self._close_after = True
        self.queue.put_control(OP_CLOSE, close_payload, len(close_payload))
        self._wake_writer.set()

    # ---- send ----------------------------------------------------------

    def send_text(self, s):
        """Queue a TEXT message (str or UTF-8 bytes). Never dropped; raises
        WSClosed when the connection is not open, WSError if the control
        queue is full (the link has been stalled for a long time)."""
        # A str's memoryview is its UTF-8 bytes (MicroPython): the frame is
        # built from it without first copying the text into a bytes object.
        self._send_control(OP_TEXT, memoryview(s) if isinstance(s, str) else s)

    def send_bytes(self, data):
        """Queue a BINARY message on the control lane: never dropped, any
        size, allocates; raises as send_text() does. For audio use
        send_binary()."""
        self._send_control(OP_BINARY, data)

    def ping(self, payload=b""):
        """Queue a PING (payload up to 125 bytes) for a keepalive; the
        answer shows up in self.pongs and self.last_pong (and, as any
        received bytes do, in self.last_rx). Raises as send_text() does."""
        if len(payload) > 125:
            raise ValueError("ping payload over 125 bytes")
        self._send_control(OP_PING, payload)

    def _send_control(self, op, b):
        if self._state != _OPEN:
            raise WSClosed(*self._closed)
        if self.queue.control_queued >= _CTL_MAX:
            raise WSError("control queue full (%d frames)" % _CTL_MAX)
        self.queue.put_control(op, b, len(b))
        self._wake_writer.set()

    def send_binary(self, buf, n=-1):
        """Copy buf[:n] into a preallocated audio slot as a masked BINARY
        frame. When all slots are waiting, the oldest is dropped (counted in
        self.dropped) and False is returned. Allocates nothing. On a closed
        connection it returns False without raising: audio is best effort and
        recv() is where the close is reported."""
        if self._state != _OPEN:
            return False
        kept = self.queue.put_audio(buf, len(buf) if n < 0 else n)
        self._wake_writer.set()
        return kept

    async def _writer(self):
        # The only task that writes to the socket, in the order the queue
        # gives: control frames first, then audio oldest first.
        stream = self._stream
        try:
            while True:
                frame = self.queue.pop()
                if frame is None:
                    self._wake_writer.clear()
                    await self._wake_writer.wait()
                    continue
                # Stream.write() sends what the socket takes now and copies
                # the rest into its own buffer, so an audio slot is free (may
                # be refilled by send_binary) as soon as write() returns.
                stream.write(frame)
                if stream.out_buf:
                    await stream.drain()  # the socket is behind: wait for it
                else:
                    # All sent. drain() would only yield, at the cost of a
                    # generator object per frame; sleep_ms(0) yields for free.
                    await asyncio.sleep_ms(0)
                if self._close_after and frame[0] & 0x0F == OP_CLOSE:
                    break
        except Exception as e:
            self._teardown(None, "write failed: %s %s" % (type(e).__name__, e))
            return
        self._teardown(*self._closed)

    # ---- close ---------------------------------------------------------

    async def close(self, code=1000, reason="", timeout_ms=2000):
        """Send CLOSE, wait (bounded) for the peer's CLOSE, drop the socket.
        Safe to call in any state and more than once."""
        if self._state == _CLOSED:
            return
        drain = False
        if self._state == _OPEN:
            self._closed = (code, reason)
            self._state = _CLOSING
            self.queue.drop_audio()
            p = F.close_payload(code, reason)
            self.queue.put_control(OP_CLOSE, p, len(p))
            self._wake_writer.set()
            drain = self._reader is None
        try:
            if drain:
                # Nobody is reading: read (and discard) until the peer's CLOSE.
                await asyncio.wait_for_ms(self._drain_to_close(), timeout_ms)
            else:
                # The reader task, the writer (after a CLOSE echo) or an
                # earlier close() call ends it.
                await asyncio.wait_for_ms(self._done.wait(), timeout_ms)
        except (asyncio.TimeoutError, WSError):
            pass
        self._teardown(code, reason)

    async def _drain_to_close(self):
        while True:
            await self.recv()  # discards data until CLOSE/EOF raises

    def _drop_socket(self):
        s = self._stream
        self._stream = None
        if s is not None:
            close_stream(s)

    def _teardown(self, code, reason):
        if self._state == _CLOSED and self._stream is None:
            return
        self._state = _CLOSED
        if self._closed[1] == "not connected":
            self._closed = (code, reason)
        # Wake waiters before closing the socket: cancelling a task removes it
        # from asyncio's poller, so the fd is never polled after close.
        t = self._reader
        self._reader = None
        if t is not None and t is not asyncio.current_task():
            self._cut = (t, self._closed)
            t.cancel()
        t = self._writer_task
        self._writer_task = None
        if t is not None and t is not asyncio.current_task():
            t.cancel()
        self.queue.clear()
        self._drop_socket()
        self._done.set()


def close_stream(s):
    """Close an asyncio stream's socket now. MicroPython's Stream.close()
    does nothing (its wait_closed() closes), so close the socket under it:
    otherwise the fd and the TCP connection live on until the garbage
    collector finds them."""
    try:
        s.s.close()
    except OSError:
        pass
