"""Run every benchmark and print their reports (`make bench`).

    python -m tools.bench            # all
    python -m tools.bench device ws  # some: device, audio, ws, mcp, gateway
    python -m tools.bench soak --help  # the long fault and soak runs (not in "all")
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
    "soak": [sys.executable, os.path.join(HERE, "soak.py")],
}
# The soak runs for 15-20 minutes: only when asked for by name.
DEFAULT = [n for n in BENCHES if n != "soak"]


def main(names):
    extra = []
    if names[:1] == ["soak"]:  # `soak --quick` etc.: the rest are its own options
        names, extra = names[:1], names[1:]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print("unknown benchmark %s; choose from %s" % (", ".join(unknown), ", ".join(BENCHES)), file=sys.stderr)
        return 2
    env = dict(os.environ, MICROPYPATH=".frozen:%s:%s/lib" % (ROOT, ROOT))
    failed = []
    for name in names or DEFAULT:
        print("== %s" % name, flush=True)
        if subprocess.run(BENCHES[name] + extra, cwd=ROOT, env=env).returncode != 0:
            failed.append(name)
    if failed:
        print("failed: %s" % ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
