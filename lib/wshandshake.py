# The opening handshake of wsclient (RFC 6455 §4): the URL, TCP and TLS, the
# upgrade request with its Sec-WebSocket-Key, and the check of the server's
# 101 response. It runs once per connection, so it lives apart from the
# per-frame code: WebSocket.connect() imports it, and a caller short of RAM
# may drop it from sys.modules while the connection runs (the firmware does,
# see firmware/resident.py); the next connect() loads it again.
import asyncio
import binascii
import hashlib

from wsclient import WSError, close_stream
from wsframe import random_bytes

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_RESERVED = ("host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version")


async def connect(url, headers, cadata, verify, timeout_ms, parser, log):
    """Open TCP (+TLS) to url and upgrade it within timeout_ms; -> the asyncio
    stream. Bytes that came after the response head wait in parser (the
    first frames may share a read with it). Raises WSError with a one-line
    reason; the socket is closed then."""
    try:
        secure, host, port, path, hosthdr = parse_url(url)
    except ValueError as e:
        raise WSError(str(e))
    key = make_key(random_bytes(16))
    req = request(path, hosthdr, headers, key)
    ctx = _tls(host, cadata, verify, log) if secure else None
    opened = []  # the stream once there is one, so a failure or timeout can close it
    ok = False
    try:
        await asyncio.wait_for_ms(_upgrade(opened, host, port, ctx, req, key, parser), timeout_ms)
        ok = True
    except asyncio.TimeoutError:
        raise WSError("connect to %s timed out after %d ms" % (hosthdr, timeout_ms))
    except (OSError, ValueError) as e:
        # mbedTLS reports certificate problems as ValueError, sockets as OSError.
        raise WSError("connect to %s failed: %s %s" % (hosthdr, type(e).__name__, str(e).strip()))
    finally:
        if not ok and opened:
            close_stream(opened[0])
    return opened[0]


def request(path, hosthdr, headers, key):
    """The upgrade request as bytes. headers: (name, value) pairs or a dict;
    WSError for one that would break the request or that is the client's own."""
    if hasattr(headers, "items"):
        headers = headers.items()
    req = ["GET ", path, " HTTP/1.1\r\nHost: ", hosthdr, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"]
    for k, v in headers:
        k, v = str(k), str(v)
        if not k or k.lower() in _RESERVED or ":" in k or "\r" in k + v or "\n" in k + v:
            raise WSError("bad handshake header: %r" % k)
        req.append("%s: %s\r\n" % (k, v))
    req.append("Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key)
    return "".join(req).encode()


def _tls(host, cadata, verify, log):
    import tlsctx  # here: a plain ws:// client never loads it

    try:
        ctx = tlsctx.client_context(verify, cadata)
    except tlsctx.TLSError as e:
        raise WSError("wss to %s: %s" % (host, e))
    if not verify and log:
        log("TLS certificate NOT verified for %s (verify=False)" % host)
    return ctx


async def _upgrade(opened, host, port, ctx, req, key, parser):
    if ctx is None:
        _, w = await asyncio.open_connection(host, port)
    else:
        _, w = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)
    opened.append(w)
    w.write(req)
    await w.drain()
    while True:
        try:
            head = parser.take_until(b"\r\n\r\n")
        except ValueError:
            raise WSError("handshake response head over %d bytes" % parser.rx_size)
        if head is not None:
            check_response(head, key)
            return
        r = await w.readinto(parser.read_buffer())
        if r is None:
            continue
        if not r:
            raise WSError("connection closed during handshake")
        parser.got(r)


def check_response(head, key):
    """WSError unless head (the response's status line and headers) accepts
    the upgrade for key."""
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
    if h.get("sec-websocket-accept") != accept_key(key):
        raise WSError("handshake: wrong Sec-WebSocket-Accept")
    if h.get("sec-websocket-extensions"):
        raise WSError("handshake: server chose an extension we did not offer")


def parse_url(url):
    """ws[s]://host[:port][/path?query] -> (secure, host, port, path, host_header).

    The path and query go out verbatim; Host carries the port only when it is
    not the scheme's default (what the xiaozhi reference sends). IPv6 literals
    are written in brackets. Raises ValueError naming the URL."""
    if not isinstance(url, str):
        raise ValueError("bad WebSocket URL: not a string")
    if url.startswith("ws://"):
        secure, rest, port = False, url[5:], 80
    elif url.startswith("wss://"):
        secure, rest, port = True, url[6:], 443
    else:
        raise ValueError("bad WebSocket URL (need ws:// or wss://): " + url)
    i = 0
    while i < len(rest) and rest[i] not in "/?#":
        i += 1
    netloc, path = rest[:i], rest[i:]
    if "#" in path:
        raise ValueError("bad WebSocket URL (fragment not allowed): " + url)
    if "@" in netloc:
        raise ValueError("bad WebSocket URL (userinfo not supported): " + url)
    if not path:
        path = "/"
    elif path[0] == "?":
        path = "/" + path
    default = port
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 2:
            raise ValueError("bad WebSocket URL (IPv6 host): " + url)
        host, tail = netloc[1:end], netloc[end + 1 :]
        shown = netloc[: end + 1]
    else:
        j = netloc.find(":")
        host, tail = (netloc, "") if j < 0 else (netloc[:j], netloc[j:])
        shown = host
    if not host or " " in host:
        raise ValueError("bad WebSocket URL (no host): " + url)
    if tail:
        if tail[0] != ":" or not tail[1:].isdigit():
            raise ValueError("bad WebSocket URL (port): " + url)
        port = int(tail[1:])
        if not 0 < port < 65536:
            raise ValueError("bad WebSocket URL (port out of range): " + url)
    if port != default:
        shown = shown + ":" + str(port)
    return secure, host, port, path, shown


def make_key(rand16):
    """Sec-WebSocket-Key: base64 of 16 random bytes."""
    if len(rand16) != 16:
        raise ValueError("key needs 16 random bytes")
    return binascii.b2a_base64(rand16).strip().decode()


def accept_key(key):
    """The Sec-WebSocket-Accept a correct server answers to `key`."""
    if isinstance(key, str):
        key = key.encode()
    d = hashlib.sha1(key + _GUID).digest()
    return binascii.b2a_base64(d).strip().decode()
