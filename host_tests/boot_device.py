# A stand-in device for the boot tests: runs firmware.startup.bring_up under
# micropython on the real sim HAL (hal/sim.py with the sim Wi-Fi from
# sim.json), reports the result as a "ready" event, then runs until "quit" or
# the end of stdin (which tools.sim.Firmware.stop() sends). Run in a working
# dir holding config.json and sim.json, with MICROPYPATH=.frozen:<repo>:<repo>/lib.
import asyncio
import json
import sys

from firmware import boards, config, log, startup, state
from firmware.hal.sim import Hal

MIC = __file__.rsplit("/", 2)[0] + "/tools/assets/weather_en_16k.wav"


async def boot(hal):
    try:
        out = await startup.bring_up(config.load("config.json"), hal, state.Machine())
    except Exception as e:  # a boot that crashes ends the process, so the test fails at once
        sys.print_exception(e)
        raise SystemExit(1) from e
    del out["wifi"]
    # Secrets are never printed: the event says whether there is a token.
    out["ws_token"] = "***" if out["ws_token"] else ""
    log.event("ready", out)


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
    asyncio.create_task(boot(hal))
    await hal.until_shutdown()  # "quit" also ends a boot still in the portal


asyncio.run(main())
