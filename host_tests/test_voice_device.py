"""The device's own voice and face, end to end: the real firmware under the
MicroPython unix port through `python -m tools.sim`, against the real mock
server and mock OTA on 127.0.0.1, with the prompts made by the real
espeak-ng + sox (tools.dev prompts)."""

import array
import json
import os
import random
import shutil
import socket
import subprocess
import sys

import pytest

from tools import sim as simtool
from tools.common import wav
from tools.harness.device import start_device
from tools.mock_server.server import MockServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEECH = os.path.join(ROOT, "tools", "assets", "weather_en_16k.wav")


def _need_prompt_tools():
    missing = [t for t in ("espeak-ng", "sox") if not shutil.which(t)]
    assert not missing, "missing %s: run scripts/setup (Debian packages espeak-ng, sox)" % " and ".join(missing)


def sim(*args, timeout=180):
    _need_prompt_tools()
    return subprocess.run([sys.executable, "-m", "tools.sim", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


def events(path):
    with open(path) as f:
        return [json.loads(ln) for ln in f if ln.strip()]


def level_dbfs(path, start=0, end=None):
    rate, _, pcm = wav.read_wav(path)
    s = array.array("h")
    s.frombytes(pcm[start:end])
    if not s:
        return None, rate
    ms = sum(x * x for x in s) / len(s)
    import math

    return (10 * math.log10(ms / 32768.0 ** 2) if ms else None), rate


@pytest.fixture
def server():
    srv = MockServer(host="127.0.0.1", port=0)
    srv.start_in_thread()
    yield srv
    srv.stop()


def test_turn_with_an_emotion_writes_the_faces(tmp_path, server):
    shots = tmp_path / "faces"
    ev = tmp_path / "ev.jsonl"
    p = sim("--server", server.url, "--display", str(shots), "--events", str(ev), "--out", str(tmp_path / "r.wav"))
    assert p.returncode == 0, p.stdout + p.stderr
    pngs = sorted(n for n in os.listdir(shots) if n.endswith(".png"))
    assert len(pngs) >= 3 and not [n for n in os.listdir(shots) if n.endswith(".fb")]
    blobs = [(shots / n).read_bytes() for n in pngs]
    assert all(a != b for a, b in zip(blobs, blobs[1:], strict=False)), "a frame was written without a change"
    assert len(set(blobs)) >= 3
    assert all(b.startswith(b"\x89PNG") for b in blobs)
    shows = [e["d"] for e in events(ev) if e["k"] == "show"]
    states = [(d["state"], d["emotion"]) for d in shows]
    # The mock's LLM answers "happy": connecting, listening, the emotion while speaking, then idle.
    assert ("listening", "neutral") in states and ("speaking", "happy") in states, states
    assert states[-1] == ("idle", "neutral"), states
    assert "display: %d frame(s)" % len(pngs) in p.stdout


def _dead_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    return "ws://127.0.0.1:%d/xiaozhi/v1/" % port


def test_unreachable_server_says_so_in_the_speaker(tmp_path):
    out = tmp_path / "out.wav"
    ev = tmp_path / "ev.jsonl"
    p = sim("--server", _dead_url(), "--out", str(out), "--events", str(ev),
            "--set", 'language="en"')
    assert p.returncode == 1 and "sim: FAILED" in p.stderr
    got = events(ev)
    failed = [e["d"] for e in got if e["k"] == "failed"]
    assert failed and failed[0]["step"] == "server", failed
    said = [e["d"]["name"] for e in got if e["k"] == "prompt" and "name" in e["d"]]
    assert said[:1] == ["err_server"], said
    assert [e for e in got if e["k"] == "prompt" and e["d"]["file"] == "prompts/en/err_server.xzp"]
    level, rate = level_dbfs(str(out))
    assert rate == 24000 and level is not None and level > -40, level
    assert "voice  says err_server" in p.stdout


def test_activation_code_is_read_digit_by_digit(tmp_path):
    ev = tmp_path / "ev.jsonl"
    out = tmp_path / "out.wav"
    p = sim("--ota", "mock", "--activation", "123456", "--clock-speed", "10", "--events", str(ev), "--out", str(out))
    assert p.returncode == 0, p.stdout + p.stderr
    said = [e["d"] for e in events(ev) if e["k"] == "prompt" and "name" in e["d"]]
    names = [d["name"] for d in said]
    assert names[:7] == ["activation"] + ["digit_%d" % d for d in (1, 2, 3, 4, 5, 6)], names
    assert said[0]["file"] == "prompts/zh-CN/activation.xzp"  # the default language
    level, _ = level_dbfs(str(out))
    assert level is not None and level > -40


def test_a_press_cuts_a_prompt_short(tmp_path):
    _need_prompt_tools()
    simtool.link_prompts(str(tmp_path))
    fw = start_device(str(tmp_path), _dead_url(), button_mode="click", language="en")
    try:
        fw.send("click")  # the open fails: the device starts saying so
        fw.wait_for("no prompt", "prompt", name="err_server")
        fw.send("click")
        fw.wait_for("the prompt was not cut short", "prompt", cut="err_server")
    finally:
        fw.stop()


def _mic_with_quiet_lead(path, lead_s=1.5):
    rng = random.Random(7)
    quiet = array.array("h", (rng.randint(-24, 24) for _ in range(int(16000 * lead_s)))).tobytes()
    speech = wav.read_wav(SPEECH)[2]
    wav.write_wav(str(path), 16000, quiet + speech + bytes(2 * 16000 * 3))
    return quiet + speech


def test_hands_free_turn_sends_the_pre_roll_first(tmp_path, server):
    mic = tmp_path / "mic.wav"
    audio = _mic_with_quiet_lead(mic)
    ev = tmp_path / "ev.jsonl"
    p = sim("--server", server.url, "--mode", "vad", "--mic", str(mic), "--events", str(ev),
            "--out", str(tmp_path / "r.wav"))
    assert p.returncode == 0, p.stdout + p.stderr
    got = events(ev)
    assert not [e for e in got if e["k"] == "button" and e["d"] == "press" and
                got.index(e) < next(i for i, x in enumerate(got) if x["k"] == "vad")], "a button started the turn"
    onset = next(e["d"] for e in got if e["k"] == "vad")
    pre = next(e["d"] for e in got if e["k"] == "preroll")
    assert pre["frames"] == 10 and pre["first"] < onset["frame"]
    turn = server.sessions[0].turns[0]
    # The server's audio starts with the mic's frame from before the detector fired.
    first = turn.pcm[:1920]
    at = audio.find(first)
    assert at >= 0 and at % 1920 == 0, "the first frame the server got is not from the mic file"
    assert at // 1920 + 1 == pre["first"] and at // 1920 + 1 < onset["frame"]
    assert turn.frames >= pre["frames"] + 3


def test_bad_display_dir_is_one_line(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    p = sim("--display", str(f / "sub"))
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "--display" in p.stderr, p.stderr
