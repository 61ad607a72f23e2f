# The simulator's display: a 128x64 monochrome panel that writes each new
# frame (only when it differs from the last one) to DIR/frame-NNNN.fb, the
# SSD1306's page layout as raw bytes (8 pages of 128 columns, bit 0 = top
# row). tools/sim.py turns them into PNG files. Same interface as the board's
# SSD1306 display: .pages, await .write_page(i, view), await .flush().
from firmware import log
from firmware.dsp import copy_bytes

WIDTH = 128
HEIGHT = 64


class SimDisplay:
    pages = HEIGHT // 8

    def __init__(self, directory):
        self.dir = directory
        self.buf = bytearray(WIDTH * HEIGHT // 8)
        self.last = bytearray(len(self.buf))
        self.count = 0  # frames written

    async def write_page(self, i, view):
        copy_bytes(self.buf, i * WIDTH, view, 0, WIDTH)

    async def flush(self):
        if self.count and self.buf == self.last:
            return
        copy_bytes(self.last, 0, self.buf, 0, len(self.buf))
        self.count += 1
        name = "%s/frame-%04d.fb" % (self.dir, self.count)
        try:
            with open(name, "wb") as f:
                f.write(self.buf)
        except OSError as e:
            log.warn("display", "cannot write %s: %s" % (name, e))
            return
        log.event("display", {"frame": self.count, "file": name})
