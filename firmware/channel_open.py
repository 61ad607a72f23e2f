# Opening the WebSocket channel (docs/protocol.md §1.2–§1.5): connect with the
# handshake headers, send the client hello, wait for the server's and check
# it. Only an open runs this, so it is not part of firmware/channel.py: the
# channel imports it for each open and drops it after (firmware/resident.py
# CONNECT_ONLY), and the heap a session runs in holds only the per-frame
# path. The open itself is where the heap peaks between turns, so each part
# is loaded only while it is needed: the WebSocket handshake's modules go
# once the socket is open, before the hellos' module comes.
import asyncio

from micropython import const

from firmware import log, protocol, resident
from firmware.channel import ChannelError  # loaded: only the channel imports this module
from wsclient import OP_BINARY, WSError

_TAG = "channel"
HELLO_TIMEOUT_MS = const(10000)  # docs/protocol.md §1.5
HANDSHAKE_TIMEOUT_MS = const(10000)


def headers(token, version, device_id, client_id):
    """The handshake headers of docs/protocol.md §1.2, as (name, value) pairs."""
    out = []
    if token:
        # A token that already names its scheme ("Bearer x", "Basic x") goes as-is.
        out.append(("Authorization", token if " " in token else "Bearer " + token))
    out.append(("Protocol-Version", str(version)))
    out.append(("Device-Id", device_id))
    out.append(("Client-Id", client_id))
    return out


async def open_session(ch, settings, codec_up):
    """Connect ch.ws and exchange hellos; -> hello.ServerHello. Raises
    ChannelError naming what failed."""
    url = settings["ws_url"]
    version = settings["protocol_version"]
    ident = ch.identity
    try:
        await ch.ws.connect(url, headers=headers(ident.token(settings["ws_token"]), version, ident.device_id,
                                                 ident.client_id),
                            cadata=_cadata(ch.cfg.get("ca_file")), verify=ch.cfg.get("tls_verify"),
                            timeout_ms=HANDSHAKE_TIMEOUT_MS)
    except (OSError, WSError, asyncio.TimeoutError) as e:
        raise ChannelError("server not connected (%s): %s %s" % (url, type(e).__name__, e))
    resident.drop(resident.HANDSHAKE_ONLY)
    from firmware import hello as H  # only now: see the top of this file

    ch.ws.send_text(H.client_hello(version, codec_up.fmt, codec_up.sample_rate, codec_up.frame_ms))
    log.event("tx", {"type": "hello"})
    try:
        msg = await asyncio.wait_for_ms(_await_hello(ch.ws), HELLO_TIMEOUT_MS)
        hello = H.server_hello(msg, ch.session_id)
    except asyncio.TimeoutError:
        raise ChannelError("no server hello within %d ms" % HELLO_TIMEOUT_MS)
    except (WSError, ValueError) as e:
        raise ChannelError("hello failed: %s" % e)
    log.event("rx", {"type": "hello", "session_id": hello.session_id, "sample_rate": hello.sample_rate,
                     "format": hello.format, "paced": hello.paced})
    return hello


def _cadata(path):
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise OSError("CA file %s unreadable: %s" % (path, e))


async def _await_hello(ws):
    while True:
        op, mv = await ws.recv()
        if op == OP_BINARY:
            continue  # audio before the hello means nothing yet
        text = protocol.as_text(mv)
        try:
            msg = protocol.parse(text)
        except ValueError:
            # The stock server refuses auth with a plain text frame, then closes.
            raise ValueError("server says: %s" % text[:80])
        if msg["type"] == "hello":
            return msg
        log.warn(_TAG, "ignoring %r before the server hello" % msg["type"])
