# One audio channel to the server (spec §1): WebSocket connect with the
# xiaozhi headers, the hello exchange, and the reader loop that hands JSON
# and audio to the app. The app owns what the messages mean.
import asyncio

from firmware import log, protocol
from wsclient import OP_BINARY, WSClosed, WSError

_TAG = "session"
HELLO_TIMEOUT_MS = 10000  # spec §1.4
HANDSHAKE_TIMEOUT_MS = 10000


class SessionError(Exception):
    """The channel could not open or died; str() is the reason for the log."""


class Session:
    """One open of the channel over the device's (reused) WebSocket."""

    def __init__(self, ws, previous_session_id=""):
        self.ws = ws
        self.session_id = previous_session_id

    async def open(self, url, headers, hello_text, cadata=None, verify=True):
        """Connect and exchange hellos. Raises SessionError with a clear reason."""
        try:
            await self.ws.connect(url, headers=headers, cadata=cadata, verify=verify,
                                  timeout_ms=HANDSHAKE_TIMEOUT_MS)
        except (OSError, WSError, asyncio.TimeoutError) as e:
            raise SessionError("server not connected (%s): %s %s" % (url, type(e).__name__, e))
        self.ws.send_text(hello_text)
        log.event("tx", {"type": "hello"})
        try:
            msg = await asyncio.wait_for_ms(self._await_hello(), HELLO_TIMEOUT_MS)
        except asyncio.TimeoutError:
            await self.close()
            raise SessionError("no server hello within %d ms" % HELLO_TIMEOUT_MS)
        except (WSError, ValueError) as e:
            await self.close()
            raise SessionError("hello failed: %s" % e)
        hello = protocol.ServerHello(msg, self.session_id)
        self.session_id = hello.session_id
        log.event("rx", {"type": "hello", "session_id": self.session_id, "sample_rate": hello.sample_rate})
        return hello

    async def _await_hello(self):
        while True:
            op, mv = await self.ws.recv()
            if op == OP_BINARY:
                continue  # audio before the hello means nothing yet
            text = _text(mv)
            try:
                msg = protocol.parse(text)
            except ValueError:
                # The stock server refuses auth with a plain text frame, then closes.
                raise ValueError("server says: %s" % text[:80])
            if msg["type"] == "hello":
                protocol.ServerHello(msg)  # validate here so a bad hello is the reason
                return msg
            log.warn(_TAG, "ignoring %r before the server hello" % msg["type"])

    async def read(self, on_json, on_audio):
        """Deliver frames until the channel ends; returns the reason it ended."""

        def deliver(op, mv):
            try:
                if op == OP_BINARY:
                    on_audio(mv)
                    return
                text = _text(mv)
                try:
                    msg = protocol.parse(text)
                except ValueError as e:
                    log.warn(_TAG, "dropped bad frame: %s" % e)
                    return
                on_json(msg, len(mv))
            except Exception as e:  # a bug behind one message must not end the session
                log.exc(_TAG, "handling a message failed", e)

        try:
            # recv_loop, not a recv() per frame: audio arrives 16 times a
            # second and each recv() costs a coroutine and a tuple.
            await self.ws.recv_loop(deliver)
        except WSClosed as e:
            return "server closed (code %s%s)" % (e.code, ", " + e.reason if e.reason else "")
        except (WSError, OSError) as e:
            return "connection error: %s %s" % (type(e).__name__, e)

    def send(self, text):
        """Queue a control message. A link that just died is reported by the
        reader, so a send into it is logged here and never raised into the
        button or MCP task that called it."""
        try:
            self.ws.send_text(text)
        except WSError as e:
            log.warn(_TAG, "not sent (%s): %s" % (e, text[:60]))

    async def close(self):
        try:
            await self.ws.close()
        except (OSError, WSError):
            pass


def _text(mv):
    try:
        return str(mv, "utf-8")
    except UnicodeError:
        return "<%d bytes of non-UTF-8 text>" % len(mv)
