# A stand-in device for the boot tests: runs firmware.startup.bring_up under
# micropython with the sim Wi-Fi from sim.json, then (optionally) supervises
# Wi-Fi while reading "wifi ..." control lines on stdin. Run in a working dir
# holding config.json and sim.json, with MICROPYPATH=<repo>:<repo>/lib.
import os
import sys

try:
    import asyncio
except ImportError:  # pragma: no cover
    import uasyncio as asyncio
import json

from firmware import clock, config, log, startup, state
from firmware.hal import sim_wlan


class _Button:
    def __init__(self, held):
        self.held = held

    def pressed(self):
        return self.held


class Hal:
    def __init__(self, sim):
        self._mac = b"\x02\x11\x22\x33\xab\xcd"
        self.wlan, self.ap = sim_wlan.build(sim, self._mac)
        self.button = _Button(sim.get("button_held", False))

    def mac(self):
        return self._mac

    def random_bytes(self, n):
        return os.urandom(n)

    def led(self, on):
        pass

    def sysinfo(self):
        return {"chip": "unix", "flash_size": 8388608, "free_heap": 123456, "mac": self._mac, "board": "sim"}


async def _stdin(hal):
    r = asyncio.StreamReader(sys.stdin)
    while True:
        line = await r.readline()
        if not line:
            return
        line = line.decode().strip()
        if line.startswith("wifi ") and hal.wlan:
            hal.wlan.control(line[5:])
        elif line == "quit":
            sys.exit(0)


async def main():
    with open("sim.json") as f:
        sim = json.load(f)
    clock.speed = sim.get("clock_speed", 1)
    log.events = True
    hal = Hal(sim)
    cfg = config.load("config.json")
    m = state.Machine()
    out = await startup.bring_up(cfg, hal, m)
    wifi = out.pop("wifi")
    # Secrets are never printed: the event says whether there is a token.
    out["ws_token"] = "***" if out["ws_token"] else ""
    log.event("ready", out)
    if sim.get("supervise") and wifi:
        asyncio.create_task(wifi.supervise())
        await _stdin(hal)


asyncio.run(main())
