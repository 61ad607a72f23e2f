# MCP server cost on the MicroPython unix port: time and heap allocated per
# request, for the stock server's sequence with a 40-tool registry.
#   .venv/bin/micropython -X heapsize=256k tools/bench/mcp_bench.py
# (sys.path is set up below, so it runs from the repo root as-is.)
import gc
import sys
import time

sys.path.insert(0, ".")
sys.path.insert(0, "lib")

from firmware import log  # noqa: E402
from firmware.mcp import McpServer, dumps  # noqa: E402
from firmware.mcp_tools import Bool, Int, Registry, Str  # noqa: E402

log.level = log.ERROR
N = 200


def registry():
    r = Registry()
    state = {"volume": 70}
    r.add("self.get_device_status", "Get device status", lambda: {"audio_speaker": {"volume": state["volume"]}})

    def set_volume(volume):
        state["volume"] = volume
        return True

    r.add("self.audio_speaker.set_volume", "Set volume", set_volume, (Int("volume", 0, 100),))
    for i in range(38):
        r.add("self.extra.tool_%02d" % i, "Extra tool %d. " % i + "Does nothing. " * 30,
              lambda **kw: True, (Int("level", 0, 10, default=3), Str("label", "x"), Bool("flag")))
    return r


def measure(name, fn):
    fn()  # warm up
    # Heap allocated by one request: with collections off, mem_alloc only grows.
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    fn()
    alloc = gc.mem_alloc() - a0
    gc.enable()
    # Time per request, garbage collection included (it is part of the cost).
    gc.collect()
    t0 = time.ticks_us()
    for _ in range(N):
        fn()
    dt = time.ticks_diff(time.ticks_us(), t0)
    print("%-30s %8.1f us/req %8d B/req" % (name, dt / N, alloc))


def main():
    s = McpServer(registry(), "bench", "0.1.0")
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "capabilities": {"vision": {"url": "http://h:8003/mcp/vision/explain", "token": "t"}}}}
    status = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "self.get_device_status"}}
    vol = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
           "params": {"name": "self.audio_speaker.set_volume", "arguments": {"volume": 40}}}
    bad = {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
           "params": {"name": "self.audio_speaker.set_volume", "arguments": {"volume": 400}}}

    def list_all():
        req = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        pages = 0
        while True:
            res = s.handle_sync(req)["result"]
            pages += 1
            if "nextCursor" not in res:
                return pages
            req = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"cursor": res["nextCursor"]}}

    pages = list_all()
    print("%d tools, %d tools/list pages" % (len(s.registry), pages))
    # One page as the protocol layer sends it: the reply, its JSON text, its bytes.
    first = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    for limit in (8000, 2048):
        paged = McpServer(registry(), "bench", "0.1.0", page_bytes=limit)
        measure("tools/list one %d-byte page sent" % limit, lambda p=paged: dumps(p.handle_sync(first)).encode())
    measure("initialize", lambda: s.handle_sync(init))
    measure("tools/list (all %d pages)" % pages, list_all)
    measure("tools/call get_device_status", lambda: s.handle_sync(status))
    measure("tools/call set_volume", lambda: s.handle_sync(vol))
    measure("tools/call bad argument", lambda: s.handle_sync(bad))


main()
