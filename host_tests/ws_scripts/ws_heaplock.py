# Proves the per-frame paths of lib/wsclient.py allocate nothing, under
# micropython.heap_lock(): send_binary() (header, mask key, copy, mask into a
# slot), the parser turning buffered frames into messages, recv_loop()
# handing buffered frames to its handler, and the writer writing a queued
# frame. Then, outside the lock, what a real socket adds per message (asyncio's
# own waits). argv[1]: a free TCP port.
# Prints "J {json}" lines; host_tests/test_ws_client.py checks them.
import asyncio
import gc
import json
import socket
import sys

import micropython

import wsframe as F
import wsframe_ref as R
from wsclient import OP_BINARY, WebSocket
from wsparser import FrameParser
from wsqueue import SendQueue

pcm = bytearray(1920)
for i in range(len(pcm)):
    pcm[i] = i & 0xFF


def server_frames(*sizes):
    out = bytearray()
    for n in sizes:
        h = bytearray(F.MAX_HEADER)
        e = F.encode_header(h, 0, OP_BINARY, n, False)
        out += h[:e] + bytes(pcm[:n])
    return bytes(out)


def feed(parser, data):
    # As a socket read would: into the parser's read buffer.
    buf = parser.read_buffer()
    buf[: len(data)] = data
    parser.got(len(data))


def locked(fn, arg):
    # Locals only: storing a new global could grow the module dict.
    micropython.heap_lock()
    try:
        if arg is None:
            fn()
        else:
            fn(arg)
        e = None
    except MemoryError:
        e = "MemoryError"
    micropython.heap_unlock()
    return e


# ---- the pure parts -----------------------------------------------------
res = [None] * 6  # preallocated result slots

queue = SendQueue(4, 4096, b"\x01\x02\x03\x04")


def run_put(k):
    r = True
    for _ in range(k):
        r = queue.put_audio(pcm, 1920)
    res[0] = r


def run_pop(k):
    for _ in range(k):
        res[1] = queue.pop()


parser = FrameParser(8192, 4096)
stream = server_frames(1920, 1920)  # one size: the message view is reused


def run_parse():
    res[2] = parser.parse()
    res[3] = len(parser.message())
    res[4] = parser.parse()
    res[5] = len(parser.message())


# Warm up once (first calls may intern or grow things), then lock.
run_put(4)
run_pop(4)
feed(parser, stream)
run_parse()
parser.parse()
queue.dropped = 0

err_put = locked(run_put, 6)  # 4 slots: the last 2 calls drop the oldest
queued, dropped, kept = queue.audio_queued, queue.dropped, res[0]
err_pop = locked(run_pop, 4)
# The last popped frame is a valid masked frame: unmask it and compare.
fin, rsv, op, masked, n, hl = R.parse_header(res[1], len(res[1]))
body = bytearray(res[1][hl:])
R.mask(body, 0, n, res[1], hl - 4)
feed(parser, stream)
err_parse = locked(run_parse, None)
print("J " + json.dumps({
    "err_put": err_put, "err_pop": err_pop, "err_parse": err_parse,
    "put_kept": kept, "dropped": dropped, "queued": queued,
    "parsed": res[2:6], "frame_ok": op == OP_BINARY and masked == 1 and n == 1920 and body == pcm,
    "payload_ok": parser.message() == pcm,
}))

# Control: the same harness must notice an allocation.
print("J " + json.dumps({"control": locked(bytearray, 10)}))


# ---- the client: recv_loop() and the writer, inside asyncio ---------------
ws = WebSocket(max_message=8192, audio_slots=4, audio_slot_size=4096)
ws._state = 1  # open, without a handshake: buffered frames and a stand-in stream
burst = server_frames(1000, 1000, 1000, 1000)  # a burst as it sits in the rx buffer


class Stop(Exception):
    pass


stop = Stop()
got = [0, 0]


def handler(op, mv):
    got[0] += 1
    got[1] = len(mv)
    if got[0] == 4:
        raise stop  # preallocated: ends recv_loop() without a socket read


class TakesAll:
    """A stream that takes every write at once, like a socket with room."""

    out_buf = b""

    def __init__(self):
        self.writes = 0

    def write(self, buf):
        self.writes += 1


async def recv_burst(lock):
    feed(ws.parser, burst)
    got[0] = 0
    g = ws.recv_loop(handler)  # made before the lock: one per connection
    if lock:
        micropython.heap_lock()
    try:
        await g
    except Stop:
        pass
    except MemoryError:
        return "MemoryError"
    finally:
        if lock:
            micropython.heap_unlock()
    return None


async def writer_cycle():
    # The writer takes queued frames and writes them: with frames queued, it
    # never waits, so under the lock it allocates nothing. Its wait between
    # frames is asyncio's Event.wait(), a generator (see the bench).
    fake = ws._stream = TakesAll()
    ws._writer_task = asyncio.create_task(ws._writer())
    for _ in range(4):  # warm up: each slot's view is made once
        ws.send_binary(pcm, 1920)
        await asyncio.sleep_ms(0)
        await asyncio.sleep_ms(0)

    async def burst(k):
        for _ in range(k):
            ws.send_binary(pcm, 1920)
            await asyncio.sleep_ms(0)  # the writer writes it and yields

    g = burst(20)  # made before the lock: creating a coroutine allocates
    micropython.heap_lock()
    try:
        await g
        err = None
    except MemoryError:
        err = "MemoryError"
    micropython.heap_unlock()
    # An allocation in the writer task kills it (MemoryError there), so the
    # write count and the open state are the proof for that task.
    out = {"err": err, "writes": fake.writes, "open": ws.open, "writer_alive": ws._writer_task is not None}
    ws._writer_task.cancel()
    await asyncio.sleep_ms(0)
    return out


async def socket_cost(n):
    # Real socket: bytes per message for recv_loop() vs recv(). What is left
    # in recv_loop() is asyncio's own cost per wait (a poller entry and
    # Stream.readinto's generator), not ours.
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port = int(sys.argv[1])  # a free port picked by the test
    srv.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    srv.listen(1)
    r, _ = await asyncio.open_connection("127.0.0.1", port)
    peer, _ = srv.accept()
    peer.setblocking(False)
    rws = WebSocket(max_message=8192, audio_slots=1, audio_slot_size=16)
    rws._stream, rws._state = r, 1
    frame = server_frames(1000)
    out = {}
    count = [0]

    def on_msg(op, mv):
        count[0] += 1

    async def send(k):
        for _ in range(k):
            await asyncio.sleep_ms(2)
            peer.write(frame)
        await asyncio.sleep_ms(5)

    async def per_message(reader):
        # Bytes allocated per message while `reader` receives n of them.
        t = asyncio.create_task(reader)
        await send(3)
        a, c = gc.mem_alloc(), count[0]
        await send(n)
        cost = (gc.mem_alloc() - a) // max(1, count[0] - c)
        t.cancel()
        await asyncio.sleep_ms(0)
        return cost

    async def per_recv(k):
        for _ in range(k):
            await rws.recv()
            count[0] += 1

    out["recv_loop"] = await per_message(rws.recv_loop(on_msg))
    out["recv"] = await per_message(per_recv(10 ** 6))
    peer.close()
    srv.close()
    return out


async def main():
    warm = await recv_burst(False)
    err = await recv_burst(True)
    print("J " + json.dumps({"recv_loop_warm": warm, "recv_loop": err, "delivered": got}))
    print("J " + json.dumps({"writer": await writer_cycle()}))
    gc.disable()
    try:
        cost = await socket_cost(30)
    finally:
        gc.enable()
    print("J " + json.dumps({"socket_bytes_per_msg": cost}))


asyncio.run(main())
