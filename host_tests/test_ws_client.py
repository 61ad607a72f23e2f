# lib/wsclient.py under the real MicroPython unix port against real servers on
# 127.0.0.1: CPython websockets 17.4 (which enforces client masking and the
# close handshake) and small raw asyncio servers for what websockets will not
# do (wrong Accept, protocol violations, stalls).
import asyncio
import base64
import datetime
import hashlib
import http
import json
import os
import struct

import pytest
from websockets.asyncio.server import serve

from host_tests.bootkit import free_port
from tools.harness import upy

HERE = os.path.dirname(os.path.abspath(__file__))
MICROPYTHON = upy.micropython_binary()
SCRIPTS = os.path.join(HERE, "ws_scripts")
ENV = upy.env()
T = 20  # seconds; a bound, never a wait


async def mpy(script, *args, lines=None):
    """Run a MicroPython script; return its J-lines as dicts. With `lines`
    (an async callback), each J-line is passed to it as it arrives."""
    p = await asyncio.create_subprocess_exec(
        MICROPYTHON, os.path.join(SCRIPTS, script), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=ENV, cwd=SCRIPTS,
    )
    res, raw = [], []
    try:
        async with asyncio.timeout(T):
            while True:
                ln = await p.stdout.readline()
                if not ln:
                    break
                raw.append(ln.decode(errors="replace"))
                if ln.startswith(b"J "):
                    d = json.loads(ln[2:])
                    res.append(d)
                    if lines:
                        await lines(d)
            err = await p.stderr.read()
            rc = await p.wait()
    finally:
        if p.returncode is None:
            p.kill()
            await p.wait()
    assert rc == 0, "".join(raw) + err.decode(errors="replace")
    return res


def ev(res, name):
    return [r for r in res if r.get("ev") == name]


def port_of(server):
    return server.sockets[0].getsockname()[1]


async def echo(ws):
    async for m in ws:
        await ws.send(m)


# ---- websockets-backed behaviour ------------------------------------------


def test_echo_text_binary_all_length_encodings():
    seen = {}

    async def handler(ws):
        seen["headers"] = dict(ws.request.headers)
        seen["path"] = ws.request.path
        try:
            await echo(ws)
        finally:
            seen["close"] = (ws.close_code, ws.close_reason)

    async def go():
        async with serve(handler, "127.0.0.1", 0, max_size=2**20) as s:
            return await mpy("ws_client.py", "echo", "ws://127.0.0.1:%d/xiaozhi/v1/?a=1&b=%%20" % port_of(s))

    res = asyncio.run(go())
    assert ev(res, "msg")[0]["text"] == "héllo 小智"
    bins = ev(res, "bin")
    assert [b["n"] for b in bins] == [0, 1, 125, 126, 1920, 65535, 65536, 70000]
    assert all(b["ok"] and b["len"] == b["n"] for b in bins), bins
    assert ev(res, "bytes")[0]["ok"] and ev(res, "bigtext")[0]["ok"]
    assert ev(res, "closed")[0]["dropped"] == 0
    h = seen["headers"]
    assert h["device-id"] == "cc:ba:97:04:92:94" and h["protocol-version"] == "1"
    assert h["authorization"] == "Bearer t0k"
    assert h["host"] == "127.0.0.1:%s" % h["host"].split(":")[1]
    assert h["sec-websocket-version"] == "13" and len(base64.b64decode(h["sec-websocket-key"])) == 16
    assert seen["path"] == "/xiaozhi/v1/?a=1&b=%20"
    # websockets enforces masking (it would have closed with 1002) and got our CLOSE.
    assert seen["close"] == (1000, "done")


def test_server_fragments_pings_and_close():
    got = {}

    async def handler(ws):
        await ws.send(["frag", "men", "ted"])  # text in 3 frames
        await ws.send([b"\x01" * 40000, b"\x02" * 30000])  # 70000 bytes, 64-bit total
        # ping() resolves only when the client's PONG (same payload) arrives
        waiter = await ws.ping(b"are-you-there")
        got["latency"] = await asyncio.wait_for(waiter, T)
        await ws.send("echo-me")
        got["echoed"] = await ws.recv()
        await ws.close(4000, "server bye")

    async def go():
        async with serve(handler, "127.0.0.1", 0) as s:
            return await mpy("ws_client.py", "read", "ws://127.0.0.1:%d/" % port_of(s))

    res = asyncio.run(go())
    msgs = ev(res, "msg")
    assert msgs[0] == {"ev": "msg", "op": 1, "len": 10, "text": "fragmented"}
    assert msgs[1]["op"] == 2 and msgs[1]["len"] == 70000
    s = 0
    for b in b"\x01" * 40000 + b"\x02" * 30000:
        s = (s * 31 + b) & 0xFFFFFF
    assert msgs[1]["sum"] == s
    assert [m.get("text") for m in msgs[2:]] == ["echo-me"]  # the PING never surfaced
    assert got["echoed"] == "echoed" and got["latency"] >= 0
    assert ev(res, "closed") == [{"ev": "closed", "code": 4000, "reason": "server bye"}]


@pytest.mark.parametrize("reader", ["0", "1"])
def test_client_close_handshake(reader):
    seen = {}

    async def handler(ws):
        try:
            await echo(ws)
        finally:
            seen["close"] = (ws.close_code, ws.close_reason)

    async def go():
        async with serve(handler, "127.0.0.1", 0) as s:
            return await mpy("ws_client.py", "client_close", "ws://127.0.0.1:%d/" % port_of(s),
                             "reader=" + reader)

    res = asyncio.run(go())
    assert seen["close"] == (4001, "client says bye")
    assert ev(res, "closed") == [{"ev": "closed", "open": False}]
    assert ev(res, "late")[0]["code"] == 4001  # text after close raises WSClosed
    assert ev(res, "late_audio") == [{"ev": "late_audio", "queued": False}]  # audio never raises
    if reader == "1":
        # the blocked reader learns about the close with the peer's echo
        assert ev(res, "reader") == [{"ev": "reader", "code": 4001, "reason": "client says bye"}]
        # a second reader is refused in words, not by an asyncio assertion
        assert ev(res, "second_reader") == [{"ev": "second_reader", "msg": "another task is already receiving"}]


def test_oversize_message_is_skipped_and_the_session_stays():
    # A 64 KB message to a client with a 16 KB buffer: read through and
    # dropped, the app told (with the message's head), the connection open.
    seen = {}
    big = '{"type":"mcp","payload":{"id":7,"x":"' + "y" * 65536 + '"}}'

    async def handler(ws):
        await ws.send(big)
        await ws.send(b"\x05" * 16384)  # exactly the limit: delivered
        await ws.send("echo-me")
        seen["echo"] = await ws.recv()  # the client still answers
        await ws.close(4000, "server bye")

    async def go():
        async with serve(handler, "127.0.0.1", 0, max_size=2**20) as s:
            return await mpy("ws_client.py", "read", "ws://127.0.0.1:%d/" % port_of(s), "max=16384")

    res = asyncio.run(go())
    assert ev(res, "oversize") == [{"ev": "oversize", "op": 1, "size": len(big), "kept": 16384,
                                    "head": big[:40]}]
    msgs = ev(res, "msg")
    assert [(m["op"], m["len"]) for m in msgs] == [(2, 16384), (1, 7)]
    assert seen["echo"] == "echoed"
    assert ev(res, "closed") == [{"ev": "closed", "code": 4000, "reason": "server bye"}]
    assert ev(res, "error") == []


def test_oversize_fragmented_message_is_skipped_between_control_frames():
    async def script(r, w):
        await upgrade(r, w)
        w.write(frame(1, b"a" * 600, fin=False) + frame(9, b"p") + frame(0, b"b" * 600, fin=False)
                + frame(0, b"c" * 300) + frame(1, b"echo-me"))
        await w.drain()
        pong = await read_frame(r)
        echoed = await read_frame(r)
        w.write(frame(8, struct.pack(">H", 1000)))
        await w.drain()
        return pong, echoed, await read_frame(r)

    res, (pong, echoed, close) = run_raw(script, "read", "max=1000")
    assert ev(res, "oversize") == [{"ev": "oversize", "op": 1, "size": 1500, "kept": 1000, "head": "a" * 40}]
    assert [m["text"] for m in ev(res, "msg")] == ["echo-me"]
    assert pong == (1, 10, b"p") and echoed == (1, 1, b"echoed") and close[1] == 8


def test_ping_counts_pongs():
    async def script(r, w):
        await upgrade(r, w)
        pings = [await read_frame(r) for _ in range(2)]
        w.write(frame(10, b"k1") + frame(10) + frame(1, b"both answered"))
        await w.drain()
        return pings

    res, pings = run_raw(script, "ping")
    assert pings == [(1, 9, b"k1"), (1, 9, b"")]
    assert ev(res, "bad_ping") == [{"ev": "bad_ping", "msg": "ping payload over 125 bytes"}]
    msg = ev(res, "msg")[0]
    assert msg["pongs"] == 2 and msg["has_last_pong"] and msg["text"] == "both answered"
    assert ev(res, "late_ping") == [{"ev": "late_ping", "code": 1000}]


def test_handshake_rejected_401():
    def process_request(connection, request):
        assert request.headers["Authorization"] == "Bearer t0k"
        return connection.respond(http.HTTPStatus.UNAUTHORIZED, "bad token\n")

    async def go():
        async with serve(echo, "127.0.0.1", 0, process_request=process_request) as s:
            return await mpy("ws_client.py", "connect", "ws://127.0.0.1:%d/" % port_of(s))

    res = asyncio.run(go())
    assert res == [{"ev": "error", "cls": "WSError", "msg": "handshake refused: HTTP/1.1 401 Unauthorized"}]


# ---- raw servers ------------------------------------------------------------


def accept_of(key):
    return base64.b64encode(hashlib.sha1(key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()


async def read_head(r):
    head = await r.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    h = {ln.split(":", 1)[0].lower(): ln.split(":", 1)[1].strip() for ln in lines[1:] if ":" in ln}
    return h


async def read_frame(r):
    """One client frame: (fin, op, payload). Asserts it is masked."""
    b0, b1 = await r.readexactly(2)
    assert b1 & 0x80, "client frame not masked"
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack(">H", await r.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", await r.readexactly(8))[0]
    key = await r.readexactly(4)
    p = bytearray(await r.readexactly(n))
    for i in range(n):
        p[i] ^= key[i & 3]
    return b0 >> 7, b0 & 0x0F, bytes(p)


def frame(op, payload=b"", fin=True, rsv=0, mask=None):
    n = len(payload)
    b0 = (0x80 if fin else 0) | rsv | op
    m = 0x80 if mask else 0
    if n < 126:
        h = bytes([b0, m | n])
    elif n < 65536:
        h = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        h = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if mask:
        payload = bytes(c ^ mask[i & 3] for i, c in enumerate(payload))
        h += mask
    return h + payload


async def rest(r):
    """What the client sends until it hangs up (a reset counts as hanging up:
    the client closed with our unread reply in its buffer)."""
    try:
        return await r.read()
    except ConnectionResetError:
        return b""


async def raw_server(script):
    """Start a raw TCP server whose connection handler is `script(r, w)`."""
    done = asyncio.get_running_loop().create_future()

    async def handle(r, w):
        try:
            done.set_result(await script(r, w))
        except Exception as e:  # surface server-side failures in the test
            if not done.done():
                done.set_exception(e)
        finally:
            w.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    return srv, done


async def upgrade(r, w, accept=None):
    h = await read_head(r)
    acc = accept or accept_of(h["sec-websocket-key"])
    w.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + acc.encode() + b"\r\n\r\n")
    await w.drain()
    return h


def run_raw(script, scenario, *args):
    async def go():
        srv, done = await raw_server(script)
        async with srv:
            res = await mpy("ws_client.py", scenario, "ws://127.0.0.1:%d/" % port_of(srv), *args)
            return res, await asyncio.wait_for(done, T)

    return asyncio.run(go())


def test_wrong_accept_refused():
    async def script(r, w):
        await upgrade(r, w, accept=accept_of("not-the-key"))
        return await rest(r)  # client must hang up without sending frames

    res, after = run_raw(script, "connect")
    assert res == [{"ev": "error", "cls": "WSError", "msg": "handshake: wrong Sec-WebSocket-Accept"}]
    assert after == b""


def test_handshake_timeout_and_garbage_and_huge_head():
    async def silent(r, w):
        await read_head(r)
        return await rest(r)

    res, _ = run_raw(silent, "connect", "timeout=300")
    assert res[0]["msg"] == "connect to 127.0.0.1:%s timed out after 300 ms" % res[0]["msg"].split(":")[1].split()[0]

    async def garbage(r, w):
        await read_head(r)
        w.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        return await rest(r)

    res, _ = run_raw(garbage, "connect")
    assert res[0]["msg"] == "handshake refused: SSH-2.0-OpenSSH_9.6"

    async def huge(r, w):
        await read_head(r)
        w.write(b"HTTP/1.1 101 OK\r\n" + b"X: " + b"y" * 5000 + b"\r\n\r\n")
        return await rest(r)

    res, _ = run_raw(huge, "connect")
    assert res[0]["msg"] == "handshake response head over 4096 bytes"

    async def eof(r, w):
        await read_head(r)

    res, _ = run_raw(eof, "connect")
    assert res[0]["msg"] == "connection closed during handshake"


def test_connection_refused_is_a_clear_error():
    async def go():
        srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = port_of(srv)
        srv.close()
        await srv.wait_closed()
        return await mpy("ws_client.py", "connect", "ws://127.0.0.1:%d/" % port), port

    res, port = asyncio.run(go())
    assert res[0]["msg"].startswith("connect to 127.0.0.1:%d failed: OSError" % port), res


MISSING_CA = "wss to %s: certificate checks need a CA certificate (the device has no CA bundle) or verify off"


def test_bad_url_and_missing_ca_are_clear_errors():
    async def go():
        a = await mpy("ws_client.py", "connect", "http://127.0.0.1/")
        b = await mpy("ws_client.py", "connect", "wss://127.0.0.1:1/")
        return a, b

    a, b = asyncio.run(go())
    assert a[0]["msg"] == "bad WebSocket URL (need ws:// or wss://): http://127.0.0.1/"
    assert b[0]["msg"] == MISSING_CA % "127.0.0.1"


def test_frames_after_101_in_same_segment_and_interleaved_ping():
    async def script(r, w):
        h = await read_head(r)
        w.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept_of(h["sec-websocket-key"]).encode() + b"\r\n\r\n"
                + frame(1, b"first")  # same write as the head
                + frame(2, b"ab", fin=False) + frame(9, b"p1") + frame(0, b"cd", fin=False)
                + frame(10, b"unsolicited") + frame(0, b"ef") + frame(8, b"\x03\xe8"))
        await w.drain()
        frames = [await read_frame(r) for _ in range(2)]
        return frames

    res, frames = run_raw(script, "read")
    msgs = ev(res, "msg")
    assert msgs[0]["text"] == "first" and msgs[1]["len"] == 6
    assert frames[0] == (1, 10, b"p1")  # PONG with the PING's payload
    assert frames[1] == (1, 8, b"\x03\xe8")  # CLOSE echoes the code
    assert ev(res, "closed") == [{"ev": "closed", "code": 1000, "reason": ""}]


@pytest.mark.parametrize(
    "bad, msg",
    [
        (frame(1, b"x", rsv=0x40), "reserved bits set"),
        (frame(3, b"x"), "unknown opcode 3"),
        (frame(1, b"x", mask=b"abcd"), "masked frame from server"),
        (frame(0, b"x"), "continuation without a message"),
        (frame(9, b"x", fin=False), "fragmented control frame"),
        (frame(9, b"x" * 126), "control frame too long"),
        (frame(1, b"a", fin=False) + frame(1, b"b"), "new message inside a fragmented one"),
        (frame(8, b"\x03"), "close frame with 1-byte payload"),
    ],
)
def test_protocol_violations_close_1002(bad, msg):
    async def script(r, w):
        await upgrade(r, w)
        w.write(bad)
        await w.drain()
        return await read_frame(r)

    res, fr = run_raw(script, "read")
    assert ev(res, "error") == [{"ev": "error", "msg": msg}]
    assert ev(res, "after") == [{"ev": "after", "code": 1002, "reason": msg}]
    assert fr == (1, 8, struct.pack(">H", 1002) + msg.encode())


def test_recv_cancelled_mid_frame_resumes():
    data = bytes(range(256)) * 20
    f = frame(2, data)

    async def script(r, w):
        await upgrade(r, w)
        assert await read_frame(r) == (1, 1, b"start")
        w.write(f[:3000])  # header and part of the payload
        await w.drain()
        more = await read_frame(r)  # sent only after the client's recv timed out
        w.write(f[3000:])
        await w.drain()
        return more, await read_frame(r)

    res, (more, close) = run_raw(script, "cancel")
    assert more == (1, 1, b"more")
    assert ev(res, "timeout")[0]["rx_age_ms"] < 30000  # last_rx moved when the bytes came
    s = 0
    for b in data:
        s = (s * 31 + b) & 0xFFFFFF
    assert ev(res, "msg") == [{"ev": "msg", "op": 2, "len": len(data), "sum": s}]
    assert close[1] == 8


def test_eof_mid_frame_is_connection_lost():
    async def script(r, w):
        await upgrade(r, w)
        w.write(frame(2, b"z" * 1000)[:500])
        await w.drain()

    res, _ = run_raw(script, "read")
    assert ev(res, "closed") == [{"ev": "closed", "code": None, "reason": "connection lost"}]


def test_one_websocket_reconnects_and_hangs_up_each_time():
    # The firmware keeps one WebSocket for the device's life. Each close must
    # hang up its TCP connection itself (not leave the socket to the garbage
    # collector) and the next connect must start clean. The server echoes
    # CLOSE but leaves hanging up to the client.
    async def go():
        first_hung_up = asyncio.get_running_loop().create_future()
        seen = []

        async def handle(r, w):
            n = len(seen)
            got = []
            seen.append(got)
            try:
                await upgrade(r, w)
                got.append(await read_frame(r))
                if n == 0:
                    reply = b"first"
                else:
                    try:
                        await asyncio.wait_for(asyncio.shield(first_hung_up), 3)
                        reply = b"first connection hung up"
                    except asyncio.TimeoutError:
                        reply = b"first connection still open"
                w.write(frame(1, reply))
                await w.drain()
                got.append(await read_frame(r))  # the client's CLOSE
                w.write(frame(8, got[-1][2]))
                await w.drain()
                got.append(await rest(r))  # nothing more, then the hang-up
                if n == 0:
                    first_hung_up.set_result(True)
            finally:
                w.close()

        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with srv:
            res = await mpy("ws_client.py", "reconnect", "ws://127.0.0.1:%d/" % port_of(srv))
        return res, seen

    res, seen = asyncio.run(go())
    assert [m["text"] for m in ev(res, "msg")] == ["first", "first connection hung up"]
    assert ev(res, "handshake_reloaded") == [{"ev": "handshake_reloaded", "again": True}]
    closed = ev(res, "closed")
    assert [c["open"] for c in closed] == [False, False]
    # each close ends with the echo, well inside close()'s 2000 ms bound;
    # one CLOSE per connection, even from two close() calls at once
    assert all(c["ms"] < 1000 for c in closed), closed
    assert seen == [
        [(1, 1, b"hello 0"), (1, 8, struct.pack(">H", 4000)), b""],
        [(1, 1, b"hello 1"), (1, 8, struct.pack(">H", 4001)), b""],
    ]


def test_reader_cut_off_by_close_timeout_gets_wsclosed_despite_quick_reconnect():
    async def go():
        conns = []

        async def handle(r, w):
            conns.append(w)
            try:
                await upgrade(r, w)
                if len(conns) == 1:
                    await read_frame(r)  # the CLOSE, never answered
                    return await rest(r)
                w.write(frame(1, (await read_frame(r))[2]))  # echo the text
                await w.drain()
                await read_frame(r)
                w.write(frame(8, struct.pack(">H", 1000)))
                await w.drain()
                await rest(r)
            finally:
                w.close()

        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with srv:
            return await mpy("ws_client.py", "reconnect_after_timeout", "ws://127.0.0.1:%d/" % port_of(srv))

    res = asyncio.run(go())
    assert ev(res, "reader") == [{"ev": "reader", "cls": "WSClosed", "msg": "closed (4000): "}]
    assert ev(res, "msg") == [{"ev": "msg", "op": 1, "len": 6, "text": "second"}]


def test_audio_drops_oldest_under_congestion_control_still_arrives():
    # websockets stops reading the socket once max_queue messages wait
    # unread, so TCP back-pressure reaches the client's writer.
    resume = asyncio.Event()
    got = []

    async def handler(ws):
        await resume.wait()
        async for m in ws:
            got.append(m)
            if m == "marker":
                await ws.send("end")

    async def go():
        async def on_line(d):
            if d["ev"] == "congested":
                resume.set()

        async with serve(handler, "127.0.0.1", 0, max_queue=4, max_size=2**20) as s:
            return await mpy("ws_client.py", "congest", "ws://127.0.0.1:%d/" % port_of(s),
                             "slots=8", "slot=4096", "size=4096", lines=on_line)

    res = asyncio.run(go())
    done = ev(res, "done")[0]
    assert "marker" in got
    seqs = [m[0] << 8 | m[1] for m in got if isinstance(m, bytes)]
    sent = done["sent"]
    # in order, no duplicates, nothing invented; exactly the dropped ones are missing
    assert seqs == sorted(set(seqs)) and all(0 <= q < sent for q in seqs)
    assert len(seqs) + done["dropped"] == sent and done["dropped"] >= 24
    # the newest frames (queued when the marker was sent) are never the ones dropped
    assert seqs[-8:] == list(range(sent - 8, sent))
    # control before queued audio: the marker overtook frames sent before it
    mi = got.index("marker")
    assert any(isinstance(m, bytes) for m in got[mi + 1:])


def test_heap_lock_send_and_parse_allocate_nothing():
    res = asyncio.run(mpy("ws_heaplock.py", str(free_port())))
    pure, control, loop, writer, cost = res
    assert pure["err_put"] is None and pure["err_pop"] is None and pure["err_parse"] is None, pure
    assert pure["put_kept"] is False and pure["dropped"] == 2 and pure["queued"] == 4
    assert pure["parsed"] == [2, 1920, 2, 1920] and pure["payload_ok"] and pure["frame_ok"]
    assert control == {"control": "MemoryError"}  # the harness does catch allocations
    # recv_loop(): buffered frames reach the handler with no coroutine, tuple or view each.
    assert loop == {"recv_loop_warm": None, "recv_loop": None, "delivered": [4, 1000]}, loop
    # The writer task takes and writes 20 queued frames under the lock (an
    # allocation there would kill the task: fewer writes).
    assert writer["writer"] == {"err": None, "writes": 4 + 20, "open": True, "writer_alive": True}, writer
    # On a real socket what recv_loop() still allocates per message is
    # asyncio's own per wait (a poller entry and Stream.readinto's generator,
    # about 200 bytes on the unix port); recv() adds a coroutine, a tuple and
    # a view on top.
    c = cost["socket_bytes_per_msg"]
    assert c["recv_loop"] <= 256 and c["recv"] - c["recv_loop"] >= 256, c


# ---- TLS ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def ca(cn):
        k = ec.generate_private_key(ec.SECP256R1())
        c = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
             .public_key(k.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
             .sign(k, hashes.SHA256()))
        return k, c

    ca_key, ca_cert = ca("xz test CA")
    _, other_cert = ca("xz other CA")
    k = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name("localhost")).issuer_name(ca_cert.subject)
            .public_key(k.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {}
    for nm, c in (("ca", ca_cert), ("other", other_cert)):
        paths[nm] = str(d / (nm + ".der"))
        with open(paths[nm], "wb") as f:
            f.write(c.public_bytes(serialization.Encoding.DER))
    paths["ca_pem"] = str(d / "ca.pem")
    with open(paths["ca_pem"], "wb") as f:
        f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["crt"] = str(d / "srv.pem")
    paths["key"] = str(d / "srv.key")
    with open(paths["crt"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["key"], "wb") as f:
        f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()))
    return paths


def run_tls(pki, host, *args):
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["crt"], pki["key"])

    async def go():
        async with serve(echo, "127.0.0.1", 0, ssl=ctx) as s:
            return await mpy("ws_client.py", "connect", "wss://%s:%d/" % (host, port_of(s)), *args)

    return asyncio.run(go())


def test_wss_accepted_with_the_right_ca(pki):
    res = run_tls(pki, "localhost", "ca=" + pki["ca"])
    assert res == [{"ev": "connected"}, {"ev": "msg", "op": 1, "len": 2, "text": "hi"}]
    res = run_tls(pki, "localhost", "ca=" + pki["ca_pem"])  # PEM is accepted too
    assert res[0] == {"ev": "connected"}


def test_wss_refused_without_ca_other_ca_or_wrong_host(pki):
    assert run_tls(pki, "localhost")[0]["msg"] == MISSING_CA % "localhost"
    other = run_tls(pki, "localhost", "ca=" + pki["other"])[0]
    assert other["ev"] == "error" and other["msg"].startswith("connect to localhost:"), other
    assert "not correctly signed by the trusted CA" in other["msg"], other
    wrong = run_tls(pki, "127.0.0.1", "ca=" + pki["ca"])[0]
    assert wrong["ev"] == "error" and "does not match" in wrong["msg"], wrong


def test_wss_verify_false_is_an_explicit_opt_in(pki):
    res = run_tls(pki, "127.0.0.1", "verify=0")
    assert res[0] == {"ev": "connected"} and res[1]["text"] == "hi"
