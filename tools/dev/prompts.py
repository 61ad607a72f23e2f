"""Build the device's local prompt sounds from text (`python -m tools.dev prompts`).

Each prompt is spoken by espeak-ng (Debian package, installed by scripts/setup),
resampled to 16 kHz mono by sox, trimmed of leading and trailing silence, cut
into 60 ms frames and encoded with the firmware's own codec into the prompt
file format of firmware/prompts.py. The listening earcon is two short tones
made here. Output goes to build/prompts/ (the device path is prompts/), and a
stamp of the texts, voices and format skips work when nothing changed.
`tools.dev deploy` builds and uploads them.

To use recorded voices instead, put 16 kHz mono 16-bit WAV files named after
the prompts (connecting.wav, err_wifi.wav, digit_0.wav ...) in a folder per
language (en/, zh-CN/) and pass --recorded DIR: a WAV found there replaces the
synthesized one.
"""
import fcntl
import json
import math
import os
import shutil
import struct
import subprocess

from firmware import codec
from firmware import prompt_file as prompts
from tools.common import wav
from tools.dev.build import ROOT
from tools.dev.errors import DevError

OUT = os.path.join(ROOT, "build", "prompts")
RATE = 16000
FRAME_MS = 60
VOICES = {"en": "en", "zh-CN": "cmn"}
TEXTS = {
    "en": {
        prompts.CONNECTING: "Connecting.",
        prompts.ERR_WIFI: "Cannot connect to the Wi-Fi network.",
        prompts.ERR_OTA: "Cannot reach the O T A server.",
        prompts.ERR_SERVER: "Cannot reach the server.",
        prompts.WIFI_LOST: "Wi-Fi connection lost.",
        prompts.WIFI_SETUP: "Please set up Wi-Fi: join the network Xiaozhi with your phone.",
        prompts.ACTIVATION: "Activation code:",
    },
    "zh-CN": {
        prompts.CONNECTING: "正在连接",
        prompts.ERR_WIFI: "无法连接无线网络",
        prompts.ERR_OTA: "无法连接 O T A 服务器",
        prompts.ERR_SERVER: "无法连接服务器",
        prompts.WIFI_LOST: "无线网络已断开",
        prompts.WIFI_SETUP: "请配置网络，用手机连接 Xiaozhi 热点",
        prompts.ACTIVATION: "激活码",
    },
}
_DIGITS = {
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "zh-CN": ("零", "一", "二", "三", "四", "五", "六", "七", "八", "九"),
}
for _lang, _words in _DIGITS.items():
    for _d, _w in enumerate(_words):
        TEXTS[_lang][prompts.DIGITS[_d]] = _w


def _run(cmd, data=None):
    try:
        p = subprocess.run(cmd, input=data, capture_output=True, timeout=60)
    except FileNotFoundError:
        raise DevError("%s not found: run scripts/setup (Debian package %s)"
                       % (cmd[0], "espeak-ng" if cmd[0] == "espeak-ng" else "sox")) from None
    if p.returncode != 0:
        raise DevError("%s failed: %s" % (cmd[0], p.stderr.decode(errors="replace").strip().splitlines()[-1:]))
    return p.stdout


def synthesize(text, voice):
    """espeak-ng -> s16le 16 kHz mono PCM with the silence around the words trimmed."""
    spoken = _run(["espeak-ng", "-v", voice, "-s", "150", "--stdout", text])
    trim = ["silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"]
    return _run(["sox", "-t", "wav", "-", "-t", "raw", "-e", "signed", "-b", "16", "-c", "1",
                 "-r", str(RATE), "-"] + trim, spoken)


def earcon():
    """Two rising tones of 90 ms with 10 ms fades, -12 dBFS: the listening cue."""
    out = bytearray()
    n = RATE * 90 // 1000
    fade = RATE // 100
    for freq in (880, 1320):
        for i in range(n):
            env = min(1.0, i / fade, (n - i) / fade)
            out += struct.pack("<h", int(8000 * env * math.sin(2 * math.pi * freq * i / RATE)))
        out += bytes(2 * RATE * 20 // 1000)
    return bytes(out)


def encode(pcm, fmt):
    """PCM -> prompt file bytes: the header, then one fixed-size packet per 60 ms
    frame (the last frame padded with silence)."""
    c = codec.create(fmt, RATE, FRAME_MS)
    frame = c.frame_samples * 2
    frames = max(1, (len(pcm) + frame - 1) // frame)
    padded = bytes(pcm) + bytes(frames * frame - len(pcm))
    body = bytearray()
    out = bytearray(c.max_packet)
    packet = None
    for i in range(frames):
        n = c.encode_into(memoryview(padded)[i * frame:(i + 1) * frame], out)
        if packet is None:
            packet = n
        elif n != packet:
            raise DevError("codec %s made packets of %d and %d bytes; prompts need a fixed size" % (fmt, packet, n))
        body += out[:n]
    return prompts.pack_header(fmt, FRAME_MS, RATE, packet, frames) + bytes(body)


def _recorded(recorded, lang, name):
    if not recorded:
        return None
    p = os.path.join(recorded, lang, name + ".wav")
    if not os.path.exists(p):
        return None
    rate, channels, pcm = wav.read_wav(p)
    if rate != RATE or channels != 1:
        raise DevError("%s must be %d Hz mono, is %d Hz x%d" % (p, RATE, rate, channels))
    return pcm


def _espeak_version():
    return _run(["espeak-ng", "--version"]).decode().strip()


def build(out=OUT, fmt="adpcm", recorded=None, quiet=False):
    """Make every prompt under out/ unless the stamp says they are current. -> {device path: bytes}."""
    if fmt not in prompts.FORMATS:
        raise DevError("unknown prompt format %r (choose from %s)" % (fmt, ", ".join(prompts.FORMATS)))
    stamp = {"texts": TEXTS, "voices": VOICES, "format": fmt, "espeak": _espeak_version(),
             "recorded": _recorded_listing(recorded)}
    # Processes building the same folder at once (tests in parallel, a deploy
    # beside a simulator run) take turns: the first makes it, the others then
    # find its stamp current, and none reads a folder another is remaking.
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(os.path.abspath(out) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(out, fmt, recorded, quiet, stamp)


def _build_locked(out, fmt, recorded, quiet, stamp):
    stamp_path = os.path.join(out, "stamp.json")
    try:
        with open(stamp_path) as f:
            current = json.load(f) == stamp
    except (OSError, ValueError):
        current = False
    if not current:
        if os.path.isdir(out):
            shutil.rmtree(out)
        made = 0
        for lang, texts in TEXTS.items():
            os.makedirs(os.path.join(out, lang))
            for name, text in texts.items():
                pcm = _recorded(recorded, lang, name)
                if pcm is None:
                    pcm = synthesize(text, VOICES[lang])
                with open(os.path.join(out, lang, name + prompts.EXT), "wb") as f:
                    f.write(encode(pcm, fmt))
                made += 1
        with open(os.path.join(out, prompts.LISTEN + prompts.EXT), "wb") as f:
            f.write(encode(earcon(), fmt))
        with open(stamp_path, "w") as f:
            json.dump(stamp, f)
        if not quiet:
            print("prompts: made %d prompts (%s) in %s" % (made + 1, fmt, out))
    elif not quiet:
        print("prompts: up to date in %s" % out)
    return files(out)


def _recorded_listing(recorded):
    if not recorded:
        return None
    if not os.path.isdir(recorded):
        raise DevError("--recorded %s: no such directory" % recorded)
    listing = {}
    for lang in TEXTS:
        d = os.path.join(recorded, lang)
        if os.path.isdir(d):
            for n in sorted(os.listdir(d)):
                st = os.stat(os.path.join(d, n))
                listing["%s/%s" % (lang, n)] = [st.st_size, int(st.st_mtime)]
    return listing


def files(out=OUT):
    """{device path (prompts/...): bytes} of a built prompt folder."""
    result = {}
    for base, _, names in os.walk(out):
        for n in sorted(names):
            if n.endswith(prompts.EXT):
                full = os.path.join(base, n)
                rel = os.path.relpath(full, out).replace(os.sep, "/")
                with open(full, "rb") as f:
                    result[prompts.ROOT + "/" + rel] = f.read()
    return result
