# MicroPython side of host_tests/test_ws_client.py: drives lib/wsclient.py
# against a CPython server and prints one "J {json}" line per observation.
#   micropython ws_client.py <scenario> <url> [options as key=value]
import asyncio
import json
import sys
import time

from wsclient import OP_BINARY, OP_TEXT, WebSocket, WSClosed, WSError


def out(**kw):
    print("J " + json.dumps(kw))


def summary(op, mv):
    if op == OP_TEXT:
        return {"op": op, "len": len(mv), "text": str(bytes(mv), "utf-8")}
    s = 0
    for b in mv:
        s = (s * 31 + b) & 0xFFFFFF
    return {"op": op, "len": len(mv), "sum": s}


def pattern(n, seed=0):
    b = bytearray(n)
    for i in range(n):
        b[i] = (i * 7 + seed) & 0xFF
    return b


def opts():
    o = {}
    for a in sys.argv[3:]:
        k, v = a.split("=", 1)
        o[k] = v
    return o


async def connect(url, o, ws=None):
    """Connect a new WebSocket (or `ws` again) with the options. Skipped
    oversized messages are reported as "oversize" lines."""
    if ws is None:

        def on_oversize(op, size, head):
            out(ev="oversize", op=op, size=size, head=str(bytes(head[:40]), "utf-8"), kept=len(head))

        ws = WebSocket(
            max_message=int(o.get("max", 70000)),
            audio_slots=int(o.get("slots", 4)),
            audio_slot_size=int(o.get("slot", 70000)),
            on_oversize=on_oversize,
        )
    cadata = None
    if "ca" in o:
        with open(o["ca"], "rb") as f:
            cadata = f.read()
    await ws.connect(
        url,
        headers=[("Protocol-Version", "1"), ("Device-Id", "cc:ba:97:04:92:94"), ("Authorization", "Bearer t0k")],
        cadata=cadata,
        verify=o.get("verify", "1") == "1",
        timeout_ms=int(o.get("timeout", 5000)),
    )
    return ws


async def sc_connect(url, o):
    # Connect only: report success or the one-line error.
    try:
        ws = await connect(url, o)
    except WSError as e:
        out(ev="error", msg=str(e), cls=type(e).__name__)
        return
    out(ev="connected")
    ws.send_text("hi")
    op, mv = await ws.recv()
    out(ev="msg", **summary(op, mv))
    await ws.close()


async def sc_echo(url, o):
    ws = await connect(url, o)
    out(ev="connected")
    ws.send_text("héllo 小智")
    op, mv = await ws.recv()
    out(ev="msg", **summary(op, mv))
    for n in (0, 1, 125, 126, 1920, 65535, 65536, 70000):
        data = pattern(n, n & 0xFF)
        ws.send_binary(data, n)
        op, mv = await ws.recv()
        out(ev="bin", n=n, op=op, ok=(op == OP_BINARY and mv == data), len=len(mv))
    # control-lane binary of a size no audio slot holds
    ws2 = pattern(66000, 3)
    ws.send_bytes(ws2)
    op, mv = await ws.recv()
    out(ev="bytes", ok=(mv == ws2))
    ws.send_text("x" * 66000)
    op, mv = await ws.recv()
    out(ev="bigtext", op=op, ok=(bytes(mv) == b"x" * 66000))
    await ws.close(1000, "done")
    out(ev="closed", dropped=ws.dropped)


async def sc_read(url, o):
    # Print every message until the connection ends; the server drives.
    ws = await connect(url, o)
    out(ev="connected")
    if "send" in o:
        ws.send_text(o["send"])
    while True:
        try:
            op, mv = await ws.recv()
        except WSClosed as e:
            out(ev="closed", code=e.code, reason=e.reason)
            break
        except WSError as e:
            out(ev="error", msg=str(e))
            try:
                await ws.recv()
            except WSClosed as e2:
                out(ev="after", code=e2.code, reason=e2.reason)
            break
        out(ev="msg", **summary(op, mv))
        if op == OP_TEXT and bytes(mv) == b"echo-me":
            ws.send_text("echoed")
    await ws.close()
    out(ev="done")


async def sc_client_close(url, o):
    ws = await connect(url, o)
    ws.send_text("bye-soon")
    op, mv = await ws.recv()
    out(ev="msg", **summary(op, mv))
    if o.get("reader") == "1":
        # A reader task is blocked in recv() while another task closes.
        async def reader():
            try:
                await ws.recv()
            except WSClosed as e:
                out(ev="reader", code=e.code, reason=e.reason)

        t = asyncio.create_task(reader())
        await asyncio.sleep_ms(10)
        try:
            await ws.recv()
        except WSError as e:
            out(ev="second_reader", msg=str(e))
        await ws.close(4001, "client says bye")
        await t
    else:
        await ws.close(4001, "client says bye")
    out(ev="closed", open=ws.open)
    out(ev="late_audio", queued=ws.send_binary(b"abc", 3))
    try:
        ws.send_text("late")
    except WSClosed as e:
        out(ev="late", code=e.code, reason=e.reason)


async def sc_cancel(url, o):
    # recv() cancelled by a timeout in the middle of a frame loses no bytes;
    # the bytes that did arrive count as life for a watchdog.
    ws = await connect(url, o)
    stale = ws.last_rx = time.ticks_add(time.ticks_ms(), -60000)
    ws.send_text("start")  # the server sends part of a frame after this
    timeouts = 0
    while ws.last_rx == stale and timeouts < 200:  # a bound, not a wait: ends when bytes came
        try:
            await asyncio.wait_for_ms(ws.recv(), 50)
            out(ev="unexpected")
            return
        except asyncio.TimeoutError:
            timeouts += 1
    out(ev="timeout", rx_age_ms=time.ticks_diff(time.ticks_ms(), ws.last_rx))
    ws.send_text("more")
    op, mv = await ws.recv()
    out(ev="msg", **summary(op, mv))
    await ws.close()


async def sc_congest(url, o):
    # Audio into a link whose reader stopped: oldest audio is dropped, a text
    # message still goes out ahead of queued audio.
    ws = await connect(url, o)
    out(ev="connected")
    frame = bytearray(int(o.get("size", 4096)))
    seq = 0
    sent_before_marker = 0
    while True:
        frame[0] = (seq >> 8) & 0xFF
        frame[1] = seq & 0xFF
        ws.send_binary(frame, len(frame))
        seq += 1
        await asyncio.sleep_ms(0)
        if ws.dropped >= 3 * int(o.get("slots", 4)):
            break
        if seq > 60000:
            out(ev="never-congested")
            return
    ws.send_text("marker")
    sent_before_marker = seq
    out(ev="congested", seq=seq, dropped=ws.dropped)
    # Tell the test; it lets the server read again and then sends "end".
    while True:
        op, mv = await ws.recv()
        if op == OP_TEXT and bytes(mv) == b"end":
            break
    out(ev="done", sent=sent_before_marker, dropped=ws.dropped)
    await ws.close()


async def sc_reconnect(url, o):
    # One WebSocket for two connections, as the firmware keeps it across
    # sessions; the second closes from two tasks at once. Between them the
    # handshake module is dropped, as the firmware drops it while a session
    # runs (firmware/resident.py): the second connect loads it again.
    ws = await connect(url, o)
    for n in range(2):
        if n:
            first = sys.modules.pop("wshandshake")
            await connect(url, o, ws)
            out(ev="handshake_reloaded", again=sys.modules.get("wshandshake") not in (None, first))
        ws.send_text("hello %d" % n)
        op, mv = await ws.recv()
        out(ev="msg", **summary(op, mv))
        t = time.ticks_ms()
        if n:
            await asyncio.gather(ws.close(4000 + n), ws.close(4000 + n))
        else:
            await ws.close(4000 + n)
        out(ev="closed", open=ws.open, ms=time.ticks_diff(time.ticks_ms(), t))


async def sc_reconnect_after_timeout(url, o):
    # close() gives up on a silent peer while a reader task waits; the
    # connect that follows at once must not change what that reader gets.
    ws = await connect(url, o)

    async def reader():
        try:
            await ws.recv()
        except BaseException as e:
            out(ev="reader", cls=type(e).__name__, msg=str(e))

    t = asyncio.create_task(reader())
    await asyncio.sleep_ms(10)
    await ws.close(4000, "", 100)
    await connect(url, o, ws)
    await t
    ws.send_text("second")
    op, mv = await ws.recv()
    out(ev="msg", **summary(op, mv))
    await ws.close()


async def sc_ping(url, o):
    # Keepalive: two PINGs out, their PONGs counted; any bytes count as life.
    ws = await connect(url, o)
    ws.ping(b"k1")
    ws.ping()
    try:
        ws.ping(b"x" * 126)
    except ValueError as e:
        out(ev="bad_ping", msg=str(e))
    op, mv = await ws.recv()  # the server sends a text once it has answered both
    out(ev="msg", pongs=ws.pongs, has_last_pong=ws.last_pong is not None, **summary(op, mv))
    await ws.close()
    try:
        ws.ping()
    except WSClosed as e:
        out(ev="late_ping", code=e.code)


async def main():
    sc, url = sys.argv[1], sys.argv[2]
    o = opts()
    try:
        await globals()["sc_" + sc](url, o)
    except WSError as e:
        out(ev="error", msg=str(e), cls=type(e).__name__)


asyncio.run(main())
