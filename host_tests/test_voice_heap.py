"""The device's voice and face under real MicroPython: zero-allocation proofs
for the voice detector, the display's idle path and prompt playback (inside
micropython.heap_lock(), by host_tests/heap_proof.py, with a control call that
must fail), and the faces drawn with framebuf (distinct per emotion) through
the simulator's display, which writes a frame only when it changed."""

import os
import subprocess

import pytest

from tools.common.png import frame_to_png
from tools.harness.upy import ROOT, env, json_lines, micropython_binary

HERE = os.path.dirname(os.path.abspath(__file__))

SCRIPT = r"""
import asyncio
import json
import sys
from firmware import display, prompt_file, prompts, status, vad
from firmware.hal.sim_display import SimDisplay
from heap_proof import Proofs

OUT = sys.argv[1]
proofs = Proofs(reps=20)
prove = proofs.prove
R = proofs.results


prove("control_alloc", lambda: bytearray(4))

# The detector on quiet, then on speech-like frames (onset, the run, the ring wrapping).
v = vad.Vad()
quiet = bytearray(1920)
for i in range(0, 1920, 2):
    quiet[i] = (i * 7) & 0x1F
loud = bytearray(1920)
for i in range(960):
    s = 6000 if (i // 40) % 2 == 0 else -6000
    loud[2 * i] = s & 0xFF
    loud[2 * i + 1] = (s >> 8) & 0xFF
for _ in range(12):
    v.feed(quiet)
prove("vad_feed_quiet", lambda: v.feed(quiet))
prove("vad_feed_speech", lambda: v.feed(loud))
v.mute()
prove("vad_feed_muted", lambda: v.feed(loud))
v.unmute()
prove("vad_preroll", lambda: v.preroll(v.preroll_frames() - 1))


def mute_unmute():
    v.mute()
    v.unmute()


prove("vad_mute_unmute", mute_unmute)


# The screen: setting what is already shown is the path every state change and
# message takes while nothing changes.
dev = SimDisplay(OUT)
screen = display.Screen(dev)


async def draw_all():
    task = asyncio.create_task(screen.run())
    await asyncio.sleep_ms(0)
    frames = []
    for state, emotion in (("connecting", "neutral"), ("listening", "neutral"), ("speaking", "happy"),
                           ("speaking", "happy"), ("idle", "neutral")):
        screen.set(state, emotion)
        for _ in range(3):
            await asyncio.sleep_ms(0)
        frames.append(dev.count)
    prove("screen_set_unchanged", lambda: screen.set("idle", "neutral"))
    prove("screen_set_unchanged_text", lambda: screen.set("idle", "neutral", "Ready"))
    task.cancel()
    return frames


R["frames_after_each_set"] = asyncio.run(draw_all())

# Every emotion's face differs from every other one.
face = display.Face()
seen = {}
for e in status.EMOTIONS:
    face.draw("speaking", e, e)
    seen[bytes(face.buf)] = e
R["distinct_faces"] = len(seen)

# Prompt playback: one 60 ms frame read and decoded into the caller's buffer.
import os
try:
    os.mkdir(OUT + "/p")
    os.mkdir(OUT + "/p/en")
except OSError:
    pass
with open(OUT + "/p/en/connecting.xzp", "wb") as f:
    f.write(prompt_file.pack_header("pcm", 60, 16000, 1920, 200))
    for _ in range(200):
        f.write(quiet)
pl = prompts.Player("en", root=OUT + "/p")
pl.say("connecting")
pcm = bytearray(1920)
prove("prompt_next_frame", lambda: pl.next_frame(pcm), 50)
# ... and an adpcm prompt decoded, resampled to a 24 kHz speaker and set to the volume.
from firmware import codec, dsp
c = codec.create("adpcm", 16000, 60)
pkt = bytearray(c.max_packet)
n = c.encode_into(loud, pkt)
with open(OUT + "/p/en/err_server.xzp", "wb") as f:
    f.write(prompt_file.pack_header("adpcm", 60, 16000, n, 200))
    for _ in range(200):
        f.write(pkt)
spk = prompts.Player("en", 24000, root=OUT + "/p")
spk.say("err_server")
gain = dsp.volume_gain(70)
prove("prompt_next_render_adpcm_24k", lambda: spk.next_render(gain), 50)
R["render_bytes"] = len(spk.next_render(gain))
print("J " + json.dumps(R))
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("voice")
    script = out / "voice_heap.py"
    script.write_text(SCRIPT)
    p = subprocess.run([micropython_binary(), "-X", "heapsize=256k", str(script), str(out)], capture_output=True,
                       text=True, timeout=120, env=env(HERE), cwd=ROOT)  # HERE: heap_proof
    assert p.returncode == 0, p.stdout + p.stderr
    found = json_lines(p.stdout.splitlines())
    assert len(found) == 1, p.stdout + p.stderr
    return found[0], out


def test_control_allocation_is_caught(report):
    err, delta = report[0]["control_alloc"]
    assert err == "MemoryError", "heap_lock did not catch an allocation: the proofs below mean nothing"


@pytest.mark.parametrize("name", ["vad_feed_quiet", "vad_feed_speech", "vad_feed_muted", "vad_preroll",
                                  "vad_mute_unmute", "screen_set_unchanged", "screen_set_unchanged_text",
                                  "prompt_next_frame", "prompt_next_render_adpcm_24k"])
def test_allocates_nothing(report, name):
    err, delta = report[0][name]
    assert err is None and delta == 0, "%s allocated (%s, %d bytes)" % (name, err, delta)


def test_screen_writes_a_frame_only_when_it_changed(report):
    r, out = report
    # The first frame (starting) plus connecting, listening, speaking/happy, idle; the
    # repeated speaking/happy draws nothing new.
    assert r["frames_after_each_set"] == [2, 3, 4, 4, 5], r["frames_after_each_set"]
    frames = sorted(n for n in os.listdir(out) if n.startswith("frame-") and n.endswith(".fb"))
    assert len(frames) == 5
    blobs = {(out / n).read_bytes() for n in frames}
    assert len(blobs) == 5 and all(len(b) == 1024 for b in blobs)
    frame_to_png(str(out / frames[3]), str(out / "happy.png"))
    png = (out / "happy.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IDAT" in png


def test_prompt_renders_whole_speaker_frames(report):
    assert report[0]["render_bytes"] in (2880, 2882), report[0]["render_bytes"]  # 60 ms at 24 kHz (+1 sample of phase)


def test_every_emotion_draws_a_different_face(report):
    assert report[0]["distinct_faces"] == 21


def test_png_writer_round_trip_and_bad_frame(tmp_path):
    import zlib

    from tools.common import png

    buf = bytearray(1024)
    buf[0] = 0x01  # top-left pixel
    buf[127] = 0x80  # x=127, y=7
    w, h, px = png.vlsb_to_grey(bytes(buf), 128, 64, 1)
    assert (w, h) == (128, 64) and px[0] == 255 and px[7 * 128 + 127] == 255 and sum(px) == 2 * 255
    data = png.encode_grey(w, h, px)
    idat = data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8]
    raw = zlib.decompress(idat)
    assert len(raw) == 64 * 129 and raw[1] == 255
    with pytest.raises(ValueError, match="1000 bytes"):
        png.vlsb_to_grey(bytes(1000), 128, 64)
