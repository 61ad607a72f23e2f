# Proves the per-frame paths of lib/wsclient.py allocate nothing: queueing an
# audio frame (header, mask key, copy, mask into a slot) and parsing a
# buffered binary frame into the message buffer, both under heap_lock.
# Prints "J {json}" lines; host_tests/test_ws_client.py checks them.
import json

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
