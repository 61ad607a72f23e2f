# Incremental parser for the frames a WebSocket client receives (RFC 6455).
# No I/O, no clock, no asyncio: the client reads the socket into the buffer
# this hands out and asks for events; tests feed it bytes on both runtimes.
#
#   p = FrameParser(max_message=16384, rx_buf=4096)
#   n = sock.readinto(p.read_buffer())   # only when parse() returned 0
#   p.got(n)
#   ev = p.parse()                       # 0: every buffered byte is used up
#
# Events parse() returns:
#   OP_TEXT, OP_BINARY  a whole message (fragments joined): p.message(), a
#                       memoryview valid until the next parse()
#   OP_PING, OP_PONG, OP_CLOSE  a control frame: p.control() is its payload
#   SKIPPED             a message longer than max_message was read through and
#                       dropped without buffering it: p.skipped_op is its
#                       opcode, p.skipped_size its length, and p.message()
#                       holds its first max_message bytes (an app can still
#                       find a JSON-RPC id there to answer with an error)
# A protocol violation raises ProtocolError(code, reason); the client closes
# with that code. State lives in the object, so a caller cancelled between a
# read and parse() loses no bytes.
#
# Data frames cost no allocation: payload bytes are copied into preallocated
# buffers, and the message view is reused while messages keep one length
# (audio frames do).
# ruff: noqa: F821 (const comes from micropython)
from micropython import const

import wsframe as F
from wsframe import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT

SKIPPED = const(16)  # not an opcode (those are 4 bits): an oversized message was dropped

# What parse() is collecting.
_FIRST_TWO = const(0)  # the first two header bytes (they give the header length)
_REST_OF_HEADER = const(1)
_PAYLOAD = const(2)


class ProtocolError(Exception):
    """The peer broke RFC 6455; code is the CLOSE code to answer with."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class FrameParser:
    def __init__(self, max_message=16384, rx_buf=4096):
        self.max_message = max_message
        self.rx_size = rx_buf
        self._message = bytearray(max_message)
        self._message_mv = memoryview(self._message)
        self._message_view = self._message_mv[:0]  # last view handed out
        self._control = bytearray(125)  # control frames carry at most 125 bytes
        self._header = bytearray(F.MAX_HEADER)
        self._rx = bytearray(rx_buf)
        self._rx_mv = memoryview(self._rx)
        self.reset()

    def reset(self):
        """Forget all buffered bytes and any message in progress (new connection)."""
        self._rx_pos = 0  # next unparsed byte in the rx buffer
        self._rx_end = 0  # end of the bytes read into it
        self._phase = _FIRST_TWO
        self._filled = 0  # bytes of the current piece (header or payload) copied so far
        self._header_len = 0
        self._payload_len = 0
        self._frame_op = 0
        self._dest = self._header
        self._dest_off = 0
        self._message_op = 0  # opcode of a fragmented message in progress (0: none)
        self._message_len = 0
        self._control_len = 0
        self._oversized = False
        self._direct = False  # the last read_buffer() was into the message buffer
        self.skipped_op = 0
        self.skipped_size = 0

    # ---- input ---------------------------------------------------------

    def read_buffer(self):
        """Where the next read goes. Normally the rx buffer; the rest of a
        large payload goes straight into the message buffer instead, saving
        a copy. Call it when parse() has returned 0: only then is every
        buffered byte used up."""
        self._direct = False
        if self._phase == _PAYLOAD and self._dest is self._message and not self._oversized:
            start = self._dest_off + self._filled
            end = self._dest_off + self._payload_len
            if end - start >= len(self._rx):
                self._direct = True
                return self._message_mv[start:end]
        if self._rx_pos == self._rx_end:
            self._rx_pos = self._rx_end = 0
            return self._rx  # the whole buffer, no view object
        return self._rx_mv[self._rx_end :]

    def got(self, n):
        """n bytes were read into the last read_buffer()."""
        if self._direct:
            self._filled += n
        else:
            self._rx_end += n

    def take_until(self, marker):
        """Bytes up to `marker` (e.g. the end of the HTTP head before the
        frames), consumed with the marker; None until they are buffered.
        Raises ValueError when the rx buffer is full without the marker."""
        i = self._rx.find(marker, self._rx_pos, self._rx_end)
        if i < 0:
            if self._rx_end == len(self._rx):
                raise ValueError("no %r in %d bytes" % (marker, len(self._rx)))
            return None
        head = bytes(self._rx_mv[self._rx_pos : i])
        self._rx_pos = i + len(marker)
        if self._rx_pos == self._rx_end:
            self._rx_pos = self._rx_end = 0
        return head

    # ---- events --------------------------------------------------------

    def parse(self):
        """Parse as far as the buffered bytes go; return an event or 0."""
        while True:
            if self._phase == _FIRST_TWO:
                if not self._take(self._header, 0, 2):
                    return 0
                self._header_len = F.header_size(self._header[0], self._header[1])
                self._phase = _REST_OF_HEADER
            if self._phase == _REST_OF_HEADER:
                if not self._take(self._header, 2, self._header_len - 2):
                    return 0
                self._begin_payload()
                self._phase = _PAYLOAD
            if not self._take(self._dest, self._dest_off, self._payload_len):
                return 0
            self._phase = _FIRST_TWO
            ev = self._end_frame()
            if ev:
                return ev

    def message(self):
        """The last message (or the kept head of a skipped one) as a view."""
        n = self._message_len if self._message_len < self.max_message else self.max_message
        if len(self._message_view) != n:
            self._message_view = self._message_mv[:n]
        return self._message_view

    def control(self):
        """The last control frame's payload (allocates; control frames are rare)."""
        return memoryview(self._control)[: self._control_len]

    # ---- internals -----------------------------------------------------

    def _take(self, buf, off, n):
        # Move buffered bytes toward buf[off:off+n]; True once all n are in.
        # Bytes past the end of buf are dropped: that is how an oversized
        # message is skipped while its head is kept.
        filled = self._filled
        want = n - filled
        avail = self._rx_end - self._rx_pos
        k = want if want <= avail else avail
        room = len(buf) - off - filled
        if room > 0:
            F.copy(buf, off + filled, self._rx, self._rx_pos, k if k <= room else room)
        if want > avail:
            self._filled = filled + avail
            self._rx_pos = self._rx_end = 0
            return False
        self._rx_pos += k
        self._filled = 0
        return True

    def _begin_payload(self):
        # Validate a complete header and pick where its payload goes.
        b0 = self._header[0]
        b1 = self._header[1]
        op = b0 & 0x0F
        if b0 & 0x70:
            raise ProtocolError(1002, "reserved bits set")
        if b1 & 0x80:
            raise ProtocolError(1002, "masked frame from server")
        n = F.payload_len(self._header)
        if n < 0:
            raise ProtocolError(1002, "bad 64-bit length")
        self._frame_op = op
        self._payload_len = n
        if op & 8:
            if op != OP_CLOSE and op != OP_PING and op != OP_PONG:
                raise ProtocolError(1002, "unknown opcode %d" % op)
            if not b0 & 0x80:
                raise ProtocolError(1002, "fragmented control frame")
            if n > 125:
                raise ProtocolError(1002, "control frame too long")
            if op == OP_CLOSE and n == 1:
                raise ProtocolError(1002, "close frame with 1-byte payload")
            self._dest = self._control
            self._dest_off = 0
            return
        if op == OP_CONT:
            if not self._message_op:
                raise ProtocolError(1002, "continuation without a message")
            off = self._message_len
        elif op == OP_TEXT or op == OP_BINARY:
            if self._message_op:
                raise ProtocolError(1002, "new message inside a fragmented one")
            off = 0
            self._message_op = op
            self._oversized = False
        else:
            raise ProtocolError(1002, "unknown opcode %d" % op)
        if off + n > self.max_message:
            self._oversized = True
        self._dest = self._message
        self._dest_off = off

    def _end_frame(self):
        op = self._frame_op
        if op & 8:
            self._control_len = self._payload_len
            return op
        self._message_len = self._dest_off + self._payload_len
        if not self._header[0] & 0x80:
            return 0  # more fragments follow
        op = self._message_op
        self._message_op = 0
        if self._oversized:
            self.skipped_op = op
            self.skipped_size = self._message_len
            return SKIPPED
        return op
