# What stays in the heap during a turn. Two kinds of module do not:
# - BOOT_ONLY: what only boot needs (Wi-Fi portal, captive DNS, OTA check and
#   activation, the NTP clock set, the HTTP client); drop() forgets them once
#   boot is done. tools/bench/heap.py reports what keeping them would cost.
# - ON_DEMAND: helpers a resident module loads for one call with call() (the
#   config's checks and its file: firmware/config.py), dropped after it.
# A dropped module is loaded again by its next import (the MCP tool that
# builds the OTA body does that); it only stops staying resident.
import gc
import sys

BOOT_ONLY = ("firmware.startup", "firmware.ota", "firmware.ntp", "firmware.portal", "firmware.portal_page",
             "firmware.captive_dns", "httpclient")
ON_DEMAND = ("firmware.config_schema", "firmware.config_file")


def drop(names=BOOT_ONLY + ON_DEMAND):
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
        gc.collect()


def call(module, fn, *args):
    """module.fn(*args), with module loaded for this call only: every
    ON_DEMAND module the call loads is dropped when it returns or raises. One
    loaded before it (boot imports the config's checks outright) stays until
    drop()."""
    before = [n for n in ON_DEMAND if n in sys.modules]
    __import__(module)
    try:
        return getattr(sys.modules[module], fn)(*args)
    finally:
        drop([n for n in ON_DEMAND if n not in before])
