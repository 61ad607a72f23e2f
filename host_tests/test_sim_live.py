"""The simulator as people use it: a live mic and speaker through pipes
(`--mic -`, `--out -`), push-to-talk from the terminal (Enter, in a pty), the
latency line of every turn and the timeline PNG."""

import os
import pty
import struct
import subprocess
import sys
import threading
import time

import pytest

from tools.common import wav
from tools.ptt import FIRST_REPEAT_S, REPEAT_GAP_S, KeyPtt
from tools.turns import split

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEECH = os.path.join(ROOT, "tools", "assets", "weather_en_16k.wav")
STREAM_HEADER = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 0xFFFFFFFF, b"WAVE", b"fmt ", 16, 1, 1, 16000, 32000,
                            2, 16, b"data", 0xFFFFFFFF)  # what arecord -t wav writes: sizes unknown


def _wav_header(rate, channels):
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36, b"WAVE", b"fmt ", 16, 1, channels, rate,
                       rate * 2 * channels, 2 * channels, 16, b"data", 0)


class RealTimeMic(threading.Thread):
    """Writes a WAV stream into the simulator's stdin at real time, as arecord
    would: half a second of silence, the speech, 1.5 s of silence, again and
    again, until the simulator closes its end."""

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self.pipe = pipe
        _, _, pcm = wav.read_wav(SPEECH)
        self.block = b"\0" * 16000 + pcm + b"\0" * 48000

    def run(self):
        t0 = time.monotonic()
        sent = 0
        try:
            self.pipe.write(STREAM_HEADER)
            self.pipe.flush()
            while True:
                for i in range(0, len(self.block), 1920):
                    self.pipe.write(self.block[i:i + 1920])
                    self.pipe.flush()
                    sent += 1920
                    time.sleep(max(0.0, t0 + sent / 32000.0 - time.monotonic()))
        except (BrokenPipeError, ValueError, OSError):
            pass  # the simulator is done


def _start_sim(args, stderr=subprocess.PIPE, **kw):
    return subprocess.Popen([sys.executable, "-m", "tools.sim", *args], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=stderr, **kw)


def _check_wav_stream(data):
    """The bytes on stdout are one WAV stream and nothing else; returns its seconds and peak."""
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt ", data[:64]
    channels, rate = struct.unpack("<HI", data[22:28])
    assert (channels, rate) == (1, 24000)
    assert data[36:40] == b"data" and struct.unpack("<I", data[40:44])[0] == 0xFFFFFFFF
    samples = memoryview(data[44:len(data) - (len(data) - 44) % 2]).cast("h")
    return len(samples) / 24000.0, max(abs(s) for s in samples)


def test_a_turn_through_pipes_mic_in_speaker_out():
    p = _start_sim(["--mic", "-", "--out", "-", "--mode", "auto"])
    RealTimeMic(p.stdin).start()
    out, err = p.communicate(timeout=90)
    err = err.decode()
    assert p.returncode == 0, err
    seconds, peak = _check_wav_stream(out)  # all human text went to stderr
    assert seconds > 2.0 and peak > 1000, (seconds, peak)
    assert "you:   heard" in err and "reply audio %.2f s streamed to stdout" % seconds in err
    assert "turn 1 latency from stt: tts start +" in err and "last audio +" in err


def _controlling_pty():
    """A pty whose slave becomes the child's /dev/tty (its stdin stays the mic pipe)."""
    master, slave = pty.openpty()
    name = os.ttyname(slave)

    def child():
        os.setsid()  # a new session: the first terminal it opens becomes its controlling tty
        os.close(os.open(name, os.O_RDWR))

    return master, slave, child


def _read_until(stream, text, timeout, seen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line.decode())
        if text in seen[-1]:
            return
    raise AssertionError("%r never came; stderr so far:\n%s" % (text, "".join(seen)))


def test_enter_starts_and_stops_talking_on_the_terminal():
    master, slave, child = _controlling_pty()
    p = _start_sim(["--mic", "-", "--out", "-"], preexec_fn=child)
    os.close(slave)
    RealTimeMic(p.stdin).start()
    spk = []
    drain = threading.Thread(target=lambda: spk.append(p.stdout.read()), daemon=True)
    drain.start()
    seen = []
    try:
        _read_until(p.stderr, "hold Space (or press Enter)", 30, seen)
        time.sleep(0.5)  # the prompt is printed before the keyboard thread starts reading
        os.write(master, b"\r")  # Enter: press
        _read_until(p.stderr, "listen state=start", 15, seen)
        time.sleep(3.5)  # talk over one whole utterance of the looping mic
        os.write(master, b"\r")  # Enter again: release
        _read_until(p.stderr, "listen state=stop", 15, seen)
        _read_until(p.stderr, "turn 1 latency from release: listen stop +", 30, seen)
        p.wait(timeout=30)
        seen.append(p.stderr.read().decode())
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    drain.join(10)
    text = "".join(seen)
    assert p.returncode == 0, text
    heard = [ln for ln in text.splitlines() if "you:   heard" in ln]
    assert heard and int(heard[0].split("heard ")[1].split()[0]) >= 40, heard  # ~3.5 s of 60 ms frames
    assert _check_wav_stream(spk[0])[0] > 2.0


def test_push_to_talk_without_a_terminal_says_so():
    p = _start_sim(["--mic", "-", "--out", "-"], start_new_session=True)  # no controlling tty at all
    out, err = p.communicate(STREAM_HEADER, timeout=30)
    assert p.returncode == 2 and out == b""
    assert err.decode().strip().splitlines() == [
        "sim: error: push-to-talk needs a terminal and there is none; use --mode auto "
        "(the server's VAD ends each utterance)"]


@pytest.mark.parametrize("rate,channels", [(44100, 1), (16000, 2)])
def test_a_mic_that_is_not_16k_mono_gets_the_sox_line(tmp_path, rate, channels):
    f = tmp_path / "in.wav"
    f.write_bytes(_wav_header(rate, channels))
    for args, data in ((["--mic", str(f)], b""), (["--mic", "-", "--mode", "auto"], _wav_header(rate, channels))):
        p = _start_sim(args + ["--out", str(tmp_path / "o.wav")])
        out, err = p.communicate(data, timeout=30)
        lines = err.decode().strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1, lines
        assert "%d Hz x%d" % (rate, channels) in lines[0] and "sox in.wav -r 16000 -c 1" in lines[0]


def test_latency_line_per_turn_and_timeline_png(tmp_path):
    png = tmp_path / "turn.png"
    p = subprocess.run([sys.executable, "-m", "tools.sim", "--turns", "2", "--speed", "4", "--clock-speed", "2",
                        "--out", str(tmp_path / "r.wav"), "--timeline", str(png)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("turn ") and "latency" in ln]
    assert [ln.split(":")[0] for ln in lines] == ["turn 1 latency from release", "turn 2 latency from release"]
    for ln in lines:
        for mark in ("listen stop +", "stt +", "tts start +", "first audio +", "last audio +"):
            assert mark in ln, ln
        assert ln.endswith("(device clock, 2 x real time)")
    assert "times are device time: the firmware's clock runs 2 x faster" in p.stdout
    from PIL import Image

    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] >= 1200 and im.size[1] >= 700
        # The speaker row is drawn: the waveform's blue is there.
        assert (37, 99, 235) in {c for _, c in im.convert("RGB").getcolors(1 << 20)}


def test_timeline_cli_names_a_bad_event_file(tmp_path):
    bad = tmp_path / "ev.jsonl"
    bad.write_text('{"t": 1, "k": "state", "d": {"from": "idle", "to": "connecting"}}\nnot json\n')
    p = subprocess.run([sys.executable, "-m", "tools.timeline", str(bad)], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and p.stderr.strip() == "timeline: error: %s line 2 is not JSON" % bad


def test_turn_marks_from_events():
    ev = [(100, "tx", {"type": "listen", "state": "start"}), (900, "button", "release"),
          (901, "tx", {"type": "listen", "state": "stop"}), (950, "rx", {"type": "stt", "text": "hi"}),
          (980, "rx", {"type": "tts", "state": "start"}),
          (2500, "speaker", {"start_ms": 1010, "offset": 0, "bytes": 48000, "rate": 24000}),
          (2501, "audio", {"dir": "play", "frames": 17})]
    turns = split([{"t": t, "k": k, "d": d} for t, k, d in ev])
    assert len(turns) == 1
    assert turns[0].latency_line() == ("turn 1 latency from release: listen stop +1 ms, stt +50 ms, "
                                       "tts start +80 ms, first audio +110 ms, last audio +1600 ms")


def test_space_is_held_while_its_repeats_come_and_enter_toggles():
    k = KeyPtt()
    assert k.key(" ", 0.0) == ["press"]
    assert k.tick(FIRST_REPEAT_S - 0.05) == []  # autorepeat has not started yet
    assert k.key(" ", 0.6) == [] and k.key(" ", 0.63) == []
    assert k.tick(0.63 + REPEAT_GAP_S - 0.01) == []
    assert k.tick(0.63 + REPEAT_GAP_S) == ["release"]
    assert k.key("\n", 5.0) == ["press"] and k.tick(60.0) == []  # Enter holds until the next Enter
    assert k.key(" ", 61.0) == [] and k.key("\r", 62.0) == ["release"]
    assert k.key("x", 63.0) == [] and k.tick(64.0) == []
