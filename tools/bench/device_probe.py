# Runs the real firmware (sim board) with light instrumentation for
# tools/bench/bench_device.py. MicroPython only; started in a device directory
# with config.json and sim.json, driven on stdin like main.py.
#
# It measures, per turn, all times with time.ticks_us and never with a
# collection inside the timed window:
#   - heap bytes allocated per frame by the whole loop (asyncio included),
#     uplink while listening and downlink while speaking, with the GC off so
#     gc.mem_alloc() deltas are exact;
#   - button release (the sim button's event) -> the listen-stop frame handed
#     to the socket;
#   - first downlink frame received -> first speaker write;
#   - connect -> server hello done;
# and the length of a full GC pause at the end. Prints "BENCH {json}" lines.
import gc
import json
import time

import wsframe
import wsframe_ref
from firmware import state as S
from firmware.app import Device
from firmware.channel import WebSocketChannel

dev = Device()
marks = {}
out = {"up_bytes": [], "up_frames": [], "down_bytes": [], "down_frames": [], "first_play_us": [],
       "hello_us": [], "release_to_wire_us": []}

button = dev.hal.button
_push = button.push


def push(kind):
    if kind == "release":
        marks["release"] = time.ticks_us()
    _push(kind)


button.push = push


def is_listen_stop(frame):
    # A masked client TEXT frame whose JSON is a listen stop (decoded only
    # for text frames after a release: audio frames cost one byte test).
    fin, rsv, op, masked, n, hl = wsframe_ref.parse_header(frame, len(frame))
    if op != wsframe.OP_TEXT:
        return False
    body = bytearray(frame[hl : hl + n])
    wsframe_ref.mask(body, 0, n, frame, hl - 4)
    msg = json.loads(body)
    return msg.get("type") == "listen" and msg.get("state") == "stop"


def watch_wire(ws):
    # The client's one writer hands every frame to this stream's write():
    # that is the moment a frame goes on the wire.
    stream = ws._stream
    _write = stream.write

    def write(buf):
        t = time.ticks_us()
        if "release" in marks and buf[0] & 0x0F == wsframe.OP_TEXT and is_listen_stop(buf):
            out["release_to_wire_us"].append(time.ticks_diff(t, marks.pop("release")))
        return _write(buf)

    stream.write = write

_apply = dev.apply


def apply(actions):
    for act, _ in actions:
        if act == S.MIC_ON:
            gc.collect()
            gc.disable()
            marks["up"] = (gc.mem_alloc(), dev.audio.frames_up)
        elif act == S.MIC_OFF and "up" in marks:
            a, f = marks.pop("up")
            out["up_bytes"].append(gc.mem_alloc() - a)
            out["up_frames"].append(dev.audio.frames_up - f)
            gc.enable()
    _apply(actions)


dev.apply = apply

_on_audio = dev.on_audio


def on_audio(mv, n):
    if dev.ctl.accepts_audio():
        if "first_rx" not in marks:
            # Collect first, then start the clock: the collection is the
            # probe's, not the firmware's, and must not count as latency.
            gc.collect()
            gc.disable()
            marks["down"] = gc.mem_alloc()
            marks["nd"] = 0
            marks["first_rx"] = time.ticks_us()
        marks["nd"] += 1
    _on_audio(mv, n)


dev.on_audio = on_audio

spk = dev.hal.speaker
_write = spk.write


def write(mv):
    # Plain, like the HAL's own write: an async wrapper would add its generator to the count.
    if "first_rx" in marks and "first_play" not in marks:
        marks["first_play"] = time.ticks_diff(time.ticks_us(), marks["first_rx"])
        out["first_play_us"].append(marks["first_play"])
    return _write(mv)


spk.write = write

_stop = spk.stop


async def stop():
    # Playback drained: the reply is over. Async like the HAL's own stop(), which
    # the app awaits; calling it makes one generator either way, as without the probe.
    if "down" in marks:
        out["down_bytes"].append(gc.mem_alloc() - marks.pop("down"))
        out["down_frames"].append(marks["nd"])
        gc.enable()
        marks.pop("first_rx", None)
        marks.pop("first_play", None)
    await _stop()


spk.stop = stop

_open = WebSocketChannel.open


async def timed_open(self, *args, **kw):
    t = time.ticks_us()
    r = await _open(self, *args, **kw)
    out["hello_us"].append(time.ticks_diff(time.ticks_us(), t))
    watch_wire(self.ws)
    return r


WebSocketChannel.open = timed_open


async def main():
    await dev.run()
    gc.collect()
    t = time.ticks_us()
    gc.collect()
    out["gc_pause_us"] = time.ticks_diff(time.ticks_us(), t)
    out["heap_free"] = gc.mem_free()
    out["heap_used"] = gc.mem_alloc()
    print("BENCH " + json.dumps(out))


import asyncio  # noqa: E402

asyncio.run(main())
