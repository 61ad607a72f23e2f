"""Run the benchmarks and print their reports (`make bench`).

    python -m tools.bench                 # all but the long runs
    python -m tools.bench device ws       # some: device, audio, ws, mcp, gateway, gateway-ops, heap, vad
    python -m tools.bench soak [--quick]  # a long run by name; what follows its name are its own options

Each benchmark prints its own numbers; docs/benchmarks.md explains them. Exit 1 when any of them failed.
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")

BENCHES = {
    "device": [sys.executable, os.path.join(HERE, "bench_device.py")],
    "audio": [sys.executable, os.path.join(HERE, "bench_audio.py")],
    "ws": [sys.executable, os.path.join(HERE, "bench_ws.py")],
    "mcp": [MICROPYTHON, "-X", "heapsize=256k", os.path.join(HERE, "mcp_bench.py")],
    "gateway": [sys.executable, os.path.join(HERE, "bench_gateway.py")],
    "gateway-ops": [sys.executable, os.path.join(HERE, "bench_gateway_ops.py")],
    "heap": [sys.executable, "-m", "tools.bench.heap"],
    "vad": [sys.executable, os.path.join(HERE, "bench_vad.py")],
    "soak": [sys.executable, os.path.join(HERE, "soak.py")],
    "keepalive": [sys.executable, os.path.join(HERE, "keepalive_soak.py")],
}
# These take 5-20 minutes each: only when asked for by name.
LONG = ("soak", "keepalive")
WHAT = {
    "device": "the firmware on the unix port: per-frame CPU and heap, turn latencies, smallest heap",
    "audio": "per-frame audio building blocks (viper vs pure Python): time and heap per 60 ms frame",
    "ws": "the WebSocket client: masking, send and receive per 1920-byte frame",
    "mcp": "the MCP server: time and heap per request, 40-tool registry, 256 KB heap",
    "gateway": "the gateway: Opus CPU per stream, sessions per core, added latency per frame",
    "gateway-ops": "the gateway's TLS connect cost against plain ws, and its per-frame metrics cost",
    "heap": "the smallest MicroPython heap that completes a turn, per audio format, sources and .mpy",
    "vad": "the hands-free voice detector: false triggers per hour on noise, detection on speech, CPU per frame",
    "soak": "(long) fuzz, server kills, blackhole, idle, 500 turns with the heap, config-save cuts, secrets",
    "keepalive": "(long) an idle session against a server that never pings survives 5 min; a hung one is closed",
}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0],
                                epilog="benchmarks:\n" + "\n".join("  %-11s %s" % kv for kv in WHAT.items()),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all but %s): %s"
                   % (", ".join(LONG), ", ".join(BENCHES)))
    a = p.parse_args(argv)
    unknown = [n for n in a.names if n not in BENCHES]
    if unknown:
        p.error("unknown benchmark %s; choose from %s" % (", ".join(unknown), ", ".join(BENCHES)))
    return a


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    extra = []
    if argv[:1] and argv[0] in LONG:  # `soak --quick`: the rest belongs to that benchmark
        argv, extra = argv[:1], argv[1:]
    a = parse_args(argv)
    env = dict(os.environ, MICROPYPATH=".frozen:%s:%s/lib" % (ROOT, ROOT))
    failed = []
    for name in a.names or [n for n in BENCHES if n not in LONG]:
        print("== %s" % name, flush=True)
        if subprocess.run(BENCHES[name] + extra, cwd=ROOT, env=env).returncode != 0:
            failed.append(name)
    if failed:
        print("bench: FAILED: %s" % ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
