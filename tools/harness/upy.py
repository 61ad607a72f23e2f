"""MicroPython scripts from tests and benchmarks: the pinned binary, a
MICROPYPATH that finds the repo's modules as a board does (lib/ modules at the
top level, firmware/ as a package), and the JSON lines the scripts print."""

import json
import os

from tools.sim import SimError, micropython_binary

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(ROOT, "lib")


def env(*extra_paths):
    """os.environ plus MICROPYPATH: the frozen modules, lib/, the repo root, then extra_paths."""
    return dict(os.environ, MICROPYPATH=":".join((".frozen", LIB, ROOT) + extra_paths))


def json_lines(lines, prefix="J "):
    """The objects a script printed as `prefix + json`, in order."""
    return [json.loads(ln[len(prefix):]) for ln in lines if ln.startswith(prefix)]


__all__ = ("LIB", "ROOT", "SimError", "env", "json_lines", "micropython_binary")
