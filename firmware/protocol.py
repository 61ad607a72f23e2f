# The xiaozhi protocol's JSON side (docs/protocol.md §1.2–§2): handshake headers, the
# client hello, every device message, and validation of server messages.
# Pure string/dict work, tested under both runtimes.
#
# Device messages are built as strings, not dicts: MicroPython dicts are
# unordered and servers are used to the reference's compact, session_id-first
# layout. Every value still goes through json.dumps, so it is always escaped.
try:
    import json
except ImportError:  # pragma: no cover
    import ujson as json

DEFAULT_DOWNLINK_RATE = 24000  # when the server hello omits it (docs/protocol.md §1.4)
DEFAULT_FRAME_MS = 60
UPLINK_RATE = 16000

_MODES = ("auto", "manual", "realtime")


def _q(value):
    return json.dumps(value)


def format_mac(mac):
    """6 bytes -> 'aa:bb:cc:dd:ee:ff' (the Device-Id header)."""
    return ":".join("%02x" % b for b in mac)


def uuid4(rand16):
    """A lower-case UUID v4 string from 16 random bytes (the Client-Id)."""
    b = bytearray(rand16)
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = "".join("%02x" % x for x in b)
    return "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])


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


def client_hello(version, fmt, rate=UPLINK_RATE, frame_ms=DEFAULT_FRAME_MS):
    return (
        '{"type":"hello","version":%d,"features":{"mcp":true,"glyph_push":false},'
        '"transport":"websocket","audio_params":{"format":%s,"sample_rate":%d,'
        '"channels":1,"frame_duration":%d}}' % (version, _q(fmt), rate, frame_ms)
    )


def listen_start(sid, mode):
    if mode not in _MODES:
        raise ValueError("listen mode must be one of %s, got %r" % (_MODES, mode))
    return '{"session_id":%s,"type":"listen","state":"start","mode":%s}' % (_q(sid), _q(mode))


def listen_stop(sid):
    return '{"session_id":%s,"type":"listen","state":"stop"}' % _q(sid)


def listen_detect(sid, text):
    return '{"session_id":%s,"type":"listen","state":"detect","text":%s}' % (_q(sid), _q(text))


def abort(sid, reason=None):
    if reason is None:
        return '{"session_id":%s,"type":"abort"}' % _q(sid)
    return '{"session_id":%s,"type":"abort","reason":%s}' % (_q(sid), _q(reason))


def ping():
    """The stock server's JSON keepalive; it answers {"type":"pong"} only with
    enable_websocket_ping on, so the WebSocket PING is what proves the link."""
    return '{"type":"ping"}'


def mcp(sid, payload):
    """Wrap a JSON-RPC reply (dict) for the server."""
    return '{"session_id":%s,"type":"mcp","payload":%s}' % (
        _q(sid), json.dumps(payload, separators=(",", ":"))
    )


def parse(text):
    """Decode one server text frame; ValueError unless it is a JSON object with a string type."""
    try:
        msg = json.loads(text)
    except ValueError:
        raise ValueError("not JSON: %r" % text[:60])
    if not isinstance(msg, dict):
        raise ValueError("not a JSON object: %r" % text[:60])
    if not isinstance(msg.get("type"), str):
        raise ValueError("message without a string 'type': %r" % text[:60])
    return msg


class ServerHello:
    """The parts of the server hello the device keeps (docs/protocol.md §1.4)."""

    def __init__(self, msg, previous_session_id=""):
        if msg.get("transport") != "websocket":
            raise ValueError("server hello transport is %r, not 'websocket'" % msg.get("transport"))
        sid = msg.get("session_id")
        self.session_id = sid if isinstance(sid, str) else previous_session_id
        params = msg.get("audio_params")
        if not isinstance(params, dict):
            params = {}
        self.format = params.get("format") if isinstance(params.get("format"), str) else None
        self.sample_rate = _positive_int(params.get("sample_rate"), DEFAULT_DOWNLINK_RATE, "sample_rate")
        self.frame_ms = _positive_int(params.get("frame_duration"), DEFAULT_FRAME_MS, "frame_duration")
        if not 8000 <= self.sample_rate <= 48000:
            raise ValueError("server hello sample_rate %d out of 8000..48000" % self.sample_rate)
        if not 10 <= self.frame_ms <= 120:
            raise ValueError("server hello frame_duration %d out of 10..120" % self.frame_ms)


def _positive_int(value, default, name):
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError("server hello %s is not a positive number: %r" % (name, value))
    return int(value)
