# Runs the firmware like main.py and reports which MCP modules
# (firmware/resident.py MCP) are loaded at two moments, as "probe" events:
#   {"at": "speaker"}         each time the speaker starts (a reply begins)
#   {"at": "mcp", "id": N}    as each MCP reply is handed to the channel
# each with "loaded": the MCP module names then in sys.modules.
# A file "mcp_oom" in the device directory makes the next load of the MCP
# tools fail with MemoryError (the file is removed), as a full heap would;
# XZ_LISTING_OOM=1 in the environment does that to boot's load for the listing.
#   micropython mcp_probe.py   (in a device directory with config.json, sim.json)
import os
import sys

from firmware import app, log, resident
from firmware.channel import WebSocketChannel
from firmware.hal import sim as sim_hal


def _loaded():
    return [m for m in resident.MCP if m in sys.modules]


_start = sim_hal.Speaker.start
_mcp = WebSocketChannel.mcp


def start(self):
    log.event("probe", {"at": "speaker", "loaded": _loaded()})
    return _start(self)


def mcp(self, reply, rid):
    log.event("probe", {"at": "mcp", "id": rid, "loaded": _loaded()})
    return _mcp(self, reply, rid)


_tools = app.Device._mcp_tools


def tools(self):
    if self.audio is None and os.getenv("XZ_LISTING_OOM"):  # boot's load: the session's parts are not made yet
        raise MemoryError("memory allocation failed, allocating 2048 bytes")
    try:
        os.remove("mcp_oom")
    except OSError:
        return _tools(self)
    raise MemoryError("memory allocation failed, allocating 2048 bytes")


sim_hal.Speaker.start = start
app.Device._mcp_tools = tools
WebSocketChannel.mcp = mcp
sys.exit(app.main())
