# Runs every pure-module test file under the real MicroPython unix port and
# under CPython, with the same assert-style tests.
import glob
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = sorted(glob.glob(os.path.join(HERE, "upy", "test_*.py")))
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")


def _run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=HERE)
    assert p.returncode == 0, p.stdout + p.stderr
    assert " passed, 0 failed" in p.stdout


@pytest.mark.parametrize("path", FILES, ids=lambda p: os.path.basename(p))
def test_under_micropython(path):
    _run([MICROPYTHON, "-X", "heapsize=2m", os.path.join(HERE, "upy_runner.py"), path])


@pytest.mark.parametrize("path", FILES, ids=lambda p: os.path.basename(p))
def test_under_cpython(path):
    _run([sys.executable, os.path.join(HERE, "upy_runner.py"), path])
