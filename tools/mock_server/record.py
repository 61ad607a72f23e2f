"""What the mock server remembers about each connection, for tests and --record.

Every frame both ways is kept as Frame(t_ms, dir, kind, data): dir "rx" (from
the device) or "tx" (to the device), kind "text" or "binary", data = the parsed
JSON (or the raw string if the text was not JSON) for text, the byte length for
binary. Times are milliseconds since the connection was accepted.
"""

import json
import threading
import time
from collections import namedtuple
from dataclasses import dataclass, field

Frame = namedtuple("Frame", "t_ms dir kind data")


@dataclass
class Turn:
    """One user turn and the reply the mock gave to it."""

    index: int
    source: str  # "audio", "text" (listen detect) or "wake" (wake-word greeting)
    mode: str  # listen mode at the time: manual / auto / realtime
    end: str  # what ended it: stop / vad / max / detect
    frames: int = 0  # uplink audio frames (packets in opus mode)
    bytes: int = 0  # uplink PCM bytes (decoded, in opus mode)
    level_db: float = float("-inf")
    stt: str = None  # None when no stt was sent (empty utterance, wake word)
    reply: str = ""
    sentences: list = field(default_factory=list)
    audio_frames: int = 0  # downlink audio frames actually sent
    aborted: bool = False  # cut short by an abort
    interrupted: bool = False  # cut short by a newer turn or the connection ending
    t_start_ms: int = 0  # listen start / detect
    t_end_ms: int = 0  # utterance ended (stop / VAD)
    t_done_ms: int = None  # tts stop sent
    pcm: bytes = b""  # the utterance's uplink audio as decoded, for tests that check what was heard


class Session:
    """One WebSocket connection as seen by the mock server."""

    def __init__(self, index, path, headers, on_change, recorder=None):
        self.index = index
        self.path = path
        # Header names as the device sent them; lookups via header() are case-insensitive.
        self.headers = dict(headers)
        self.session_id = None  # set when the server hello is sent
        self.protocol_version = 1
        self.hello = None  # the device's hello (dict)
        self.frames = []
        self.mcp_replies = []  # every mcp payload the device sent, in order
        self.mcp_tools = []  # tools collected from tools/list (all pages)
        self.mcp_results = []  # (request payload, reply payload or None on timeout)
        self.turns = []
        self.auth_ok = None
        self.closed = False
        self.close_code = None  # code of the Close the device sent; 1006 if it sent none
        self.close_sent = None  # code of the Close the server sent, if any
        self.opened_at = time.time()
        self._t0 = time.monotonic()
        self._on_change = on_change
        self._recorder = recorder
        self._conn = None  # the live connection handler (server.py)

    def header(self, name, default=None):
        low = name.lower()
        for k, v in self.headers.items():
            if k.lower() == low:
                return v
        return default

    def t_ms(self):
        return int((time.monotonic() - self._t0) * 1000)

    def add_frame(self, direction, kind, data):
        f = Frame(self.t_ms(), direction, kind, data)
        self.frames.append(f)
        if self._recorder:
            self._recorder.frame(self, f)
        self._on_change()
        return f

    def changed(self):
        self._on_change()

    # ---- convenience accessors for tests -------------------------------------------
    def texts(self, direction=None, type=None):
        """Parsed JSON text frames (dicts), optionally filtered by dir and "type"."""
        out = []
        for f in self.frames:
            if f.kind != "text" or not isinstance(f.data, dict):
                continue
            if direction and f.dir != direction:
                continue
            if type and f.data.get("type") != type:
                continue
            out.append(f.data)
        return out

    def binary(self, direction):
        """Byte lengths of the binary frames in one direction."""
        return [f.data for f in self.frames if f.kind == "binary" and f.dir == direction]

    def tts_states(self):
        return [m.get("state") for m in self.texts("tx", "tts")]

    def summary(self):
        return {
            "index": self.index,
            "path": self.path,
            "headers": self.headers,
            "session_id": self.session_id,
            "protocol_version": self.protocol_version,
            "frames": len(self.frames),
            "turns": len(self.turns),
            "closed": self.closed,
            "close_code": self.close_code,
            "close_sent": self.close_sent,
        }


class Recorder:
    """Writes sessions and frames as JSON lines (one object per line, flushed)."""

    def __init__(self, path):
        # Kept open for the server's lifetime; shutdown() closes it.
        self._f = open(path, "w", encoding="utf-8")  # noqa: SIM115
        self._lock = threading.Lock()

    def _write(self, obj):
        with self._lock:
            if self._f.closed:
                return
            self._f.write(json.dumps(obj, ensure_ascii=False) + "\n")
            self._f.flush()

    def open(self, session):
        self._write({"s": session.index, "event": "open", "wall": round(session.opened_at, 3),
                     "path": session.path, "headers": session.headers})

    def frame(self, session, f):
        self._write({"s": session.index, "t": f.t_ms, "dir": f.dir, "kind": f.kind, "data": f.data})

    def close(self, session):
        self._write({"s": session.index, "t": session.t_ms(), "event": "close",
                     "code": session.close_code, "sent": session.close_sent,
                     "turns": len(session.turns)})

    def shutdown(self):
        with self._lock:
            self._f.close()


def read_record(path):
    """Load a --record file: list of dicts, one per line."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
