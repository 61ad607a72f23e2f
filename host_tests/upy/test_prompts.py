# The prompt player on files written here, under MicroPython and CPython.
import os

from firmware import prompt_file as pf
from firmware import prompts

ROOT = "/tmp/xiaozhi-upy-prompts-%d" % os.getpid() if hasattr(os, "getpid") else "/tmp/xiaozhi-upy-prompts"


def _mkdirs(p):
    part = ""
    for name in p.strip("/").split("/"):
        part += "/" + name
        try:
            os.mkdir(part)
        except OSError:
            pass


def write(rel, frames, value, packet=1920, head=None):
    path = ROOT + "/" + rel
    _mkdirs(path.rsplit("/", 1)[0])
    with open(path, "wb") as f:
        f.write(head if head is not None else pf.pack_header("pcm", 60, 16000, packet, frames))
        for k in range(frames):
            f.write(bytes([value + k]) * packet)


def setup():
    write("en/connecting.xzp", 2, 10)
    write("en/digit_1.xzp", 1, 20)
    write("zh-CN/connecting.xzp", 3, 40)
    write("listen.xzp", 1, 60)
    write("en/err_wifi.xzp", 1, 0, head=b"RIFF" + bytes(12))
    write("en/err_ota.xzp", 2, 0, packet=4000)
    write("en/err_server.xzp", 3, 70)
    with open(ROOT + "/en/wifi_lost.xzp", "wb") as f:  # says 3 frames, holds 1
        f.write(pf.pack_header("pcm", 60, 16000, 1920, 3) + bytes(1920))


def drain(p, pcm):
    got = []
    while True:
        n = p.next_frame(pcm)
        if not n:
            return got
        assert n == 1920
        got.append(pcm[0])


def test_header_round_trip_and_paths():
    h = pf.pack_header("adpcm", 60, 16000, 484, 33)
    assert len(h) == pf.HEADER
    assert pf.parse_header(h) == ("adpcm", 60, 16000, 484, 33)
    assert pf.path("connecting", "zh-CN") == "prompts/zh-CN/connecting.xzp"
    assert pf.path("digit_3", "en-US") == "prompts/en/digit_3.xzp"
    assert pf.path("listen", "zh-CN") == "prompts/listen.xzp"
    assert pf.language_dir("zh-TW") == "zh-CN" and pf.language_dir("fr") == "en"


def test_plays_the_queue_in_order_in_the_chosen_language():
    setup()
    pcm = bytearray(1920)
    p = prompts.Player("en-US", root=ROOT)
    assert not p.active
    p.say("connecting", "digit_1", "listen")
    assert p.active
    assert drain(p, pcm) == [10, 11, 20, 60]
    assert not p.active and p.playing is None
    z = prompts.Player("zh-CN", root=ROOT)
    z.say("connecting")
    assert drain(z, pcm) == [40, 41, 42]


def test_missing_corrupt_and_truncated_prompts_are_skipped():
    setup()
    pcm = bytearray(1920)
    p = prompts.Player("en", root=ROOT)
    # err_wifi: no XZP1 header; err_ota: packets too big; digit_9: no file; wifi_lost: cut short.
    p.say("err_wifi", "err_ota", "digit_9", "wifi_lost", "err_server")
    assert drain(p, pcm) == [0, 70, 71, 72]


def test_stop_cuts_the_prompt_and_the_queue_short():
    setup()
    pcm = bytearray(1920)
    p = prompts.Player("en", root=ROOT)
    p.say("err_server", "connecting")
    assert p.next_frame(pcm) and pcm[0] == 70 and p.playing == "err_server"
    p.stop()
    assert not p.active and p.next_frame(pcm) == 0


def test_the_names_the_device_says_are_prompt_files():
    # firmware/voice.py and firmware/app.py name prompts as plain strings.
    for name in ("connecting", "err_wifi", "err_ota", "err_server", "wifi_lost", "wifi_setup", "activation"):
        assert name in pf.NAMES, name
    assert ["digit_" + c for c in "0123456789"] == list(pf.DIGITS)
    assert pf.LISTEN == "listen"
