"""Device-side numbers for the README and the issue notes, measured on the
MicroPython unix port (an x86 host, not an ESP32: compare runs, not chips).

    .venv/bin/python tools/bench/bench_device.py [--turns N] [--no-heap-search]

Reports:
  - µs of CPU per 60 ms frame for the app's uplink and downlink paths;
  - heap bytes allocated per frame by the whole loop (asyncio's waits included),
    and the length of a full GC pause with a session's heap;
  - latency, timed on the device with time.ticks_us (no GC inside a timed
    window): button release -> listen stop handed to the socket, first
    downlink frame -> first speaker write, connect -> hello done;
  - the smallest -X heapsize at which the demo turn still completes.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from tools import sim  # noqa: E402
from tools.harness import upy  # noqa: E402
from tools.harness.device import MIC, MIC_SECONDS  # noqa: E402
from tools.mock_server.server import MockServer  # noqa: E402


def _device_dir(url):
    d = tempfile.mkdtemp(prefix="xz-bench-")
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"board": "sim", "ws_url": url}, f)
    with open(os.path.join(d, "sim.json"), "w") as f:
        json.dump({"mic": MIC, "out": os.path.join(d, "reply.wav")}, f)
    return d


def _bench_line(lines):
    found = upy.json_lines(lines, "BENCH ")
    if not found:
        raise RuntimeError("no BENCH line in:\n" + "\n".join(lines[-20:]))
    return found[0]


def frame_cpu():
    # The pipeline opens the app's real channel: one server per downlink rate.
    servers = [MockServer(tts_rate=rate, mcp_list_delay=600, ping_interval=None) for rate in (24000, 16000)]
    for srv in servers:
        srv.start_in_thread()
    try:
        p = subprocess.run([sim.micropython_binary(), os.path.join(ROOT, "tools", "bench", "frame_cpu.py"),
                            servers[0].url, servers[1].url], cwd=_device_dir(servers[0].url), env=upy.env(),
                           capture_output=True, text=True, timeout=300)
    finally:
        for srv in servers:
            srv.stop()
    return _bench_line(p.stdout.splitlines())


def session(turns):
    srv = MockServer(drain_s=0.05, mcp_list_delay=0.05)
    srv.start_in_thread()
    try:
        fw = sim.Firmware(_device_dir(srv.url), script=os.path.join(ROOT, "tools", "bench", "device_probe.py"))
        fw.wait_for("firmware did not start", "ready")
        for _ in range(turns):
            fw.send("press")
            fw.wait_for("no listen", "tx", type="listen", state="start")
            time.sleep(MIC_SECONDS + 0.2)
            fw.send("release")
            fw.wait_for("no reply", "audio", dir="play")
        fw.stop()
        return _bench_line(fw.log)
    finally:
        srv.stop()


def smallest_heap(lo_kb=32, hi_kb=1024):
    """Binary search on the demo turn (bundled mock server, one push-to-talk turn)."""
    def ok(kb):
        p = subprocess.run([sys.executable, "-m", "tools.sim", "--heap", "%dk" % kb, "--out",
                            os.path.join(tempfile.gettempdir(), "xz-heap.wav")],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
        return p.returncode == 0

    if not ok(hi_kb):
        return None
    while hi_kb - lo_kb > 8:
        mid = (lo_kb + hi_kb) // 2
        if ok(mid):
            hi_kb = mid
        else:
            lo_kb = mid
    return hi_kb


def _per_frame(total, frames):
    return [round(b / f) for b, f in zip(total, frames, strict=False) if f]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--no-heap-search", action="store_true", help="skip the smallest-heap search (~1 min)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    a = ap.parse_args(argv)

    cpu = frame_cpu()
    s = session(a.turns)
    report = {
        "cpu_us_per_frame": cpu,
        "uplink_bytes_per_frame": _per_frame(s["up_bytes"], s["up_frames"]),
        "downlink_bytes_per_frame": _per_frame(s["down_bytes"], s["down_frames"]),
        "gc_pause_us": s["gc_pause_us"],
        "heap_used_after_session": s["heap_used"],
        "release_to_listen_stop_ms": [round(x / 1000.0, 3) for x in s["release_to_wire_us"]],
        "first_frame_to_speaker_ms": [round(x / 1000.0, 3) for x in s["first_play_us"]],
        "connect_to_hello_ms": [round(x / 1000.0, 3) for x in s["hello_us"]],
    }
    if not a.no_heap_search:
        report["smallest_heap_kb"] = smallest_heap()
    if a.json:
        print(json.dumps(report))
        return 0
    print("device benchmark (MicroPython unix port on this host)")
    for k, v in report["cpu_us_per_frame"].items():
        print("  cpu  %-28s %7.1f us/frame" % (k, v))
    for k in ("uplink_bytes_per_frame", "downlink_bytes_per_frame"):
        print("  heap %-28s %s (median %s)" % (k, report[k], statistics.median(report[k]) if report[k] else "-"))
    print("  heap %-28s %s us" % ("full GC pause", report["gc_pause_us"]))
    for k in ("release_to_listen_stop_ms", "first_frame_to_speaker_ms", "connect_to_hello_ms"):
        print("  time %-28s %s" % (k, report[k]))
    if "smallest_heap_kb" in report:
        print("  heap %-28s %s KB" % ("smallest -X heapsize for a turn", report["smallest_heap_kb"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
