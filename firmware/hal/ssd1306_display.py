# The board's optional SSD1306 128x64 OLED on I2C, through micropython-lib's
# driver, installed on the board with `mpremote mip install ssd1306` (never
# copied into this repo). Pins come from the board profile (DISPLAY_SDA,
# DISPLAY_SCL, DISPLAY_I2C_ID, DISPLAY_ADDR). Same interface as the
# simulator's display (firmware/hal/sim_display.py).
#
# A whole frame is 1 KB, about 25 ms on a 400 kHz bus: written page by page
# (128 bytes, ~3 ms each) with a yield in between, so the audio tasks run
# between pages.
import asyncio

from firmware import log

_TAG = "display"
_SET_COL = 0x21
_SET_PAGE = 0x22


class Ssd1306Display:
    pages = 8

    def __init__(self, oled):
        self.oled = oled

    async def write_page(self, i, view):
        o = self.oled
        o.write_cmd(_SET_COL)
        o.write_cmd(0)
        o.write_cmd(127)
        o.write_cmd(_SET_PAGE)
        o.write_cmd(i)
        o.write_cmd(i)
        o.write_data(view)
        await asyncio.sleep_ms(0)

    async def flush(self):
        pass


def open_display(board):
    """The board's display, or None when the profile has none, the driver is
    not installed or nothing answers on the bus (each said once in the log)."""
    sda = getattr(board, "DISPLAY_SDA", None)
    if sda is None:
        return None
    try:
        import ssd1306  # type: ignore[import-not-found]  # installed on the board by mip
    except ImportError:
        log.warn(_TAG, "no ssd1306 driver: run `mpremote mip install ssd1306` for the OLED")
        return None
    from machine import I2C, Pin

    addr = getattr(board, "DISPLAY_ADDR", 0x3C)
    try:
        i2c = I2C(getattr(board, "DISPLAY_I2C_ID", 0), scl=Pin(board.DISPLAY_SCL), sda=Pin(sda), freq=400000)
        if addr not in i2c.scan():
            log.info(_TAG, "no display at I2C 0x%02x (SDA %d, SCL %d)" % (addr, sda, board.DISPLAY_SCL))
            return None
        return Ssd1306Display(ssd1306.SSD1306_I2C(128, 64, i2c, addr))
    except OSError as e:  # a bus fault or a panel that stops answering during its init
        log.warn(_TAG, "display at I2C 0x%02x unusable: %s" % (addr, e))
        return None
