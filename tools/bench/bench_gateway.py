"""Gateway benchmark: transcoding CPU per stream, real-time sessions per core,
and the latency the gateway adds per frame.

1. Codec CPU: libopus through opuslib_next on one core, per 60 ms frame:
   uplink encode (16 kHz speech PCM -> Opus, the configured complexity and
   bitrate) and downlink decode (24 kHz hybrid TTS and 16 kHz SILK prompts
   -> 16 kHz PCM), as process CPU time over many frames; for an "adpcm"
   device also the IMA-ADPCM decode before the encode and encode after the
   decode (audioop's C codec).
2. Load: the real gateway (`python -m tools.gateway --workers W`) in its own
   processes, N simulated devices and a simulated Opus-only server in this
   process, all streams full duplex at real time (one 60 ms frame each way
   every 60 ms, the worst case: stock servers never speak while listening).
   The CPU of the gateway's processes (utime+stime from /proc, the supervisor
   and every worker) over the steady state gives the cores N sessions use;
   sessions per core = N / cores used, set against the codec-only bound of
   step 1 measured in the same run, for each device format. Frames sent but
   never received are lost.
3. Latency: per frame, send time at the source to receive time at the sink,
   through the gateway, minus the same path without it (device straight to
   the server on loopback). Frames are matched by order (one TCP stream each).
4. Warm upstream pool: connect -> server hello at the device, with the
   upstream behind a link with 50 ms added each way (delay_proxy.py), without
   and with --upstream-pool.

    .venv/bin/python tools/bench/bench_gateway.py [--sessions 25,50,100,150] [--workers 1,2]
        [--formats pcm,adpcm] [--seconds 8] [--complexity 5] [--bitrate 24000] [--frames 2000]
        [--pool-trials 10] [--json]
"""

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import opuslib_next  # noqa: E402
import websockets  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import serve  # noqa: E402

from tools.bench.delay_proxy import DelayProxy  # noqa: E402
from tools.common.wav import read_wav  # noqa: E402
from tools.gateway.transcode import AdpcmEncoder, Downlink, Uplink  # noqa: E402

SPEECH = os.path.join(ROOT, "host_tests", "fixtures", "gateway", "speech_en_16k.wav")
FRAME_S = 0.060


def speech_frames():
    rate, _, pcm = read_wav(SPEECH)
    return [pcm[i:i + 1920] for i in range(0, len(pcm) - 1919, 1920)]


def device_frames(fmt):
    """The speech as the device sends it: 1920-byte PCM or 484-byte ADPCM frames."""
    frames = speech_frames()
    if fmt == "adpcm":
        enc = AdpcmEncoder()
        return [enc.encode(f) for f in frames]
    return frames


def opus_packets(frames16, rate, app):
    """The speech re-encoded as Opus at `rate` (resampled by sample repetition/
    decimation, good enough to make realistic packets of that mode)."""
    import array

    enc = opuslib_next.Encoder(rate, 1, app)
    n = rate * 60 // 1000
    out = []
    for f in frames16:
        a = array.array("h")
        a.frombytes(f)
        b = array.array("h", (a[i * 960 // n] for i in range(n)))
        out.append(enc.encode(b.tobytes(), n))
    return out


# -- 1. codec CPU --------------------------------------------------------------
def codec_cpu(nframes, complexity, bitrate, fmt="pcm"):
    frames = device_frames(fmt)
    up = Uplink(fmt, 16000, bitrate, complexity, "voip")
    t0 = time.process_time()
    for i in range(nframes):
        up.feed(frames[i % len(frames)])
    enc_us = (time.process_time() - t0) / nframes * 1e6
    res = {"encode_us": enc_us}
    for name, rate, app in (("decode_24k_hybrid_us", 24000, opuslib_next.APPLICATION_AUDIO),
                            ("decode_16k_silk_us", 16000, opuslib_next.APPLICATION_VOIP)):
        pkts = opus_packets(speech_frames(), rate, app)
        down = Downlink(fmt, 16000)
        t0 = time.process_time()
        for i in range(nframes):
            down.feed(pkts[i % len(pkts)])
        res[name] = (time.process_time() - t0) / nframes * 1e6
        res[name.replace("_us", "_toc")] = pkts[len(pkts) // 2][0] >> 3
    return res


# -- 2/3. load and latency -------------------------------------------------------
async def send_paced(ws, items, seconds, stamps):
    """Send items round-robin, one every FRAME_S for `seconds`, appending each send time to stamps."""
    t0 = time.perf_counter() + 0.2
    k = 0
    while k * FRAME_S < seconds:
        delay = t0 + k * FRAME_S - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        stamps.append(time.perf_counter())
        await ws.send(items[k % len(items)])
        k += 1


class Server:
    """Opus-only server: answers the hello, then streams TTS packets at real time
    while recording when each uplink packet arrived."""

    def __init__(self, packets, seconds):
        self.packets = packets
        self.seconds = seconds
        self.sessions = {}  # device id -> {"rx": [t], "tx": [t]}

    async def handler(self, ws):
        dev = ws.request.headers.get("Device-Id")
        rec = self.sessions.setdefault(dev, {"rx": [], "tx": []})
        sender = None
        try:
            async for m in ws:
                if isinstance(m, bytes):
                    rec["rx"].append(time.perf_counter())
                elif '"hello"' in m:
                    await ws.send('{"type":"hello","version":1,"transport":"websocket","audio_params":'
                                  '{"format":"opus","sample_rate":16000,"channels":1,"frame_duration":60},'
                                  '"session_id":"bench"}')
                    await ws.send('{"type":"tts","state":"start","session_id":"bench"}')
                    sender = asyncio.create_task(send_paced(ws, self.packets, self.seconds, rec["tx"]))
        except websockets.ConnectionClosed:
            pass
        finally:
            if sender:
                sender.cancel()


async def device(url, dev_id, frames, seconds, hello_fmt):
    rx = []
    tx = []
    async with connect(url, additional_headers={"Device-Id": dev_id, "Client-Id": "bench",
                                                "Protocol-Version": "1"},
                       compression=None, max_size=2 ** 20) as ws:
        await ws.send('{"type":"hello","version":1,"transport":"websocket","audio_params":'
                      '{"format":"%s","sample_rate":16000,"channels":1,"frame_duration":60}}' % hello_fmt)
        while True:
            m = await ws.recv()
            if isinstance(m, str) and '"hello"' in m:
                break

        async def reader():
            try:
                async for m in ws:
                    if isinstance(m, bytes):
                        rx.append(time.perf_counter())
            except websockets.ConnectionClosed:
                pass

        rtask = asyncio.create_task(reader())
        await send_paced(ws, frames, seconds, tx)
        await asyncio.sleep(0.5)  # let the last frames arrive
        rtask.cancel()
    return tx, rx


def lat(pairs_tx, pairs_rx, skip):
    out = []
    for tx, rx in zip(pairs_tx, pairs_rx, strict=False):
        n = min(len(tx), len(rx))
        out += [(rx[i] - tx[i]) * 1e3 for i in range(skip, n)]
    return out


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid):
    """CPU seconds of pid and its live children (the gateway's supervisor and workers)."""
    total = proc_cpu(pid)
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        total += proc_cpu(int(d))
            except (OSError, ValueError):
                pass  # exited while we looked
    return total


@contextlib.asynccontextmanager
async def gateway(up_url, workers, complexity=5, bitrate=24000, extra=()):
    """`python -m tools.gateway` with limits off: (Popen, device URL)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as cfgfile:
        json.dump({"listen": "127.0.0.1:0", "upstreams": [up_url],
                   "limits": {"connections_per_minute_per_device": 0, "connections_per_minute_per_ip": 0,
                              "messages_per_second_per_device": 0, "messages_per_second_per_ip": 0},
                   "opus": {"complexity": complexity, "bitrate": bitrate}}, cfgfile)
    gw = subprocess.Popen([sys.executable, "-m", "tools.gateway", "--config", cfgfile.name, "--workers",
                           str(workers), "--log-level", "error", *extra], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = await asyncio.to_thread(gw.stdout.readline)  # the loop keeps serving meanwhile
        if "ws://127.0.0.1:" not in line:
            raise SystemExit("bench_gateway: the gateway did not start (%r)" % line)
        port = int(line.split("ws://127.0.0.1:")[1].split("/")[0])
        yield gw, "ws://127.0.0.1:%d/xiaozhi/v1/" % port
    finally:
        gw.terminate()
        try:
            await asyncio.to_thread(gw.wait, 30)
        except subprocess.TimeoutExpired:  # an overloaded gateway still closing sessions: the figures are taken
            print("bench_gateway: the gateway took over 30 s to stop; killed it", file=sys.stderr)
            gw.kill()
            await asyncio.to_thread(gw.wait)
        os.unlink(cfgfile.name)


async def run_load(n, seconds, complexity, bitrate, workers=0, fmt="pcm"):
    """workers=0: devices straight to the server (the baseline); else through a gateway with that many
    workers, the devices speaking fmt."""
    frames = device_frames(fmt)
    packets = opus_packets(speech_frames(), 24000, opuslib_next.APPLICATION_AUDIO)
    srv = Server(packets, seconds)
    server = await serve(srv.handler, "127.0.0.1", 0, compression=None, max_size=2 ** 20)
    up_url = "ws://127.0.0.1:%d/xiaozhi/v1/" % server.sockets[0].getsockname()[1]
    try:
        async with contextlib.AsyncExitStack() as stack:
            if workers:
                gw, url = await stack.enter_async_context(gateway(up_url, workers, complexity, bitrate))
            else:
                gw, url, fmt = None, up_url, "opus"  # the direct path: same frames, no transcoding hop
            ids = ["bench-%03d" % i for i in range(n)]
            tasks = [asyncio.create_task(device(url, d, frames if gw else packets, seconds, fmt)) for d in ids]
            await asyncio.sleep(1.0)  # all sessions in steady state
            c0, b0, w0 = tree_cpu(gw.pid) if gw else 0, time.process_time(), time.perf_counter()
            await asyncio.sleep(max(1.0, seconds - 2.0))
            c1, b1, w1 = tree_cpu(gw.pid) if gw else 0, time.process_time(), time.perf_counter()
            results = await asyncio.gather(*tasks)
    finally:
        server.close()
        await server.wait_closed()
    up = lat([r[0] for r in results], [srv.sessions[d]["rx"] for d in ids], skip=5)
    down = lat([srv.sessions[d]["tx"] for d in ids], [r[1] for r in results], skip=5)
    lost_up = sum(max(0, len(r[0]) - len(srv.sessions[d]["rx"])) for r, d in zip(results, ids, strict=False))
    lost_down = sum(max(0, len(srv.sessions[d]["tx"]) - len(r[1])) for r, d in zip(results, ids, strict=False))
    return {"sessions": n, "cpu_fraction": (c1 - c0) / (w1 - w0) if workers else None,
            "load_cpu_fraction": (b1 - b0) / (w1 - w0),
            "sent": sum(len(r[0]) + len(srv.sessions[d]["tx"]) for r, d in zip(results, ids, strict=False)),
            "up_ms": up, "down_ms": down, "lost_up": lost_up, "lost_down": lost_down}


# -- 4. warm upstream pool -------------------------------------------------------
class HelloServer:
    """An upstream that answers hello and needs no Device-Id at handshake (what the pool requires)."""

    async def handler(self, ws):
        try:
            async for m in ws:
                if isinstance(m, str) and '"hello"' in m:
                    await ws.send('{"type":"hello","version":1,"transport":"websocket","audio_params":'
                                  '{"format":"opus","sample_rate":16000,"channels":1,"frame_duration":60},'
                                  '"session_id":"pool"}')
        except websockets.ConnectionClosed:
            pass


async def connect_to_hello(url):
    t0 = time.perf_counter()
    async with connect(url, additional_headers={"Device-Id": "bench-pool", "Protocol-Version": "1"},
                       compression=None) as ws:
        await ws.send('{"type":"hello","version":1,"transport":"websocket","audio_params":'
                      '{"format":"pcm","sample_rate":16000,"channels":1,"frame_duration":60}}')
        while '"hello"' not in await ws.recv():
            pass
        return (time.perf_counter() - t0) * 1e3


async def run_pool(trials, delay_s, pool):
    """connect -> hello in ms, `trials` times one after the other, upstream behind a delay_s link."""
    server = await serve(HelloServer().handler, "127.0.0.1", 0, compression=None)
    link = await DelayProxy("127.0.0.1", server.sockets[0].getsockname()[1], delay_s).start()
    try:
        extra = ("--upstream-pool", str(pool)) if pool else ()
        async with gateway("ws://127.0.0.1:%d/xiaozhi/v1/" % link.port, 1, extra=extra) as (_, url):
            out = []
            for _ in range(trials):
                await asyncio.sleep(1.0 if pool else 0.1)  # let the pool refill behind the last device
                out.append(await connect_to_hello(url))
            return out
    finally:
        await link.stop()
        server.close()
        await server.wait_closed()


def main(argv=None):
    p = argparse.ArgumentParser(prog="bench_gateway.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", default="25,50,100,150",
                   help="comma-separated concurrent session counts (25,50,100,150)")
    p.add_argument("--workers", default="1,2", help="comma-separated gateway worker counts (1,2)")
    p.add_argument("--formats", default="pcm,adpcm", help="device audio formats to load the gateway with (pcm,adpcm)")
    p.add_argument("--pool-trials", type=int, default=10, help="connects per pool measurement (10)")
    p.add_argument("--link-delay-ms", type=float, default=50.0, help="added delay each way for the pool test (50)")
    p.add_argument("--seconds", type=float, default=8.0, help="length of each load run (8 s)")
    p.add_argument("--complexity", type=int, default=5, help="uplink Opus complexity (5)")
    p.add_argument("--bitrate", type=int, default=24000, help="uplink Opus bitrate (24000)")
    p.add_argument("--frames", type=int, default=2000, help="frames for the codec CPU test (2000)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    a = p.parse_args(argv)
    def positive_list(flag, text):
        try:
            xs = [int(x) for x in text.split(",") if x.strip()]
            if xs and min(xs) >= 1:
                return xs
        except ValueError:
            pass
        p.error(f"{flag} must be positive integers, e.g. 1,2")

    counts = positive_list("--sessions", a.sessions)
    formats = [f.strip() for f in a.formats.split(",") if f.strip()]
    if not formats or any(f not in ("pcm", "adpcm") for f in formats):
        p.error("--formats must name pcm and/or adpcm, e.g. pcm,adpcm")
    worker_counts = positive_list("--workers", a.workers)
    if a.pool_trials < 1:
        p.error("--pool-trials must be at least 1")
    if a.seconds < 4:
        p.error("--seconds must be at least 4")

    # Other work on the host skews everything here: the load average is part of the result.
    out = {"loadavg_start": os.getloadavg(), "load": [],
           "codec": {f: codec_cpu(a.frames, a.complexity, a.bitrate, f) for f in ("pcm", "adpcm")}}
    out["encode_us_by_complexity"] = {k: codec_cpu(a.frames // 2, k, a.bitrate)["encode_us"] for k in (0, 5, 10)}
    bound = out["codec_sessions_per_core"] = {f: FRAME_S * 1e6 / (c["encode_us"] + c["decode_24k_hybrid_us"])
                                              for f, c in out["codec"].items()}
    base = asyncio.run(run_load(1, a.seconds, a.complexity, a.bitrate))
    out["baseline"] = {"up_p50": pct(base["up_ms"], 50), "up_p99": pct(base["up_ms"], 99),
                       "down_p50": pct(base["down_ms"], 50), "down_p99": pct(base["down_ms"], 99)}
    for fmt in formats:
        for w in worker_counts:
            for n in counts:
                r = asyncio.run(run_load(n, a.seconds, a.complexity, a.bitrate, workers=w, fmt=fmt))
                per_core = n / r["cpu_fraction"] if r["cpu_fraction"] else float("inf")
                out["load"].append({
                    "format": fmt, "workers": w, "sessions": n, "gateway_cpu_pct": 100 * r["cpu_fraction"],
                    "load_generator_cpu_pct": 100 * r["load_cpu_fraction"],
                    "sessions_per_core": per_core, "of_codec_bound": per_core / bound[fmt],
                    "up_p50": pct(r["up_ms"], 50), "up_p99": pct(r["up_ms"], 99),
                    "down_p50": pct(r["down_ms"], 50), "down_p99": pct(r["down_ms"], 99),
                    "frames_sent": r["sent"], "lost_up": r["lost_up"], "lost_down": r["lost_down"]})
    delay = a.link_delay_ms / 1e3
    out["pool"] = {"link_delay_ms_each_way": a.link_delay_ms,
                   "without_ms": asyncio.run(run_pool(a.pool_trials, delay, 0)),
                   "with_ms": asyncio.run(run_pool(a.pool_trials, delay, 2))}
    out["loadavg_end"] = os.getloadavg()
    if a.json:
        print(json.dumps(out, indent=1))
        return 0
    print("gateway benchmark (python %s, libopus via opuslib_next, %d CPUs, load average %.1f at start, %.1f at end)"
          % (sys.version.split()[0], os.cpu_count() or 0, out["loadavg_start"][0], out["loadavg_end"][0]))
    print("codec CPU per 60 ms frame, one stream (complexity %d, %d bps):" % (a.complexity, a.bitrate))
    for fmt, c in out["codec"].items():
        print("  %-5s uplink   device %-5s -> Opus             %7.1f us" % (fmt, fmt, c["encode_us"]))
        print("  %-5s downlink 24 kHz hybrid (TOC %2d) -> %-5s %7.1f us" % (
            fmt, c["decode_24k_hybrid_toc"], fmt, c["decode_24k_hybrid_us"]))
        print("  %-5s downlink 16 kHz SILK   (TOC %2d) -> %-5s %7.1f us" % (
            fmt, c["decode_16k_silk_toc"], fmt, c["decode_16k_silk_us"]))
    print("  uplink encode by complexity (pcm): " + ", ".join(
        "%d: %.0f us" % kv for kv in out["encode_us_by_complexity"].items()))
    print("  codec-only bound, full-duplex sessions per core: " + ", ".join("%s %.0f" % kv for kv in bound.items()))
    b = out["baseline"]
    print("loopback baseline without gateway (ms): up p50 %.2f p99 %.2f, down p50 %.2f p99 %.2f" % (
        b["up_p50"], b["up_p99"], b["down_p50"], b["down_p99"]))
    print("through the gateway, all sessions full duplex at real time (load generator CPU shown: it shares the cores;")
    print("sessions per core only means real-time capacity on rows with nothing lost):")
    print("  %-6s %7s %8s %9s %9s %8s %8s | %-21s | %-21s | %s" % (
        "format", "workers", "sessions", "gw CPU", "sess/core", "of bound", "load CPU", "added up ms p50/p99",
        "added down ms p50/p99", "lost up/down of sent"))
    for r in out["load"]:
        print("  %-6s %7d %8d %8.1f%% %9.0f %7.0f%% %7.0f%% | %9.2f / %-9.2f | %9.2f / %-9.2f | %d/%d of %d" % (
            r["format"], r["workers"], r["sessions"], r["gateway_cpu_pct"], r["sessions_per_core"],
            100 * r["of_codec_bound"], r["load_generator_cpu_pct"], r["up_p50"] - b["up_p50"],
            r["up_p99"] - b["up_p99"], r["down_p50"] - b["down_p50"], r["down_p99"] - b["down_p99"],
            r["lost_up"], r["lost_down"], r["frames_sent"]))
    pl = out["pool"]
    print("connect -> server hello, upstream %.0f ms away each way (%d connects, ms p50 / max):" % (
        pl["link_delay_ms_each_way"], len(pl["with_ms"])))
    print("  without --upstream-pool  %7.1f / %.1f" % (pct(pl["without_ms"], 50), max(pl["without_ms"])))
    print("  with --upstream-pool 2   %7.1f / %.1f" % (pct(pl["with_ms"], 50), max(pl["with_ms"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
