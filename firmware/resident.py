# Forget the modules only boot needs (Wi-Fi portal, captive DNS, OTA check and
# activation, the HTTP client), so their bytecode and tables do not stay in the
# heap during a turn: tools/bench/heap.py reports what keeping them would cost.
# A dropped module is loaded again by its next import (the MCP tool that
# builds the OTA body does that); it only stops staying resident.
import gc
import sys

BOOT_ONLY = ("firmware.startup", "firmware.ota", "firmware.portal", "firmware.portal_page",
             "firmware.captive_dns", "http")


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
