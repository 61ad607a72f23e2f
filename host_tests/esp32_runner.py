# Runs one test function of host_tests/esp32/ under MicroPython with the ESP32
# model (tools/esp32_model) installed first, so firmware/hal/esp32.py and the
# firmware modules above it run against the modelled port. One process per
# test: the model is a whole chip, and each test gets a fresh one.
#   micropython host_tests/esp32_runner.py host_tests/esp32/test_x.py test_name
# The model's settings (sim.json keys, see tools/esp32_model/world.py) come as
# JSON in the environment variable XZ_MODEL_OPTS.
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
_root = _here + "/.."
sys.path.insert(0, _root + "/lib")
sys.path.insert(0, _root)

import json  # noqa: E402
import os  # noqa: E402

import tools.esp32_model as model  # noqa: E402

model.install(json.loads(os.getenv("XZ_MODEL_OPTS") or "{}"))

import asyncio  # noqa: E402 (after the model: asyncio must see its ticks)


def main(path, name):
    mod = {"__name__": name, "__file__": path}
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), mod)
    try:
        r = mod[name]()
        if r is not None and hasattr(r, "send"):
            asyncio.run(r)
    except Exception as e:
        print("FAIL %s::%s: %s %s" % (path, name, type(e).__name__, e))
        sys.print_exception(e)
        return 1
    print("ok   %s::%s" % (path, name))
    return 0


sys.exit(main(sys.argv[1], sys.argv[2]))
