# MicroPython's time.ticks_* and micropython.const for CPython test runs only.
import sys
import time
import types

if not hasattr(time, "ticks_ms"):
    time.ticks_ms = lambda: int(time.monotonic() * 1000)
    time.ticks_us = lambda: int(time.monotonic() * 1000000)
    time.ticks_diff = lambda a, b: a - b
    time.ticks_add = lambda a, b: a + b
    time.sleep_ms = lambda ms: time.sleep(ms / 1000)

if "micropython" not in sys.modules:
    _m = types.ModuleType("micropython")
    _m.const = lambda x: x
    sys.modules["micropython"] = _m
