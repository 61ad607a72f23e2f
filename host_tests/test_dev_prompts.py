"""`python -m tools.dev prompts`: the local prompt sounds made from text with the
real espeak-ng and sox, read back with the firmware's own header parser."""

import array
import json
import math
import os
import shutil
import wave

import pytest
from dev_cli import assert_one_line_error
from dev_cli import run_dev as dev

from firmware import codec, prompt_file
from tools.dev import prompts


def _need_tools():
    missing = [t for t in ("espeak-ng", "sox") if not shutil.which(t)]
    assert not missing, "missing %s: run scripts/setup (Debian packages espeak-ng, sox)" % " and ".join(missing)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    _need_tools()
    out = tmp_path_factory.mktemp("prompts")
    p = dev("prompts", "--out", str(out), timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "made 35 prompts (adpcm)" in p.stdout
    return out


def _read(path):
    """-> the header's fields and the audio decoded to PCM with the firmware's codec."""
    data = path.read_bytes()
    fmt, frame_ms, rate, packet, frames = prompt_file.parse_header(data[:prompt_file.HEADER])
    body = data[prompt_file.HEADER:]
    assert len(body) == packet * frames
    c = codec.create(fmt, rate, frame_ms)
    pcm = bytearray()
    out = bytearray(c.frame_bytes)
    for i in range(frames):
        n = c.decode_into(body, out, i * packet, packet)
        pcm += out[:n]
    return fmt, frame_ms, rate, packet, frames, bytes(pcm)


def _rms_dbfs(pcm):
    s = array.array("h")
    s.frombytes(pcm)
    return 10 * math.log10(sum(x * x for x in s) / len(s) / 32768.0 ** 2 + 1e-12)


def test_every_prompt_in_both_languages_is_speech_in_the_device_codec(built):
    for lang in ("en", "zh-CN"):
        for name in prompt_file.NAMES:
            fmt, frame_ms, rate, packet, frames, body = _read(built / lang / (name + ".xzp"))
            assert (fmt, frame_ms, rate, packet) == ("adpcm", 60, 16000, 484), name
            # Trimmed words: a digit is a fraction of a second, a sentence a few seconds.
            assert 3 <= frames <= 150, (lang, name, frames)
            assert _rms_dbfs(body) > -35, (lang, name)
    assert (built / "en" / "connecting.xzp").read_bytes() != (built / "zh-CN" / "connecting.xzp").read_bytes()
    fmt, _, _, _, frames, body = _read(built / "listen.xzp")
    assert frames == 4 and _rms_dbfs(body) > -30  # two 90 ms tones


def test_second_run_is_up_to_date_and_deploy_listing(built):
    before = {p: os.stat(p).st_mtime_ns for p in built.rglob("*.xzp")}
    p = dev("prompts", "--out", str(built))
    assert p.returncode == 0 and "up to date" in p.stdout, p.stdout + p.stderr
    assert before == {p: os.stat(p).st_mtime_ns for p in built.rglob("*.xzp")}
    files = prompts.files(str(built))
    assert len(files) == 35 and "prompts/zh-CN/digit_7.xzp" in files and "prompts/listen.xzp" in files


def test_recorded_voices_replace_the_synthesized_ones(tmp_path):
    _need_tools()
    rec = tmp_path / "rec" / "en"
    rec.mkdir(parents=True)
    tone = array.array("h", (int(9000 * math.sin(i / 5.0)) for i in range(16000 * 3 // 10))).tobytes()
    with wave.open(str(rec / "err_server.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(tone)
    out = tmp_path / "out"
    p = dev("prompts", "--out", str(out), "--format", "pcm", "--recorded", str(tmp_path / "rec"), timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    *_, frames, body = _read(out / "en" / "err_server.xzp")
    assert frames == 5 and body[:len(tone)] == tone
    assert json.loads((out / "stamp.json").read_text())["recorded"]


def test_bad_arguments_and_missing_tools_are_one_line(tmp_path):
    p = dev("prompts", "--format", "mp3")
    assert p.returncode == 2 and "invalid choice" in p.stderr
    assert_one_line_error(dev("prompts", "--out", str(tmp_path / "o"), "--recorded", str(tmp_path / "nope")),
                          "--recorded", "no such directory")
    bad = tmp_path / "rec" / "en"
    bad.mkdir(parents=True)
    with wave.open(str(bad / "connecting.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(bytes(400))
    assert_one_line_error(dev("prompts", "--out", str(tmp_path / "o"), "--recorded", str(tmp_path / "rec"),
                              timeout=300), "connecting.wav", "16000 Hz mono")
    # No espeak-ng on PATH: the message names the setup step and the package.
    p = dev("prompts", "--out", str(tmp_path / "o2"), env={"PATH": str(tmp_path)})
    assert_one_line_error(p, "espeak-ng not found", "scripts/setup")
