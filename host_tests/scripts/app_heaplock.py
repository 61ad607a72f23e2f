# Proves the app's own per-frame code allocates nothing in steady state, with
# micropython.heap_lock(): uplink (encode -> framing -> WebSocket slot queue)
# and downlink (framing -> decode -> jitter -> resample -> volume). Runs in a
# device directory holding config.json and sim.json; prints "J {json}".
import json
import sys

import micropython

from firmware import protocol
from firmware import state as S
from firmware.app import Device
from firmware.framing import Framer


class _Session:
    session_id = "S"


dev = Device()
dev.client_id = "c"
version = int(sys.argv[1])
# As if the server said hello at 16 kHz: the speaker runs at 24 kHz, so the
# resampler is in the path too.
hello = protocol.ServerHello({"type": "hello", "transport": "websocket", "audio_params": {"sample_rate": 16000}})
dev._start_downlink(hello)
dev.framer = Framer(version)
dev.pkt_body = memoryview(dev.pkt)[dev.framer.header_len:]
dev.machine.state = S.SPEAKING

from wsclient import WebSocket  # noqa: E402

ws = WebSocket(max_message=8192, audio_slots=4, audio_slot_size=len(dev.pkt))
ws._state = 1  # open without a socket: only the synchronous per-frame path runs

# One downlink frame as it sits in the WebSocket receive buffer.
frame = bytearray(dev.framer.header_len + 1920)
for i in range(dev.framer.header_len, len(frame)):
    frame[i] = (i * 7) & 0xFF
dev.framer.encode_into(frame, 1920)
rx = memoryview(frame)
for i in range(len(dev.pcm_up)):
    dev.pcm_up[i] = i & 0xFF

out = [0, 0]


def steady(k):
    for _ in range(k):
        dev.uplink_frame(ws)
        dev._on_audio(rx)
        n = dev.jitter.pop_into(dev.pcm_play)
        if n:
            out[0] = len(dev.render(n))
        out[1] += 1


# Warm up: fills the jitter buffer past its prefill and creates the view cache.
steady(8)
micropython.heap_lock()
try:
    steady(50)
    err = None
except MemoryError:
    err = "MemoryError"
micropython.heap_unlock()
print("J " + json.dumps({"error": err, "frames": out[1], "out_bytes": out[0], "sent_queued": ws._acount,
                         "dropped": dev.jitter.dropped}))
