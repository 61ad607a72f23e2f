"""The app's own per-frame code (uplink encode/frame/queue, downlink
receive/frame/jitter/decode/resample/volume) allocates nothing in steady
state, proved under micropython.heap_lock() on the real Device, AudioPath and
channel, opened against the mock server as the app opens it."""

import json
import os
import subprocess
import sys

import pytest

from tools.harness.device import MIC
from tools.mock_server.server import MockServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")


@pytest.fixture(scope="module")
def server():
    # 16 kHz downlink: the sim speaker's 24 kHz puts the resampler in the path.
    # No tools/list during the run: the reader must stay quiet.
    srv = MockServer(tts_rate=16000, mcp_list_delay=600, ping_interval=None)
    srv.start_in_thread()
    yield srv
    srv.stop()


def _run(tmp_path, server, *args):
    (tmp_path / "config.json").write_text(json.dumps({"board": "sim", "ws_url": server.url}))
    # speed: the HAL part paces 22 frames; at real time that would take 1.3 s.
    (tmp_path / "sim.json").write_text(json.dumps({"mic": MIC, "out": str(tmp_path / "o.wav"), "speed": 20}))
    env = dict(os.environ, MICROPYPATH=".frozen:%s:%s/lib" % (ROOT, ROOT))
    p = subprocess.run([MICROPYTHON, os.path.join(ROOT, "host_tests", "scripts", "app_heaplock.py"),
                        args[0], server.url, *args[1:]],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    lines = [line[2:] for line in p.stdout.splitlines() if line.startswith("J ")]
    assert p.returncode == 0 and len(lines) == 2, p.stdout + p.stderr
    return json.loads(lines[0]), json.loads(lines[1])


@pytest.mark.parametrize("version", [1, 2, 3])
def test_per_frame_path_allocates_nothing(tmp_path, server, version):
    r, hal = _run(tmp_path, server, str(version))
    assert hal == {"hal_error": None, "hal_frames": 22}, hal  # mic.readinto / speaker.write awaits
    assert r["error"] is None, r
    assert r["frames"] == 58 and r["up_frames"] == 58 and r["down_frames"] == 58, r
    # Every frame after the 3-frame prefill was played: 960 samples at 16 kHz -> 1440 at 24 kHz.
    assert r["played"] == 56 and r["out_bytes"] == 2880 and r["dropped"] == 0, r
    s = server.sessions[-1]
    assert s.protocol_version == version and s.hello["audio_params"]["format"] == "pcm"


def test_the_proof_can_fail(tmp_path, server):
    """Control: the same script, with one allocation put back into the per-frame
    path, reports it."""
    r, _ = _run(tmp_path, server, "1", "control")
    assert r["error"] == "MemoryError", r
