# A stand-in device for the boot tests: runs firmware.startup.bring_up under
# micropython on the real sim HAL (hal/sim.py with the sim Wi-Fi from
# sim.json), then (optionally) supervises Wi-Fi while the HAL takes control
# lines on stdin. Run in a working dir holding config.json and sim.json, with
# MICROPYPATH=.frozen:<repo>:<repo>/lib.
import asyncio
import json

from firmware import boards, config, log, startup, state
from firmware.hal.sim import Hal

MIC = __file__.rsplit("/", 2)[0] + "/tools/assets/weather_en_16k.wav"


async def main():
    with open("sim.json") as f:
        sim = json.load(f)
    # The boot tests need no audio, but the sim HAL always has a mic and speaker.
    sim.setdefault("mic", MIC)
    sim.setdefault("out", "out.wav")
    sim.setdefault("mac", "02:11:22:33:ab:cd")
    with open("sim.json", "w") as f:
        json.dump(sim, f)
    hal = Hal(boards.load("sim"))
    shutdown = asyncio.create_task(hal.until_shutdown())
    cfg = config.load("config.json")
    out = await startup.bring_up(cfg, hal, state.Machine())
    wifi = out.pop("wifi")
    # Secrets are never printed: the event says whether there is a token.
    out["ws_token"] = "***" if out["ws_token"] else ""
    log.event("ready", out)
    if sim.get("supervise") and wifi:
        asyncio.create_task(wifi.supervise())
        await shutdown


asyncio.run(main())
