"""How well the hands-free voice detector (firmware/vad.py) works, and what it costs.

Makes noise-only inputs (white hiss, fan-like low rumble, mains hum, babble-
like modulated noise, and the quiet lead-in of every speech fixture looped),
runs the firmware's detector over them under the MicroPython unix port and
counts false triggers per hour: after a trigger the detector is reset and 3 s
skipped, as a session would. Then it runs each speech fixture
(tools/assets/*.wav) after 3 s of quiet room noise, clean and with noise added,
and reports whether it fired, how long after the speech began, and whether the
600 ms pre-roll reaches back before the first syllable. Also µs of device CPU
per 60 ms frame for Vad.feed().

    .venv/bin/python tools/bench/bench_vad.py [--minutes M] [--json]
"""

import argparse
import array
import glob
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from tools.common import wav  # noqa: E402
from tools.harness.upy import env, micropython_binary  # noqa: E402

RATE = 16000
FRAME = 960

SCRIPT = r"""
import json
import sys
import time
from firmware import vad
from firmware.hal.wavfile import WavReader

with open(sys.argv[1]) as f:
    job = json.load(f)
SKIP = 50  # frames a session takes after a trigger (3 s)


def run(path, speech_at=None):
    r = WavReader(path)
    r.rewind()
    v = vad.Vad()
    buf = bytearray(1920)
    frame = 0
    triggers = []
    skip = 0
    preroll_start = None
    while r.readinto(buf) == 1920:
        if skip:
            skip -= 1
        elif v.feed(buf):
            triggers.append(frame)
            if preroll_start is None:
                preroll_start = frame - v.preroll_frames() + 1
            v.reset()
            skip = SKIP
        frame += 1
    return {"frames": frame, "triggers": triggers, "preroll_start": preroll_start}


out = {}
for name, path in job["noise"].items():
    out[name] = run(path)
for name, path in job["speech"].items():
    out[name] = run(path)
v = vad.Vad()
buf = bytearray(1920)
r = WavReader(job["cpu"])
r.rewind()
r.readinto(buf)
for _ in range(20):
    v.feed(buf)
n = 2000
t = time.ticks_us()
for _ in range(n):
    v.feed(buf)
out["feed_us"] = time.ticks_diff(time.ticks_us(), t) / n
print("J " + json.dumps(out))
"""


def _pcm(samples):
    a = array.array("h", (max(-32767, min(32767, int(s))) for s in samples))
    return a.tobytes()


def white(n, dbfs, rng):
    amp = 32768 * 10 ** (dbfs / 20) * math.sqrt(3)  # uniform noise of that RMS
    return [rng.uniform(-amp, amp) for _ in range(n)]


def lowpassed(n, dbfs, rng, alpha=0.05):
    """Rumble like a fan or traffic: white noise through a one-pole low-pass."""
    y = 0.0
    raw = []
    for _ in range(n):
        y += alpha * (rng.uniform(-1, 1) - y)
        raw.append(y)
    rms = math.sqrt(sum(s * s for s in raw) / n) or 1
    k = 32768 * 10 ** (dbfs / 20) / rms
    return [s * k for s in raw]


def hum(n, dbfs, rng):
    amp = 32768 * 10 ** (dbfs / 20) * math.sqrt(2)
    return [amp * (math.sin(2 * math.pi * 50 * i / RATE) + 0.3 * math.sin(2 * math.pi * 150 * i / RATE))
            + rng.uniform(-30, 30) for i in range(n)]


def modulated(n, dbfs, rng):
    """Noise whose level swings 12 dB at 0.5 Hz, like a busy room or passing traffic."""
    base = lowpassed(n, dbfs, rng, 0.2)
    return [s * 10 ** (6 * math.sin(2 * math.pi * 0.5 * i / RATE) / 20) for i, s in enumerate(base)]


def quiet_lead(pcm, n):
    """The fixture's first 150 ms (before the words), looped to n samples."""
    s = array.array("h")
    s.frombytes(pcm[: 2 * RATE * 150 // 1000])
    return [s[i % len(s)] for i in range(n)]


def speech_start(samples):
    """First 10 ms window above -40 dBFS: where the words begin."""
    w = RATE // 100
    thr = (32768 * 10 ** (-40 / 20)) ** 2
    for i in range(0, len(samples) - w, w):
        if sum(x * x for x in samples[i:i + w]) / w > thr:
            return i
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="minutes of each noise input (default 10)")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    a = p.parse_args(argv)
    rng = random.Random(14)
    tmp = tempfile.mkdtemp(prefix="xiaozhi-vad-")
    try:
        n = int(a.minutes * 60 * RATE)
        fixtures = sorted(glob.glob(os.path.join(ROOT, "tools", "assets", "*_16k.wav")))
        noise = {
            "white_-40dBFS": white(n, -40, rng),
            "white_-25dBFS": white(n, -25, rng),
            "rumble_-45dBFS": lowpassed(n, -45, rng),
            "rumble_-30dBFS": lowpassed(n, -30, rng),
            "hum_-35dBFS": hum(n, -35, rng),
            "modulated_-40dBFS": modulated(n, -40, rng),
        }
        for f in fixtures:
            pcm = wav.read_wav(f)[2]
            noise["quiet_of_" + os.path.basename(f)[:-8]] = quiet_lead(pcm, n // 4)
        job = {"noise": {}, "speech": {}}
        for name, s in noise.items():
            path = os.path.join(tmp, name + ".wav")
            wav.write_wav(path, RATE, _pcm(s))
            job["noise"][name] = path
        starts = {}
        lead = 3 * RATE
        for f in fixtures:
            base = os.path.basename(f)[:-8]
            s = array.array("h")
            s.frombytes(wav.read_wav(f)[2])
            for label, room_db, added_db in (("clean", -60, None), ("noisy", -45, -45)):
                room = lowpassed(lead, room_db, rng)
                words = list(s) + [0] * RATE
                if added_db is not None:
                    words = [x + y for x, y in zip(words, lowpassed(len(words), added_db, rng), strict=True)]
                name = "%s_%s" % (base, label)
                path = os.path.join(tmp, name + ".wav")
                wav.write_wav(path, RATE, _pcm(room + words))
                job["speech"][name] = path
                starts[name] = (lead + speech_start(list(s))) / FRAME
        job["cpu"] = job["speech"][sorted(job["speech"])[0]]
        script, job_file = os.path.join(tmp, "vad_probe.py"), os.path.join(tmp, "job.json")
        with open(script, "w") as f:
            f.write(SCRIPT)
        with open(job_file, "w") as f:
            json.dump(job, f)
        proc = subprocess.run([micropython_binary(), "-X", "heapsize=512k", script, job_file],
                              capture_output=True, text=True, cwd=ROOT, env=env(), timeout=1800)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("J ")]
        if proc.returncode != 0 or not lines:
            why = (proc.stdout + proc.stderr).strip().splitlines() or ["no output"]
            print("bench_vad: FAILED: %s" % why[-1], file=sys.stderr)
            return 1
        res = json.loads(lines[0][2:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = {"feed_us_per_frame": round(res["feed_us"], 1), "false_triggers_per_hour": {}, "speech": {}}
    for name in job["noise"]:
        r = res[name]
        hours = r["frames"] * FRAME / RATE / 3600
        report["false_triggers_per_hour"][name] = round(len(r["triggers"]) / hours, 1)
    for name in job["speech"]:
        r = res[name]
        start = starts[name]
        hits = [t for t in r["triggers"] if t >= start - 1]
        early = [t for t in r["triggers"] if t < start - 1]
        fired = hits[0] if hits else None
        report["speech"][name] = {
            "detected": fired is not None,
            "false_before": len(early),
            "fired_ms_after_speech": None if fired is None else round((fired + 1 - start) * 60),
            "preroll_covers_start": None if fired is None else r["preroll_start"] <= int(start),
        }
    if a.json:
        print(json.dumps(report))
        return 0
    print("Vad.feed(): %.1f µs per 60 ms frame (unix port)" % report["feed_us_per_frame"])
    print("false triggers per hour (%.0f min of each noise; quiet lead-ins %.1f min):" % (a.minutes, a.minutes / 4))
    for name, v in report["false_triggers_per_hour"].items():
        print("  %-28s %6.1f" % (name, v))
    print("speech fixtures after 3 s of room noise:")
    for name, v in report["speech"].items():
        if v["detected"]:
            text = "detected %4d ms after the first syllable, pre-roll %s" % (
                v["fired_ms_after_speech"], "covers it" if v["preroll_covers_start"] else "MISSES it")
        else:
            text = "MISSED"
        if v["false_before"]:
            text += ", %d early trigger(s)" % v["false_before"]
        print("  %-28s %s" % (name, text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
