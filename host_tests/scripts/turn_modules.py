# Runs the real firmware (sim board) like main.py and, at the first speaker
# write of the first reply, prints the modules it holds then: one
# "MODULES [names]" line. MicroPython only; started by
# host_tests/test_turn_modules.py through tools.bench.heap.turn().
import asyncio
import json
import sys

from firmware import app
from firmware.hal import sim as sim_hal

dev = app.Device()
_write = sim_hal.Speaker.write
_seen = []


def write(self, mv):
    if not _seen:
        _seen.append(True)
        print("MODULES " + json.dumps(sorted(sys.modules)))
    return _write(self, mv)


sim_hal.Speaker.write = write
sys.exit(asyncio.run(dev.run()))
