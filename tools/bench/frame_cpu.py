# µs of device CPU per 60 ms frame on this port, for the app's per-frame path
# (tools/harness/pipeline.py) and the I2S sample conversion the ESP32 HAL adds.
# MicroPython only; run by tools/bench/bench_device.py with the URLs of two
# mock servers (24 kHz and 16 kHz downlink). Prints "BENCH {json}".
import json
import sys
import time

from firmware.hal.i2s_slots import i2s32_to_s16
from tools.harness.pipeline import Pipeline

N = 2000


def per_frame(fn):
    for _ in range(20):
        fn()
    t = time.ticks_us()
    for _ in range(N):
        fn()
    return time.ticks_diff(time.ticks_us(), t) / N


res = {}
url24, url16 = sys.argv[1], sys.argv[2]
for version in (1, 2, 3):
    p = Pipeline(version, url24)
    res["uplink_v%d_us" % version] = per_frame(p.uplink)
    res["downlink_v%d_us" % version] = per_frame(p.downlink)
    p.close()
p16 = Pipeline(1, url16)
res["downlink_16k_resampled_us"] = per_frame(p16.downlink)
p16.close()
raw = bytearray(3840)
pcm = bytearray(1920)
res["i2s32_to_s16_us"] = per_frame(lambda: i2s32_to_s16(raw, pcm, 960, 12))
print("BENCH " + json.dumps(res))
