# mcp: the JSON-RPC 2.0 server. Runs under micropython and CPython.
import json

from firmware.mcp import McpServer, dumps, listing
from firmware.mcp_call import result_text
from firmware.mcp_tools import Bool, Int, Registry, Str, ToolError

VISION = {"url": "http://127.0.0.1:8003/mcp/vision/explain", "token": "eyJhbGciOiJIUzI1NiJ9.x.y"}


def _server(**kw):
    r = Registry()
    state = {"volume": 70}

    @r.tool("self.get_device_status", "Get device status")
    def status():
        return {"volume": state["volume"], "tool": "self.get_device_status"}

    @r.tool("self.audio_speaker.set_volume", "Set volume", Int("volume", 0, 100))
    def set_volume(volume):
        state["volume"] = volume
        return True

    return McpServer(r, "example-device", "0.0.1", **kw), r, state


def _parse(reply):
    # Replies are the JSON text sent; None when no reply is due.
    assert reply is None or isinstance(reply, str), reply
    return None if reply is None else json.loads(reply)


async def _h(s, payload, size=0):
    """Both entry points must give the same reply for sync tools."""
    a = await s.handle(payload, size)
    b = s.handle_sync(payload, size)
    assert a == b, (a, b)
    return _parse(a)


def _err(reply, rid, code, *words):
    assert reply["jsonrpc"] == "2.0" and reply["id"] == rid and "result" not in reply, reply
    assert reply["error"]["code"] == code, reply
    for w in words:
        assert w in reply["error"]["message"], (w, reply)
    return reply["error"]["message"]


def _ok(reply, rid):
    assert reply["jsonrpc"] == "2.0" and reply["id"] == rid and "error" not in reply, reply
    return reply["result"]


def _text(reply, rid, is_error=False):
    res = _ok(reply, rid)
    assert res["isError"] is is_error, reply
    assert len(res["content"]) == 1 and res["content"][0]["type"] == "text", reply
    return res["content"][0]["text"]


async def test_stock_server_sequence():
    # stock-server.md §11: initialize (with vision) -> tools/list (id 2) -> tools/call reusing id 1.
    s, _, state = _server()
    state["volume"] = 42
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05",
        "capabilities": {"roots": {"listChanged": True}, "sampling": {}, "vision": VISION},
        "clientInfo": {"name": "XiaozhiClient", "version": "1.0.0"}}}
    assert await _h(s, init) == {"jsonrpc": "2.0", "id": 1, "result": {
        "protocolVersion": "2024-11-05", "capabilities": {"tools": {}},
        "serverInfo": {"name": "example-device", "version": "0.0.1"}}}
    assert s.vision == VISION

    lst = await _h(s, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    assert lst == {"jsonrpc": "2.0", "id": 2, "result": {"tools": [
        {"name": "self.get_device_status", "description": "Get device status",
         "inputSchema": {"type": "object", "properties": {}}},
        {"name": "self.audio_speaker.set_volume", "description": "Set volume",
         "inputSchema": {"type": "object", "properties": {"volume": {"type": "integer", "minimum": 0, "maximum": 100}},
                         "required": ["volume"]}}]}}

    call = await _h(s, {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": {"name": "self.get_device_status", "arguments": {}}})
    assert json.loads(_text(call, 1)) == {"volume": 42, "tool": "self.get_device_status"}
    # and the same id once more: never deduplicated
    call = await _h(s, {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": {"name": "self.audio_speaker.set_volume", "arguments": {"volume": 10}}})
    assert _text(call, 1) == "true" and state["volume"] == 10


async def test_the_tools_are_made_at_the_first_request_that_needs_them():
    made = []

    def tools():
        made.append(1)
        return _server()[1]

    s = McpServer(tools, "example-device", "0.0.1")
    assert (await _h(s, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}))["result"]
    assert (await _h(s, {"jsonrpc": "2.0", "id": 2, "method": "ping"}))["result"] == {}
    assert await _h(s, {"jsonrpc": "2.0", "method": "notifications/initialized"}) is None
    assert made == []  # none of those needs the tools
    page = (await _h(s, {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))["result"]
    assert [t["name"] for t in page["tools"]] == ["self.get_device_status", "self.audio_speaker.set_volume"]
    call = {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "self.get_device_status"}}
    assert not (await _h(s, call))["result"]["isError"]
    assert made == [1]  # made once, then kept


async def test_a_server_given_the_listing_lists_without_the_tools():
    # As the app runs it: the entries made at boot, the tools made at a tools/call only.
    made = []
    reg = _server()[1]

    def tools():
        made.append(1)
        return reg

    s = McpServer(tools, "example-device", "0.0.1", listing(reg))
    second = {"cursor": "self.audio_speaker.set_volume"}
    for req in ({"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                {"jsonrpc": "2.0", "id": "p", "method": "tools/list", "params": second}):
        a = await s.handle(req)
        assert a == McpServer(reg, "example-device", "0.0.1").handle_sync(req)  # the same text as from the tools
        assert _parse(a)["id"] == req["id"]
    assert made == []
    call = {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "self.get_device_status"}}
    assert not (await _h(s, call))["result"]["isError"]
    assert made == [1]
    names = [e[:2] for e in listing(reg)]
    assert names == [("self.get_device_status", False), ("self.audio_speaker.set_volume", False)]
    name, _, text, size = listing(reg)[1]
    assert json.loads(text)["inputSchema"]["properties"]["volume"] == {"type": "integer", "minimum": 0, "maximum": 100}
    assert size == len(text.encode())


async def test_raw_text_payloads():
    s, _, _ = _server()
    text = '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"self.get_device_status"}}'
    for raw in (text, text.encode(), memoryview(text.encode())):
        assert _ok(await _h(s, raw), 7)["isError"] is False
    assert await _h(s, "{not json") is None
    assert await _h(s, b"\xff\xfe") is None


async def test_ids_are_echoed_unchanged():
    s, _, _ = _server()
    for rid in (0, 5, -3, 2 ** 40, 1.5, "abc", "", "中文"):
        reply = await _h(s, {"jsonrpc": "2.0", "id": rid, "method": "ping"})
        assert reply == {"jsonrpc": "2.0", "id": rid, "result": {}}, reply
        assert type(reply["id"]) is type(rid)
    # ids that cannot be echoed to the stock server (which int()s them) get no reply
    for rid in (None, True, [1], {"a": 1}):
        assert await _h(s, {"jsonrpc": "2.0", "id": rid, "method": "ping"}) is None


async def test_notifications_and_responses_are_ignored():
    s, _, _ = _server()
    assert await _h(s, {"jsonrpc": "2.0", "method": "notifications/initialized"}) is None
    assert await _h(s, {"jsonrpc": "2.0", "id": 3, "method": "notifications/cancelled"}) is None
    assert await _h(s, {"jsonrpc": "2.0", "method": "tools/list"}) is None  # no id: a notification
    assert await _h(s, {"jsonrpc": "2.0", "id": 3, "result": {}}) is None
    assert await _h(s, {"jsonrpc": "2.0", "id": 3, "error": {"message": "x"}}) is None
    assert await _h(s, [{"jsonrpc": "2.0", "id": 1, "method": "ping"}]) is None  # batch
    assert await _h(s, "42") is None
    assert await _h(s, {}) is None


async def test_invalid_requests():
    s, _, _ = _server()
    _err(await _h(s, {"id": 1, "method": "ping"}), 1, -32600, "jsonrpc")
    _err(await _h(s, {"jsonrpc": "1.0", "id": 1, "method": "ping"}), 1, -32600, "jsonrpc")
    _err(await _h(s, {"jsonrpc": "2.0", "id": 1}), 1, -32600, "method")
    _err(await _h(s, {"jsonrpc": "2.0", "id": 1, "method": 5}), 1, -32600, "method")
    _err(await _h(s, {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": [1]}), 1, -32602, "params")
    msg = _err(await _h(s, {"jsonrpc": "2.0", "id": "q", "method": "resources/list"}), "q", -32601)
    assert msg == "Method not implemented: resources/list"


async def test_oversized_requests_are_refused():
    s, _, state = _server(max_request=1000)
    big = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
           "params": {"name": "self.audio_speaker.set_volume", "arguments": {"volume": 1, "pad": "x" * 2000}}}
    # parsed by the protocol layer, which passes the frame size: refused by id, tool not run
    _err(await _h(s, big, 65000), 9, -32600, "too large", "65000", "1000")
    assert state["volume"] == 70
    # raw text over the limit is not even parsed, so there is no id to answer
    assert await _h(s, dumps(big)) is None
    assert state["volume"] == 70
    # and the server still works afterwards
    ok = {"jsonrpc": "2.0", "id": 10, "method": "tools/call",
          "params": {"name": "self.audio_speaker.set_volume", "arguments": {"volume": 3}}}
    assert _text(await _h(s, ok, 900), 10) == "true"
    assert state["volume"] == 3


async def test_initialize_variants():
    s, _, _ = _server()
    res = _ok(await _h(s, {"jsonrpc": "2.0", "id": "i", "method": "initialize"}), "i")
    assert res["protocolVersion"] == "2024-11-05" and res["capabilities"] == {"tools": {}}
    assert s.vision is None
    # a vision entry without a url is not kept; a token is optional
    await _h(s, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                 "params": {"capabilities": {"vision": {"token": "t"}}}})
    assert s.vision is None
    await _h(s, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {"vision": {"url": "http://v"}}}})
    assert s.vision == {"url": "http://v", "token": ""}


async def test_call_errors_name_the_problem():
    s, _, state = _server()

    def call(params, rid=1):
        return _h(s, {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params})

    assert _err(await _h(s, {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}), 1, -32602) == "Missing params"
    assert _err(await call({}), 1, -32602) == "Missing name"
    assert _err(await call({"name": 3}), 1, -32602) == "Missing name"
    _err(await call({"name": "self.get_device_status", "arguments": [1]}), 1, -32602, "Invalid arguments")
    assert _err(await call({"name": "self.nope"}), 1, -32602) == "Unknown tool: self.nope"
    sv = "self.audio_speaker.set_volume"
    _err(await call({"name": sv}), 1, -32602, sv, "Missing valid argument: volume")
    _err(await call({"name": sv, "arguments": {"volume": "loud"}}), 1, -32602, "volume", "expected integer", "string")
    _err(await call({"name": sv, "arguments": {"volume": 101}}), 1, -32602, "Value exceeds maximum allowed: 100")
    _err(await call({"name": sv, "arguments": {"volume": -1}}), 1, -32602, "Value is below minimum allowed: 0")
    assert state["volume"] == 70  # nothing above reached the tool


async def test_failing_tools_return_is_error_and_session_goes_on():
    r = Registry()

    @r.tool("t.value_error", "")
    def ve():
        raise ValueError("volume knob stuck")

    @r.tool("t.tool_error", "")
    def te():
        raise ToolError("Lamp is unplugged")

    @r.tool("t.oserror", "")
    def oe():
        raise OSError(5)

    @r.tool("t.memory", "")
    def me():
        raise MemoryError()

    @r.tool("t.huge", "")
    def huge():
        return "x" * 5000

    s = McpServer(r, "n", "v", max_result=4096)
    for name, want in (("t.value_error", "ValueError: volume knob stuck"), ("t.tool_error", "Lamp is unplugged"),
                       ("t.oserror", "OSError: "), ("t.memory", "MemoryError"),
                       ("t.huge", "Result too large: 5000 bytes (limit 4096)")):
        reply = await _h(s, {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": name}})
        text = _text(reply, 4, is_error=True)
        if name == "t.oserror":  # MicroPython says "[Errno 5] EIO", CPython "5"
            assert text.startswith(want) and "5" in text, text
        else:
            assert text == want, reply
        assert reply["result"]["error"] == text  # the key the stock server reads for isError
    assert _ok(await _h(s, {"jsonrpc": "2.0", "id": 5, "method": "ping"}), 5) == {}


async def test_async_tools_and_result_text():
    import asyncio

    r = Registry()

    @r.tool("t.slow", "", Str("word"), Bool("loud", False))
    async def slow(word, loud):
        await asyncio.sleep_ms(1) if hasattr(asyncio, "sleep_ms") else await asyncio.sleep(0.001)
        return word.upper() if loud else word

    @r.tool("t.bad_async", "")
    async def bad():
        raise RuntimeError("no camera")

    s = McpServer(r, "n", "v")
    req = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
           "params": {"name": "t.slow", "arguments": {"word": "hi", "loud": True}}}
    assert _text(_parse(await s.handle(req)), 1) == "HI"
    # the sync entry point cannot await: it says so instead of hanging or crashing
    assert _text(_parse(s.handle_sync(req)), 1, True) == "t.slow is an async tool; the app must await handle()"
    reply = await s.handle({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "t.bad_async"}})
    assert _text(_parse(reply), 1, True) == "RuntimeError: no camera"
    # arguments are still checked before an async tool starts
    req["params"]["arguments"] = {"word": 5}
    _err(_parse(await s.handle(req)), 1, -32602, "word", "expected string")
    assert result_text(True) == "true" and result_text(False) == "false" and result_text(None) == "true"
    assert result_text(12) == "12" and result_text("中") == "中"
    assert result_text({"a": [1, 2]}) == '{"a":[1,2]}'


def _many_tools(n, user_every=0, desc=None):
    r = Registry()
    for i in range(n):
        d = desc(i) if desc else "Tool number %d. " % i + "Explains what it does. " * (i % 7 + 3)
        params = (Int("level", 0, 100 + i, default=i % 50), Str("label", "n%d" % i), Bool("flag"))
        r.add("self.tool_%03d" % i, d, lambda **kw: True, params,
              user_only=bool(user_every) and i % user_every == 0)
    return r


async def _pages(s, with_user=None, rid=2):
    pages = []
    params = {}
    while True:
        if with_user is not None:
            params["withUserTools"] = with_user
        req = {"jsonrpc": "2.0", "id": rid, "method": "tools/list"}
        if params:
            req["params"] = params
        reply = await _h(s, req)
        res = _ok(reply, rid)
        pages.append((len(dumps(reply).encode()), res["tools"]))
        assert len(pages) < 100
        if "nextCursor" not in res:
            return pages
        params = {"cursor": res["nextCursor"]}


async def test_list_pages_stay_under_8000_bytes():
    r = _many_tools(60, user_every=5)
    s = McpServer(r, "n", "v")
    for with_user in (None, False, True):
        pages = await _pages(s, with_user)
        names = [t["name"] for _, ts in pages for t in ts]
        assert names == [t.name for t in r.listed(with_user is True)], names
        assert len(pages) >= 3, len(pages)
        for size, tools in pages:
            assert size <= 8000, size
            assert tools
    # user-only tools are listed last, with their annotation
    all_names = [t["name"] for _, ts in await _pages(s, True) for t in ts]
    assert all_names[-12:] == ["self.tool_%03d" % i for i in range(0, 60, 5)]


async def test_list_pages_are_full_and_exact_for_every_limit():
    # Multi-byte descriptions: the limit is in bytes, not characters.
    r = _many_tools(25, desc=lambda i: "调节灯光亮度 " * (i % 5 + 1))
    for limit in range(700, 2600, 37):
        s = McpServer(r, "n", "v", page_bytes=limit)
        pages = await _pages(s, True, rid="page-id")
        names = [t["name"] for _, ts in pages for t in ts]
        assert names == ["self.tool_%03d" % i for i in range(25)]
        for k, (size, _tools) in enumerate(pages):
            assert size <= limit, (limit, size)
            if k + 1 < len(pages):
                # full: the next tool would not have fitted (with its own cursor kept back)
                nxt = pages[k + 1][1][0]
                assert size + len(dumps(nxt).encode()) + 1 > limit - 40, (limit, size)


async def test_list_params_errors():
    s = McpServer(_many_tools(3), "n", "v")
    _err(await _h(s, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"cursor": "self.gone"}}),
         2, -32602, "Unknown cursor: self.gone")
    _err(await _h(s, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"cursor": 3}}), 2, -32602, "cursor")
    _err(await _h(s, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"withUserTools": "yes"}}),
         2, -32602, "withUserTools")
    # a cursor in the middle starts there
    mid = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"cursor": "self.tool_001"}}
    res = _ok(await _h(s, mid), 2)
    assert [t["name"] for t in res["tools"]] == ["self.tool_001", "self.tool_002"] and "nextCursor" not in res
    # a tool that can never fit is an error, not an endless loop of empty pages
    s = McpServer(_many_tools(3, desc=lambda i: "x" * (3000 if i == 1 else 10)), "n", "v", page_bytes=2000)
    res = _ok(await _h(s, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}), 2)
    assert res["nextCursor"] == "self.tool_001"
    _err(await _h(s, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"cursor": "self.tool_001"}}),
         2, -32603, "self.tool_001", "does not fit")
    # an empty registry lists nothing
    empty = McpServer(Registry(), "n", "v")
    assert _ok(await _h(empty, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}), 2) == {"tools": []}
