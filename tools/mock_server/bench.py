"""Timing of the mock server as a device sees it: python -m tools.mock_server.bench

Prints medians over a few runs on 127.0.0.1 (no pass/fail):
  connect -> hello reply, listen stop -> stt, abort -> first tts stop (and the gap to
  the second), downlink pacing (burst size, mean interval, audio-time vs wall-time),
  drain (last audio frame -> tts stop), and unpaced downlink throughput.
"""

import argparse
import json
import statistics
import time

from websockets.sync.client import connect

from .server import MockServer

DEV = {"Device-Id": "aa:bb:cc:dd:ee:ff", "Protocol-Version": "1"}
HELLO = json.dumps({"type": "hello", "version": 1, "transport": "websocket",
                    "audio_params": {"format": "pcm", "sample_rate": 16000, "channels": 1,
                                     "frame_duration": 60}})


def _until_stop(ws):
    """(arrival time, message) of every message up to and including the next tts stop."""
    stamps = []
    while True:
        m = ws.recv(timeout=10)
        stamps.append((time.perf_counter(), m))
        if isinstance(m, str) and '"stop"' in m:
            return stamps


def run_once(srv):
    r = {}
    t0 = time.perf_counter()
    with connect(srv.url, additional_headers=DEV, compression=None) as ws:
        ws.send(HELLO)
        ws.recv(timeout=10)
        r["hello_ms"] = (time.perf_counter() - t0) * 1000
        ws.send(json.dumps({"type": "listen", "state": "start", "mode": "manual"}))
        for _ in range(10):
            ws.send(bytes(1920))
        t1 = time.perf_counter()
        ws.send(json.dumps({"type": "listen", "state": "stop"}))
        stamps = _until_stop(ws)
        r["stt_ms"] = (stamps[0][0] - t1) * 1000
        audio = [t for t, m in stamps if isinstance(m, bytes)]
        first = audio[0]
        burst = sum(1 for t in audio if t - first < 0.03)
        r["burst"] = burst
        r["interval_ms"] = (audio[-1] - audio[burst - 1]) / (len(audio) - burst) * 1000
        r["audio_s"] = len(audio) * 0.06
        r["wall_s"] = audio[-1] - first
        r["drain_ms"] = (stamps[-1][0] - audio[-1]) * 1000
        ws.send(json.dumps({"type": "listen", "state": "detect", "text": "abort me please"}))
        while not isinstance(ws.recv(timeout=10), bytes):
            pass
        t2 = time.perf_counter()
        ws.send(json.dumps({"type": "abort"}))
        t3 = _until_stop(ws)[-1][0]
        t4 = _until_stop(ws)[-1][0]
        r["abort_ms"] = (t3 - t2) * 1000
        r["second_stop_ms"] = (t4 - t3) * 1000
    return r


def throughput(srv, turns=5):
    with connect(srv.url, additional_headers=DEV, compression=None) as ws:
        ws.send(HELLO)
        ws.recv(timeout=10)
        n = 0
        t0 = time.perf_counter()
        for _ in range(turns):
            ws.send(json.dumps({"type": "listen", "state": "detect", "text": "fast as you can go"}))
            n += sum(1 for _, m in _until_stop(ws) if isinstance(m, bytes))
        return n / (time.perf_counter() - t0)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.mock_server.bench", description=__doc__)
    p.add_argument("--runs", type=int, default=3, help="runs to take the median of (3)")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be >= 1")
    srv = MockServer(port=0, ping_interval=None).start_in_thread()
    try:
        runs = [run_once(srv) for _ in range(args.runs)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    finally:
        srv.stop()
    fast = MockServer(port=0, pace_ms=0, drain_s=0, ping_interval=None).start_in_thread()
    try:
        fps = throughput(fast)
    finally:
        fast.stop()
    print(f"mock server timing, median of {args.runs} runs (stock defaults: 5-frame burst, 60 ms pace, "
          "0.42 s drain, 0.4 s duplicate stop)")
    print(f"  connect -> hello reply        {med['hello_ms']:7.1f} ms")
    print(f"  listen stop -> stt            {med['stt_ms']:7.1f} ms")
    print(f"  downlink burst at reply start {med['burst']:7.0f} frames")
    print(f"  mean frame interval after it  {med['interval_ms']:7.1f} ms (each sentence bursts 5 again)")
    print(f"  reply audio / wall time       {med['audio_s']:7.2f} s / {med['wall_s']:.2f} s")
    print(f"  last frame -> tts stop        {med['drain_ms']:7.1f} ms")
    print(f"  abort -> tts stop             {med['abort_ms']:7.1f} ms")
    print(f"  first -> second tts stop      {med['second_stop_ms']:7.1f} ms")
    print(f"  unpaced downlink throughput   {fps:7.0f} frames/s (2880 B pcm frames)")


if __name__ == "__main__":
    main()
