"""Helpers for the boot tests: run firmware under micropython in a temp dir and
follow its log and @EV event lines."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")
DEVICE = os.path.join(HERE, "boot_device.py")


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Device:
    """A micropython process; lines are collected by a reader thread."""

    def __init__(self, workdir, config=None, sim=None, script=DEVICE, args=(), heap="2m"):
        self.workdir = str(workdir)
        if config is not None:
            with open(os.path.join(self.workdir, "config.json"), "w") as f:
                f.write(config if isinstance(config, str) else json.dumps(config))
        if sim is not None:
            with open(os.path.join(self.workdir, "sim.json"), "w") as f:
                json.dump(sim, f)
        env = dict(os.environ, MICROPYPATH=".frozen:%s:%s/lib" % (REPO, REPO))
        self.proc = subprocess.Popen(
            [MICROPYTHON, "-X", "heapsize=" + heap, script, *args],
            cwd=self.workdir, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1,
        )
        self.lines: list[str] = []
        self.events: list[dict] = []
        self._q: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            if line.startswith("@EV "):
                ev = json.loads(line[4:])
                self.events.append(ev)
            self._q.put(line)
        self._q.put(None)

    def send(self, line: str):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_line(self, pred, timeout=20.0) -> str:
        """Wait for a stdout line (log or event) matching pred; fail with the transcript."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting; transcript:\n" + self.transcript())
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("device exited (%s); transcript:\n%s" % (self.proc.poll(), self.transcript()))
            if pred(line):
                return line

    def wait_event(self, kind, pred=lambda d: True, timeout=20.0) -> dict:
        def match(line):
            if not line.startswith("@EV "):
                return False
            ev = json.loads(line[4:])
            return ev["k"] == kind and pred(ev["d"])

        return json.loads(self.wait_line(match, timeout)[4:])

    def kinds(self, kind) -> list[dict]:
        return [e for e in self.events if e["k"] == kind]

    def transcript(self) -> str:
        return "\n".join(self.lines[-80:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
