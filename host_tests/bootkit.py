"""Helpers for the boot tests: run the firmware (or boot_device.py) under
micropython in a temp dir with tools.sim.Firmware, and read its events."""

from __future__ import annotations

import contextlib
import json
import os
import socket

from tools.sim import Firmware, SimError, micropython_binary

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MICROPYTHON = micropython_binary()
DEVICE = os.path.join(HERE, "boot_device.py")


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def device(workdir, config=None, sim=None, script=DEVICE, heap="2m"):
    """Write config.json (a dict, or raw text) and sim.json into workdir, run
    script there, and stop it on the way out."""
    workdir = str(workdir)
    if config is not None:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(config if isinstance(config, str) else json.dumps(config))
    if sim is not None:
        with open(os.path.join(workdir, "sim.json"), "w") as f:
            json.dump(sim, f)
    fw = Firmware(workdir, heap=heap, script=script)
    try:
        yield fw
    finally:
        fw.stop()


def wait(fw, kind, timeout=20.0, **match) -> dict:
    """fw.wait_for, failing the test with the device's last log lines."""
    try:
        return fw.wait_for("no %s event%s" % (kind, " %s" % match if match else ""), kind, timeout, **match)
    except SimError as e:
        raise AssertionError("%s; device log:\n%s" % (e, "\n".join(fw.log[-80:]))) from None


def kinds(fw, kind) -> list[dict]:
    """The events of one kind consumed so far (by wait())."""
    return [e for e in fw.seen if e["k"] == kind]


def output(fw) -> list[str]:
    """Every log line, and every event consumed so far as JSON: what a secret must never be in."""
    return fw.log + [json.dumps(e) for e in fw.seen]
