# MCP server cost on the MicroPython unix port: time and heap allocated per
# request through the firmware's own path, `await McpServer.handle(payload,
# size)` as firmware/app.py calls it, on the firmware's default tools
# (firmware/default_tools.py) with the sim HAL and a real Config, plus 38
# extra tools so tools/list pages as on a busy device.
#   .venv/bin/micropython -X heapsize=256k tools/bench/mcp_bench.py
# Run from the repo root; it works in a temp device directory it makes.
import asyncio
import gc
import json
import os
import sys
import time

ROOT = os.getcwd()
sys.path.insert(0, ROOT)
sys.path.insert(0, ROOT + "/lib")

WORK = "/tmp/xz-mcp-bench-%d" % time.ticks_us()
os.mkdir(WORK)
with open(WORK + "/sim.json", "w") as f:
    json.dump({"mic": ROOT + "/tools/assets/weather_en_16k.wav", "out": WORK + "/reply.wav"}, f)
os.chdir(WORK)  # the sim HAL reads sim.json, the config lives here

from firmware import VERSION, boards, config, default_tools, dsp, hal, log, mcp, mcp_tools  # noqa: E402
from firmware.mcp_tools import Bool, Int, Str  # noqa: E402

log.level = log.ERROR
N = 200


class Player:
    # What the app (the player in default_tools.Context) does on set_volume.
    gain = 0

    def set_volume(self, volume):
        self.gain = dsp.volume_gain(volume)


def server():
    # As Device._mcp_server() builds it.
    board = boards.load("sim")
    cfg = config.load(WORK + "/config.json")
    registry = mcp_tools.Registry()
    ctx = default_tools.Context(hal.load(board), cfg, Player(), lambda: None, VERSION)
    default_tools.register_defaults(registry, ctx)
    log.events = False  # the sim HAL turns on event lines for tools.sim; a board has them off
    for i in range(38):
        registry.add("self.extra.tool_%02d" % i, "Extra tool %d. " % i + "Does nothing. " * 30,
                     lambda **kw: True, (Int("level", 0, 10, default=3), Str("label", "x"), Bool("flag")))
    return mcp.McpServer(registry, board.NAME, VERSION, mcp.listing(registry))  # the app lists from boot's text


async def measure(name, fn):
    await fn()  # warm up
    # Heap allocated by one request: with collections off, mem_alloc only grows.
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    await fn()
    alloc = gc.mem_alloc() - a0
    gc.enable()
    # Time per request, garbage collection included (it is part of the cost).
    gc.collect()
    t0 = time.ticks_us()
    for _ in range(N):
        await fn()
    dt = time.ticks_diff(time.ticks_us(), t0)
    print("%-30s %8.1f us/req %8d B/req" % (name, dt / N, alloc))


def request(rid, method, params=None):
    # The payload as the app hands it over: parsed, with its frame's size.
    msg = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        msg["params"] = params
    return msg, len(json.dumps(msg))


async def main():
    s = server()
    init = request(1, "initialize", {"capabilities": {"vision": {"url": "http://h:8003/mcp/vision/explain",
                                                                 "token": "t"}}})
    status = request(1, "tools/call", {"name": "self.get_device_status"})
    vol = request(2, "tools/call", {"name": "self.audio_speaker.set_volume", "arguments": {"volume": 40}})
    bad = request(3, "tools/call", {"name": "self.audio_speaker.set_volume", "arguments": {"volume": 400}})

    async def call(req):
        return await s.handle(req[0], req[1])

    async def list_all():
        req = request(2, "tools/list")
        pages = 0
        while True:
            page = await call(req)
            pages += 1
            # The cursor from the page's tail, so the client's parse is not counted as the server's cost.
            key = ',"nextCursor":'
            at = page.rfind(key)
            if at < 0:
                return pages
            req = request(2, "tools/list", {"cursor": json.loads(page[at + len(key):-2])})

    print("%d tools, %d tools/list pages, through McpServer.handle()" % (len(s.registry()), await list_all()))
    # One tools/list page as the protocol layer sends it: the reply's JSON text, then its bytes.
    first = request(2, "tools/list")
    default_page = s.page_bytes

    async def one_page():
        return (await call(first)).encode()

    for limit in (8000, default_page):  # the reference's page size, and ours
        s.page_bytes = limit
        await measure("tools/list one %d-byte page sent" % limit, one_page)
    s.page_bytes = default_page
    await measure("initialize", lambda: call(init))
    await measure("tools/list (all pages)", list_all)
    await measure("tools/call get_device_status", lambda: call(status))
    await measure("tools/call set_volume (saves)", lambda: call(vol))
    await measure("tools/call bad argument", lambda: call(bad))


try:
    asyncio.run(main())
finally:
    for name in os.listdir(WORK):
        os.remove(WORK + "/" + name)
    os.rmdir(WORK)
