"""tools/bench/heap.py's probe on a real turn through the gateway to the Opus
mock: it splits the heap into buffers and objects, sees the jitter buffer and
the WebSocket buffer, runs the deploy .mpy files with --mpy, and finds the
boot-only, connect-only and MCP modules gone mid-turn (firmware/resident.py)."""

import subprocess
import sys
import tempfile

import pytest

from tools import sim
from tools.bench import heap

HEAP = 512 * 1024


@pytest.fixture(scope="module")
def stack():
    with heap.Stack() as s:
        yield s


@pytest.mark.parametrize("fmt", ["pcm", "adpcm"])
def test_split_from_sources(stack, fmt):
    r = heap.split(stack.url, fmt, HEAP, sim.ROOT)
    assert r["boot_resident"] == []  # dropped after boot
    assert r["connect_resident"] == []  # dropped after the open
    assert r["mcp_resident"] == []  # loaded for initialize and tools/list, dropped after each
    assert r["boot_cost"] > 4096  # and they are worth dropping
    assert r["buffers"] > 0 and r["objects"] > 0 and r["used"] == r["buffers"] + r["objects"]
    paths = [p for _, p in r["largest"]]
    assert "dev.channel.ws.parser._dest" in paths, paths  # the WebSocket receive buffer
    # The jitter ring's 8 slots (the gateway's 4-frame start + 4: it paces) of one 16 kHz packet each are counted too.
    slot = 1920 if fmt == "pcm" else 484
    assert r["buffers"] >= 8 * slot + 4096, r
    # ... and nothing sized for a bursting server or a 24 kHz downlink (the
    # unpaced ring would add 16 slots): 21.8 / 45 KB measured.
    assert r["buffers"] <= (24 if fmt == "adpcm" else 48) * 1024, r
    assert r["loaded_from"]["firmware.codec"].endswith(".py")


def test_split_from_the_deploy_build(stack, tmp_path):
    root = sim.build_mpy(str(tmp_path))
    r = heap.split(stack.url, "adpcm", HEAP, root)
    assert all(f.endswith(".mpy") and f.startswith(root) for f in r["loaded_from"].values()), r["loaded_from"]
    assert r["boot_resident"] == [] and r["connect_resident"] == [] and r["mcp_resident"] == []


# The smallest heap that completed the adpcm turn with the deploy .mpy files
# in every one of ten build directories sampled (docs/benchmarks.md "Sixth
# pass"), plus one 8 KB step of slack. A change that grows the turn's heap by
# more than that fails here.
ADPCM_MPY_BUDGET = (160 + 8) * 1024


@pytest.mark.parametrize("name", ["k", "ab", "abcd", "abcdefg"])
def test_adpcm_turn_with_the_deploy_build_fits_the_budget(stack, name):
    # Built where tools.bench.heap builds it (/tmp/xiaozhi-mpy-…), not in
    # pytest's tmp_path: every module's __file__ is interned for good, and a
    # board loads from the short "firmware/…". Paths of four lengths, because
    # the path changes what stale words the conservative collector finds, and
    # such a word once kept boot's modules (28 KB) alive in some directories
    # and not in others (firmware/app.py _boot, firmware/resident.py collect).
    with tempfile.TemporaryDirectory(prefix="xiaozhi-mpy-%s-" % name) as d:
        root = sim.build_mpy(d)
        ok, why, _ = heap.turn(stack.url, "adpcm", ADPCM_MPY_BUDGET, root)  # ok: the reply played, not silent
    assert ok, why


def test_a_heap_too_small_fails_the_turn(stack):
    ok, why, _ = heap.turn(stack.url, "adpcm", 48 * 1024, sim.ROOT)
    assert not ok and "MemoryError" in why


def test_a_dead_task_fails_the_turn():
    # What the firmware printed when the tools/list reply hit a MemoryError:
    # the reply played all the same, but the server never got the tools.
    lines = ["  1200 I state: listening", "Task exception wasn't retrieved",
             "future: <Task> coro= <generator object '_mcp' at 7f00>", "Traceback (most recent call last):",
             '  File "firmware/protocol.py", line 87, in mcp',
             "MemoryError: memory allocation failed, allocating 896 bytes", "  2300 I state: speaking"]
    assert heap.failed_task(lines) == "a task failed: MemoryError: memory allocation failed, allocating 896 bytes"
    assert heap.failed_task(lines[:1] + lines[-1:]) == ""
    # The device answers such a request "out of memory" (firmware/app.py _mcp): a failed turn too.
    oom = ["  1200 I state: listening", "    1250 E app: MCP tools/list: out of memory", "  2300 I state: speaking"]
    assert heap.failed_task(oom) == "an MCP request failed: MCP tools/list: out of memory"


def test_bad_arguments_exit_2():
    for args in (["--formats", "mp3"], ["--lo", "1m", "--hi", "64k"], ["--step", "abc"], ["--lo", "8k"]):
        p = subprocess.run([sys.executable, "-m", "tools.bench.heap", *args], capture_output=True, text=True,
                           cwd=sim.ROOT, timeout=60)
        assert p.returncode == 2, p.stderr
        assert "error: " in p.stderr.strip().splitlines()[-1], p.stderr
