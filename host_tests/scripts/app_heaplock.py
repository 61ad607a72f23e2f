# Proves the app's own per-frame code allocates nothing in steady state, with
# micropython.heap_lock(): uplink (encode -> framing -> WebSocket slot queue)
# and downlink (framing -> decode -> jitter -> resample -> volume), on the real
# firmware objects (tools/bench/pipeline.py). Prints "J {json}".
import json
import sys

import micropython

from tools.bench.pipeline import Pipeline

# The server sends 16 kHz; the sim speaker runs at 24 kHz, so the resampler is in the path.
p = Pipeline(int(sys.argv[1]), 16000)
count = [0]


def steady(k):
    for _ in range(k):
        p.uplink()
        p.downlink()
        count[0] += 1


steady(8)  # warm up: past the jitter prefill, view cache filled
micropython.heap_lock()
try:
    steady(50)
    err = None
except MemoryError:
    err = "MemoryError"
micropython.heap_unlock()
print("J " + json.dumps({"error": err, "frames": count[0], "out_bytes": p.out_bytes,
                         "sent_queued": p.ws._acount, "dropped": p.dev.jitter.dropped}))
