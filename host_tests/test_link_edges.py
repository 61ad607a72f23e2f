"""The edges found by hand in issue 10, each mended and kept mended: the
simulator's process handling, option checks and decoding; the portal's
restart; a serial port lost mid-deploy; a server that can only speak Opus."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from bootkit import device, free_port, wait
from dev_cli import ROOT

from tools import sim
from tools.mock_server.server import MockServer

SIM = [sys.executable, "-m", "tools.sim"]


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _gone(pid, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().split(")")[-1].split()[0] == "Z":
                    return True  # a zombie holds no ports; its parent is gone anyway
        except OSError:
            return True
        time.sleep(0.05)
    return False


def _port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killing_sim_takes_the_firmware_child_and_frees_its_port(tmp_path, sig):
    port = free_port()
    p = subprocess.Popen(SIM + ["--portal", "--portal-port", str(port), "--out", str(tmp_path / "o.wav")],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while _port_free(port):  # the firmware child serves the portal there
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.1)
        kids = _children(p.pid)
        assert kids, "no firmware child"
        p.send_signal(sig)
        p.wait(20)
        if sig == signal.SIGTERM:
            assert p.returncode == 143 and "terminated" in p.stderr.read()
        assert all(_gone(k) for k in kids), "the micropython child outlived tools.sim"
        assert _port_free(port)
    finally:
        if p.poll() is None:
            p.kill()


@pytest.mark.parametrize(("args", "words"), [
    (["--heap", "abc"], ["--heap", "'abc'"]),
    (["--portal", "--portal-port", "99999"], ["--portal-port", "99999"]),
    (["--events", "/nonexistent-dir/ev.jsonl"], ["--events", "/nonexistent-dir"]),
    (["--out", "/nonexistent-dir/o.wav"], ["--out", "/nonexistent-dir"]),
    (["--workdir", "/nonexistent-dir/w"], ["--workdir", "/nonexistent-dir"]),
    (["--ca", "/nonexistent-dir/ca.der"], ["--ca", "/nonexistent-dir/ca.der"]),
])
def test_sim_checks_options_before_launch(args, words):
    p = subprocess.run(SIM + args, cwd=ROOT, capture_output=True, text=True, timeout=30)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr and all(w in lines[0] for w in words), lines


def test_sim_names_a_portal_port_in_use():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = subprocess.run(SIM + ["--portal", "--portal-port", str(port)], cwd=ROOT, capture_output=True,
                           text=True, timeout=30)
    assert p.returncode == 2 and ("127.0.0.1:%d" % port) in p.stderr and len(p.stderr.splitlines()) == 1


def test_escaped_lone_surrogate_in_stt_and_sentence_start_completes_the_turn(tmp_path):
    # The firmware prints the decoded "\ud83d" as the bytes ED A0 BD; the host
    # reader, the events file and the transcript must all survive them.
    srv = MockServer(pace_ms=0, drain_s=0.05).start_in_thread()
    (tmp_path / "config.json").write_text(json.dumps({"board": "sim", "ws_url": srv.url, "button_mode": "ptt"}))
    (tmp_path / "sim.json").write_text(json.dumps({"mic": sim.DEFAULT_MIC, "out": str(tmp_path / "o.wav"),
                                                   "speed": 8}))
    events = open(tmp_path / "events.jsonl", "w", encoding="utf-8")
    fw = sim.Firmware(str(tmp_path), events_file=events)
    fw.on_event = sim.Transcript(out=open(os.devnull, "w")).show
    try:
        fw.wait_for("not ready", "ready")
        fw.send("press")
        fw.wait_for("not listening", "tx", type="listen", state="start")
        srv.send_text('{"type":"stt","text":"\\ud83d"}')
        srv.send_text('{"type":"tts","state":"sentence_start","text":"a\\ud83db"}')
        fw.wait_for("no stt", "rx", type="stt")
        time.sleep(sim.wav_duration(sim.DEFAULT_MIC)[0] / 8 + 0.1)  # an utterance, so a reply comes
        fw.send("release")
        fw.wait_for("no reply", "rx", type="tts", state="stop", timeout=30)
        fw.wait_for("reply not played", "audio", dir="play")
    finally:
        fw.stop()
        events.close()
        srv.stop()
    texts = [e["d"].get("text") for e in fw.seen if e["k"] == "rx" and e["d"].get("type") in ("stt", "tts")]
    assert "\ufffd" in "".join(t for t in texts if t), texts
    written = (tmp_path / "events.jsonl").read_text(encoding="utf-8")
    assert "\ufffd" in written and len(written.splitlines()) >= len(fw.seen)


def test_portal_done_with_no_network_saved_serves_the_portal_again(tmp_path):
    port, dns = free_port(), free_port(socket.SOCK_DGRAM)
    sim_opts = {"networks": [{"ssid": "home", "password": "pw", "rssi": -40}], "wifi_join_ms": 500,
                "clock_speed": 10, "portal_port": port, "dns_port": dns}
    with device(tmp_path, {"schema": 3, "board": "sim"}, sim_opts) as dev:
        for _ in range(3):
            wait(dev, "portal")
            req = urllib.request.Request("http://127.0.0.1:%d/exit" % port, data=b"{}", method="POST")
            with urllib.request.urlopen(req, timeout=10) as r:
                assert json.loads(r.read()) == {"success": True}
            wait(dev, "portal_exit")
        wait(dev, "portal")  # back again, not EADDRINUSE
        assert dev.proc.poll() is None
        assert not any("Traceback" in line for line in dev.log), dev.log


def test_serial_port_lost_mid_deploy_is_one_line(tmp_path):
    socat = shutil.which("socat")
    assert socat, "socat is missing: run scripts/setup (Debian package socat)"
    from test_dev_deploy import FakeBoard, on_board

    os.makedirs(tmp_path / "board")
    b = FakeBoard(tmp_path / "board")
    p = subprocess.Popen([sys.executable, "-m", "tools.dev", "deploy", *on_board(b), "--arch", "x64",
                          "--no-reset"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in p.stdout:
            if line.strip().startswith("[2/"):  # uploading: pull the cable
                b.close()
                break
        out, err = p.communicate(timeout=60)
    finally:
        b.close()
        if p.poll() is None:
            p.kill()
    lines = err.strip().splitlines()
    assert p.returncode == 1, (out, err)
    assert len(lines) == 1 and lines[0].startswith("dev: FAILED: ") and b.tty in lines[0], err


def test_opus_only_server_is_refused_naming_the_format_and_the_gateway(tmp_path):
    srv = MockServer(format="opus", pace_ms=0, drain_s=0.05).start_in_thread()
    try:
        p = subprocess.run(SIM + ["--server", srv.url, "--speed", "8", "--out", str(tmp_path / "o.wav")],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        srv.stop()
    assert p.returncode != 0, p.stdout + p.stderr
    line = p.stderr.strip().splitlines()[-1]
    assert "opus" in line.lower() and "gateway" in line.lower(), p.stderr
