"""Benchmark lib/wsclient.py under the MicroPython unix port.

Prints, per 1920-byte frame (60 ms of 16 kHz s16 mono):
  - masking cost, viper vs pure Python (µs);
  - the synchronous send path, send_binary() (header, mask key, copy, mask) (µs);
  - parsing a buffered binary frame into the message buffer (µs);
  - bytes allocated per frame (gc.mem_alloc deltas, GC disabled while measuring)
    for the whole send loop, and the whole receive loop with recv_loop() (what
    the firmware uses) and with recv(), against a local CPython websockets
    server on 127.0.0.1.

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
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")

UPY = r"""
import asyncio, gc, sys, time
import wsclient
import wsframe as F
from wsclient import WebSocket, OP_BINARY

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
print("mask pure Python  %8.2f us/frame" % per(lambda: F.mask_py(buf, 4, 1920, key, 0), 50))

ws = WebSocket(max_message=8192, audio_slots=8, audio_slot_size=2048)
ws._state = 1  # synchronous paths only, no socket
us = per(lambda: ws.send_binary(pcm, 1920), 2000)
print("send_binary       %8.2f us/frame (header+key+copy+mask into a slot)" % us)
frame = bytearray(4 + 1920)
F.encode_header(frame, 0, OP_BINARY, 1920, False)
frame[4:] = pcm


def parse():
    ws._rb[: len(frame)] = frame
    ws._rp = 0
    ws._re = len(frame)
    ws._step()


print("parse buffered    %8.2f us/frame (incl. 1924-byte refill of the rx buffer)" % per(parse, 2000))


async def send_cost(tag):
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
    a = gc.mem_alloc()
    t = time.ticks_us()
    for _ in range(N):
        await one()
    dt = time.ticks_diff(time.ticks_us(), t)
    d = gc.mem_alloc() - a
    gc.enable()
    print("send loop    %s alloc %8.1f bytes/frame  (%.1f us/frame incl. socket write, dropped %d)"
          % (tag, d / N, dt / N, ws.dropped))
    await ws.close()


async def main():
    park = wsclient._park
    for tag in ("park  ", "nopark"):
        wsclient._park = park if tag == "park  " else None
        await send_cost(tag)
        await recv_cost(tag, "recv_loop()", True)
        await recv_cost(tag, "recv()", False)


class Done(Exception):
    pass


done = Done()


async def recv_cost(tag, name, use_loop):
    ws = WebSocket(max_message=8192, audio_slots=8, audio_slot_size=2048)
    await ws.connect(URL + "source?n=%d" % (N + 50))
    for _ in range(50):
        await ws.recv()
    count = [0]

    def on_msg(op, mv):
        count[0] += 1
        if count[0] == N:
            raise done

    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    t = time.ticks_us()
    if use_loop:
        try:
            await ws.recv_loop(on_msg)
        except Done:
            pass
    else:
        for _ in range(N):
            op, mv = await ws.recv()
    dt = time.ticks_diff(time.ticks_us(), t)
    d = gc.mem_alloc() - a
    gc.enable()
    print("%-12s %s alloc %8.1f bytes/frame  (%.1f us/frame incl. socket reads)" % (name, tag, d / N, dt / N))
    await ws.close()


asyncio.run(main())
"""


def start_server():
    """websockets server in a thread: /sink reads everything, /source?n=N sends N frames."""
    from websockets.asyncio.server import serve

    ready = threading.Event()
    box = {}

    async def handler(ws):
        path = ws.request.path
        if path.startswith("/source"):
            n = int(path.split("n=")[1])
            pcm = bytes(i & 0xFF for i in range(1920))
            for _ in range(n):
                await ws.send(pcm)
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
    if not os.path.exists(MICROPYTHON):
        sys.exit("error: %s not found (run scripts/setup)" % MICROPYTHON)
    box = start_server()
    url = "ws://127.0.0.1:%d/" % box["port"]
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "bench_ws_upy.py")
        with open(script, "w") as f:
            f.write(UPY)
        env = dict(os.environ, MICROPYPATH=".frozen:" + os.path.join(ROOT, "lib"))
        p = subprocess.run([MICROPYTHON, "-X", "heapsize=8m", script, url, str(args.frames)],
                           env=env, capture_output=True, text=True, timeout=300)
    box["loop"].call_soon_threadsafe(box["stop"].set_result, None)
    print("lib/wsclient.py on the MicroPython unix port, 1920-byte frames")
    sys.stdout.write(p.stdout)
    if p.returncode:
        sys.stderr.write(p.stderr)
        sys.exit("error: benchmark script failed")


if __name__ == "__main__":
    main()
