# `python -m tools.dev deploy|config|logs|repl` against the MicroPython unix port
# presented as a serial device: socat joins a pty to `micropython -i` running in a
# temp dir, which plays the board's filesystem root. mpremote talks to it with
# `resume` (the unix port cannot soft-reset; Ctrl-D ends it, like a reboot).
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest
from dev_cli import ROOT, assert_one_line_error
from dev_cli import run_dev as dev

from tools.dev import build, devconfig, prompts
from tools.dev.cli import build_parser
from tools.dev.errors import DevError

MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")
SOCAT = shutil.which("socat")
if SOCAT is None:  # a missing tool fails the run, never skips it
    pytest.fail("socat is not installed: run `make setup` (scripts/setup installs the Debian package socat)",
                pytrace=False)

PASSWORD = "pw-Zq81-never-printed"
TOKEN = "tok-Xk27-never-printed"


class FakeBoard:
    """micropython -i on a pty; `root` is its filesystem, `tty` the serial port path."""

    def __init__(self, root, program=None):
        self.root = str(root)
        self.tty = os.path.join(os.path.dirname(self.root), "tty-%s" % os.path.basename(self.root))
        cmd = "%s -i" % MICROPYTHON if program is None else "%s %s" % (MICROPYTHON, program)
        env = dict(os.environ, MICROPYPATH=".frozen:%s/lib" % self.root)
        self.proc = subprocess.Popen(
            [SOCAT, "pty,link=%s,raw,echo=0" % self.tty, "EXEC:%s,pty,raw,echo=0,stderr" % cmd],
            cwd=self.root, env=env, start_new_session=True, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.tty):
            assert self.proc.poll() is None, "socat exited"
            assert time.monotonic() < deadline, "socat did not create %s" % self.tty
            time.sleep(0.02)

    def ended(self, timeout=10):
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(5)


@pytest.fixture
def boards():
    made = []

    def start(root, program=None):
        os.makedirs(root, exist_ok=True)
        b = FakeBoard(root, program)
        made.append(b)
        return b

    yield start
    for b in made:
        b.close()


def on_board(b):
    return ["--port", b.tty, "--resume", "--root", b.root]


def snapshot(tmp_path):
    """A copy of the device files to deploy from, so edits to the checkout during the run cannot race the test."""
    src = tmp_path / "src"
    for rel in build.device_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(os.path.join(ROOT, rel), src / rel)
    (src / "firmware" / "boards").mkdir(parents=True, exist_ok=True)
    return str(src)


def modules(src):
    out = []
    for rel in build.device_files(src):
        if rel in build.ENTRY:
            continue
        mod = rel[:-3].replace("/", ".")
        mod = mod[len("lib."):] if mod.startswith("lib.") else mod
        out.append(mod[: -len(".__init__")] if mod.endswith(".__init__") else mod)
    return out


IMPORT_ALL = """
for m in %r:
    try:
        __import__(m)
        print('OK', m)
    except BaseException as e:
        print('FAIL', m, type(e).__name__, e)
"""


def import_results(output):
    return {ln.split()[1]: ln.split()[0] for ln in output.splitlines() if ln.startswith(("OK ", "FAIL "))}


def test_deploy_uploads_then_nothing_and_firmware_imports(boards, tmp_path):
    root = tmp_path / "board"
    # Leftovers a previous install could have: a removed module, and a .py that
    # would shadow the new .mpy (MicroPython imports .py first).
    (root / "firmware").mkdir(parents=True)
    (root / "firmware" / "gone.py").write_text("raise ImportError('stale module imported')\n")
    (root / "lib").mkdir()
    (root / "lib" / "keep_me.py").write_text("X = 1\n")
    src = snapshot(tmp_path)
    libmods = [f for f in build.device_files(src) if f.startswith("lib/")]
    if libmods:
        (root / libmods[0]).write_text("raise ImportError('stale shadow imported')\n")
    b = boards(root)
    files = build.build(arch="x64", root=src)
    p = dev("deploy", *on_board(b), "--src", src, "--arch", "x64", "--no-prompts", "--ssid", "home-net",
            "--password", PASSWORD,
            "--ws-url", "ws://127.0.0.1:8000/xiaozhi/v1/", env={"XIAOZHI_WS_TOKEN": TOKEN})
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout + p.stderr
    assert PASSWORD not in out and TOKEN not in out
    assert "ws_token: value changed" in out and '"home-net"' in out

    for rel, data in files.items():
        assert (root / rel).read_bytes() == data, rel
    assert not (root / "firmware" / "gone.py").exists()
    if libmods:
        assert not (root / libmods[0]).exists()
    assert (root / "lib" / "keep_me.py").exists(), "deploy must not touch other libraries in /lib"
    cfg = json.loads((root / "config.json").read_text())
    assert cfg["wifi"][0] == {"ssid": "home-net", "password": PASSWORD}
    assert cfg["ws_url"] == "ws://127.0.0.1:8000/xiaozhi/v1/" and cfg["ws_token"] == TOKEN
    assert "deploy: %d uploaded" % len(files) in p.stdout
    assert b.ended(), "deploy did not finish with a soft reset (Ctrl-D)"

    # The board "reboots": a second deploy finds every hash equal and uploads nothing.
    b2 = boards(root)
    mtimes = {rel: os.stat(root / rel).st_mtime_ns for rel in files}
    p = dev("deploy", *on_board(b2), "--src", src, "--arch", "x64", "--no-prompts", "--no-reset", "--ssid", "home-net",
            "--password", PASSWORD)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "deploy: 0 uploaded, %d unchanged, 0 removed" % len(files) in p.stdout
    assert "config: unchanged" in p.stdout
    assert mtimes == {rel: os.stat(root / rel).st_mtime_ns for rel in files}

    # `config` shows the device config with secrets masked.
    p = dev("config", *on_board(b2))
    assert p.returncode == 0, p.stdout + p.stderr
    shown = json.loads(p.stdout)
    assert shown["wifi"] == ["home-net"] and shown["ws_token"] == "***" and PASSWORD not in p.stdout

    # Every module that imports from source under micropython imports from the deployed .mpy too.
    script = IMPORT_ALL % modules(src)
    p = subprocess.run([MICROPYTHON, "-c", script], capture_output=True, text=True, cwd=src, timeout=60,
                       env=dict(os.environ, MICROPYPATH=".frozen:%s:%s/lib" % (src, src)))
    want = import_results(p.stdout)
    p = subprocess.run([sys.executable, "-m", "mpremote", "connect", b2.tty, "resume", "exec", script],
                       capture_output=True, text=True, timeout=60)
    got = import_results(p.stdout)
    assert got == want, p.stdout + p.stderr
    for core in ("firmware.config", "firmware.log", "firmware.app"):
        if core in want:
            assert got[core] == "OK", p.stdout
    assert "OK firmware.config" in p.stdout and "from 'firmware/config.mpy'" not in p.stderr


def test_dry_run_changes_nothing(boards, tmp_path):
    b = boards(tmp_path / "board")
    p = dev("deploy", *on_board(b), "--arch", "x64", "--dry-run", "--ws-url", "ws://10.0.0.2:8000/")
    assert p.returncode == 0, p.stdout + p.stderr
    # The prompt sounds are built (espeak-ng + sox) and planned with the firmware.
    n = len(build.device_files()) + len(prompts.files())
    assert "deploy: would %d to upload, 0 unchanged, 0 to remove" % n in p.stdout
    assert "upload  firmware/config.mpy" in p.stdout and "mkdir   firmware" in p.stdout
    assert "upload  prompts/en/err_server.xzp" in p.stdout and "upload  prompts/zh-CN/digit_7.xzp" in p.stdout
    assert "upload  prompts/listen.xzp" in p.stdout
    assert 'config: would set ws_url: "" -> "ws://10.0.0.2:8000/"' in p.stdout
    assert os.listdir(b.root) == []
    assert not b.ended(0.2), "a dry run must not reset the board"


def test_frozen_deploy_removes_shadowing_copies(boards, tmp_path):
    root = tmp_path / "board"
    (root / "firmware").mkdir(parents=True)
    (root / "firmware" / "app.mpy").write_bytes(b"M")
    b = boards(root)
    p = dev("deploy", *on_board(b), "--frozen", "--no-prompts", "--no-reset")
    assert p.returncode == 0, p.stdout + p.stderr
    entry = [f for f in build.ENTRY if os.path.exists(os.path.join(ROOT, f))]
    assert sorted(os.listdir(root)) == sorted(entry + ["firmware"])
    assert os.listdir(root / "firmware") == []


def test_missing_port(tmp_path):
    assert_one_line_error(dev("deploy", "--port", str(tmp_path / "ttyACM7")), "does not exist")
    assert_one_line_error(dev("config", "--port", str(tmp_path / "ttyACM7")), "does not exist")
    assert_one_line_error(dev("logs", "--port", str(tmp_path / "ttyACM7")), "does not exist")
    assert_one_line_error(dev("repl", "--port", str(tmp_path / "ttyACM7")), "does not exist")


def test_device_that_does_not_answer(tmp_path):
    # A pty whose other end is held open but never speaks, like a board stuck in a loop with no REPL.
    master, slave = os.openpty()
    try:
        p = dev("deploy", "--port", os.ttyname(slave), "--resume", "--timeout", "1", "--arch", "x64")
        assert_one_line_error(p, "no MicroPython REPL answered", os.ttyname(slave))
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("args,words", [
    (["--ws-url", "ftp://x"], ["ws_url", "ws://"]),
    (["--board", "nosuchboard"], ["'board'", "bread_compact_s3", "nosuchboard"]),
    (["--password", "x"], ["--password needs --ssid"]),
    (["--ssid", "x" * 33], ["ssid", "32 bytes"]),
    (["--config-file", "/nonexistent/cfg.json"], ["cannot read config file"]),
])
def test_bad_config_input_fails_before_connecting(args, words, tmp_path):
    # The port does not exist either: config errors must come first, without touching a board.
    assert_one_line_error(dev("deploy", "--port", str(tmp_path / "tty0"), *args), *words)


def test_bad_config_file(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text('{"volume": "loud"}')
    assert_one_line_error(dev("config", "--port", str(tmp_path / "tty0"), "--config-file", str(bad)), "volume")
    bad.write_text("{nope")
    assert_one_line_error(dev("config", "--port", str(tmp_path / "tty0"), "--config-file", str(bad)), "not valid JSON")
    bad.write_text('{"_network": ["x", ""]}')
    assert_one_line_error(dev("config", "--port", str(tmp_path / "tty0"), "--config-file", str(bad)),
                    "unknown config key '_network'")


def test_exported_password_alone_is_not_an_error(tmp_path, monkeypatch):
    # docs/flashing.md exports $XIAOZHI_WIFI_PASSWORD: commands without --ssid must still run (and reach the port).
    assert_one_line_error(dev("config", "--port", str(tmp_path / "tty0"), env={"XIAOZHI_WIFI_PASSWORD": PASSWORD}),
                    "does not exist")
    monkeypatch.setenv("XIAOZHI_WIFI_PASSWORD", PASSWORD)
    monkeypatch.delenv("XIAOZHI_WS_TOKEN", raising=False)
    parse = build_parser().parse_args
    assert devconfig.changes_from_args(parse(["config"])) == {}
    home = {"ssid": "home", "password": PASSWORD}
    assert devconfig.changes_from_args(parse(["config", "--ssid", "home"])) == {devconfig.NETWORK: home}


def test_explicit_empty_flag_clears_the_key():
    args = build_parser().parse_args(["config", "--ws-url", "", "--token", ""])
    assert devconfig.changes_from_args(args) == {"ws_url": "", "ws_token": ""}


def test_garbled_device_wifi_list_is_named_not_a_crash():
    for wifi in (5, ["x"]):
        with pytest.raises(DevError, match="config key 'wifi'"):
            devconfig.merge({"wifi": wifi}, {devconfig.NETWORK: {"ssid": "home", "password": "pw"}})


def test_config_set_from_file_and_reset(boards, tmp_path):
    root = tmp_path / "board"
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"schema": 1, "volume": 30, "ws_token": "old"}))
    cfgfile = tmp_path / "mine.json"
    cfgfile.write_text(json.dumps({"volume": 55, "ota_url": "http://10.0.0.2:8003/xiaozhi/ota/"}))
    b = boards(root)
    p = dev("config", *on_board(b), "--config-file", str(cfgfile), "--reset")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "volume: 30 -> 55" in p.stdout and "old" not in p.stdout
    cfg = json.loads((root / "config.json").read_text())
    assert cfg["volume"] == 55 and cfg["ws_token"] == "old" and cfg["ota_url"].startswith("http://10.0.0.2")
    assert not (root / "config.json.tmp").exists()
    assert b.ended()


def test_logs_follow_until(boards, tmp_path):
    root = tmp_path / "board"
    root.mkdir()
    # Logs from before the port is opened are gone (as on a board), so this one keeps talking.
    (root / "talk.py").write_text(
        "import sys, time\nsys.path.insert(0, %r)\nfrom firmware import log\nlog.events = True\n"
        "for i in range(300):\n    log.info('app', 'tick %%d' %% i)\n    log.event('state', {'to': 'idle'})\n"
        "    time.sleep(0.05)\n" % ROOT)
    b = boards(root, program="talk.py")
    p = dev("logs", "--port", b.tty, "--until", "idle", "--timeout", "20")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "I app: tick" in p.stdout and '"to": "idle"' in p.stdout


def test_logs_timeout_without_text(boards, tmp_path):
    root = tmp_path / "board"
    root.mkdir()
    (root / "quiet.py").write_text("import time\ntime.sleep(30)\n")
    b = boards(root, program="quiet.py")
    p = dev("logs", "--port", b.tty, "--until", "never-printed", "--timeout", "0.5")
    assert_one_line_error(p, "did not appear")


def test_mip_package_installs_and_imports(boards, tmp_path):
    # The real package.json, trimmed to a few entries so the test stays fast (mip
    # writes 256 bytes per round trip), next to the real sources: mip resolves its
    # relative URLs against that directory exactly as against GitHub. That every
    # device file is listed is checked in test_static.py.
    with open(os.path.join(ROOT, "package.json")) as f:
        pkg = json.load(f)
    want = {"firmware/__init__.py", "firmware/boards/__init__.py", "firmware/boards/sim.py", "lib/backoff.py"}
    pkg["urls"] = [u for u in pkg["urls"] if u[0] in want or u[0] in build.ENTRY]
    assert want <= {u[0] for u in pkg["urls"]}
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "package.json").write_text(json.dumps(pkg))
    for name in ("firmware", "lib", *build.ENTRY):
        if os.path.exists(os.path.join(ROOT, name)):
            os.symlink(os.path.join(ROOT, name), checkout / name)
    root = tmp_path / "board"
    b = boards(root)
    p = subprocess.run([sys.executable, "-m", "mpremote", "connect", b.tty, "resume", "mip", "install", "--target",
                        b.root, str(checkout / "package.json")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    for rel, _ in pkg["urls"]:
        assert (root / rel).read_bytes() == open(os.path.join(ROOT, rel), "rb").read(), rel
    p = subprocess.run([sys.executable, "-m", "mpremote", "connect", b.tty, "resume", "exec",
                        "import firmware.boards.sim as s, backoff; print('ok', s.NAME, backoff.__file__)"],
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.startswith("ok "), p.stdout + p.stderr
    assert "/lib/backoff.py" in p.stdout


def test_repl_round_trip(boards, tmp_path):
    # mpremote's REPL wants a terminal on stdin, so the test gives it one.
    b = boards(tmp_path / "board")
    master, slave = os.openpty()
    p = subprocess.Popen([sys.executable, "-m", "tools.dev", "repl", "--port", b.tty, "--resume"], cwd=ROOT,
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 20
        os.write(master, b"print(6 * 7 + 1000)\r")
        while b"1042" not in seen and time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                seen += os.read(master, 4096)
        assert b"1042" in seen, seen
        os.write(master, b"\x1d")  # Ctrl-]: leave mpremote's REPL
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(5)
        os.close(master)


def test_merge_migrates_the_device_file_first():
    # A schema-2 file still holding the old receive-buffer default: written back at schema 3 with the new one,
    # while a value the user set explicitly on the command line is kept.
    old = {"schema": 2, "board": "sim", "ws_max_message": 8192, "volume": 40}
    new = devconfig.merge(old, {})
    assert new["schema"] == 3 and new["ws_max_message"] == 4096 and new["volume"] == 40
    assert devconfig.merge(old, {"ws_max_message": 8192})["ws_max_message"] == 8192
    try:
        devconfig.merge({"schema": 99}, {})
    except devconfig.DevError as e:
        assert "schema" in str(e)
    else:
        raise AssertionError("a future schema was merged")
