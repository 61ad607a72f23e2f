"""Gateway benchmark: transcoding CPU per stream, real-time sessions per core,
and the latency the gateway adds per frame.

1. Codec CPU: libopus through opuslib_next on one core, per 60 ms frame:
   uplink encode (16 kHz speech PCM -> Opus, the configured complexity and
   bitrate) and downlink decode (24 kHz hybrid TTS and 16 kHz SILK prompts
   -> 16 kHz PCM), as process CPU time over many frames; for an "adpcm"
   device also the IMA-ADPCM decode before the encode and encode after the
   decode (audioop's C codec).
2. Load: the real gateway (`python -m tools.gateway`) in its own process,
   N simulated devices and a simulated Opus-only server in this process, all
   streams full duplex at real time (one 60 ms frame each way every 60 ms,
   the worst case: stock servers never speak while listening). The gateway
   process's CPU (utime+stime from /proc) over the steady state gives the
   fraction of a core N sessions use; sessions per core = N / fraction.
3. Latency: per frame, send time at the source to receive time at the sink,
   through the gateway, minus the same path without it (device straight to
   the server on loopback). Frames are matched by order (one TCP stream each).

    .venv/bin/python tools/bench/bench_gateway.py [--sessions 1,10,25] [--seconds 8]
        [--complexity 5] [--bitrate 24000] [--frames 2000] [--formats pcm,adpcm] [--json]
"""

import argparse
import asyncio
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


async def run_load(n, seconds, complexity, bitrate, via_gateway, fmt="pcm"):
    frames = device_frames(fmt)
    packets = opus_packets(speech_frames(), 24000, opuslib_next.APPLICATION_AUDIO)
    srv = Server(packets, seconds)
    server = await serve(srv.handler, "127.0.0.1", 0, compression=None, max_size=2 ** 20)
    up_url = "ws://127.0.0.1:%d/xiaozhi/v1/" % server.sockets[0].getsockname()[1]
    gw = None
    cfgfile = None
    try:
        if via_gateway:
            cfgfile = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
            json.dump({"listen": "127.0.0.1:0", "upstreams": [up_url],
                       "limits": {"connections_per_minute_per_device": 0, "connections_per_minute_per_ip": 0,
                                  "messages_per_second_per_device": 0, "messages_per_second_per_ip": 0},
                       "opus": {"complexity": complexity, "bitrate": bitrate}}, cfgfile)
            cfgfile.close()
            gw = subprocess.Popen([sys.executable, "-m", "tools.gateway", "--config", cfgfile.name,
                                   "--log-level", "warning"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
            line = await asyncio.to_thread(gw.stdout.readline)
            port = int(line.split("ws://127.0.0.1:")[1].split("/")[0])
            url = "ws://127.0.0.1:%d/xiaozhi/v1/" % port
        else:
            url, fmt = up_url, "opus"  # the direct path: same frames, no transcoding hop
        ids = ["bench-%03d" % i for i in range(n)]
        tasks = [asyncio.create_task(device(url, d, frames if via_gateway else packets, seconds, fmt)) for d in ids]
        await asyncio.sleep(1.0)  # all sessions in steady state
        c0, w0 = (proc_cpu(gw.pid), time.perf_counter()) if gw else (0, time.perf_counter())
        await asyncio.sleep(max(1.0, seconds - 2.0))
        c1, w1 = (proc_cpu(gw.pid), time.perf_counter()) if gw else (0, time.perf_counter())
        results = await asyncio.gather(*tasks)
    finally:
        server.close()
        await server.wait_closed()
        if gw:
            gw.terminate()
            gw.wait(timeout=10)
        if cfgfile:
            os.unlink(cfgfile.name)
    up = lat([r[0] for r in results], [srv.sessions[d]["rx"] for d in ids], skip=5)
    down = lat([srv.sessions[d]["tx"] for d in ids], [r[1] for r in results], skip=5)
    lost_up = sum(max(0, len(r[0]) - len(srv.sessions[d]["rx"])) for r, d in zip(results, ids, strict=False))
    lost_down = sum(max(0, len(srv.sessions[d]["tx"]) - len(r[1])) for r, d in zip(results, ids, strict=False))
    return {"sessions": n, "cpu_fraction": (c1 - c0) / (w1 - w0) if gw else None,
            "up_ms": up, "down_ms": down, "lost_up": lost_up, "lost_down": lost_down}


def main(argv=None):
    p = argparse.ArgumentParser(prog="bench_gateway.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", default="1,10,25", help="comma-separated concurrent session counts (1,10,25)")
    p.add_argument("--seconds", type=float, default=8.0, help="length of each load run (8 s)")
    p.add_argument("--complexity", type=int, default=5, help="uplink Opus complexity (5)")
    p.add_argument("--bitrate", type=int, default=24000, help="uplink Opus bitrate (24000)")
    p.add_argument("--frames", type=int, default=2000, help="frames for the codec CPU test (2000)")
    p.add_argument("--formats", default="pcm,adpcm", help="device audio formats to load the gateway with (pcm,adpcm)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    a = p.parse_args(argv)
    formats = [f for f in a.formats.split(",") if f.strip()]
    if not formats or any(f not in ("pcm", "adpcm") for f in formats):
        p.error("--formats must name pcm and/or adpcm, e.g. pcm,adpcm")
    try:
        counts = [int(x) for x in a.sessions.split(",") if x.strip()]
        if not counts or min(counts) < 1:
            raise ValueError
    except ValueError:
        p.error("--sessions must be positive integers, e.g. 1,10,25")
    if a.seconds < 4:
        p.error("--seconds must be at least 4")

    out = {"codec": {f: codec_cpu(a.frames, a.complexity, a.bitrate, f) for f in ("pcm", "adpcm")}, "load": []}
    out["encode_us_by_complexity"] = {k: codec_cpu(a.frames // 2, k, a.bitrate)["encode_us"] for k in (0, 5, 10)}
    out["codec_sessions_per_core"] = {f: FRAME_S * 1e6 / (c["encode_us"] + c["decode_24k_hybrid_us"])
                                      for f, c in out["codec"].items()}
    base = asyncio.run(run_load(1, a.seconds, a.complexity, a.bitrate, via_gateway=False))
    out["baseline"] = {"up_p50": pct(base["up_ms"], 50), "up_p99": pct(base["up_ms"], 99),
                       "down_p50": pct(base["down_ms"], 50), "down_p99": pct(base["down_ms"], 99)}
    for fmt in formats:
        for n in counts:
            r = asyncio.run(run_load(n, a.seconds, a.complexity, a.bitrate, via_gateway=True, fmt=fmt))
            out["load"].append(load_row(fmt, n, r))
    if a.json:
        print(json.dumps(out, indent=1))
        return 0
    print("gateway benchmark (python %s, libopus via opuslib_next, %d CPUs)" % (
        sys.version.split()[0], os.cpu_count() or 0))
    print("codec CPU per 60 ms frame, one stream (complexity %d, %d bps):" % (a.complexity, a.bitrate))
    for fmt, c in out["codec"].items():
        print("  %-5s uplink   device %-5s -> Opus             %7.1f us" % (fmt, fmt, c["encode_us"]))
        print("  %-5s downlink 24 kHz hybrid (TOC %2d) -> %-5s %7.1f us" % (
            fmt, c["decode_24k_hybrid_toc"], fmt, c["decode_24k_hybrid_us"]))
        print("  %-5s downlink 16 kHz SILK   (TOC %2d) -> %-5s %7.1f us" % (
            fmt, c["decode_16k_silk_toc"], fmt, c["decode_16k_silk_us"]))
    print("  uplink encode by complexity (pcm): " + ", ".join(
        "%d: %.0f us" % kv for kv in out["encode_us_by_complexity"].items()))
    print("  codec-only bound, full-duplex sessions per core: " + ", ".join(
        "%s %.0f" % kv for kv in out["codec_sessions_per_core"].items()))
    b = out["baseline"]
    print("loopback baseline without gateway (ms): up p50 %.2f p99 %.2f, down p50 %.2f p99 %.2f" % (
        b["up_p50"], b["up_p99"], b["down_p50"], b["down_p99"]))
    print("through the gateway, all sessions full duplex at real time:")
    print("  %-6s %8s %9s %9s | %-21s | %-21s | %s" % ("format", "sessions", "gw CPU", "sess/core",
                                                       "added up ms p50/p99", "added down ms p50/p99",
                                                       "lost up/down"))
    for r in out["load"]:
        print("  %-6s %8d %8.1f%% %9.0f | %9.2f / %-9.2f | %9.2f / %-9.2f | %d/%d" % (
            r["format"], r["sessions"], r["gateway_cpu_pct"], r["sessions_per_core"],
            r["up_p50"] - b["up_p50"], r["up_p99"] - b["up_p99"],
            r["down_p50"] - b["down_p50"], r["down_p99"] - b["down_p99"], r["lost_up"], r["lost_down"]))
    return 0


def load_row(fmt, n, r):
    return {"format": fmt, "sessions": n, "gateway_cpu_pct": 100 * r["cpu_fraction"],
            "sessions_per_core": n / r["cpu_fraction"] if r["cpu_fraction"] else float("inf"),
            "up_p50": pct(r["up_ms"], 50), "up_p99": pct(r["up_ms"], 99),
            "down_p50": pct(r["down_ms"], 50), "down_p99": pct(r["down_ms"], 99),
            "lost_up": r["lost_up"], "lost_down": r["lost_down"]}


if __name__ == "__main__":
    sys.exit(main())
