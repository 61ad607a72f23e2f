# The real firmware (main.py) plus one sample of the heap after each turn, for
# tools/bench/soak.py: when a reply has played out (the "audio" play event),
# collect and emit {"free", "alloc"} as a "heap" event. It hooks only the event
# stream, so it works whether or not the firmware reports its heap itself.
import gc
import sys

from firmware import log

_event = log.event


def event(kind, data=None):
    _event(kind, data)
    if kind == "audio" and isinstance(data, dict) and data.get("dir") == "play":
        gc.collect()
        _event("heap", {"free": gc.mem_free(), "alloc": gc.mem_alloc(), "probe": True})


log.event = event

from firmware import app  # noqa: E402  (after the hook, so every module logs through it)

sys.exit(app.main())
