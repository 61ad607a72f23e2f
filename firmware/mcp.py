# MCP server (JSON-RPC 2.0) for the xiaozhi "mcp" message (docs/protocol.md §8). The
# device is the server; the xiaozhi server is the client. Pure: no sockets, no
# hardware. The protocol layer does, for each {"type":"mcp","payload":P}:
#
#   reply = await server.handle(P, size)   # run it in its own task: a tool may be slow
#   reply = server.handle_sync(P, size)    # for sync callers; refuses `async def` tools
#   if reply is not None: send {"session_id":S,"type":"mcp","payload":<reply>}
#
# P is the parsed payload dict (or its raw JSON text/bytes); size is the byte
# length of the frame it came in, so oversized requests are refused by id.
# The reply is compact JSON text: a tools/list page is spliced from each tool's
# entry as text (listing()), which the app makes once at boot, so listing needs
# neither the tools nor their schemas as dicts.
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
# - tools/call is in firmware/mcp_call.py, loaded only for a call: initialize,
#   ping and tools/list need this module alone.
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


def nbytes(s):
    # Sizes are on-the-wire bytes; MicroPython's len(str) counts characters.
    return len(s.encode())


def _text(reply):
    # A reply dict as the JSON text sent; a tools/list page is text already.
    return reply if reply is None or isinstance(reply, str) else dumps(reply)


def _valid_id(rid):
    t = type(rid)
    return t is int or t is str or t is float


def listing(registry):
    """Every tool's tools/list entry, in listing order (user-only last):
    (name, user_only, entry as JSON text, its size in bytes). The app makes it
    once while the heap is free and keeps only this text (firmware/app.py)."""
    out = []
    for t in registry.listed(True):
        text = dumps(t.schema())
        out.append((t.name, t.user_only, text, nbytes(text)))
    return tuple(out)


class McpServer:
    def __init__(self, registry, server_name, version, entries=None, max_request=8192, page_bytes=2048,
                 max_result=16384):
        # registry: the tools (a firmware.mcp_tools.Registry), or a function
        # that makes them, called at the first tools/call (or tools/list when
        # entries is None): the device's tools are ~60% of what an MCP load
        # costs, and nothing else needs them (firmware/app.py _mcp_tools).
        # entries: listing(registry) made earlier, or None to list from the
        # registry itself.
        self._registry = registry
        self._entries = entries
        self.server_name = server_name
        self.version = version
        # Largest request accepted. Real requests are a few hundred bytes; a
        # bigger one is a bug or an attack, and its arguments would be copied
        # into the tool and its reply.
        self.max_request = max_request
        # tools/list reply limit. The reference pages at 8000 bytes; a page is
        # held as text, then framed as bytes while it is sent, so a page costs
        # a few times its size at once. 2 KB keeps that small, and the stock
        # server follows nextCursor, so only the number of round trips changes
        # (tools/bench/mcp_bench.py measures both).
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
        """Handle one JSON-RPC message; return the reply as compact JSON text, or None when none is due.

        payload is the parsed "payload" member, or its raw JSON as str/bytes.
        size is the byte length of the frame it came in (0 = unknown); raw
        payloads are measured here. Never raises for anything the peer sends.
        `async def` tools are awaited, so the caller should run this in its own
        task to keep the socket reader going meanwhile.
        """
        out = self._handle(payload, size)
        if out is not None and not isinstance(out, (dict, str)):
            out = await out.reply()  # an `async def` tool (firmware/mcp_call.py Pending)
        return _text(out)

    def handle_sync(self, payload, size=0):
        """handle() for callers that cannot await. An `async def` tool gets an
        error reply naming it instead of running."""
        out = self._handle(payload, size)
        if out is not None and not isinstance(out, (dict, str)):
            out = out.refuse()
        return _text(out)

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
            return self.error(rid, INVALID_REQUEST, msg)
        if payload.get("jsonrpc") != "2.0":
            return self.error(rid, INVALID_REQUEST, 'Invalid request: jsonrpc must be "2.0"')
        if not isinstance(method, str):
            return self.error(rid, INVALID_REQUEST, "Invalid request: method must be a string")
        params = payload.get("params")
        if params is not None and not isinstance(params, dict):
            return self.error(rid, INVALID_PARAMS, "Invalid params: params must be an object")

        if method == "tools/call":
            from firmware import mcp_call

            return mcp_call.start(self, rid, params)
        if method == "tools/list":
            return self._list(rid, params or {})
        if method == "initialize":
            return self._initialize(rid, params or {})
        if method == "ping":
            return self.result(rid, {})
        log.warn(_TAG, "unknown method %s" % method)
        return self.error(rid, METHOD_NOT_FOUND, "Method not implemented: %s" % method)

    # -- replies ---------------------------------------------------------

    def result(self, rid, result):
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    def error(self, rid, code, message):
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
        return self.result(rid, {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {"tools": {}},
            "serverInfo": {"name": self.server_name, "version": self.version},
        })

    def _list(self, rid, params):
        cursor = params.get("cursor", "")
        if cursor is None:
            cursor = ""
        if not isinstance(cursor, str):
            return self.error(rid, INVALID_PARAMS, "Invalid params: cursor must be a string")
        with_user = params.get("withUserTools", False)
        if with_user is None:
            with_user = False
        if type(with_user) is not bool:
            return self.error(rid, INVALID_PARAMS, "Invalid params: withUserTools must be a boolean")
        tools = self._entries
        if tools is None:
            tools = listing(self.registry())
        if not with_user:
            tools = [t for t in tools if not t[1]]
        n = len(tools)
        i = 0
        if cursor:
            while i < n and tools[i][0] != cursor:
                i += 1
            if i == n:
                return self.error(rid, INVALID_PARAMS, "Unknown cursor: %s" % cursor)

        # Fill the page while the whole reply stays within page_bytes. Its size
        # is summed from its parts (each entry's size is in the listing), and
        # room for a nextCursor naming the following tool is kept back, so the
        # finished page never needs a second pass.
        head = '{"jsonrpc":"2.0","id":%s,"result":{"tools":[' % dumps(rid)
        used = nbytes(head) + 3  # ]}}
        start = i
        while i < n:
            cost = tools[i][3] + (1 if i > start else 0)  # the comma before it
            tail = len(',"nextCursor":') + nbytes(dumps(tools[i + 1][0])) if i + 1 < n else 0
            if used + cost + tail > self.page_bytes:
                break
            used += cost
            i += 1
        if i < n and i == start:
            msg = "Tool %s does not fit in a %d-byte page" % (tools[i][0], self.page_bytes)
            return self.error(rid, INTERNAL_ERROR, msg)
        nxt = tools[i][0] if i < n else None
        log.event("mcp_list", {"id": rid, "from": start, "count": i - start, "next": nxt})
        # Joined once: the page exists as one string, never as parts and a copy.
        parts = [head]
        for k in range(start, i):
            if k > start:
                parts.append(",")
            parts.append(tools[k][2])
        parts.append("]}}" if nxt is None else '],"nextCursor":%s}}' % dumps(nxt))
        return "".join(parts)
