"""A hostile server: abuse sent into a live MockServer session, for fuzzing a device.

Two kinds of abuse, drawn from a seeded random.Random so a failure replays:

- *message* abuse is well-formed WebSocket carrying bad content: malformed
  JSON, wrong field types, unknown types, random binary of random length,
  v2/v3 frames whose length field lies, text that is not an object, deep
  nesting, invalid UTF-8 in a text frame. A device must
  ignore each one and keep the session: the turn in progress still completes.
- *frame* abuse breaks the WebSocket protocol itself (RFC 6455), written raw
  to the TCP transport because `websockets` refuses to send it: orphan or
  interleaved fragments, fragmented or oversized control
  frames, reserved opcodes and RSV bits, masked server frames, absurd lengths,
  a message over the device's 64 KB guard, CLOSE with junk codes or a 1-byte
  body. A device must drop the connection
  (or answer a CLOSE), report it, and open a fresh session on the next press.

    srv = HostileServer(pace_ms=0).start_in_thread()
    n = srv.send_messages(50)           # into the newest session
    name = srv.send_frame_abuse()       # returns what it sent, for the report
"""

import asyncio
import json
import random
import struct

from tools.common import framing

from .server import MockServer

# Control opcodes (RFC 6455 §5.5) and the ones no extension here defines.
_CONT, _TEXT, _BIN, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_RESERVED = (0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF)
# Close codes a peer must never send (RFC 6455 §7.4.1/§7.4.2) or that are out of range.
_JUNK_CLOSE = (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535)

# "goodbye" is left out: it is a valid request to close, not abuse.
_TYPES = ("hello", "tts", "stt", "llm", "listen", "mcp", "abort", "iot", "system", "alert")
_WRONG = (None, 0, -1, 1.5e308, True, "", "x" * 300, [], [1, "a"], {}, {"nested": {"deep": [None]}})


def frame(opcode, payload=b"", fin=True, rsv=0, mask=None, length=None):
    """One raw WebSocket frame. length overrides the real payload length (to lie)."""
    n = len(payload) if length is None else length
    head = bytearray([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mbit = 0x80 if mask else 0
    if n < 126:
        head.append(mbit | n)
    elif n < 65536:
        head.append(mbit | 126)
        head += struct.pack(">H", n)
    else:
        head.append(mbit | 127)
        head += struct.pack(">Q", n)
    if mask:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes(head) + bytes(payload)


def message_abuse(rng, version, sid):
    """-> (name, "text" | "binary" | "raw", data): one well-formed frame with bad content."""
    pick = rng.randrange(9)
    if pick == 8:
        bad = rng.choice((b"\xff\xfe", b"\xc3", b"\xed\xa0\xbd", b"ok\xe2\x82", b"\xf8\x88\x80\x80\x80"))
        return "invalid utf-8 text", "raw", frame(_TEXT, b'{"type":"stt","text":"' + bad + b'"}')
    if pick == 0:
        good = json.dumps({"type": rng.choice(_TYPES), "state": "start", "session_id": sid})
        return "malformed json", "text", good[:rng.randrange(1, len(good))]
    if pick == 1:
        msg = {"type": rng.choice(_TYPES), "session_id": sid}
        for key in rng.sample(("state", "text", "emotion", "payload", "audio_params", "session_id",
                               "transport", "version", "mode", "reason"), rng.randrange(1, 4)):
            msg[key] = rng.choice(_WRONG)
        return "wrong field types", "text", json.dumps(msg)
    if pick == 2:
        return "unknown type", "text", json.dumps({"type": "t%08x" % rng.getrandbits(32), "session_id": sid})
    if pick == 3:
        return "wrong type of type", "text", json.dumps({"type": rng.choice(_WRONG)})
    if pick == 4:
        return "not an object", "text", rng.choice(("[1,2,3]", '"str"', "42", "null", "", " ", "{}"))
    if pick == 5:
        # Up to the device's 64 KB message guard; bigger is frame abuse ("oversized message").
        n = rng.choice((0, 1, 2, 3, 15, 16, 17, rng.randrange(4096), rng.randrange(65536)))
        return "random binary", "binary", rng.randbytes(n)
    if pick == 6:
        return "lying length", "binary", framing.lying_frame(version, rng.randbytes(rng.randrange(64)))
    depth = rng.randrange(20, 200)  # a recursive JSON parser must not fall over
    return "deep nesting", "text", '{"type":"stt","text":' + "[" * depth + "]" * depth + "}"


def frame_abuse(rng):
    """-> (name, raw bytes): a protocol violation the device must drop the link for."""
    pick = rng.randrange(12)
    if pick == 10:
        return "oversized message", frame(_BIN, rng.randbytes(rng.randrange(65537, 200000)))
    if pick == 0:
        return "masked server frame", frame(_TEXT, b'{"type":"llm"}', mask=rng.randbytes(4))
    if pick == 1:
        return "orphan continuation", frame(_CONT, rng.randbytes(rng.randrange(1, 100)))
    if pick == 2:
        return "interleaved fragments", frame(_TEXT, b'{"type":', fin=False) + frame(_BIN, b"\x00" * 8)
    if pick == 3:
        return "fragmented ping", frame(_PING, b"ab", fin=False) + frame(_CONT, b"cd")
    if pick == 4:
        return "oversized ping", frame(_PING, rng.randbytes(rng.randrange(126, 1000)))
    if pick == 5:
        return "oversized close", frame(_CLOSE, struct.pack(">H", 1000) + b"x" * rng.randrange(124, 400))
    if pick == 6:
        return "reserved opcode", frame(rng.choice(_RESERVED), rng.randbytes(rng.randrange(20)))
    if pick == 7:
        return "rsv bits", frame(_TEXT, b'{"type":"tts"}', rsv=rng.randrange(1, 8))
    if pick == 8:
        return "absurd length", frame(_BIN, b"\x00" * 10, length=rng.choice((1 << 63, 1 << 40, 0xFFFFFFFF)))
    if pick == 9:
        return "close 1-byte body", frame(_CLOSE, b"\x03")
    code = rng.choice(_JUNK_CLOSE)
    return "close code %d" % code, frame(_CLOSE, struct.pack(">H", code) + rng.choice((b"", b"\xff\xfe")))


class HostileServer(MockServer):
    """A MockServer (real turns, real WebSocket) that sends abuse on demand."""

    def __init__(self, *args, seed=1, **kw):
        super().__init__(*args, **kw)
        self.rng = random.Random(seed)
        self.sent = {}  # abuse name -> count, for the report

    def _count(self, name):
        self.sent[name] = self.sent.get(name, 0) + 1

    async def asend_messages(self, n, session=-1):
        conn = self._conn(session)
        for _ in range(n):
            name, kind, data = message_abuse(self.rng, conn.version, conn.sid)
            self._count(name)
            if kind == "text":
                await conn.send_text(data)
            elif kind == "binary":
                await conn.send_frame(data)
            else:  # a well-formed frame websockets will not send (invalid UTF-8)
                conn.ws.transport.write(data)
        return n

    async def asend_frame_abuse(self, session=-1):
        conn = self._conn(session)
        name, raw = frame_abuse(self.rng)
        self._count(name)
        conn.ws.transport.write(raw)
        await asyncio.sleep(0)
        return name

    def send_messages(self, n, session=-1, timeout=30.0):
        """Send n message abuses into the session; returns n."""
        return self._run(self.asend_messages(n, session), timeout)

    def send_frame_abuse(self, session=-1, timeout=10.0):
        """Write one protocol violation to the session's TCP stream; returns its name."""
        return self._run(self.asend_frame_abuse(session), timeout)
