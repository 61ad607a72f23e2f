# tools/call for firmware/mcp.py's McpServer: checks the call, runs the tool
# and shapes what it returned, or how it failed, as MCP's result. A module of
# its own because only a call needs it, and with the tools loaded anyway
# (firmware/app.py _mcp_tools): initialize, ping and tools/list, which come
# during the session's first seconds, load firmware/mcp.py alone.
#
# A tool that raises does not get a JSON-RPC error but a normal result with
# isError true (MCP's rule: tool failures are results the model can read).
# The text goes in content[0].text and also in result.error, because that is
# the key the stock server reports for isError results.
from firmware import log
from firmware.mcp import INVALID_PARAMS, dumps, nbytes
from firmware.mcp_tools import ArgError, ToolError

_TAG = "mcp"


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


class Pending:
    """An `async def` tool's coroutine, started by start() and awaited by the
    server's handle(), so the socket reader goes on meanwhile."""

    def __init__(self, server, rid, name, coro):
        self.server = server
        self.rid = rid
        self.name = name
        self.coro = coro

    async def reply(self):
        try:
            value = await self.coro
        except Exception as e:  # noqa: BLE001 - a failing tool must never end the session
            return raised(self.server, self.rid, self.name, e)
        return finish(self.server, self.rid, self.name, value)

    def refuse(self):
        """The reply for a caller that cannot await (handle_sync)."""
        self.coro.close()
        return failed(self.server, self.rid, self.name, "%s is an async tool; the app must await handle()" % self.name)


def start(server, rid, params):
    """The reply to a tools/call, or a Pending for an `async def` tool."""
    if params is None:
        return server.error(rid, INVALID_PARAMS, "Missing params")
    name = params.get("name")
    if not isinstance(name, str):
        return server.error(rid, INVALID_PARAMS, "Missing name")
    args = params.get("arguments")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        msg = "Invalid arguments: expected an object, got %s" % type(args).__name__
        return server.error(rid, INVALID_PARAMS, msg)
    tool = server.registry().get(name)
    if tool is None:
        return server.error(rid, INVALID_PARAMS, "Unknown tool: %s" % name)
    try:
        kw = tool.bind(args)
    except ArgError as e:
        return server.error(rid, INVALID_PARAMS, "%s: %s" % (name, e))
    try:
        value = tool.fn(**kw)
    except Exception as e:  # noqa: BLE001 - a failing tool must never end the session
        return raised(server, rid, name, e)
    if hasattr(value, "send"):  # an `async def` tool: a coroutine on both runtimes
        return Pending(server, rid, name, value)
    return finish(server, rid, name, value)


def finish(server, rid, name, value):
    try:
        text = result_text(value)
    except Exception as e:  # noqa: BLE001 - e.g. a dict holding something JSON cannot encode
        return raised(server, rid, name, e)
    n = nbytes(text)
    if n > server.max_result:
        return failed(server, rid, name, "Result too large: %d bytes (limit %d)" % (n, server.max_result))
    log.event("mcp_call", {"id": rid, "tool": name, "ok": True})
    return server.result(rid, {"content": [{"type": "text", "text": text}], "isError": False})


def raised(server, rid, name, e):
    if isinstance(e, ToolError):
        return failed(server, rid, name, str(e))
    msg = str(e)
    return failed(server, rid, name, "%s: %s" % (type(e).__name__, msg) if msg else type(e).__name__)


def failed(server, rid, name, text):
    log.warn(_TAG, "tool %s: %s" % (name, text))
    log.event("mcp_call", {"id": rid, "tool": name, "ok": False, "error": text})
    return server.result(rid, {"content": [{"type": "text", "text": text}], "isError": True, "error": text})
