# One-line log records on stdout, plus machine-readable event lines for the
# simulator and tests. Callers never pass secrets here (see config_schema.redacted()).
# Both are stamped with firmware.clock's virtual milliseconds since start, so
# the simulator's event timeline stays in device time when it runs faster.
import sys

from firmware import clock

try:
    import json
except ImportError:  # pragma: no cover - every supported port has json
    import ujson as json

DEBUG = 0
INFO = 1
WARN = 2
ERROR = 3
_NAMES = ("D", "I", "W", "E")

level = INFO
# When true, event() prints "@EV {...}" lines; tools.sim turns them into --events.
events = False


def _emit(lv, tag, msg):
    if lv >= level:
        print("%8d %s %s: %s" % (clock.now_ms(), _NAMES[lv], tag, msg))


def debug(tag, msg):
    _emit(DEBUG, tag, msg)


def info(tag, msg):
    _emit(INFO, tag, msg)


def warn(tag, msg):
    _emit(WARN, tag, msg)


def error(tag, msg):
    _emit(ERROR, tag, msg)


def exc(tag, msg, e):
    """Log an exception with its type, so 'OSError 113' is not reduced to '113'."""
    _emit(ERROR, tag, "%s: %s %s" % (msg, type(e).__name__, e))


def event(kind, data=None):
    """A timeline event: state changes, messages by type, audio frame counts."""
    if events:
        print("@EV " + json.dumps({"t": clock.now_ms(), "k": kind, "d": data}))
        if hasattr(sys.stdout, "flush"):
            sys.stdout.flush()
