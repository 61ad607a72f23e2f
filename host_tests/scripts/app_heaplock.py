# Proves the app's own per-frame code allocates nothing in steady state, with
# micropython.heap_lock(): uplink (encode -> channel framing -> WebSocket slot
# queue) and downlink (channel receive -> framing -> jitter buffer -> decode ->
# resample -> volume), on the real Device, AudioPath and channel, opened
# against a live server (tools/harness/pipeline.py). Prints "J {json}".
#   micropython app_heaplock.py VERSION URL [control]
import asyncio
import json
import sys

import micropython

from tools.harness.pipeline import Pipeline

# The test's server sends 16 kHz; the sim speaker runs at 24 kHz, so the resampler is in the path.
p = Pipeline(int(sys.argv[1]), sys.argv[2])
audio = p.dev.audio
count = [0]


def steady(k):
    for _ in range(k):
        p.uplink()
        p.downlink()
        count[0] += 1


steady(8)  # warm up: past the jitter prefill, view cache filled
if sys.argv[3:] == ["control"]:
    # The control run: an empty view cache makes the render allocate a view,
    # and the locked run must report it (so a pass above means something).
    audio._views.clear()
err = None  # made before the lock: a new global could grow the module dict
micropython.heap_lock()
try:
    steady(50)
    err = None
except MemoryError:
    err = "MemoryError"
micropython.heap_unlock()
print("J " + json.dumps({"error": err, "frames": count[0], "out_bytes": p.out_bytes,
                         "up_frames": audio.frames_up, "down_frames": audio.frames_down,
                         "played": audio.frames_played, "dropped": audio.jitter.dropped}))
p.close()  # the channel goes before the HAL part: its reader must not wake under the lock


# The HAL calls the capture and playback tasks make per frame: the sim mic
# and speaker hand back asyncio's reusable sleep object, not a coroutine, so
# awaiting a frame allocates nothing either (sim.json sets a fast speed).
out = memoryview(audio.pcm_play)[:2880]  # one frame of 24 kHz speaker samples


async def hal_frames(k):
    mic, spk = p.dev.hal.mic, p.dev.hal.speaker
    for _ in range(k):
        await mic.readinto(audio.pcm_up)
        await spk.write(out)
        count[1] += 1


async def hal_main():
    await hal_frames(2)
    g = hal_frames(20)  # made before the lock: creating a coroutine allocates
    micropython.heap_lock()
    try:
        await g
        e = None
    except MemoryError:
        e = "MemoryError"
    micropython.heap_unlock()
    return e


count.append(0)
err = asyncio.run(hal_main())
print("J " + json.dumps({"hal_error": err, "hal_frames": count[1]}))
