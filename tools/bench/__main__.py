"""Run every benchmark and print their reports (`make bench`).

    python -m tools.bench            # all
    python -m tools.bench device ws  # some: device, audio, ws, mcp, gateway, vad
"""

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
    "vad": [sys.executable, os.path.join(HERE, "bench_vad.py")],
}


def main(names):
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print("unknown benchmark %s; choose from %s" % (", ".join(unknown), ", ".join(BENCHES)), file=sys.stderr)
        return 2
    env = dict(os.environ, MICROPYPATH=".frozen:%s:%s/lib" % (ROOT, ROOT))
    failed = []
    for name in names or list(BENCHES):
        print("== %s" % name, flush=True)
        if subprocess.run(BENCHES[name], cwd=ROOT, env=env).returncode != 0:
            failed.append(name)
    if failed:
        print("failed: %s" % ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
