# What stays in the heap during a turn. These modules do not: their bytecode
# and tables are forgotten once the moment that needs them has passed
# (tools/bench/heap.py reports what keeping the boot ones would cost).
#   BOOT_ONLY     the Wi-Fi portal, captive DNS, OTA check and activation, the
#                 NTP clock set, the HTTP client: dropped at the end of boot.
#   CONNECT_ONLY  the channel's open: the WebSocket handshake (URL, TLS
#                 context, upgrade; HANDSHAKE_ONLY, dropped as soon as the
#                 socket is open) and the hellos. The channel drops them after
#                 each open; boot too, since its HTTPS loads tlsctx.
#   ON_DEMAND     helpers a resident module loads for one call with call() (the
#                 config's checks and its file: firmware/config.py).
#   MCP           the MCP server and what it loads, dropped by the app
#                 (firmware/app.py _mcp) as soon as no MCP message is in flight.
# A dropped module is loaded again by its next import (the next open, the MCP
# tool that builds the OTA body); it only stops staying resident. So a module
# listed here keeps no state of its own, and no resident module binds its
# names at import time, or dropping it would free nothing.
import gc
import sys

BOOT_ONLY = ("firmware.startup", "firmware.ota", "firmware.ntp", "firmware.portal", "firmware.portal_page",
             "firmware.captive_dns", "httpclient")
HANDSHAKE_ONLY = ("wshandshake", "tlsctx")
CONNECT_ONLY = ("firmware.channel_open", "firmware.hello") + HANDSHAKE_ONLY
ON_DEMAND = ("firmware.config_schema", "firmware.config_file")
# With the server: the user's user_tools.py (it imports mcp_tools, whose classes
# must come from the same load), the board's lamp tools, and the OTA body
# builder self.get_system_info imports back (firmware.ota and its httpclient).
MCP = ("firmware.mcp", "firmware.mcp_call", "firmware.mcp_tools", "firmware.default_tools", "user_tools",
       "firmware.boards.lamp", "firmware.ota", "httpclient")


def drop(names):
    """Remove names from sys.modules and from their package, then collect."""
    dropped = False
    for name in names:
        if sys.modules.pop(name, None) is None:
            continue
        dropped = True
        pkg, _, attr = name.rpartition(".")
        parent = sys.modules.get(pkg) if pkg else None
        if parent is not None and attr in parent.__dict__:
            delattr(parent, attr)  # `import firmware.x` also binds it on the package
    if dropped:
        collect()


def _scrub(n):
    return _scrub(n - 1) if n else 0


def collect():
    """gc.collect() that frees what was just dropped.

    The collector keeps whatever any word it scans points at, the C stack's
    included, and a word left over from the calls that used a module can
    keep the module after its drop. Which word survives changes with the
    build directory's path (the heap bench, docs/benchmarks.md "Sixth pass"):
    with plain gc.collect() calls (here and in app.py bring_up) the adpcm
    turn lost an MCP reply at 160 KB in 10 of 10 directories sampled, with
    this in none. Python frames go
    over that region first: this call and a short recursion (~3 KB on x64,
    less on the chip's 16 KB task stack). It is a measured mitigation, not a
    proof: the budget test (host_tests/test_heap_bench.py) is the tripwire."""
    try:
        _scrub(8)
    except RuntimeError:  # the recursion guard, on a stack already this deep: overwritten as far as it went
        pass
    gc.collect()


def call(module, fn, *args):
    """module.fn(*args), with module loaded for this call only: every
    ON_DEMAND module the call loads is dropped when it returns or raises. One
    loaded before it (boot imports the config's checks outright) stays until
    boot's drop()."""
    before = [n for n in ON_DEMAND if n in sys.modules]
    __import__(module)
    try:
        return getattr(sys.modules[module], fn)(*args)
    finally:
        drop([n for n in ON_DEMAND if n not in before])
