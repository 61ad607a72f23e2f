# Runs the real firmware (sim board) like main.py and, at the first speaker
# write of the first reply (mid-turn: WebSocket, codecs, jitter buffer, MCP
# all live), reports where the heap goes. MicroPython only; started by
# tools/bench/heap.py in a device directory with config.json and sim.json.
#
# Prints one "HEAPSPLIT {json}" line:
#   used      gc.mem_alloc() after a collection
#   buffers   bytes of bytearray/bytes/array payload reachable from the
#             Device and from every module (the same size on the 32-bit chip)
#   objects   used - buffers: bytecode, instances, dicts, lists, strings
#             (pointer-sized fields: about half the size on the chip)
#   boot_resident  boot-only and on-demand modules (firmware/resident.py) still
#                  in sys.modules mid-turn
#   mcp_resident   MCP modules (firmware/resident.py MCP) in sys.modules mid-turn
#   boot_cost      what importing those modules costs in this heap
#   connect_resident  connect-only modules (the channel's open, the
#                  WebSocket handshake) still in sys.modules mid-turn
#   largest   the ten largest buffers found, with the path they were found at
#   loaded_from  the file a few modules came from (.py sources or .mpy)
import gc
import json
import sys
from array import array

from firmware import app
from firmware.hal import sim as sim_hal
from firmware.resident import BOOT_ONLY, CONNECT_ONLY, MCP, ON_DEMAND

_BUFFERS = (bytearray, bytes, array)
_SHOWN = ("firmware.app", "firmware.codec", "wsclient")
_report = {}


def _nbytes(o):
    return len(o) if not isinstance(o, array) else len(bytearray(o))


def _children(o):
    if isinstance(o, dict):
        for k, v in o.items():
            yield str(k), v
    elif isinstance(o, (list, tuple, set)):
        for i, v in enumerate(o):
            yield "[%d]" % i, v
    else:
        try:
            d = o.__dict__
        except AttributeError:
            return
        for k, v in d.items():
            yield "." + str(k), v


def _walk(roots):
    seen = set()
    total = 0
    found = []
    stack = list(roots)
    while stack:
        path, o = stack.pop()
        if isinstance(o, (int, float, str, bool)) or o is None or type(o) is type:
            continue
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, _BUFFERS):
            n = _nbytes(o)
            total += n
            found.append((n, path))
            continue
        if type(o).__name__ in ("function", "bound_method", "generator", "closure"):
            continue
        for name, v in _children(o):
            stack.append((path + name, v))
    found.sort(reverse=True)
    return total, found[:10]


def _snapshot(dev):
    gc.collect()
    used = gc.mem_alloc()
    roots = [("dev", dev)] + [(name, m) for name, m in sys.modules.items()]
    buffers, largest = _walk(roots)
    resident = [m for m in BOOT_ONLY + ON_DEMAND if m in sys.modules]
    connect_resident = [m for m in CONNECT_ONLY if m in sys.modules]
    mcp = [m for m in MCP if m in sys.modules]
    gc.collect()
    before = gc.mem_alloc()
    for m in BOOT_ONLY + ON_DEMAND:
        if m not in sys.modules:
            __import__(m)
    gc.collect()
    cost = gc.mem_alloc() - before
    _report.update(used=used, buffers=buffers, objects=used - buffers, boot_resident=resident,
                   connect_resident=connect_resident, mcp_resident=mcp,
                   boot_cost=cost, largest=[[n, p] for n, p in largest], heap=used + gc.mem_free(),
                   loaded_from={m: getattr(sys.modules[m], "__file__", "?") for m in _SHOWN if m in sys.modules})
    print("HEAPSPLIT " + json.dumps(_report))


dev = app.Device()
_write = sim_hal.Speaker.write


def write(self, mv):
    if not _report:
        _report["at"] = "first speaker write"
        _snapshot(dev)
    return _write(self, mv)


sim_hal.Speaker.write = write

import asyncio  # noqa: E402

sys.exit(asyncio.run(dev.run()))
