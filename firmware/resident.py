# Forget modules that only some moments need, so their bytecode and tables do
# not stay in the heap during a turn (tools/bench/heap.py reports what keeping
# them would cost):
#   BOOT_ONLY     the Wi-Fi portal, captive DNS, OTA check and activation, the
#                 NTP clock set, the HTTP client: dropped at the end of boot.
#   CONNECT_ONLY  the channel's open: the WebSocket handshake (URL, TLS
#                 context, upgrade; HANDSHAKE_ONLY, dropped as soon as the
#                 socket is open) and the hellos. The channel drops them after
#                 each open; boot too, since its HTTPS loads tlsctx.
# A dropped module is loaded again by its next import (the next open, or the
# MCP tool that builds the OTA body); it only stops staying resident. So a
# module listed here keeps no state of its own, and no resident module binds
# its names at import time, or dropping it would free nothing.
import gc
import sys

BOOT_ONLY = ("firmware.startup", "firmware.ota", "firmware.ntp", "firmware.portal", "firmware.portal_page",
             "firmware.captive_dns", "httpclient")
HANDSHAKE_ONLY = ("wshandshake", "tlsctx")
CONNECT_ONLY = ("firmware.channel_open", "firmware.hello") + HANDSHAKE_ONLY


def drop(names):
    """Remove names from sys.modules and from their package, then collect."""
    for name in names:
        if sys.modules.pop(name, None) is None:
            continue
        pkg, _, attr = name.rpartition(".")
        parent = sys.modules.get(pkg) if pkg else None
        if parent is not None and attr in parent.__dict__:
            delattr(parent, attr)  # `import firmware.x` also binds it on the package
    gc.collect()
