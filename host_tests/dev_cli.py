# `python -m tools.dev` run as a user runs it, for test_dev_deploy.py and test_dev_flash.py.
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_dev(*args, env=None, timeout=90):
    return subprocess.run([sys.executable, "-m", "tools.dev", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env=dict(os.environ, **(env or {})))


def assert_one_line_error(p, *words):
    """A failed command ends in exit 1 and one 'dev: FAILED: ...' line naming `words`, never a traceback."""
    assert p.returncode == 1, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dev: FAILED: "), p.stderr
    for w in words:
        assert w in lines[0], lines[0]
