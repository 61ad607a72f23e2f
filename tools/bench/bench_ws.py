"""Benchmark lib/wsclient.py and its parts under the MicroPython unix port.

Prints, per 1920-byte frame (60 ms of 16 kHz s16 mono):
  - masking cost, viper vs pure Python (µs);
  - queueing an audio frame in wsqueue.SendQueue (header, mask key, copy,
    mask) and taking it out (µs);
  - wsparser.FrameParser parsing a buffered binary frame (µs);
  - bytes allocated per frame (gc.mem_alloc deltas, GC disabled while
    measuring) for the whole send loop (the writer waits between frames, as
    at 60 ms), and the whole receive loop with recv_loop() (what the firmware
    uses) and with recv(), against a local CPython websockets server on
    127.0.0.1: "burst" frames as fast as the server sends them (µs per frame
    too), "paced" one frame per wait, as a live audio stream arrives.

Run: .venv/bin/python tools/bench/bench_ws.py [--frames N]
"""
import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from tools.harness import upy  # noqa: E402

UPY = r"""
import asyncio, gc, sys, time
import wsframe as F
import wsframe_ref as R
from wsclient import WebSocket, OP_BINARY
from wsparser import FrameParser
from wsqueue import SendQueue

N = int(sys.argv[2])
URL = sys.argv[1]
pcm = bytearray(1920)
for i in range(1920):
    pcm[i] = i & 0xFF
key = bytearray(b"\x12\x34\x56\x78")


def per(fn, reps):
    t = time.ticks_us()
    for _ in range(reps):
        fn()
    return time.ticks_diff(time.ticks_us(), t) / reps


buf = bytearray(1924)
print("mask viper        %8.2f us/frame" % per(lambda: F.mask(buf, 4, 1920, key, 0), 2000))
print("mask pure Python  %8.2f us/frame" % per(lambda: R.mask(buf, 4, 1920, key, 0), 50))

queue = SendQueue(8, 2048, b"seed")


def put_pop():
    queue.put_audio(pcm, 1920)
    queue.pop()


print("queue audio frame %8.2f us/frame (header+key+copy+mask into a slot, then pop)" % per(put_pop, 2000))
frame = bytearray(4 + 1920)
F.encode_header(frame, 0, OP_BINARY, 1920, False)
frame[4:] = pcm
parser = FrameParser(8192, 4096)


def parse():
    parser.read_buffer()[: len(frame)] = frame  # stands in for the socket read
    parser.got(len(frame))
    parser.parse()
    parser.parse()  # 0: buffer used up


print("parse buffered    %8.2f us/frame (incl. 1924-byte refill of the rx buffer)" % per(parse, 2000))


def measure(t, a):
    # (us, bytes) since (t, a)
    return time.ticks_diff(time.ticks_us(), t), gc.mem_alloc() - a


async def send_cost():
    ws = WebSocket(max_message=8192, audio_slots=8, audio_slot_size=2048)
    await ws.connect(URL + "sink")

    async def one():
        ws.send_binary(pcm, 1920)
        # Two yields: the writer sends the frame, then finds the queue empty
        # and waits for the next one, as it does between 60 ms frames.
        await asyncio.sleep_ms(0)
        await asyncio.sleep_ms(0)

    for _ in range(50):  # warm up
        await one()
    await asyncio.sleep_ms(20)
    gc.collect()
    gc.disable()
    a, t = gc.mem_alloc(), time.ticks_us()
    for _ in range(N):
        await one()
    dt, d = measure(t, a)
    gc.enable()
    print("send loop            alloc %6.1f bytes/frame  (%.1f us/frame incl. socket write, dropped %d)"
          % (d / N, dt / N, ws.dropped))
    await ws.close()


class Done(Exception):
    pass


done = Done()


async def recv_cost(name, use_loop, paced):
    # paced: the server sends a frame every 2 ms, so each frame is one wait
    # (as with 60 ms audio); otherwise it sends as fast as it can and a read
    # may bring more than one frame.
    n = N if not paced else min(N, 500)
    ws = WebSocket(max_message=8192, audio_slots=8, audio_slot_size=2048)
    await ws.connect(URL + "source?n=%d&gap_ms=%d" % (n + 50, 2 if paced else 0))
    for _ in range(50):
        await ws.recv()
    count = [0]

    def on_msg(op, mv):
        count[0] += 1
        if count[0] == n:
            raise done

    gc.collect()
    gc.disable()
    a, t = gc.mem_alloc(), time.ticks_us()
    if use_loop:
        try:
            await ws.recv_loop(on_msg)
        except Done:
            pass
    else:
        for _ in range(n):
            op, mv = await ws.recv()
    dt, d = measure(t, a)
    gc.enable()
    if paced:
        print("%-12s paced alloc %6.1f bytes/frame  (one wait per frame)" % (name, d / n))
    else:
        print("%-12s burst alloc %6.1f bytes/frame  (%.1f us/frame incl. socket reads)" % (name, d / n, dt / n))
    await ws.close()


async def main():
    await send_cost()
    for paced in (False, True):
        await recv_cost("recv_loop()", True, paced)
        await recv_cost("recv()", False, paced)


asyncio.run(main())
"""


def start_server():
    """websockets server in a thread: /sink reads everything, /source?n=N&gap_ms=G
    sends N frames, G ms apart."""
    from websockets.asyncio.server import serve

    ready = threading.Event()
    box = {}

    async def handler(ws):
        path = ws.request.path
        if path.startswith("/source"):
            query = dict(kv.split("=") for kv in path.split("?")[1].split("&"))
            pcm = bytes(i & 0xFF for i in range(1920))
            for _ in range(int(query["n"])):
                await ws.send(pcm)
                if query["gap_ms"] != "0":
                    await asyncio.sleep(int(query["gap_ms"]) / 1000)
        async for _ in ws:
            pass

    async def run():
        async with serve(handler, "127.0.0.1", 0) as s:
            box["port"] = s.sockets[0].getsockname()[1]
            box["stop"] = asyncio.get_running_loop().create_future()
            box["loop"] = asyncio.get_running_loop()
            ready.set()
            await box["stop"]

    t = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    t.start()
    ready.wait(10)
    return box


def main():
    ap = argparse.ArgumentParser(description="Per-frame cost and allocation of lib/wsclient.py under MicroPython.")
    ap.add_argument("--frames", type=int, default=2000, help="frames per allocation loop (default 2000)")
    args = ap.parse_args()
    if args.frames < 1:
        ap.error("--frames must be at least 1")
    try:
        micropython = upy.micropython_binary()
    except upy.SimError as e:
        sys.exit("error: %s" % e)
    box = start_server()
    url = "ws://127.0.0.1:%d/" % box["port"]
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "bench_ws_upy.py")
        with open(script, "w") as f:
            f.write(UPY)
        p = subprocess.run([micropython, "-X", "heapsize=8m", script, url, str(args.frames)],
                           env=upy.env(), capture_output=True, text=True, timeout=300)
    box["loop"].call_soon_threadsafe(box["stop"].set_result, None)
    print("lib/wsclient.py on the MicroPython unix port, 1920-byte frames")
    sys.stdout.write(p.stdout)
    if p.returncode:
        sys.stderr.write(p.stderr)
        sys.exit("error: benchmark script failed")


if __name__ == "__main__":
    main()
