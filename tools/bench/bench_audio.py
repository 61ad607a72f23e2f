"""CPU and heap cost of the per-frame audio building blocks on MicroPython.

Runs a script under the MicroPython unix port that times each per-frame call
(60 ms frames: 960 samples at 16 kHz up, 1440 at 24 kHz down) with
time.ticks_us, once with the viper implementations and once with the pure
Python fallbacks, and measures heap bytes allocated per frame with
gc.mem_alloc() while the GC is disabled.

    .venv/bin/python tools/bench/bench_audio.py [--frames N] [--json]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import gc
import json
import math
import random
import sys
import time
from firmware import adpcm, adpcm_ref, codec, dsp, dsp_ref, framing, jitter, level
from firmware.hal import i2s_slots

FRAMES = int(sys.argv[1])
LOOPS = ((dsp, "_copy", dsp_ref.copy), (i2s_slots, "_i2s", dsp_ref.i2s32_to_s16), (dsp, "_gain", dsp_ref.gain),
         (dsp, "_resample", dsp_ref.resample), (level, "_ms", dsp_ref.mean_square),
         (adpcm, "_encode", adpcm_ref.encode), (adpcm, "_decode", adpcm_ref.decode))
VIPER = {(mod, k): getattr(mod, k) for mod, k, _ in LOOPS}
PURE = {(mod, k): ref for mod, k, ref in LOOPS}


def use(impl):
    for (mod, k), v in impl.items():
        setattr(mod, k, v)


def measure(fn, reps):
    fn()
    best = None
    for _ in range(3):
        t0 = time.ticks_us()
        i = 0
        while i < reps:
            fn()
            i += 1
        us = time.ticks_diff(time.ticks_us(), t0) / reps
        best = us if best is None or us < best else best
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    i = 0
    while i < reps:
        fn()
        i += 1
    per = (gc.mem_alloc() - a) / reps
    gc.enable()
    return best, per


def noise(n, seed):
    random.seed(seed)
    return bytearray(random.getrandbits(8) for _ in range(n))


slots = noise(4 * 960, 1)
s16 = bytearray(1920)
pcm16k = noise(1920, 2)
pcm24k = noise(2880, 3)
out = bytearray(2 * 1441)
g70 = dsp.volume_gain(70)
up = dsp.Resampler(16000, 24000, 960)
down = dsp.Resampler(24000, 16000, 1440)
c = codec.create("pcm", 24000, 60)
pkt = memoryview(pcm24k)
dec = memoryview(bytearray(2880))
jb = jitter.JitterBuffer(40, 2880, 0)
play = bytearray(2880)
fr2 = framing.Framer(2)
fr3 = framing.Framer(3)
f2buf = bytearray(16 + 1920)
f3buf = bytearray(4 + 1920)
f2 = memoryview(f2buf)[: fr2.encode_into(f2buf, 1920, 1234)]
f3 = memoryview(f3buf)[: fr3.encode_into(f3buf, 1920)]


pcm16 = codec.create("pcm", 16000, 60)
pcm16_pkt = memoryview(bytearray(pcm16.max_packet))
speech16 = memoryview(bytearray(1920))
for i in range(960):  # a 440 Hz tone: noise would keep ADPCM's step at its top
    v = int(12000 * math.sin(2 * math.pi * 440 * i / 16000))
    speech16[2 * i] = v & 0xFF
    speech16[2 * i + 1] = (v >> 8) & 0xFF
ad16 = codec.create("adpcm", 16000, 60)
ad16_pkt = memoryview(bytearray(ad16.max_packet))
ad16.encode_into(speech16, ad16_pkt)
ad16_out = memoryview(bytearray(1920))


def jb_cycle():
    jb.push(pkt)
    jb.pop_into(play)


CASES = (
    ("i2s32_to_s16 960 (mic 16k)", lambda: i2s_slots.i2s32_to_s16(slots, s16, 960, 12), True),
    ("apply_gain 1440 (spk 24k)", lambda: dsp.apply_gain(pcm24k, 1440, g70), True),
    ("resample 16k->24k 960 in", lambda: up.process(pcm16k, 960, out), True),
    ("resample 24k->16k 1440 in", lambda: down.process(pcm24k, 1440, out), True),
    ("level_dbfs 960", lambda: level.level_dbfs(pcm16k, 960), True),
    ("codec pcm decode_into 2880 B", lambda: c.decode_into(pkt, dec), True),
    ("codec pcm encode_into 1920 B", lambda: pcm16.encode_into(speech16, pcm16_pkt), True),
    ("codec pcm decode_into 1920 B", lambda: pcm16.decode_into(pcm16_pkt, ad16_out), True),
    ("codec adpcm encode_into 960", lambda: ad16.encode_into(speech16, ad16_pkt), True),
    ("codec adpcm decode_into 484 B", lambda: ad16.decode_into(ad16_pkt, ad16_out), True),
    ("jitter push+pop 2880 B", jb_cycle, True),
    ("framing v2 encode_into", lambda: fr2.encode_into(f2buf, 1920, 1234), False),
    ("framing v2 decode", lambda: fr2.decode(f2), False),
    ("framing v3 encode_into", lambda: fr3.encode_into(f3buf, 1920), False),
    ("framing v3 decode", lambda: fr3.decode(f3), False),
)

rows = []
for name, fn, has_pure in CASES:
    use(VIPER)
    v_us, v_heap = measure(fn, FRAMES)
    p_us = p_heap = None
    if has_pure:
        use(PURE)
        p_us, p_heap = measure(fn, max(3, FRAMES // 20))
    rows.append([name, v_us, v_heap, p_us, p_heap])
use(VIPER)
print("@BENCH " + json.dumps({"rows": rows}))
"""


def _micropython(arg):
    if arg:
        return arg if os.path.isfile(arg) and os.access(arg, os.X_OK) else None
    for cand in (os.path.join(os.path.dirname(sys.executable), "micropython"),
                 os.path.join(ROOT, ".venv", "bin", "micropython"), shutil.which("micropython")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=300, help="timed calls per case for viper (default 300)")
    ap.add_argument("--heapsize", default="2m", help="micropython -X heapsize (default 2m)")
    ap.add_argument("--micropython", help="path to the micropython binary (default: next to this python)")
    ap.add_argument("--json", action="store_true", help="print the raw results as JSON")
    args = ap.parse_args(argv)
    if args.frames < 1:
        ap.error("--frames must be >= 1")
    mp = _micropython(args.micropython)
    if mp is None:
        where = repr(args.micropython) if args.micropython else "(.venv/bin/micropython)"
        ap.error("micropython binary %s not found; run scripts/setup or pass --micropython" % where)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench_audio_mpy.py")
        with open(path, "w") as f:
            f.write(SCRIPT)
        env = dict(os.environ, MICROPYPATH=ROOT + ":" + os.path.join(ROOT, "lib"))
        p = subprocess.run([mp, "-X", "heapsize=" + args.heapsize, path, str(args.frames)],
                           capture_output=True, text=True, env=env, cwd=tmp, timeout=600, check=False)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("@BENCH ")]
    if p.returncode != 0 or not lines:
        sys.exit("bench_audio: micropython failed:\n" + p.stdout + p.stderr)
    res = json.loads(lines[0][7:])
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print("MicroPython unix port (%s), per 60 ms frame, best of 3 x %d calls" % (mp, args.frames))
    print("%-30s %10s %10s %10s %10s" % ("call", "viper us", "heap B/fr", "pure us", "heap B/fr"))
    for name, v_us, v_heap, p_us, p_heap in res["rows"]:
        pure = ("%10.1f %10.0f" % (p_us, p_heap)) if p_us is not None else "%10s %10s" % ("-", "-")
        print("%-30s %10.1f %10.0f %s" % (name, v_us, v_heap, pure))
    us = {r[0]: r[1] for r in res["rows"]}
    # Ratios against the pcm passthrough of the same 16 kHz frame, measured in this run.
    for way, base, name in (("encode", "codec pcm encode_into 1920 B", "codec adpcm encode_into 960"),
                            ("decode", "codec pcm decode_into 1920 B", "codec adpcm decode_into 484 B")):
        print("adpcm %s: %.1f us a frame = %.1fx the pcm copy, %.2f%% of the 60 ms frame" % (
            way, us[name], us[name] / us[base], us[name] / 600.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
