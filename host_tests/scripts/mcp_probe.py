# Runs the firmware like main.py and reports which MCP modules
# (firmware/resident.py MCP) are loaded at two moments, as "probe" events:
#   {"at": "speaker"}         each time the speaker starts (a reply begins)
#   {"at": "mcp", "id": N}    as each MCP reply is handed to the channel
# each with "loaded": the MCP module names then in sys.modules.
#   micropython mcp_probe.py   (in a device directory with config.json, sim.json)
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


def mcp(self, reply):
    log.event("probe", {"at": "mcp", "id": reply.get("id"), "loaded": _loaded()})
    return _mcp(self, reply)


sim_hal.Speaker.start = start
WebSocketChannel.mcp = mcp
sys.exit(app.main())
