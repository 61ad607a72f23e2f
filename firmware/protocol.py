# The xiaozhi protocol's JSON side during a session (docs/protocol.md §1.5–§2):
# every device message and the decoding of server messages. Pure string/dict
# work, tested under both runtimes. What only a connect needs (handshake
# headers, the hellos) is in firmware/hello.py, which is not kept resident.
#
# Device messages are built as strings, not dicts: MicroPython dicts are
# unordered and servers are used to the reference's compact, session_id-first
# layout. Every value still goes through json.dumps, so it is always escaped.
try:
    import json
except ImportError:  # pragma: no cover
    import ujson as json

UPLINK_RATE = 16000

_MODES = ("auto", "manual", "realtime")


def _q(value):
    return json.dumps(value)


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


def mcp(sid, reply):
    """Wrap a JSON-RPC reply, given as JSON text (firmware/mcp.py), for the server."""
    return '{"session_id":%s,"type":"mcp","payload":%s}' % (_q(sid), reply)


def mcp_error(rid, code, message):
    """A JSON-RPC error reply as JSON text, for the errors raised before the MCP server."""
    return '{"jsonrpc":"2.0","id":%s,"error":{"code":%d,"message":%s}}' % (_q(rid), code, _q(message))


def as_text(mv):
    """A received TEXT message as str (a readable stand-in when it is not UTF-8)."""
    try:
        return str(mv, "utf-8")
    except UnicodeError:
        return "<%d bytes of non-UTF-8 text>" % len(mv)


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


def mcp_request_id(head):
    """The JSON-RPC id of an MCP message from its first bytes, or None. Only
    the head was kept, so this scans for the "id" key at the top level of
    "payload" (an "id" inside params is not it) instead of parsing it all."""
    head = bytes(head)
    i = head.find(b'"payload"') if head.find(b'"mcp"') >= 0 else -1
    i = head.find(b"{", i) if i >= 0 else -1
    if i < 0:
        return None
    n = len(head)
    depth = 0
    while i < n:
        c = head[i]
        if c == 0x22:  # a string; at depth 1 it may be the key "id"
            j = _string_end(head, i)
            if depth == 1 and head[i:j] == b'"id"':
                k = j
                while k < n and head[k] in b" \t\r\n:":
                    k += 1
                end = _string_end(head, k) if k < n and head[k] == 0x22 else k
                while end < n and head[end] not in b",} \t\r\n":
                    end += 1
                try:
                    rid = json.loads(head[k:end])
                except ValueError:
                    return None
                return rid if isinstance(rid, (int, str)) and not isinstance(rid, bool) else None
            i = j
            continue
        if c in b"{[":
            depth += 1
        elif c in b"}]":
            depth -= 1
            if depth == 0:
                return None
        i += 1
    return None


def _string_end(b, i):
    """Index just past the JSON string that starts at b[i] (a quote)."""
    i += 1
    while i < len(b) and b[i] != 0x22:
        i += 2 if b[i] == 0x5C else 1
    return i + 1
