# Freeze xiaozhi-mpy into a custom MicroPython firmware for the ESP32-S3.
#
#   cd micropython/ports/esp32
#   make BOARD=ESP32_GENERIC_S3 BOARD_VARIANT=SPIRAM_OCT FROZEN_MANIFEST=/path/to/xiaozhi-mpy/manifest.py
#
# Frozen bytecode runs from flash: code objects, strings and constant tuples
# are not copied into the heap, which leaves far more RAM for audio buffers
# than .mpy files on the filesystem. boot.py and main.py stay on the
# filesystem (deploy them with `python -m tools.dev deploy --frozen`), so the
# entry point can still be edited without rebuilding.
#
# Paths here are relative to this file; the build runs it with that as cwd.
import os

# A FROZEN_MANIFEST replaces the board's own; keep the port's modules (asyncio, ...).
include("$(PORT_DIR)/boards/manifest.py")  # noqa: F821

# The application package: import firmware.app
package("firmware")  # noqa: F821

# Reusable libraries: lib/*.py become top-level modules (import wsclient), as
# they are when deployed to /lib.
for _name in sorted(os.listdir("lib")):
    if _name.endswith(".py"):
        module(_name, base_path="lib")  # noqa: F821
    elif os.path.isfile(os.path.join("lib", _name, "__init__.py")):
        package(_name, base_path="lib")  # noqa: F821
