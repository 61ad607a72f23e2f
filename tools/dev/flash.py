"""Write a MicroPython firmware image to an ESP32 board with esptool (as a library).

Order matters for clear errors: the image is checked before the port is
touched, and the chip is checked against the image before anything is erased.
"""
import serial
from esptool.cmds import attach_flash, detect_chip, erase_flash, reset_chip, run_stub, verify_flash, write_flash
from esptool.loader import ESPLoader
from esptool.util import FatalError

from tools.dev import image, ports
from tools.dev.errors import DevError


def _connect(port, attempts, before):
    try:
        return detect_chip(port, ESPLoader.ESP_ROM_BAUD, connect_mode=before, connect_attempts=attempts)
    except (FatalError, serial.SerialException, OSError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DevError("no ESP bootloader answered on %s (%s). Hold BOOT, tap RESET, and retry" % (port, msg)) from None


def flash(path, port=None, baud=460800, erase=False, verify=True, attempts=7, before="default-reset",
          after="hard-reset"):
    """Flash `path`; return (chip name, offset). Raises DevError on any user-fixable problem."""
    img = image.load(path)
    for w in img.warnings():
        print("warning: " + w)
    port = ports.choose(port)
    esp = _connect(port, attempts, before)
    try:
        chip = esp.CHIP_NAME
        if img.chip_id != esp.IMAGE_CHIP_ID:
            raise DevError("%s is built for %s but the board on %s is an %s: download the %s firmware"
                           % (path, img.chip, port, chip, chip))
        offset = image.offset_for(chip)
        print("%s detected; writing %s (%d bytes) at 0x%x" % (chip, path, len(img.data), offset))
        try:
            esp = run_stub(esp)
            if baud != ESPLoader.ESP_ROM_BAUD:
                esp.change_baud(baud)
            attach_flash(esp)
            if erase:
                erase_flash(esp)
            write_flash(esp, [(offset, img.data)])
            if verify:
                verify_flash(esp, [(offset, img.data)])
            reset_chip(esp, after)
        except (FatalError, serial.SerialException, OSError) as e:
            raise DevError("flashing failed on %s: %s" % (port, str(e).strip().splitlines()[0])) from None
        return chip, offset
    finally:
        esp._port.close()
