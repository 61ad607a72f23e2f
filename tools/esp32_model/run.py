# Entry point of `python -m tools.sim --hal esp32-model`: the ESP32 model goes
# in first (it must precede any import of time or asyncio), then main.py runs
# unchanged with the bread_compact_s3 board profile and firmware/hal/esp32.py.

import sys

# The script's own directory comes first on sys.path; its machine.py and
# network.py must only ever be reached as tools.esp32_model.*.
if sys.path and sys.path[0].endswith("esp32_model"):
    sys.path.pop(0)

try:
    import json
except ImportError:  # pragma: no cover
    import ujson as json

import tools.esp32_model as model

with open("sim.json") as f:
    model.install(json.load(f))

from firmware import log  # noqa: E402 (after the model)

log.events = True  # tools.sim follows the run through event lines
import main  # noqa: E402,F401 (runs the firmware; exits the process)
