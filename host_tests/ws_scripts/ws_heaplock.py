# Proves the per-frame paths of lib/wsclient.py allocate nothing: queueing an
# audio frame (header, mask key, copy, mask into a slot) and parsing a
# buffered binary frame into the message buffer, both under heap_lock; then,
# inside asyncio, recv_loop() delivering buffered frames and the writer task
# waking, writing and parking per frame, also under heap_lock; and on a real
# socket, the bytes per message of recv_loop() against recv(). argv[1]: a
# free TCP port.
# Prints "J {json}" lines; host_tests/test_ws_client.py checks them.
import asyncio
import gc
import json
import socket
import sys

import micropython

import wsframe as F
from wsclient import OP_BINARY, WebSocket

ws = WebSocket(max_message=8192, audio_slots=4, audio_slot_size=4096)
ws._state = 1  # open, without a socket: only the synchronous paths run here
pcm = bytearray(1920)
for i in range(len(pcm)):
    pcm[i] = i & 0xFF

# Server frames as they would sit in the rx buffer: 1920 (16-bit length) and
# 100 (7-bit). (A PING's PONG is a control frame and may allocate.)
rx = bytearray()
for n in (1920, 100):
    h = bytearray(F.MAX_HEADER)
    e = F.encode_header(h, 0, OP_BINARY, n, False)
    rx += h[:e] + bytes(pcm[:n])
stream = bytes(rx)


def feed():
    ws._rb[: len(stream)] = stream
    ws._rp = 0
    ws._re = len(stream)


res = [None, None, None, None, None, None]  # preallocated result slots


def run_send(k):
    r = True
    for _ in range(k):
        r = ws.send_binary(pcm, 1920)
    res[0] = r


def run_recv():
    res[1] = ws._step()
    res[2] = ws._mlen
    res[3] = ws._step()
    res[4] = ws._mlen


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


# Warm up once (first calls may intern or grow things), then lock.
run_send(1)
feed()
run_recv()
ws._acount = 0
ws._ctl = []
ws.dropped = 0

feed()
err_send = locked(run_send, 6)  # 4 slots: the last 2 calls drop the oldest
err_recv = locked(run_recv, None)

# The slot holds a valid masked frame: unmask it and compare.
i = (ws._ahead + ws._acount - 1) % ws._nslots
slot = ws._slots[i]
st, en = ws._sst[i], ws._sen[i]
fin, rsv, op, masked, n, hl = F.parse_header(slot[st:], en - st)
body = bytearray(slot[st + hl : en])
F.mask_py(body, 0, n, slot, st + hl - 4)
print(
    "J "
    + json.dumps(
        {
            "err_send": err_send,
            "err_recv": err_recv,
            "send_ok": res[0],
            "dropped": ws.dropped,
            "queued": ws._acount,
            "recv": res[1:5],
            "frame_ok": op == OP_BINARY and masked == 1 and n == 1920 and body == pcm,
            "payload_ok": bytes(ws._mmv[:100]) == bytes(pcm[:100]),
        }
    )
)

# A PING (outside the lock) is answered inside and never surfaced.
ws._rb[:3] = b"\x89\x01z"
ws._rp, ws._re = 0, 3
print("J " + json.dumps({"ping_step": ws._step(), "pong": list(ws._ctl[-1][:2]) if ws._ctl else None}))

# Control: the same harness must notice an allocation.
print("J " + json.dumps({"control": locked(bytearray, 10)}))


# ---- whole-loop paths: recv_loop() and the writer's wait, inside asyncio ----
# Four equal 1000-byte BINARY frames, as a burst sits in the rx buffer.
burst = bytearray()
for _ in range(4):
    h = bytearray(F.MAX_HEADER)
    e = F.encode_header(h, 0, OP_BINARY, 1000, False)
    burst += h[:e] + bytes(pcm[:1000])
burst = bytes(burst)


class Stop(Exception):
    pass


stop = Stop()
got = [0, 0]


def handler(op, mv):
    got[0] += 1
    got[1] = len(mv)
    if got[0] == 4:
        raise stop  # preallocated: ends recv_loop() without a socket read


class FakeStream:
    """Takes every write at once, like a socket with room (out_buf empty)."""

    out_buf = b""

    def __init__(self):
        self.writes = 0

    def write(self, buf):
        self.writes += 1

    def close(self):
        pass


async def recv_burst(lock):
    ws._rb[: len(burst)] = burst
    ws._rp, ws._re = 0, len(burst)
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


async def uplink(k):
    # Per frame: queue it, let the writer wake, write and park again.
    for _ in range(k):
        ws.send_binary(pcm, 1920)
        await asyncio.sleep_ms(0)
        await asyncio.sleep_ms(0)


async def writer_cycle():
    fake = FakeStream()
    ws._s = fake
    ws._acount = 0
    ws._ctl = []  # the PONG queued above is not part of this
    ws._wtask = asyncio.create_task(ws._writer())
    await uplink(ws._nslots)  # warm up: each slot's view is made once
    g = uplink(20)  # made before the lock: creating a coroutine allocates
    micropython.heap_lock()
    try:
        await g
        err = None
    except MemoryError:
        err = "MemoryError"
    micropython.heap_unlock()
    # An allocation in the writer task kills it (MemoryError there), so the
    # write count and the open state are the proof for that task.
    return {"err": err, "writes": fake.writes, "open": ws.open, "writer_alive": ws._wtask is not None}


async def socket_cost(n):
    # Real socket: bytes per message for recv_loop() vs recv(). What is left
    # in recv_loop() is asyncio's poller entry per wait (IOQueue), not ours.
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port = int(sys.argv[1])  # a free port picked by the test
    srv.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    srv.listen(1)
    r, _ = await asyncio.open_connection("127.0.0.1", port)
    peer, _ = srv.accept()
    peer.setblocking(False)
    rws = WebSocket(max_message=8192, audio_slots=1, audio_slot_size=16)
    rws._s, rws._state = r, 1
    frame = burst[: len(burst) // 4]
    out = {}
    count = [0]

    def on_msg(op, mv):
        count[0] += 1

    async def feed(k):
        for _ in range(k):
            await asyncio.sleep_ms(2)
            peer.write(frame)
        await asyncio.sleep_ms(5)

    async def per_message(reader):
        # Bytes allocated per message while `reader` receives n of them.
        t = asyncio.create_task(reader)
        await feed(3)
        a, c = gc.mem_alloc(), count[0]
        await feed(n)
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
    # Control: asyncio.Event.wait() is a generator, so the same lock catches it.
    print("J " + json.dumps({"event_wait_control": locked(asyncio.Event().wait, None)}))
    gc.disable()
    try:
        cost = await socket_cost(30)
    finally:
        gc.enable()
    print("J " + json.dumps({"socket_bytes_per_msg": cost}))


asyncio.run(main())
