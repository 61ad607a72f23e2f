# The xiaozhi protocol's hellos (docs/protocol.md §1.3–§1.4): the client hello
# and the check of the server hello. Pure string/dict work, tested under both
# runtimes. Only an open uses it (firmware/channel_open.py), so it is not kept
# resident (firmware/resident.py CONNECT_ONLY); firmware/protocol.py has the
# messages of a running session.
try:
    import json
except ImportError:  # pragma: no cover
    import ujson as json

from collections import namedtuple

from firmware.protocol import UPLINK_RATE

DEFAULT_DOWNLINK_RATE = 24000  # when the server hello omits it (docs/protocol.md §1.4)
DEFAULT_FRAME_MS = 60


def client_hello(version, fmt, rate=UPLINK_RATE, frame_ms=DEFAULT_FRAME_MS):
    return (
        '{"type":"hello","version":%d,"features":{"mcp":true,"glyph_push":false},'
        '"transport":"websocket","audio_params":{"format":%s,"sample_rate":%d,'
        '"channels":1,"frame_duration":%d}}' % (version, json.dumps(fmt), rate, frame_ms)
    )


# What the device keeps of the server hello. A tuple type, not a class: the
# channel hands it to accept() after dropping this module, and a class
# instance would keep the whole module's code alive (its methods point at it).
# paced: the server sends audio at real time, a few frames ahead of playback
# (the gateway says so in audio_params; docs/protocol.md §1.4), so the
# device's jitter ring can stay a few frames deep.
ServerHello = namedtuple("ServerHello", ("session_id", "format", "sample_rate", "frame_ms", "paced"))


def server_hello(msg, previous_session_id=""):
    """Check a server hello (docs/protocol.md §1.4) -> ServerHello; ValueError
    naming what is wrong. Without a session_id it keeps the previous one."""
    if msg.get("transport") != "websocket":
        raise ValueError("server hello transport is %r, not 'websocket'" % msg.get("transport"))
    sid = msg.get("session_id")
    params = msg.get("audio_params")
    if not isinstance(params, dict):
        params = {}
    fmt = params.get("format")
    rate = _positive_int(params.get("sample_rate"), DEFAULT_DOWNLINK_RATE, "sample_rate")
    frame_ms = _positive_int(params.get("frame_duration"), DEFAULT_FRAME_MS, "frame_duration")
    if not 8000 <= rate <= 48000:
        raise ValueError("server hello sample_rate %d out of 8000..48000" % rate)
    if not 10 <= frame_ms <= 120:
        raise ValueError("server hello frame_duration %d out of 10..120" % frame_ms)
    return ServerHello(sid if isinstance(sid, str) else previous_session_id, fmt if isinstance(fmt, str) else None,
                       rate, frame_ms, params.get("paced") is True)


def _positive_int(value, default, name):
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError("server hello %s is not a positive number: %r" % (name, value))
    return int(value)
