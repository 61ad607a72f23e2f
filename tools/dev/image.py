"""Checks on a MicroPython firmware image (.bin) before anything touches a board.

An ESP image starts with a 24-byte header: magic 0xE9, segment count, flash
mode/size, entry point, then an extended header whose bytes 12..13 hold the
chip id (ESP32=0, ESP32-S3=9, ESP32-C3=5, ...). MicroPython's downloadable
.bin is the merged image: bootloader, partition table at 0x8000, application.
"""
import os
import struct

from esptool.targets import CHIP_DEFS

from tools.dev.errors import DevError

MAGIC = 0xE9
HEADER_LEN = 24
PARTITION_TABLE_ADDR = 0x8000
PARTITION_MAGIC = b"\xaa\x50"


def chip_name(chip_id):
    """esptool's name for an image chip id (the ESP8266 has none, so it never matches), or None."""
    for cls in CHIP_DEFS.values():
        if getattr(cls, "IMAGE_CHIP_ID", None) == chip_id:
            return cls.CHIP_NAME
    return None


def offset_for(chip):
    """Flash offset of a merged firmware image for a chip name as esptool spells it.

    MicroPython's merged .bin starts with the bootloader, so it goes where the chip's
    ROM looks for one: 0x1000 on the ESP32 and S2, 0x0 on the S3 and C3 (esptool knows).
    """
    for cls in CHIP_DEFS.values():
        if cls.CHIP_NAME == chip:
            return cls.BOOTLOADER_FLASH_OFFSET
    raise DevError("no known flash offset for chip %s" % chip)


class Image:
    def __init__(self, path, data, chip_id, chip):
        self.path = path
        self.data = data
        self.chip_id = chip_id
        self.chip = chip

    def warnings(self):
        """Non-fatal doubts, e.g. an app-only image where a merged one is expected."""
        pt = PARTITION_TABLE_ADDR - offset_for(self.chip)
        if self.data[pt:pt + 2] != PARTITION_MAGIC:
            return ["%s has no partition table at 0x%x: it looks like an application-only image, "
                    "not MicroPython's merged firmware .bin" % (self.path, PARTITION_TABLE_ADDR)]
        return []


def load(path):
    """Read and check an image file; raise DevError saying what is wrong with it."""
    if not os.path.isfile(path):
        raise DevError("firmware image %s not found" % path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DevError("cannot read firmware image %s: %s" % (path, e.strerror)) from None
    if data[:4] == b"\x7fELF":
        raise DevError("%s is an ELF file, not a flashable image: use the .bin" % path)
    if data[:4] == b"UF2\n":
        raise DevError("%s is a UF2 file (drag-and-drop format), not an ESP .bin image" % path)
    if len(data) < HEADER_LEN or data[0] != MAGIC:
        raise DevError("%s is not an ESP firmware image (no 0xE9 image header)" % path)
    if not 1 <= data[1] <= 16:
        raise DevError("%s is not an ESP firmware image (bad segment count %d)" % (path, data[1]))
    (chip_id,) = struct.unpack_from("<H", data, 12)
    chip = chip_name(chip_id)
    if chip is None:
        raise DevError("%s is for an unknown chip (image chip id %d)" % (path, chip_id))
    return Image(path, data, chip_id, chip)

