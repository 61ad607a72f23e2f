"""Every command-line tool answers the same way: --help works, a bad argument
is one 'error:' line and exit 2, a run that fails is one '<tool>: FAILED:'
line and exit 1, and never a traceback."""

import socket
import subprocess
import sys

import pytest

from tools.dev.cli import build_parser

ROOT = __file__.rsplit("/", 2)[0]


def run(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args, words", [
    (("tools.sim", "--turns", "0"), "python -m tools.sim: error: --turns must be at least 1"),
    (("tools.sim", "--mic", "-", "--speed", "2"), "python -m tools.sim: error: --mic - runs in real time"),
    (("tools.mock_server", "--port", "70000"), "python -m tools.mock_server: error: argument --port"),
    (("tools.mock_server", "--mcp-script", "/nonexistent/script.json"), "mock_server: error: "),
    (("tools.mock_ota", "--port", "99999"), "python -m tools.mock_ota: error: argument --port"),
    (("tools.gateway", "--listen", "nope"), "gateway: error: config key '--listen' must be HOST:PORT"),
    (("tools.dev", "flash"), "python -m tools.dev flash: error: the following arguments are required: image"),
    (("tools.dev", "deploy", "--arch", "z80"), "python -m tools.dev deploy: error: argument --arch"),
    (("tools.bench", "nope"), "python -m tools.bench: error: unknown benchmark nope"),
    (("tools.timeline", "/nonexistent/events.jsonl"), "timeline: error: cannot read /nonexistent/events.jsonl"),
])
def test_bad_usage_is_one_error_line_and_exit_2(args, words):
    p = run(*args)
    last = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
    assert p.returncode == 2 and last.startswith(words), (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr and p.stdout == ""
    # argparse's own errors come after its usage lines; ours are the only line.
    if not words.startswith("python -m"):
        assert p.stderr.count("\n") == 1, p.stderr


@pytest.fixture
def busy_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


@pytest.mark.parametrize("tool, extra", [
    ("tools.mock_server", ()), ("tools.mock_ota", ()), ("tools.gateway", ("--upstream", "ws://127.0.0.1:9/x/")),
])
def test_a_busy_port_is_a_failed_run(busy_port, tool, extra):
    flag = "--listen" if tool == "tools.gateway" else "--port"
    value = "127.0.0.1:%d" % busy_port if tool == "tools.gateway" else str(busy_port)
    p = run(tool, flag, value, *extra)
    name = tool.split(".")[1]
    assert p.returncode == 1, p.stderr
    assert p.stderr.startswith("%s: FAILED: cannot listen on 127.0.0.1:%d" % (name, busy_port)), p.stderr
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr


def test_a_failed_dev_command_names_the_tool():
    p = run("tools.dev", "logs", "--port", "/dev/nonexistent-board")
    assert p.returncode == 1 and p.stderr == "dev: FAILED: serial port /dev/nonexistent-board does not exist " \
                                             "(is the board plugged in?)\n"


@pytest.mark.parametrize("tool", ["tools.sim", "tools.mock_server", "tools.mock_ota", "tools.gateway", "tools.dev",
                                  "tools.bench", "tools.timeline"])
def test_help_works(tool):
    p = run(tool, "--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: python -m %s" % tool) and p.stderr == "", p.stderr


def test_every_dev_subcommand_has_a_description():
    parser = build_parser()
    subs = next(a for a in parser._actions if a.dest == "cmd").choices  # noqa: SLF001 - argparse keeps them here
    assert set(subs) == {"flash", "deploy", "config", "repl", "logs", "check", "doctor", "package", "prompts"}
    for name, sub in subs.items():
        assert sub.description and len(sub.description) > 40, name


def test_deploy_dry_run_without_a_board_shows_the_plan():
    p = run("tools.dev", "deploy", "--dry-run", "--source", "--ws-url", "ws://10.0.0.2:8765/xiaozhi/v1/", timeout=120)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "no board found: planning against an empty board" in out
    assert "  upload  main.py" in out and "  upload  firmware/app.py" in out
    assert 'config: would set ws_url: "" -> "ws://10.0.0.2:8765/xiaozhi/v1/"' in out


def test_clock_speed_says_times_are_scaled(tmp_path):
    p = run("tools.sim", "--clock-speed", "3", "--speed", "4", "--out", str(tmp_path / "r.wav"), timeout=90)
    assert p.returncode == 0, p.stderr
    assert "times are device time: the firmware's clock runs 3 x faster than real time" in p.stdout
    assert "(device clock, 3 x real time)" in p.stdout
