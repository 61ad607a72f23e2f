# mcp: tools/list pages are small by default (a page is held twice while it is
# sent: as text, then framed as bytes), and every default tool still fits one page.
import json

from firmware.mcp import McpServer
from firmware.mcp_tools import Registry, Str


def _registry(n):
    r = Registry()
    for i in range(n):
        r.add("self.tool_%02d" % i, "A tool that does nothing. " * 8, lambda label="": True, (Str("label", "x"),))
    return r


def test_default_page_is_2k_and_the_stock_loop_lists_everything():
    s = McpServer(_registry(40), "n", "v")
    assert s.page_bytes == 2048
    req = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    names = []
    pages = 0
    while True:
        reply = s.handle_sync(req)
        assert len(reply.encode()) <= 2048
        res = json.loads(reply)["result"]
        names += [t["name"] for t in res["tools"]]
        pages += 1
        if "nextCursor" not in res:
            break
        # As the stock server does: the same id 2 again, with the cursor.
        req = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"cursor": res["nextCursor"]}}
    assert names == ["self.tool_%02d" % i for i in range(40)] and pages > 5
