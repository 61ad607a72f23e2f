# Forget modules the session does not need resident, so their bytecode and
# tables do not stay in the heap during a turn:
# - BOOT_ONLY: what only boot needs (Wi-Fi portal, captive DNS, OTA check and
#   activation, the NTP clock set, the HTTP client), dropped once boot is done;
#   tools/bench/heap.py reports what keeping them would cost.
# - MCP: the MCP server and what it loads, dropped by the app (firmware/app.py
#   _mcp) as soon as no MCP message is in flight.
# A dropped module is loaded again by its next import; it only stops staying
# resident.
import gc
import sys

BOOT_ONLY = ("firmware.startup", "firmware.ota", "firmware.ntp", "firmware.portal", "firmware.portal_page",
             "firmware.captive_dns", "httpclient")

# With the server: the user's user_tools.py (it imports mcp_tools, whose classes
# must come from the same load), the board's lamp tools, and the OTA body
# builder self.get_system_info imports back (firmware.ota and its httpclient).
MCP = ("firmware.mcp", "firmware.mcp_tools", "firmware.default_tools", "user_tools", "firmware.boards.lamp",
       "firmware.ota", "httpclient")


def drop(names=BOOT_ONLY):
    """Remove names from sys.modules and from their package, then collect."""
    for name in names:
        if sys.modules.pop(name, None) is None:
            continue
        pkg, _, attr = name.rpartition(".")
        parent = sys.modules.get(pkg) if pkg else None
        if parent is not None and attr in parent.__dict__:
            delattr(parent, attr)  # `import firmware.x` also binds it on the package
    gc.collect()
