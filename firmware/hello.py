# The xiaozhi protocol's hellos (docs/protocol.md §1.3–§1.4): the client hello
# and the check of the server hello. Pure string/dict work, tested under both
# runtimes. Only an open uses it (firmware/channel_open.py), so it is not kept
# resident (firmware/resident.py CONNECT_ONLY); firmware/protocol.py has the
# messages of a running session.
try:
    import json
except ImportError:  # pragma: no cover
    import ujson as json

from firmware.protocol import UPLINK_RATE

DEFAULT_DOWNLINK_RATE = 24000  # when the server hello omits it (docs/protocol.md §1.4)
DEFAULT_FRAME_MS = 60


def client_hello(version, fmt, rate=UPLINK_RATE, frame_ms=DEFAULT_FRAME_MS):
    return (
        '{"type":"hello","version":%d,"features":{"mcp":true,"glyph_push":false},'
        '"transport":"websocket","audio_params":{"format":%s,"sample_rate":%d,'
        '"channels":1,"frame_duration":%d}}' % (version, json.dumps(fmt), rate, frame_ms)
    )


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
