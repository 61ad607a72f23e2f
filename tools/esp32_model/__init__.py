# A model of MicroPython's ESP32 port for the unix port: machine (Pin, I2S,
# RTC), network (WLAN), esp32, esp, neopixel, ntptime, the ssl date check,
# the port's time module and sys.platform, so firmware/hal/esp32.py runs unchanged on a host.
#
# install(opts) must run before anything imports time or asyncio: it puts the
# model's modules into sys.modules, where `import machine` looks first (a
# module already in sys.modules wins over the unix port's built-in one).
# Behaviour is taken from the port's sources and docs; each file names them.
import sys


def install(opts):
    """Replace the port modules with the model. opts: the sim.json settings
    (see world.py). Returns the World, for tests that drive the model."""
    from tools.esp32_model import mtime

    sys.modules["time"] = mtime  # first: asyncio binds ticks_ms when it is imported
    from tools.esp32_model import world

    w = world.World(opts)
    from tools.esp32_model import esp, esp32, machine, neopixel, network, ntptime, sysmod, tls

    for name, mod in (("machine", machine), ("network", network), ("esp32", esp32), ("esp", esp),
                      ("neopixel", neopixel), ("ntptime", ntptime), ("ssl", tls), ("sys", sysmod)):
        sys.modules[name] = mod
    return w
