# MCP server (JSON-RPC 2.0) for the xiaozhi "mcp" message (docs/protocol.md §8). The
# device is the server; the xiaozhi server is the client. Pure: no sockets, no
# hardware. The protocol layer does, for each {"type":"mcp","payload":P}:
#
#   reply = await server.handle(P, size)   # run it in its own task: a tool may be slow
#   reply = server.handle_sync(P, size)    # for sync callers; refuses `async def` tools
#   if reply is not None: send {"session_id":S,"type":"mcp","payload":reply}
#
# P is the parsed payload dict (or its raw JSON text/bytes); size is the byte
# length of the frame it came in, so oversized requests are refused by id.
#
# Compatibility notes, from the reference device and the stock server:
# - Ids may be numbers or strings and are echoed unchanged. The stock server's
#   first tools/call reuses id 1 (the initialize id), so requests are never
#   deduplicated by id.
# - Nothing is ever sent with id null: the stock server does int(id) on every
#   reply, so a null id would raise there. Requests whose id is missing or
#   unusable (notifications, batches, unparsable text) get no reply; they are
#   logged instead.
# - Error replies carry both "code" and "message". JSON-RPC 2.0 requires the
#   code; the reference omits it, and the stock server reads only "message",
#   so adding it costs nothing and lets generic clients tell kinds apart.
# - A tool that raises does not get a JSON-RPC error but a normal result with
#   isError true (MCP's rule: tool failures are results the model can read).
#   The text goes in content[0].text and also in result.error, because that
#   is the key the stock server reports for isError results.
try:
    import json
except ImportError:  # pragma: no cover
    import ujson as json

from firmware import log

PROTOCOL_VERSION = "2024-11-05"

# JSON-RPC 2.0 error codes.
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

_TAG = "mcp"


def dumps(obj):
    """Compact JSON, as the protocol layer sends it (so page sizes are exact)."""
    try:
        return json.dumps(obj, separators=(",", ":"))
    except TypeError:  # pragma: no cover - ports without separators: spaced, so an upper bound
        return json.dumps(obj)


def _nbytes(s):
    # Sizes are on-the-wire bytes; MicroPython's len(str) counts characters.
    return len(s.encode())


def _valid_id(rid):
    t = type(rid)
    return t is int or t is str or t is float


def result_text(value):
    """A tool's return value as the reference's text: bool -> true/false, dict -> compact JSON."""
    if value is None or value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        return dumps(value)
    return str(value)


class _Pending:
    """An async tool's coroutine, started by _call and awaited by handle()."""

    def __init__(self, rid, name, coro):
        self.rid = rid
        self.name = name
        self.coro = coro


class McpServer:
    def __init__(self, registry, server_name, version, max_request=8192, page_bytes=2048, max_result=16384):
        # registry: the tools (a firmware.mcp_tools.Registry), or a function
        # that makes them, called at the first tools/list or tools/call: the
        # device's tools are ~60% of what an MCP load costs, and initialize,
        # ping and notifications do not need them (firmware/app.py _mcp_tools).
        self._registry = registry
        self.server_name = server_name
        self.version = version
        # Largest request accepted. Real requests are a few hundred bytes; a
        # bigger one is a bug or an attack, and its arguments would be copied
        # into the tool and its reply.
        self.max_request = max_request
        # tools/list reply limit. The reference pages at 8000 bytes; a page is
        # held as dicts, then as JSON text, then as bytes while it is sent, so
        # 8000 bytes of tools cost ~25 KB at once. 2 KB pages keep that under
        # 8 KB, and the stock server follows nextCursor, so only the number of
        # round trips changes (tools/bench/mcp_bench.py measures both).
        self.page_bytes = page_bytes
        self.max_result = max_result  # tool result text limit, so a reply always fits a frame
        self.vision = None  # {"url":…, "token":…} from initialize, for camera tools
        self.client = None  # clientInfo from initialize, for logs

    def registry(self):
        """The tools, made now if this server was given a function for them."""
        r = self._registry
        if callable(r):
            r = self._registry = r()
        return r

    # -- entry point -----------------------------------------------------

    async def handle(self, payload, size=0):
        """Handle one JSON-RPC message; return the reply dict, or None when none is due.

        payload is the parsed "payload" member, or its raw JSON as str/bytes.
        size is the byte length of the frame it came in (0 = unknown); raw
        payloads are measured here. Never raises for anything the peer sends.
        `async def` tools are awaited, so the caller should run this in its own
        task to keep the socket reader going meanwhile.
        """
        out = self._handle(payload, size)
        if isinstance(out, _Pending):
            try:
                value = await out.coro
            except Exception as e:  # noqa: BLE001 - a failing tool must never end the session
                return self._raised(out.rid, out.name, e)
            return self._finish(out.rid, out.name, value)
        return out

    def handle_sync(self, payload, size=0):
        """handle() for callers that cannot await. An `async def` tool gets an
        error reply naming it instead of running."""
        out = self._handle(payload, size)
        if isinstance(out, _Pending):
            out.coro.close()
            return self._tool_failed(out.rid, out.name, "%s is an async tool; the app must await handle()" % out.name)
        return out

    def _handle(self, payload, size):
        if isinstance(payload, (str, bytes, bytearray, memoryview)):
            size = len(payload)
            if size > self.max_request:
                # Parsing it would allocate several times its size; with no
                # parse there is no id to answer to.
                log.warn(_TAG, "dropped a %d-byte request (limit %d) without parsing it" % (size, self.max_request))
                return None
            try:
                payload = json.loads(bytes(payload) if isinstance(payload, memoryview) else payload)
            except ValueError:
                log.warn(_TAG, "dropped a request that is not JSON")
                return None
        if not isinstance(payload, dict):
            log.warn(_TAG, "dropped a payload that is not a JSON object (batches are not supported)")
            return None

        method = payload.get("method")
        if isinstance(method, str) and method.startswith("notifications"):
            return None  # notifications/initialized, notifications/cancelled, …
        if "id" not in payload:
            if method is None:
                log.warn(_TAG, "dropped a message with neither method nor id")
            else:
                log.debug(_TAG, "ignored notification %r" % (method,))
            return None
        rid = payload["id"]
        if not _valid_id(rid):
            log.warn(_TAG, "dropped a request whose id is %r (needs a number or string)" % (rid,))
            return None
        if method is None and ("result" in payload or "error" in payload):
            return None  # a response to a request we never send

        if size > self.max_request:
            msg = "Request too large: %d bytes (limit %d)" % (size, self.max_request)
            return self._error(rid, INVALID_REQUEST, msg)
        if payload.get("jsonrpc") != "2.0":
            return self._error(rid, INVALID_REQUEST, 'Invalid request: jsonrpc must be "2.0"')
        if not isinstance(method, str):
            return self._error(rid, INVALID_REQUEST, "Invalid request: method must be a string")
        params = payload.get("params")
        if params is not None and not isinstance(params, dict):
            return self._error(rid, INVALID_PARAMS, "Invalid params: params must be an object")

        if method == "tools/call":
            return self._call(rid, params)
        if method == "tools/list":
            return self._list(rid, params or {})
        if method == "initialize":
            return self._initialize(rid, params or {})
        if method == "ping":
            return self._result(rid, {})
        log.warn(_TAG, "unknown method %s" % method)
        return self._error(rid, METHOD_NOT_FOUND, "Method not implemented: %s" % method)

    # -- replies ---------------------------------------------------------

    def _result(self, rid, result):
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    def _error(self, rid, code, message):
        log.event("mcp_error", {"id": rid, "code": code, "message": message})
        return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}

    # -- methods ---------------------------------------------------------

    def _initialize(self, rid, params):
        caps = params.get("capabilities")
        if isinstance(caps, dict):
            vision = caps.get("vision")
            if isinstance(vision, dict) and isinstance(vision.get("url"), str):
                token = vision.get("token")
                self.vision = {"url": vision["url"], "token": token if isinstance(token, str) else ""}
            elif vision is not None:
                log.warn(_TAG, "ignored capabilities.vision without a url string")
        client = params.get("clientInfo")
        if isinstance(client, dict):
            self.client = client
        log.info(_TAG, "initialize from %s (vision %s)" % (
            self.client.get("name", "?") if self.client else "?", "yes" if self.vision else "no"))
        log.event("mcp_init", {"id": rid, "vision": self.vision is not None})
        return self._result(rid, {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {"tools": {}},
            "serverInfo": {"name": self.server_name, "version": self.version},
        })

    def _list(self, rid, params):
        cursor = params.get("cursor", "")
        if cursor is None:
            cursor = ""
        if not isinstance(cursor, str):
            return self._error(rid, INVALID_PARAMS, "Invalid params: cursor must be a string")
        with_user = params.get("withUserTools", False)
        if with_user is None:
            with_user = False
        if type(with_user) is not bool:
            return self._error(rid, INVALID_PARAMS, "Invalid params: withUserTools must be a boolean")
        tools = self.registry().listed(with_user)
        n = len(tools)
        i = 0
        if cursor:
            while i < n and tools[i].name != cursor:
                i += 1
            if i == n:
                return self._error(rid, INVALID_PARAMS, "Unknown cursor: %s" % cursor)

        # Fill the page while the whole reply stays within page_bytes. The
        # reply's size is summed from its parts (each tool's entry is measured
        # once, its size kept on the Tool), and room for a nextCursor naming
        # the following tool is kept back, so the finished page never needs a
        # second pass.
        used = _nbytes(dumps(self._result(rid, {"tools": []})))
        cursor_key = _nbytes(dumps({"nextCursor": ""})) - 2  # "nextCursor":"" (no braces)
        sep = _nbytes(dumps([0, 0])) - 4  # the comma between items (and before nextCursor)
        page = []
        start = i
        while i < n:
            t = tools[i]
            if t.nbytes is None:
                # A tool's entry never changes: serialize it once, keep only its size.
                t.nbytes = _nbytes(dumps(t.schema()))
            cost = t.nbytes + (sep if page else 0)
            tail = 0
            if i + 1 < n:
                tail = cursor_key + _nbytes(dumps(tools[i + 1].name)) - 2 + sep
            if used + cost + tail > self.page_bytes:
                break
            page.append(t.schema())
            used += cost
            i += 1
        if i < n and not page:
            msg = "Tool %s does not fit in a %d-byte page" % (tools[i].name, self.page_bytes)
            return self._error(rid, INTERNAL_ERROR, msg)
        result = {"tools": page}
        if i < n:
            result["nextCursor"] = tools[i].name
        log.event("mcp_list", {"id": rid, "from": start, "count": len(page), "next": result.get("nextCursor")})
        return self._result(rid, result)

    def _call(self, rid, params):
        if params is None:
            return self._error(rid, INVALID_PARAMS, "Missing params")
        name = params.get("name")
        if not isinstance(name, str):
            return self._error(rid, INVALID_PARAMS, "Missing name")
        args = params.get("arguments")
        if args is None:
            args = {}
        if not isinstance(args, dict):
            msg = "Invalid arguments: expected an object, got %s" % type(args).__name__
            return self._error(rid, INVALID_PARAMS, msg)
        tool = self.registry().get(name)
        if tool is None:
            return self._error(rid, INVALID_PARAMS, "Unknown tool: %s" % name)
        from firmware.mcp_tools import ArgError  # loaded with the registry

        try:
            kw = tool.bind(args)
        except ArgError as e:
            return self._error(rid, INVALID_PARAMS, "%s: %s" % (name, e))
        try:
            value = tool.fn(**kw)
        except Exception as e:  # noqa: BLE001 - a failing tool must never end the session
            return self._raised(rid, name, e)
        if hasattr(value, "send"):  # an `async def` tool: a coroutine on both runtimes
            return _Pending(rid, name, value)
        return self._finish(rid, name, value)

    def _finish(self, rid, name, value):
        try:
            text = result_text(value)
        except Exception as e:  # noqa: BLE001 - e.g. a dict holding something JSON cannot encode
            return self._raised(rid, name, e)
        n = _nbytes(text)
        if n > self.max_result:
            return self._tool_failed(rid, name, "Result too large: %d bytes (limit %d)" % (n, self.max_result))
        log.event("mcp_call", {"id": rid, "tool": name, "ok": True})
        return self._result(rid, {"content": [{"type": "text", "text": text}], "isError": False})

    def _raised(self, rid, name, e):
        from firmware.mcp_tools import ToolError  # loaded with the registry

        if isinstance(e, ToolError):
            return self._tool_failed(rid, name, str(e))
        msg = str(e)
        return self._tool_failed(rid, name, "%s: %s" % (type(e).__name__, msg) if msg else type(e).__name__)

    def _tool_failed(self, rid, name, text):
        log.warn(_TAG, "tool %s: %s" % (name, text))
        log.event("mcp_call", {"id": rid, "tool": name, "ok": False, "error": text})
        return self._result(rid, {"content": [{"type": "text", "text": text}], "isError": True, "error": text})

