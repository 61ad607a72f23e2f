"""The gateway benchmark's short version: a handful of pcm and adpcm sessions against 1
and 2 workers and the pool measurement produce every figure the full run reports.
Only that the figures exist and add up is checked; speed is for the bench."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_gateway_smoke_produces_the_figures():
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench", "bench_gateway.py"), "--json",
                        "--sessions", "2", "--workers", "1,2", "--formats", "pcm,adpcm", "--seconds", "4",
                        "--frames", "100", "--pool-trials", "2"], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert set(out["codec_sessions_per_core"]) == {"pcm", "adpcm"}
    assert min(out["codec_sessions_per_core"].values()) > 0
    rows = {(r["format"], r["workers"], r["sessions"]): r for r in out["load"]}
    assert sorted(rows) == [("adpcm", 1, 2), ("adpcm", 2, 2), ("pcm", 1, 2), ("pcm", 2, 2)]
    for r in rows.values():
        assert r["gateway_cpu_pct"] > 0 and r["sessions_per_core"] > 0 and r["of_codec_bound"] > 0
        assert r["frames_sent"] > 2 * 2 * 30  # two sessions, both directions, 4 s of 60 ms frames
        assert 0 <= r["lost_up"] + r["lost_down"] < r["frames_sent"]
        assert r["up_p99"] >= r["up_p50"] > 0 and r["down_p99"] >= r["down_p50"] > 0
    pool = out["pool"]
    assert len(pool["without_ms"]) == len(pool["with_ms"]) == 2
    # Without the pool the upstream handshake (TCP, then WebSocket) and the hello cross the
    # 50 ms-each-way link: at least three round trips, sleeps being lower bounds.
    assert min(pool["without_ms"]) >= 300 and min(pool["with_ms"]) >= 100


def test_bench_gateway_bad_arguments_are_usage_errors():
    for args in (("--workers", "0"), ("--sessions", "x"), ("--pool-trials", "0")):
        p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench", "bench_gateway.py"), *args],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and "Traceback" not in p.stderr, (args, p.stderr)
