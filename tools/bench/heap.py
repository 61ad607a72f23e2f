"""The smallest MicroPython heap that completes a full turn, and where it goes.

A turn is the real firmware under the unix port (tools.sim), push-to-talk with
the speech fixture, through the edge gateway to the mock server in its
stock-like Opus mode, ending with a non-silent reply played and no task dead
(an MCP reply lost to a MemoryError leaves the server without the device's
tools even though the reply plays, so that turn fails too). For each audio
format (pcm, adpcm) and each way of loading the firmware (sources compiled at
start-up, or the .mpy files `tools.dev deploy` installs: `--mpy`), it bisects
`-X heapsize` to the smallest size that completes, then runs once more with a
probe (tools/bench/heap_probe.py) that splits the heap in use mid-reply into
bytes in buffers and bytes in code and objects.

Chip estimate: on the x64 port every pointer-holding object is about twice its
size on the 32-bit ESP32, while byte buffers are the same, so
    chip ~= buffers + objects / 2.

    .venv/bin/python -m tools.bench.heap [--formats pcm,adpcm] [--loads src,mpy]
                                         [--lo 64k] [--hi 640k] [--step 4k] [--json]
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading

from tools import sim
from tools.gateway.config import Config
from tools.gateway.proxy import Gateway
from tools.mock_server.server import MockServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIC = os.path.join(ROOT, "host_tests", "fixtures", "gateway", "speech_en_16k.wav")
PROBE = os.path.join(ROOT, "tools", "bench", "heap_probe.py")


def size(text):
    t = text.strip().lower()
    mult = 1024 if t.endswith("k") else 1024 * 1024 if t.endswith("m") else 1
    try:
        n = int(t.rstrip("km")) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 160k or 1m") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return n


def heap_size(text):
    n = size(text)
    if n < 16 * 1024:
        raise argparse.ArgumentTypeError(f"{text!r}: heaps below 16k cannot start MicroPython")
    return n


class Stack:
    """The mock server (Opus mode, as stock) behind the gateway, on a loop in a thread."""

    def __enter__(self):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    async def _start(self):
        self.mock = await MockServer(format="opus").start()
        self.gw = await Gateway(Config(listen_port=0, upstreams=[self.mock.url])).start()
        return "ws://127.0.0.1:%d/xiaozhi/v1/" % self.gw.port

    async def _stop(self):
        await self.gw.stop()
        await self.mock.aclose()

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def failed_task(lines):
    """What ended a task, from the firmware's output ("" if none did): asyncio
    prints "Task exception wasn't retrieved" and the traceback. An MCP request
    the device answered "out of memory" (firmware/app.py _mcp) counts too."""
    for i, line in enumerate(lines):
        if "out of memory" in line and " E app: MCP " in line:
            return "an MCP request failed: " + line.split(" E app: ", 1)[1]
        if line.startswith("Task exception wasn't retrieved"):
            errors = [ln.strip() for ln in lines[i + 1:i + 40] if "Error" in ln]
            return "a task failed: " + (errors[0] if errors else "?")
    return ""


def turn(url, fmt, heap, code_root, script=None):
    """One push-to-talk turn; -> (completed, why not, the firmware's output lines)."""
    with tempfile.TemporaryDirectory(prefix="xiaozhi-heap-") as work:
        out = os.path.join(work, "reply.wav")
        a = sim.parse_args(["--server", url, "--mic", MIC, "--out", out, "--set", f'audio_format="{fmt}"'])
        with open(os.path.join(work, "config.json"), "w") as f:
            json.dump(sim.device_config(a, url), f)
        with open(os.path.join(work, "sim.json"), "w") as f:
            json.dump({"mic": MIC, "out": out, "speed": 1.0}, f)
        fw = sim.Firmware(work, heap="%d" % heap, script=script, code_root=code_root)
        try:
            seconds = sim.wav_duration(MIC)[0]
            sim.run_turns(fw, "manual", 1, seconds, 1.0)
            code = fw.stop()
            if code != 0:
                return False, "exit %d: %s" % (code, fw.last_error()), fw.log
            played, level = sim.reply_summary(out)
            if not played or level is None:
                return False, "silent reply", fw.log
            died = failed_task(fw.log)
            if died:
                return False, died, fw.log
            return True, "", fw.log
        except sim.SimError as e:
            return False, str(e), fw.log
        finally:
            if fw.proc.poll() is None:
                fw.stop()


def smallest(url, fmt, code_root, lo, hi, step):
    """Bisect the smallest heap (a multiple of step) in [lo, hi] that completes a turn."""
    ok, why, _ = turn(url, fmt, hi, code_root)
    if not ok:
        return None, why
    last_failure = ""
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        ok, why, _ = turn(url, fmt, mid, code_root)
        print("    %-5s %4dk %s" % (fmt, mid // 1024, "ok" if ok else "fails: " + why[-90:]), flush=True)
        if ok:
            hi = mid
        else:
            lo, last_failure = mid, why
    return hi, last_failure


def split(url, fmt, heap, code_root):
    ok, why, lines = turn(url, fmt, heap, code_root, script=PROBE)
    for ln in lines:
        if ln.startswith("HEAPSPLIT "):
            return json.loads(ln[len("HEAPSPLIT "):])
    raise RuntimeError("the heap probe printed no split (%s)" % (why or "no output"))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.bench.heap", description=__doc__.split("\n\n")[0])
    p.add_argument("--formats", default="pcm,adpcm", help="audio formats to measure (default pcm,adpcm)")
    p.add_argument("--loads", default="src,mpy", help="src: compile sources at start-up; mpy: the deploy build")
    p.add_argument("--lo", type=heap_size, default=size("64k"), help="smallest heap tried (default 64k)")
    p.add_argument("--hi", type=heap_size, default=size("640k"), help="largest heap tried (default 640k)")
    p.add_argument("--step", type=size, default=size("16k"), help="resolution of the answer (default 16k)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON line too")
    a = p.parse_args(argv)
    formats = [f for f in a.formats.split(",") if f]
    loads = [x for x in a.loads.split(",") if x]
    bad = [f for f in formats if f not in ("pcm", "adpcm")] + [x for x in loads if x not in ("src", "mpy")]
    if bad or a.lo >= a.hi:
        p.error("unknown format/load %s" % ", ".join(bad) if bad else "--lo must be below --hi")
    results = []
    with tempfile.TemporaryDirectory(prefix="xiaozhi-mpy-") as mpy_dir, Stack() as stack:
        roots = {"src": sim.ROOT}
        if "mpy" in loads:
            roots["mpy"] = sim.build_mpy(mpy_dir)
        for load in loads:
            for fmt in formats:
                print("  %s, %s:" % (fmt, load), flush=True)
                heap, why = smallest(stack.url, fmt, roots[load], a.lo, a.hi, a.step)
                r = {"format": fmt, "load": load, "smallest_heap": heap}
                if heap is None:
                    r["failure"] = why
                else:
                    r["last_failure"] = why
                    r.update(split(stack.url, fmt, max(heap * 2, size("512k")), roots[load]))
                results.append(r)
    print()
    print("smallest heap completing a turn (x64 unix port, through the gateway to an Opus server)")
    print("%-6s %-4s %9s %9s %9s %9s %12s %11s" % ("format", "load", "smallest", "in use", "buffers", "objects",
                                                 "chip est.", "boot mods"))
    for r in results:
        if r["smallest_heap"] is None:
            print("%-6s %-4s   none up to %dk: %s" % (r["format"], r["load"], a.hi // 1024, r["failure"][-80:]))
            continue
        chip = r["buffers"] + r["objects"] // 2
        r["chip_estimate"] = chip
        r["chip_estimate_smallest"] = r["buffers"] + (r["smallest_heap"] - r["buffers"]) // 2
        print("%-6s %-4s %8dk %8.1fk %8.1fk %8.1fk %11.1fk %10.1fk" % (
            r["format"], r["load"], r["smallest_heap"] // 1024, r["used"] / 1024, r["buffers"] / 1024,
            r["objects"] / 1024, chip / 1024, r["boot_cost"] / 1024 if r["boot_resident"] == [] else -1))
    print("in use: gc.mem_alloc() mid-reply; chip est. = buffers + objects/2 (pointers are 4 bytes there);")
    print("boot mods: what the boot-only modules cost if kept (-1: they were still resident mid-turn)")
    for r in results:
        if r.get("largest"):
            print("largest buffers, %s/%s: %s" % (r["format"], r["load"], ", ".join(
                "%s %.1fk" % (path, n / 1024) for n, path in r["largest"][:6])))
    if a.json:
        print(json.dumps(results))
    return 0 if all(r["smallest_heap"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
