"""Zero-allocation proofs for the per-frame audio calls, under real MicroPython.

One micropython subprocess imports the audio modules (dsp, level, the I2S
slot conversion, framing, codec, jitter) and their pure references, warms
each call up once (the first call of native code and attribute caches may
allocate), then runs it repeatedly inside micropython.heap_lock(): any heap
allocation raises MemoryError. gc.mem_alloc() deltas are recorded as well
(host_tests/heap_proof.py). A deliberately allocating control call proves the
harness can fail.
"""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")

SCRIPT = r"""
import json
import random
from firmware import adpcm, adpcm_ref, codec, dsp, dsp_ref, framing, jitter, level
from firmware.hal import i2s_slots
from heap_proof import Proofs

proofs = Proofs(reps=8)
prove = proofs.prove
R = proofs.results


def noise(n, seed):
    random.seed(seed)
    return bytearray(random.getrandbits(8) for _ in range(n))


slots = noise(4 * 960, 1)
s16 = bytearray(2 * 1440)
pcm16k = noise(1920, 2)
pcm24k = noise(2880, 3)
out = bytearray(2 * 1441 + 64)
prove("control_alloc", lambda: bytearray(4))

# dsp
prove("i2s32_to_s16", lambda: i2s_slots.i2s32_to_s16(slots, s16, 960, 12))
inplace = bytearray(slots)
prove("i2s32_to_s16_in_place", lambda: i2s_slots.i2s32_to_s16(inplace, inplace, 960, 12))
g70 = dsp.volume_gain(70)
prove("volume_gain", lambda: dsp.volume_gain(70))
prove("apply_gain", lambda: dsp.apply_gain(pcm24k, 1440, g70))
prove("apply_gain_boost", lambda: dsp.apply_gain(pcm24k, 1440, 3 * 65536 + 5))
up = dsp.Resampler(16000, 24000, 960)
prove("resample_16k_24k", lambda: up.process(pcm16k, 960, out))
down = dsp.Resampler(24000, 16000, 1440)
prove("resample_24k_16k", lambda: down.process(pcm24k, 1440, out))
same = dsp.Resampler(16000, 16000, 960)
prove("resample_same_rate", lambda: same.process(pcm16k, 960, out))
prove("level_dbfs", lambda: level.level_dbfs(pcm16k, 960))
prove("copy_bytes", lambda: dsp.copy_bytes(out, 3, pcm16k, 1, 1000))

# The pure sample loops (what CPython runs) allocate nothing either.
prove("pure_i2s", lambda: dsp_ref.i2s32_to_s16(slots, s16, 960, 12), 1)
prove("pure_gain", lambda: dsp_ref.gain(pcm24k, 1440, 0, g70), 1)
up_st = dsp.Resampler(16000, 24000, 960)._st
prove("pure_resample", lambda: dsp_ref.resample(pcm16k, 960, out, up_st), 1)
prove("pure_mean_square", lambda: dsp_ref.mean_square(pcm16k, 960), 1)

# framing
for v in (1, 2, 3):
    f = framing.Framer(v)
    buf = bytearray(f.header_len + 1920)
    mv = memoryview(buf)
    prove("encode_v%d" % v, lambda f=f, mv=mv: f.encode_into(mv, 1920, 123456))
    n = f.encode_into(mv, 1920, 0x3FFFFFFF)
    rx = framing.Framer(v)
    frame = memoryview(buf)[:n]
    prove("decode_v%d" % v, lambda rx=rx, frame=frame: rx.decode(frame))

# codec
c = codec.create("pcm", 16000, 60)
pkt = memoryview(bytearray(c.max_packet))
pcm_mv = memoryview(pcm16k)
frame24_mv = memoryview(pcm24k)
prove("codec_encode_into", lambda: c.encode_into(pcm_mv, pkt))
dec = memoryview(bytearray(c.max_packet))
prove("codec_decode_into", lambda: c.decode_into(pkt, dec))
framed = memoryview(bytearray(16 + c.max_packet))
prove("codec_decode_into_offset", lambda: c.decode_into(framed, dec, 16, 1000))
a = codec.create("adpcm", 16000, 60)
apkt = memoryview(bytearray(a.max_packet))
prove("adpcm_encode_into", lambda: a.encode_into(pcm_mv, apkt))
prove("adpcm_decode_into", lambda: a.decode_into(apkt, dec))
aframed = memoryview(bytearray(16 + a.max_packet))
a.encode_into(pcm_mv, aframed[16:])
prove("adpcm_decode_into_offset", lambda: a.decode_into(aframed, dec, 16, a.max_packet))
a24 = codec.create("adpcm", 24000, 60)
a24pkt = memoryview(bytearray(a24.max_packet))
prove("adpcm_encode_24k", lambda: a24.encode_into(frame24_mv, a24pkt))
prove("pure_adpcm_encode", lambda: adpcm_ref.encode(pcm16k, 960, apkt, a._state, adpcm.STEPS, adpcm._INDEX_UP1), 1)
prove("pure_adpcm_decode", lambda: adpcm_ref.decode(apkt, 0, 960, dec, adpcm.STEPS, adpcm._INDEX_UP1), 1)

# jitter buffer: steady state, overflow drop, underrun, flush, drain
jb = jitter.JitterBuffer(4, 2880, 2)
frame24 = memoryview(pcm24k)
play = bytearray(2880)


def steady():
    jb.push(frame24)
    jb.pop_into(play)
    jb.push(frame24, 1000)
    jb.pop_into(play)
    jb.push(frame24, 484, 16)  # a compressed packet after a v2 header, as the reader hands it over
    jb.pop_into(play)


jb.push(frame24)
jb.push(frame24)
prove("jitter_push_pop", steady)


def overflow():
    while jb.push(frame24):
        pass
    jb.pop_into(play)


prove("jitter_overflow_drop", overflow)


def underrun():
    while jb.pop_into(play):
        pass
    jb.push(frame24)
    jb.push(frame24)


prove("jitter_underrun_refill", underrun)


def flush_drain():
    jb.flush()
    jb.push(frame24)
    jb.drain()
    jb.pop_into(play)
    jb.pop_into(play)


prove("jitter_flush_drain", flush_drain)
print("@HEAP " + json.dumps(R))
"""

CALLS = [
    "i2s32_to_s16",
    "i2s32_to_s16_in_place",
    "volume_gain",
    "apply_gain",
    "apply_gain_boost",
    "resample_16k_24k",
    "resample_24k_16k",
    "resample_same_rate",
    "level_dbfs",
    "copy_bytes",
    "pure_i2s",
    "pure_gain",
    "pure_resample",
    "pure_mean_square",
    "encode_v1",
    "encode_v2",
    "encode_v3",
    "decode_v1",
    "decode_v2",
    "decode_v3",
    "codec_encode_into",
    "codec_decode_into",
    "codec_decode_into_offset",
    "adpcm_encode_into",
    "adpcm_decode_into",
    "adpcm_decode_into_offset",
    "adpcm_encode_24k",
    "pure_adpcm_encode",
    "pure_adpcm_decode",
    "jitter_push_pop",
    "jitter_overflow_drop",
    "jitter_underrun_refill",
    "jitter_flush_drain",
]


@pytest.fixture(scope="module")
def heap_report(tmp_path_factory):
    path = tmp_path_factory.mktemp("heap") / "audio_heap.py"
    path.write_text(SCRIPT)
    # host_tests/ for heap_proof, the proofs' helper.
    env = dict(os.environ, MICROPYPATH=":".join((ROOT, os.path.join(ROOT, "lib"), HERE)))
    p = subprocess.run(
        [MICROPYTHON, "-X", "heapsize=256k", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=str(path.parent),
    )
    assert p.returncode == 0, p.stdout + p.stderr
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("@HEAP ")]
    assert len(lines) == 1, p.stdout + p.stderr
    return json.loads(lines[0][6:])


def test_harness_detects_allocation(heap_report):
    assert heap_report["control_alloc"][0] == "MemoryError", heap_report["control_alloc"]


def test_every_call_is_covered(heap_report):
    assert sorted(heap_report) == sorted(CALLS + ["control_alloc"])


@pytest.mark.parametrize("name", CALLS)
def test_call_allocates_nothing(heap_report, name):
    err, delta = heap_report[name]
    assert err is None, f"{name} allocated under heap_lock"
    assert delta == 0, f"{name}: gc.mem_alloc() grew by {delta} bytes"
