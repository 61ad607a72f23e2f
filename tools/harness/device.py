"""Helpers for tests and benchmarks that run the real firmware under micropython against a
server on 127.0.0.1: a device filesystem in a temp dir, the firmware process
from tools.sim, and button gestures."""

import json
import os
import time

from tools import sim

MIC = sim.DEFAULT_MIC
MIC_SECONDS = sim.wav_duration(MIC)[0]


def start_device(workdir, url, out=None, heap=None, speed=1.0, sim_extra=None, wait_ready=True, **config):
    """Write config.json + sim.json into workdir and start the firmware there.
    An existing config.json is updated, not replaced, like a device's flash."""
    cfg = {"board": "sim", "ws_url": url, "button_mode": "ptt", "listen_mode": "auto"}
    path = os.path.join(workdir, "config.json")
    if os.path.exists(path):
        with open(path) as f:
            cfg.update(json.load(f))
    cfg.update(config)
    with open(path, "w") as f:
        json.dump(cfg, f)
    opts = {"mic": MIC, "out": out or os.path.join(workdir, "reply.wav"), "speed": speed}
    opts.update(sim_extra or {})
    with open(os.path.join(workdir, "sim.json"), "w") as f:
        json.dump(opts, f)
    fw = sim.Firmware(str(workdir), heap=heap)
    if wait_ready:
        fw.wait_for("firmware did not start", "ready")
    return fw


def push_to_talk(fw, hold_s=MIC_SECONDS + 0.2):
    """Press, wait until listening, hold while the mic WAV plays, release."""
    fw.send("press")
    fw.wait_for("listening never started", "tx", type="listen", state="start")
    time.sleep(hold_s)
    fw.send("release")
    fw.wait_for("listen stop not sent", "tx", type="listen", state="stop")


def finish_reply(fw):
    """Wait for a whole reply: tts start, tts stop, and playback drained."""
    fw.wait_for("no reply", "rx", type="tts", state="start")
    fw.wait_for("reply never finished", "rx", type="tts", state="stop")
    return fw.wait_for("reply never played out", "audio", dir="play")


def states(fw):
    return [e["d"]["to"] for e in fw.seen if e["k"] == "state"]


def sent(fw, kind):
    return [e["d"] for e in fw.seen if e["k"] == "tx" and e["d"].get("type") == kind]
