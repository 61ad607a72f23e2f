"""The app's own per-frame code (uplink encode/frame/queue, downlink
decode/jitter/resample/volume) allocates nothing in steady state, proved under
micropython.heap_lock() on the real firmware objects."""

import json
import os
import subprocess
import sys

import pytest

from tools.harness.device import MIC

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")


def _run(tmp_path, *args):
    (tmp_path / "config.json").write_text(json.dumps({"board": "sim", "ws_url": "ws://127.0.0.1:9/"}))
    # speed: the HAL part paces 22 frames; at real time that would take 1.3 s.
    (tmp_path / "sim.json").write_text(json.dumps({"mic": MIC, "out": str(tmp_path / "o.wav"), "speed": 20}))
    env = dict(os.environ, MICROPYPATH=".frozen:%s:%s/lib" % (ROOT, ROOT))
    p = subprocess.run([MICROPYTHON, os.path.join(ROOT, "host_tests", "scripts", "app_heaplock.py"), *args],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    lines = [line[2:] for line in p.stdout.splitlines() if line.startswith("J ")]
    assert p.returncode == 0 and lines, p.stdout + p.stderr
    return json.loads(lines[-2]), json.loads(lines[-1])


@pytest.mark.parametrize("version", [1, 2, 3])
def test_per_frame_path_allocates_nothing(tmp_path, version):
    r, hal = _run(tmp_path, str(version))
    assert hal == {"hal_error": None, "hal_frames": 22}, hal  # mic.readinto / speaker.write awaits
    assert r["error"] is None, r
    assert r["frames"] == 58 and r["out_bytes"] == 2880  # 960 samples at 16 kHz -> 1440 at 24 kHz
    assert r["sent_queued"] == 4 and r["dropped"] == 0


def test_the_proof_can_fail(tmp_path):
    """Control: the same script, with one allocation put back into the per-frame
    path, reports it."""
    r, _ = _run(tmp_path, "1", "control")
    assert r["error"] == "MemoryError", r
