# asyncio WebSocket client (RFC 6455) for MicroPython, unix port and ESP32.
#
#   ws = WebSocket(max_message=65536, audio_slots=40, audio_slot_size=4096)
#   await ws.connect("wss://host/path", headers=[("Device-Id", mac)], cadata=der)
#   op, mv = await ws.recv()      # OP_TEXT / OP_BINARY, payload valid until next recv()
#   await ws.recv_loop(handler)   # or: handler(op, mv) per message, no allocation each
#   ws.send_text(s)               # queued, never dropped
#   ws.send_binary(buf, n)        # preallocated slot; oldest dropped when full
#   ws.ping()                     # keepalive; the PONG moves ws.last_rx
#   await ws.close()
#
# Why our own: the built-in `websocket` module never masks (servers reject
# it), and micropython-lib's aiohttp surfaces PINGs, masks byte by byte and has
# no deadlines. Design points:
# - One writer task owns the socket's write side; MicroPython asyncio asserts
#   if two tasks wait to write on one stream. PONG and CLOSE go through it.
# - Receive and audio send work in preallocated buffers: a frame that is
#   already buffered is parsed, copied and handed out without allocating;
#   recv_loop() and the writer also wait without a coroutine per frame.
# - Parser state lives in the object, so cancelling recv() (e.g. by
#   asyncio.wait_for_ms) between reads loses no bytes.
import asyncio
import time

from micropython import const

import tlsctx
import wsframe as F
from wsframe import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT

__all__ = ("OP_BINARY", "OP_TEXT", "WSClosed", "WSError", "WebSocket")

# Audio slots keep the payload at this offset with the header written just in
# front of it, so the payload is word-aligned for the 32-bit mask loop.
_SLOT_OFF = const(16)
_HEAD_MAX = const(4096)  # handshake response head limit (= rx buffer size)
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


class _EOF(Exception):
    pass


class _Park:
    """Parks the current task in asyncio's own queues the way Event.wait()
    and Stream.readinto() do, but as one reused object: those are generators
    and cost a generator object on every call, 16 times a second per audio
    direction. Arm it with _until_set() or _until_readable() and await it at
    once (the pattern of asyncio.sleep_ms's SingletonGenerator): the first
    step queues the task and yields, the step after the wake-up finishes.
    The reader and the writer share the one object safely because the first
    step takes its argument out before anything else runs, so a parked or
    resumed task never sees the other's. Cancellation works as for the
    originals: the task's data names the queue it sits on, so Task.cancel()
    can take it off and throw CancelledError at the await."""

    def __init__(self):
        self.ev = None
        self.sock = None
        self.done = StopIteration()

    def __iter__(self):
        return self

    def __next__(self):
        core = asyncio.core
        sock = self.sock
        if sock is not None:
            self.sock = None
            core._io_queue.queue_read(sock)  # as Stream.readinto()
            return None
        ev = self.ev
        if ev is not None:
            self.ev = None
            if not ev.state:  # as Event.wait()
                ev.waiting.push(core.cur_task)
                core.cur_task.data = ev.waiting
                return None
        # Woken (or the event was already set): the await is over.
        self.done.__traceback__ = None
        raise self.done


def _can_park(core, ev):
    # The asyncio internals _Park drives, present in MicroPython's asyncio
    # (uasyncio v3 onwards). Where one is missing, the client falls back to
    # Event.wait() and Stream.readinto(): a generator per wait, no crash.
    return (
        hasattr(core, "cur_task")
        and hasattr(getattr(core, "_io_queue", None), "queue_read")
        and hasattr(ev, "waiting")
        and hasattr(ev, "state")
    )


_park = _Park() if _can_park(getattr(asyncio, "core", None), asyncio.Event()) else None


def _until_set(ev):
    # `await _until_set(ev)` is `await ev.wait()` for an asyncio.Event.
    if _park is None:
        return ev.wait()
    _park.ev = ev
    return _park


def _until_readable(sock):
    # `await _until_readable(sock)` waits like Stream.readinto() before it
    # reads. Only with _park: without it the reader uses Stream.readinto().
    _park.sock = sock
    return _park


def _random(n):
    try:
        import os

        return os.urandom(n)
    except (ImportError, AttributeError):
        import random

        return bytes(random.getrandbits(8) for _ in range(n))


def _log(msg):
    print("ws: " + msg)


_RESERVED = ("host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version")


class WebSocket:
    def __init__(self, max_message=65536, audio_slots=40, audio_slot_size=4096, rx_buf=_HEAD_MAX, log=_log):
        if max_message < 125 or audio_slots < 1 or audio_slot_size < 1 or rx_buf < 256:
            raise ValueError("WebSocket: bad buffer sizes")
        self.max_message = max_message
        self.log = log  # callable(str) for the few things worth a line (TLS opt-out)
        self._msg = bytearray(max_message)
        self._mmv = memoryview(self._msg)
        self._vmv = self._mmv[:0]  # the last message view handed out (see _view)
        self._cin = bytearray(125)  # incoming control frame payload
        self._hdr = bytearray(F.MAX_HEADER)
        self._rb = bytearray(rx_buf)
        self._rbmv = memoryview(self._rb)
        self._slots = [bytearray(_SLOT_OFF + audio_slot_size) for _ in range(audio_slots)]
        self._smv = [memoryview(s) for s in self._slots]
        self._sst = [0] * audio_slots  # frame start (header) offset per slot
        self._sen = [0] * audio_slots  # frame end offset per slot
        self._sview = [None] * audio_slots  # view of [start:end], made by the writer
        self._nslots = audio_slots
        self._ssize = audio_slot_size
        self._rng = bytearray(_random(4))
        if not any(self._rng):
            self._rng[0] = 1  # xorshift state must not be zero
        self._wev = asyncio.Event()
        self._done = asyncio.Event()
        self.dropped = 0
        self.last_rx = time.ticks_ms()
        self._s = None
        self._wtask = None
        self._state = _CLOSED
        self._closed = (None, "not connected")
        self._rxt = None  # the task in recv()/recv_loop(), while one is
        # (reader task, close reason) from _teardown() cancelling that
        # reader, until it has raised the WSClosed; a reconnect, which may
        # come first, leaves it alone.
        self._cut = None
        self._reset()

    def _reset(self):
        self._rp = self._re = 0  # rx buffer read/end positions
        self._ph = 0  # parser phase: 0 first 2 header bytes, 1 rest of header, 2 payload
        self._got = 0  # bytes of the current piece already filled
        self._hl = 0
        self._pl = 0
        self._op = 0
        self._dst = self._msg
        self._doff = 0
        self._fop = 0  # opcode of a fragmented message in progress (0: none)
        self._mlen = 0
        self._ctl = []
        self._ahead = self._acount = 0
        self._close_after = False  # writer shuts the transport after its CLOSE
        self._wev.clear()
        self._done.clear()

    # ---- connect -------------------------------------------------------

    async def connect(self, url, headers=(), cadata=None, verify=True, timeout_ms=10000):
        """Open TCP (+TLS), do the upgrade and start the writer, all within
        timeout_ms. Raises WSError with a one-line reason."""
        if self._state != _CLOSED:
            raise WSError("already connected")
        try:
            secure, host, port, path, hosthdr = F.parse_url(url)
        except ValueError as e:
            raise WSError(str(e))
        if hasattr(headers, "items"):
            headers = headers.items()
        req = ["GET ", path, " HTTP/1.1\r\nHost: ", hosthdr, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"]
        for k, v in headers:
            k, v = str(k), str(v)
            if not k or k.lower() in _RESERVED or ":" in k or "\r" in k + v or "\n" in k + v:
                raise WSError("bad handshake header: %r" % k)
            req.append("%s: %s\r\n" % (k, v))
        key = F.make_key(_random(16))
        req.append("Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key)
        ctx = self._tls(host, cadata, verify) if secure else None
        self.dropped = 0
        self._reset()
        self._closed = (None, "not connected")
        ok = False
        try:
            await asyncio.wait_for_ms(self._open(host, port, ctx, "".join(req).encode(), key), timeout_ms)
            ok = True
        except asyncio.TimeoutError:
            raise WSError("connect to %s timed out after %d ms" % (hosthdr, timeout_ms))
        except WSError:
            raise
        except (OSError, ValueError) as e:
            # mbedTLS reports certificate problems as ValueError, sockets as OSError.
            raise WSError("connect to %s failed: %s %s" % (hosthdr, type(e).__name__, str(e).strip()))
        finally:
            if not ok:
                self._drop_socket()
        self._state = _OPEN
        self.last_rx = time.ticks_ms()
        self._wtask = asyncio.create_task(self._writer())

    def _tls(self, host, cadata, verify):
        try:
            ctx = tlsctx.client_context(verify, cadata)
        except tlsctx.TLSError as e:
            raise WSError("wss to %s: %s" % (host, e))
        if not verify and self.log:
            self.log("TLS certificate NOT verified for %s (verify=False)" % host)
        return ctx

    async def _open(self, host, port, ctx, req, key):
        if ctx is None:
            _, w = await asyncio.open_connection(host, port)
        else:
            _, w = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)
        self._s = w
        w.write(req)
        await w.drain()
        _check_response(await self._read_head(), key)

    async def _read_head(self):
        rb = self._rb
        while True:
            i = rb.find(b"\r\n\r\n", 0, self._re)
            if i >= 0:
                self._rp = i + 4  # anything after the head is already frames
                return bytes(self._rbmv[:i])
            if self._re == len(rb):
                raise WSError("handshake response head over %d bytes" % len(rb))
            r = await self._s.readinto(self._rbmv[self._re :])
            if r is None:
                continue
            if not r:
                raise WSError("connection closed during handshake")
            self._re += r

    # ---- receive -------------------------------------------------------

    async def recv(self):
        """Next TEXT/BINARY message as (op, memoryview). The view points into
        the receive buffer and is valid until the next recv(). PING, PONG and
        CLOSE are handled here; CLOSE and EOF raise WSClosed. One task
        receives at a time: a second gets WSError while the first waits."""
        op = await self.recv_loop(None)
        return op, self._view()

    async def recv_loop(self, handler):
        """Call handler(op, mv) for each TEXT/BINARY message until the
        connection ends, which raises as recv() does; mv is valid until the
        handler returns. Exceptions from the handler pass through untouched.
        Made for a reader task: one coroutine for the whole connection
        instead of a coroutine and a tuple per message, and the view is reused
        while messages keep one size (audio frames do), so a frame that is
        already buffered costs no allocation. With handler None it returns
        the first message's opcode instead (that is recv())."""
        if self._rxt is not None:
            raise WSError("another task is already receiving")
        s = self._s
        sock = s.s if s is not None else None  # the socket under the asyncio Stream
        me = self._rxt = asyncio.current_task()
        try:
            while True:
                if self._state == _CLOSED or self._close_after:
                    # Closed, or the peer's CLOSE / our protocol-error CLOSE
                    # is done: nothing more will be delivered.
                    raise WSClosed(*self._closed)
                op = self._step()
                if op:
                    if handler is None:
                        return op
                    handler(op, self._view())
                    continue
                # One successful read. A large payload remainder goes
                # straight into the message buffer; anything else through the
                # rx buffer, so one read usually brings a whole small frame.
                direct = self._ph == 2 and self._dst is self._msg and self._pl - self._got >= len(self._rb)
                if direct:
                    buf = self._mmv[self._doff + self._got : self._doff + self._pl]
                else:
                    buf = self._rb
                # Only the I/O is inside this try: the handler's own errors
                # must not read as a lost connection.
                try:
                    if _park is None:
                        r = await s.readinto(buf)
                    else:
                        # Stream.readinto() inlined (wait, then read the
                        # socket): it is a generator object per wait.
                        await _until_readable(sock)
                        r = sock.readinto(buf)
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
                if direct:
                    self._got += r
                else:
                    self._rp = 0
                    self._re = r
        finally:
            if self._rxt is me:
                self._rxt = None

    def _view(self):
        # The current message as a view; audio messages repeat one size, so
        # the last view is handed out again instead of a new one each time.
        if len(self._vmv) != self._mlen:
            self._vmv = self._mmv[: self._mlen]
        return self._vmv

    def _step(self):
        # Parse as far as the buffered bytes go; return a completed message's
        # opcode, or 0 when more input is needed. Allocates nothing for data
        # frames (control frames may: PONG/CLOSE replies are built here).
        while True:
            if self._ph == 0:
                if not self._take(self._hdr, 0, 2):
                    return 0
                self.last_rx = time.ticks_ms()
                self._hl = F.header_size(self._hdr[0], self._hdr[1])
                self._ph = 1
            if self._ph == 1:
                if not self._take(self._hdr, 2, self._hl - 2):
                    return 0
                self._begin()
                self._ph = 2
            if not self._take(self._dst, self._doff, self._pl):
                return 0
            self._ph = 0
            op = self._end()
            if op:
                return op

    def _take(self, buf, off, n):
        # Copy buffered bytes toward buf[off:off+n]; True once all n are there.
        got = self._got
        k = n - got
        avail = self._re - self._rp
        if k > avail:
            F.copy(buf, off + got, self._rb, self._rp, avail)
            self._got = got + avail
            self._rp = self._re = 0
            return False
        F.copy(buf, off + got, self._rb, self._rp, k)
        self._rp += k
        self._got = 0
        return True

    def _begin(self):
        # Validate a complete header and pick where its payload goes.
        b0 = self._hdr[0]
        b1 = self._hdr[1]
        op = b0 & 0x0F
        if b0 & 0x70:
            self._fail(1002, "reserved bits set")
        if b1 & 0x80:
            self._fail(1002, "masked frame from server")
        n = F.payload_len(self._hdr)
        if n < 0:
            self._fail(1002, "bad 64-bit length")
        self._op = op
        self._pl = n
        if op & 8:
            if op != OP_CLOSE and op != OP_PING and op != OP_PONG:
                self._fail(1002, "unknown opcode %d" % op)
            if not b0 & 0x80:
                self._fail(1002, "fragmented control frame")
            if n > 125:
                self._fail(1002, "control frame too long")
            self._dst = self._cin
            self._doff = 0
            return
        if op == OP_CONT:
            if not self._fop:
                self._fail(1002, "continuation without a message")
            off = self._mlen
        elif op == OP_TEXT or op == OP_BINARY:
            if self._fop:
                self._fail(1002, "new message inside a fragmented one")
            off = 0
        else:
            self._fail(1002, "unknown opcode %d" % op)
        if off + n > self.max_message:
            self._fail(1009, "message too big: %d bytes" % (off + n))
        if op:
            self._fop = op
        self._dst = self._msg
        self._doff = off

    def _end(self):
        op = self._op
        if not op & 8:
            self._mlen = self._doff + self._pl
            if not self._hdr[0] & 0x80:
                return 0
            op = self._fop
            self._fop = 0
            return op
        n = self._pl
        if op == OP_PING:
            if self._state == _OPEN:
                self._queue(OP_PONG, self._cin, n)
        elif op == OP_CLOSE:
            if n == 1:
                self._fail(1002, "close frame with 1-byte payload")
            code = (self._cin[0] << 8) | self._cin[1] if n >= 2 else 1005
            try:
                reason = str(bytes(self._cin[2:n]), "utf-8")
            except UnicodeError:
                reason = repr(bytes(self._cin[2:n]))
            self._closed = (code, reason)
            if self._state != _OPEN:
                # We started closing, so this answers our CLOSE: hang up.
                # (Should the peer have closed at the same moment, a CLOSE
                # of ours still queued is dropped; the peer is done anyway.)
                self._teardown(code, reason)
            else:
                self._state = _CLOSING
                self._acount = 0
                self._close_after = True
                self._queue(OP_CLOSE, self._cin, n if code != 1005 else 0)
            raise WSClosed(code, reason)
        return 0

    def _fail(self, code, msg):
        # Protocol violation: tell the peer why, end the connection, raise.
        if self._state == _OPEN:
            self._state = _CLOSING
            self._acount = 0
            self._close_after = True
            p = F.close_payload(code, msg)
            self._queue(OP_CLOSE, p, len(p))
        self._closed = (code, msg)
        raise WSError(msg)

    # ---- send ----------------------------------------------------------

    def send_text(self, s):
        """Queue a TEXT message (str or UTF-8 bytes). Never dropped; raises
        WSClosed when the connection is not open, WSError if the control
        queue is full (the link has been stalled for a long time)."""
        self._send_message(OP_TEXT, s.encode() if isinstance(s, str) else s)

    def send_bytes(self, data):
        """Queue a BINARY message on the control lane: never dropped, any
        size, allocates; raises as send_text() does. For audio use
        send_binary()."""
        self._send_message(OP_BINARY, data)

    def _send_message(self, op, b):
        if self._state != _OPEN:
            raise WSClosed(*self._closed)
        if len(self._ctl) >= _CTL_MAX:
            raise WSError("control queue full (%d frames)" % _CTL_MAX)
        self._queue(op, b, len(b))

    def ping(self, payload=b""):
        """Queue a PING (a keepalive); the peer's PONG, like any frame,
        moves last_rx. Raises as send_text() does."""
        self._send_message(OP_PING, payload)

    def send_binary(self, buf, n=-1):
        """Copy buf[:n] into a preallocated audio slot as a masked BINARY
        frame. When all slots are waiting, the oldest is dropped (counted in
        self.dropped) and False is returned. Allocates nothing. On a closed
        connection it returns False without raising: audio is best effort and
        recv() is where the close is reported."""
        if self._state != _OPEN:
            return False
        if n < 0:
            n = len(buf)
        if n > self._ssize:
            raise ValueError("audio frame too big for slot")
        ok = True
        if self._acount == self._nslots:
            self._ahead += 1
            if self._ahead == self._nslots:
                self._ahead = 0
            self._acount -= 1
            self.dropped += 1
            ok = False
        i = self._ahead + self._acount
        if i >= self._nslots:
            i -= self._nslots
        slot = self._slots[i]
        st = _SLOT_OFF - F.header_len(n, True)
        en = _SLOT_OFF + n
        if self._sst[i] != st or self._sen[i] != en:
            self._sst[i] = st
            self._sen[i] = en
            self._sview[i] = None  # new bounds: the writer makes a new view
        F.encode_header(slot, st, OP_BINARY, n, True)
        F.rng_fill(self._rng, slot, _SLOT_OFF - 4)
        F.copy(slot, _SLOT_OFF, buf, 0, n)
        F.mask(slot, _SLOT_OFF, n, slot, _SLOT_OFF - 4)
        self._acount += 1
        self._wev.set()
        return ok

    def _queue(self, op, payload, n):
        h = F.header_len(n, True)
        f = bytearray(h + n)
        F.encode_header(f, 0, op, n, True)
        F.rng_fill(self._rng, f, h - 4)
        F.copy(f, h, payload, 0, n)
        F.mask(f, h, n, f, h - 4)
        self._ctl.append(f)
        self._wev.set()

    async def _writer(self):
        # The only task that writes to the socket. Control frames first (FIFO),
        # then audio slots oldest first.
        s = self._s
        try:
            while True:
                if self._ctl:
                    f = self._ctl.pop(0)
                    s.write(f)
                    await s.drain()
                    if self._close_after and f[0] & 0x0F == OP_CLOSE:
                        break
                elif self._acount and self._state == _OPEN:
                    i = self._ahead
                    self._ahead = i + 1 if i + 1 < self._nslots else 0
                    self._acount -= 1
                    # Stream.write() sends what the socket takes now and copies
                    # the rest into its own buffer, so the slot is free (may be
                    # refilled by send_binary) as soon as write() returns.
                    # Frames keep one size, so each slot's view is made once.
                    v = self._sview[i]
                    if v is None:
                        v = self._sview[i] = self._smv[i][self._sst[i] : self._sen[i]]
                    s.write(v)
                    if s.out_buf:
                        await s.drain()  # the socket is behind: wait for it
                    else:
                        # All sent. drain() would only yield, at the cost of a
                        # generator object per frame; sleep_ms(0) yields for free.
                        await asyncio.sleep_ms(0)
                else:
                    self._wev.clear()
                    await _until_set(self._wev)  # Event.wait() minus its generator
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
            self._state = _CLOSING
            self._acount = 0
            self._closed = (code, reason)
            p = F.close_payload(code, reason)
            self._queue(OP_CLOSE, p, len(p))
            drain = self._rxt is None
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

    @property
    def open(self):
        return self._state == _OPEN

    def _drop_socket(self):
        # MicroPython's Stream.close() does nothing (its wait_closed() closes),
        # so close the socket under the stream: otherwise the fd and the TCP
        # connection live on until the garbage collector finds them.
        s = self._s
        self._s = None
        if s is not None:
            try:
                s.s.close()
            except OSError:
                pass

    def _teardown(self, code, reason):
        if self._state == _CLOSED and self._s is None:
            return
        self._state = _CLOSED
        if self._closed[1] == "not connected":
            self._closed = (code, reason)
        # Wake waiters before closing the socket: cancelling a task removes it
        # from asyncio's poller, so the fd is never polled after close.
        t = self._rxt
        self._rxt = None
        if t is not None and t is not asyncio.current_task():
            self._cut = (t, self._closed)
            t.cancel()
        t = self._wtask
        self._wtask = None
        if t is not None and t is not asyncio.current_task():
            t.cancel()
        self._ctl = []
        self._acount = 0
        self._drop_socket()
        self._done.set()


def _check_response(head, key):
    try:
        text = str(head, "utf-8")
    except UnicodeError:
        raise WSError("handshake: response is not text")
    lines = text.split("\r\n")
    status = lines[0]
    parts = status.split(" ")
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or parts[1] != "101":
        raise WSError("handshake refused: " + (status[:120] or "(empty status line)"))
    h = {}
    for ln in lines[1:]:
        i = ln.find(":")
        if i > 0:
            h[ln[:i].strip().lower()] = ln[i + 1 :].strip()
    if h.get("upgrade", "").lower() != "websocket":
        raise WSError("handshake: no 'Upgrade: websocket' in 101 response")
    if "upgrade" not in [t.strip() for t in h.get("connection", "").lower().split(",")]:
        raise WSError("handshake: no 'Connection: Upgrade' in 101 response")
    if h.get("sec-websocket-accept") != F.accept_key(key):
        raise WSError("handshake: wrong Sec-WebSocket-Accept")
    if h.get("sec-websocket-extensions"):
        raise WSError("handshake: server chose an extension we did not offer")
