"""Fault and soak runs against the real firmware under micropython; prints figures.

    python -m tools.bench soak            # the long runs (about 15-20 minutes)
    python -m tools.bench soak --quick    # the short version the tests run
    python -m tools.bench.soak --fuzz 10000 --kills 100 --turns 500 --cuts 100 --idle 300

Phases (each its own device in a temp dir; all traffic on 127.0.0.1):
  fuzz       hostile server: message abuse while listening (the turn must still
             complete), then frame abuse while idle (the device must drop the
             link, and the next press must complete a turn on a fresh session)
  kills      SIGKILL the server process mid-listen and mid-reply, restart it on
             the same port; time from restart to the next working hello
  blackhole  fault proxy goes dark (no data, no FIN) after a turn: time until
             the device reports the link closed; then a fresh turn
  idle       a server that never pings, an idle open session: still open after
             --idle seconds, and a turn on the same session works
  turns      consecutive turns with the heap sampled after each (gc.mem_free)
  cuts       the process killed at a random point inside a config save, then a
             boot that must find a valid config (old or new settings)
  secrets    every log line and event file of the run scanned for the secrets
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from websockets.exceptions import ConnectionClosed  # noqa: E402

from tools import sim  # noqa: E402
from tools.faultproxy import FaultProxy  # noqa: E402
from tools.mock_server.hostile import HostileServer  # noqa: E402
from tools.mock_server.server import MockServer  # noqa: E402

SPEED = 8.0  # mic and speaker clocks: a turn takes about a second
MIC_SECONDS = sim.wav_duration(sim.DEFAULT_MIC)[0]
HOLD_S = MIC_SECONDS / SPEED + 0.1
# Secrets planted in every device of the run; none may appear in any output.
SECRETS = {"ws_token": "tok-SOAK-7f3a9c-never-printed", "wifi_password": "pw-SOAK-41d2e8-never-printed",
           "device_secret": "sec-SOAK-99b0c1-never-printed"}
# The channel's keepalive (docs/protocol.md §1.6): a hung peer is found within 30 s.
LINK = {"keepalive_s": 10, "link_timeout_s": 25}
SERVER = {"pace_ms": 0, "drain_s": 0.05, "ping_interval": None}  # fast, and like stock: no PINGs


class Rig:
    """One device: the firmware under micropython in a temp dir, with the
    planted secrets, its log and events kept for the secrets scan."""

    outputs = []  # (label, text) of every rig closed in this process

    def __init__(self, url, heap="512k", script=None, label="device", **config):
        self.label = label
        self.dir = tempfile.mkdtemp(prefix="xiaozhi-soak-")
        net = {"ssid": "sim-ap", "password": SECRETS["wifi_password"]}
        cfg = {"board": "sim", "ws_url": url, "button_mode": "ptt", "listen_mode": "auto",
               "ws_token": SECRETS["ws_token"], "device_secret": SECRETS["device_secret"], "wifi": [net]}
        cfg.update(LINK)
        cfg.update(config)
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump(cfg, f)
        with open(os.path.join(self.dir, "sim.json"), "w") as f:
            json.dump({"mic": sim.DEFAULT_MIC, "out": os.path.join(self.dir, "reply.wav"), "speed": SPEED,
                       "networks": [dict(net, rssi=-40)]}, f)
        self.events = open(os.path.join(self.dir, "events.jsonl"), "w", encoding="utf-8")
        self.fw = sim.Firmware(self.dir, heap=heap, script=script, events_file=self.events)
        self.fw.wait_for("firmware did not start", "ready", timeout=60)

    def alive(self):
        return self.fw.proc.poll() is None

    def press_until_listening(self, timeout=30):
        self.fw.send("press")
        self.fw.wait_for("listening never started", "tx", timeout, fail_on=("error", "closed"),
                         type="listen", state="start")

    def finish_turn(self, timeout=30):
        """Release and wait for the whole reply; -> the play event."""
        time.sleep(HOLD_S)
        self.fw.send("release")
        stop = ("error", "closed")
        self.fw.wait_for("no reply", "rx", timeout, fail_on=stop, type="tts", state="start")
        self.fw.wait_for("reply never finished", "rx", timeout, fail_on=stop, type="tts", state="stop")
        return self.fw.wait_for("reply never played", "audio", timeout, fail_on=stop, dir="play")

    def turn(self, during_listen=None, timeout=30):
        self.press_until_listening(timeout)
        if during_listen:
            during_listen()
        return self.finish_turn(timeout)

    def wait_link_lost(self, timeout):
        """-> seconds until the device reported the channel closed (or an error)."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            ev = self.fw.next_event(deadline)
            if ev["k"] in ("closed", "error"):
                return time.monotonic() - t0

    def close(self):
        self.fw.stop()
        self.events.close()
        text = "\n".join(self.fw.log)
        with open(os.path.join(self.dir, "events.jsonl"), encoding="utf-8", errors="replace") as f:
            text += "\n" + f.read()
        for name in os.listdir(self.dir):  # config.json holds the secrets by design; logs must not
            if name.endswith((".log", ".txt")):
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    text += f.read()
        Rig.outputs.append((self.label, text))
        shutil.rmtree(self.dir, ignore_errors=True)


# What a failed round can raise: the device's wait (SimError), or the hostile
# server finding the session gone while it was still sending.
_FAILED = (sim.SimError, ConnectionClosed, RuntimeError)


def _classify(rig, e):
    return "crash" if not rig.alive() else ("hang" if "timed out" in str(e) else "lost")


# ---- phases --------------------------------------------------------------------------
def fuzz(messages, frames, seed=1, batch=50):
    srv = HostileServer(seed=seed, **SERVER).start_in_thread()
    rig = Rig(srv.url, label="fuzz")
    out = {"messages": 0, "frame_abuses": 0, "crash": 0, "hang": 0, "lost": 0, "turns_ok": 0, "failures": []}
    try:
        while out["messages"] < messages:
            n = min(batch, messages - out["messages"])
            try:
                rig.turn(during_listen=lambda n=n: srv.send_messages(n))
                out["turns_ok"] += 1
            except _FAILED as e:
                out[_classify(rig, e)] += 1
                out["failures"].append("after message abuse: %s" % e)
                if rig.alive():
                    rig.fw.send("release")
                else:
                    rig.close()
                    rig = Rig(srv.url, label="fuzz")
            out["messages"] += n
        for _ in range(frames):
            name = "a frame abuse"
            try:
                if not srv.sessions or srv.sessions[-1].closed:
                    rig.turn()  # a session to abuse
                name = srv.send_frame_abuse()
                out["frame_abuses"] += 1
                rig.wait_link_lost(15)
                rig.turn()
                out["turns_ok"] += 1
            except _FAILED as e:
                out[_classify(rig, e)] += 1
                out["failures"].append("after %s: %s" % (name, e))
                if rig.alive():
                    rig.fw.send("release")
                else:
                    rig.close()
                    rig = Rig(srv.url, label="fuzz")
        out["kinds"] = dict(srv.sent)
        out["alive"] = rig.alive()
    finally:
        rig.close()
        srv.stop()
    return out


class ServerProcess:
    """The mock server as its own process on a fixed port, so it can be SIGKILLed."""

    def __init__(self, port):
        self.port = port
        self.proc = None

    def start(self, timeout=30):
        cmd = [sys.executable, "-m", "tools.mock_server", "--port", str(self.port), "--pace-ms", "0",
               "--drain", "0.05", "--ping-interval", "0"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + timeout
        for line in self.proc.stdout:
            if line.startswith("mock xiaozhi server on"):
                threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # keep the pipe drained
                return time.monotonic()
            if time.monotonic() > deadline:
                break
        raise RuntimeError("mock server did not start on port %d" % self.port)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    @property
    def url(self):
        return "ws://127.0.0.1:%d/xiaozhi/v1/" % self.port


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kills(n):
    server = ServerProcess(free_port())
    server.start()
    rig = Rig(server.url, label="kills")
    out = {"kills": 0, "survived": 0, "hello_s": [], "recovery_s": [], "failures": []}
    try:
        rig.turn()
        for i in range(n):
            where = "mid-listen" if i % 2 == 0 else "mid-reply"
            try:
                rig.press_until_listening()
                if where == "mid-reply":
                    time.sleep(HOLD_S)
                    rig.fw.send("release")
                    rig.fw.wait_for("no reply", "rx", 30, type="tts", state="start")
                t_kill = time.monotonic()
                server.kill()
                out["kills"] += 1
                if where == "mid-listen":
                    rig.fw.send("release")
                rig.wait_link_lost(40)  # reported once the device is idle again
                t_up = server.start()
                hello = _next_hello(rig, deadline=t_up + 60)
                out["hello_s"].append(hello - t_up)
                out["recovery_s"].append(hello - t_kill)
                rig.finish_turn()
                out["survived"] += 1
            except (sim.SimError, RuntimeError) as e:
                out["failures"].append("kill %d (%s): %s" % (i + 1, where, e))
                if server.proc.poll() is not None:
                    server.start()
                if not rig.alive():
                    break
                rig.fw.send("release")
        out["alive"] = rig.alive()
    finally:
        rig.close()
        if server.proc.poll() is None:
            server.kill()
    # hello_s: server back up -> next working hello; recovery_s: kill -> that
    # hello (loss noticed, server restarted, reconnect).
    for key in ("hello_s", "recovery_s"):
        xs = out.pop(key)
        out["median_" + key] = round(statistics.median(xs), 3) if xs else None
        out["max_" + key] = round(max(xs), 3) if xs else None
    return out


def _next_hello(rig, deadline):
    """Press until a session opens (the server may still be coming up); -> the
    host time the server hello arrived. The button stays pressed (listening)."""
    while True:
        rig.fw.send("press")
        try:
            rig.fw.wait_for("no hello", "rx", max(deadline - time.monotonic(), 0.1),
                            fail_on=("error", "closed"), type="hello")
            return time.monotonic()
        except sim.SimError:
            if time.monotonic() >= deadline or not rig.alive():
                raise
            rig.fw.send("release")
            time.sleep(0.5)


def blackhole(rounds=1, **config):
    """config: device settings over the defaults (e.g. a shorter link_timeout_s)."""
    srv = MockServer(**SERVER).start_in_thread()
    proxy = FaultProxy(("127.0.0.1", srv.port)).start_in_thread()
    rig = Rig("ws://127.0.0.1:%d/xiaozhi/v1/" % proxy.port, label="blackhole", **config)
    out = {"rounds": 0, "detected_s": [], "turn_after": 0, "failures": []}
    try:
        for _ in range(rounds):
            try:
                rig.turn()
                proxy.set_mode("blackhole")
                out["rounds"] += 1
                out["detected_s"].append(round(rig.wait_link_lost(60), 1))
                proxy.set_mode("pass")
                rig.turn()
                out["turn_after"] += 1
            except sim.SimError as e:
                out["failures"].append(str(e))
                proxy.set_mode("pass")
    finally:
        rig.close()
        proxy.stop()
        srv.stop()
    return out


def idle(seconds, **config):
    """An idle open session against a server that never pings. config: device
    settings over the defaults (e.g. shorter keepalive_s and link_timeout_s)."""
    srv = MockServer(**SERVER).start_in_thread()
    rig = Rig(srv.url, label="idle", **config)
    out = {"idle_s": seconds, "survived": False, "turn_on_same_session": False, "failures": []}
    try:
        rig.turn()
        sessions = len(srv.sessions)
        deadline = time.monotonic() + seconds
        try:
            rig.wait_link_lost(seconds)
            out["failures"].append("the device closed the idle session after %.0f s"
                                   % (seconds - (deadline - time.monotonic())))
        except sim.SimError:  # timed out: nothing closed, as it should be
            out["survived"] = not srv.sessions[-1].closed and rig.alive()
        if out["survived"]:
            rig.turn()
            out["turn_on_same_session"] = len(srv.sessions) == sessions
    except sim.SimError as e:
        out["failures"].append(str(e))
    finally:
        rig.close()
        srv.stop()
    return out


def turns(n, warmup=20, heap="512k"):
    srv = MockServer(**SERVER).start_in_thread()
    rig = Rig(srv.url, heap=heap, label="turns")
    out = {"turns": n, "completed": 0, "heap": heap, "failures": []}
    free = []
    try:
        for i in range(n):
            try:
                rig.turn()
                out["completed"] += 1
                ev = rig.fw.wait_for("no heap sample", "heap", 10)  # the device's own, taken after a collection
                free.append(ev["d"]["free"])
            except sim.SimError as e:
                out["failures"].append("turn %d: %s" % (i + 1, e))
                if not rig.alive():
                    break
    finally:
        rig.close()
        srv.stop()
    after = free[warmup:] if len(free) > warmup else free
    if after:
        out.update(heap_free_after_warmup=after[0], heap_free_last=after[-1], heap_free_min=min(after),
                   heap_free_max=max(after), heap_slope_b_per_100_turns=round(_slope(after) * 100, 1))
    return out


def _slope(ys):
    n = len(ys)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(ys) / n
    return sum((x - mx) * (y - my) for x, y in enumerate(ys)) / sum((x - mx) ** 2 for x in range(n))


# Saves forever with alternating settings, so a kill lands inside a save.
_SAVER = """
from firmware import config
c = config.load('config.json')
v = c.get('volume')
print('saving')
while True:
    v = 10 if v != 10 else 90
    c.set('volume', v)
    c.save()
"""
# A boot's view of the config; the secrets are compared here, never printed.
_BOOT = """
import json
from firmware import config
c = config.load('config.json')
print('BOOT ' + json.dumps({'volume': c.get('volume'), 'wifi_ok': c.get('wifi') == %r,
                            'token_ok': c.get('ws_token') == %r}))
"""


def cuts(n, seed=1):
    """Random-point kills during config saves. A process kill keeps the page
    cache, so this proves the save's ordering (temp, flush, rename), not the
    fsync itself: that only a real power cut on the board can show."""
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix="xiaozhi-cuts-")
    env = dict(os.environ, MICROPYPATH=".frozen:%s:%s/lib" % (ROOT, os.path.join(ROOT, "lib")))
    upy = sim.micropython_binary()
    net = [{"ssid": "home", "password": SECRETS["wifi_password"]}]
    cfg = {"schema": 3, "board": "sim", "volume": 10, "wifi": net, "ws_token": SECRETS["ws_token"]}
    with open(os.path.join(work, "config.json"), "w") as f:
        json.dump(cfg, f)
    out = {"cuts": n, "valid_boots": 0, "tmp_left_behind": 0, "failures": []}
    try:
        for i in range(n):
            p = subprocess.Popen([upy, "-c", _SAVER], cwd=work, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT)
            p.stdout.readline()  # 'saving': the loop is running
            time.sleep(rng.uniform(0, 0.05))
            p.kill()
            p.communicate()
            if os.path.exists(os.path.join(work, "config.json.tmp")):
                out["tmp_left_behind"] += 1
            b = subprocess.run([upy, "-c", _BOOT % (net, SECRETS["ws_token"])], cwd=work, env=env,
                               capture_output=True, text=True, errors="replace", timeout=30)
            got = [ln[5:] for ln in b.stdout.splitlines() if ln.startswith("BOOT ")]
            state = json.loads(got[0]) if got else None
            ok = (state is not None and "corrupt" not in b.stdout and state["volume"] in (10, 90)
                  and state["wifi_ok"] and state["token_ok"])
            if ok:
                out["valid_boots"] += 1
            else:
                out["failures"].append("cut %d: %s" % (i + 1, (b.stdout + b.stderr).strip()[-300:]))
            Rig.outputs.append(("cuts", b.stdout + b.stderr))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def secrets_found():
    """-> {"files": scanned outputs, "found": occurrences of any planted secret}."""
    found = 0
    for _, text in Rig.outputs:
        found += sum(text.count(v) for v in SECRETS.values())
    return {"outputs_scanned": len(Rig.outputs), "found": found}


# ---- the command -------------------------------------------------------------------
FULL = {"fuzz": 10000, "frames": 100, "kills": 100, "turns": 500, "cuts": 100, "idle": 300, "blackhole": 3}
QUICK = {"fuzz": 300, "frames": 11, "kills": 6, "turns": 30, "cuts": 10, "idle": 0, "blackhole": 1}


_HELP = {"fuzz": "message abuses", "frames": "frame abuses (each drops the link)", "kills": "server kills",
         "turns": "consecutive turns", "cuts": "kills inside a config save", "idle": "seconds of idle session",
         "blackhole": "blackhole rounds"}


def _print(name, figures):
    print("%-10s %s" % (name, json.dumps(figures, ensure_ascii=False)), flush=True)


def run(counts):
    idle_result = {}
    idle_thread = None
    if counts["idle"]:  # waits in parallel with the other phases; it only sleeps
        idle_thread = threading.Thread(target=lambda: idle_result.update(idle(counts["idle"])), daemon=True)
        idle_thread.start()
    results = {}
    t0 = time.monotonic()
    for name, fn in (("fuzz", lambda: fuzz(counts["fuzz"], counts["frames"])),
                     ("kills", lambda: kills(counts["kills"])),
                     ("blackhole", lambda: blackhole(counts["blackhole"])),
                     ("turns", lambda: turns(counts["turns"])),
                     ("cuts", lambda: cuts(counts["cuts"]))):
        if not counts[name]:
            continue
        t = time.monotonic()
        results[name] = fn()
        results[name]["seconds"] = round(time.monotonic() - t, 1)
        _print(name, results[name])
    if idle_thread:
        idle_thread.join()
        results["idle"] = idle_result
        _print("idle", idle_result)
    results["secrets"] = secrets_found()
    _print("secrets", results["secrets"])
    print("total      %.0f s" % (time.monotonic() - t0))
    return results


def _count(text):
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError("%r is not a count >= 0" % text)
    return n


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.bench soak", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the short version (a few minutes)")
    for name, n in FULL.items():
        p.add_argument("--" + name, type=_count, metavar="N",
                       help="%s (default %d, --quick %d; 0 skips)" % (_HELP[name], n, QUICK[name]))
    a = p.parse_args(argv)
    counts = dict(QUICK if a.quick else FULL)
    for name in FULL:
        if getattr(a, name) is not None:
            counts[name] = getattr(a, name)
    results = run(counts)
    bad = (results.get("fuzz", {}).get("crash") or results.get("fuzz", {}).get("hang")
           or results.get("kills", {}).get("survived") != results.get("kills", {}).get("kills")
           or results["secrets"]["found"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
