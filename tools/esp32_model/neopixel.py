# neopixel for the ESP32 model (micropython-lib neopixel, frozen in the esp32
# build): keeps the colours last written, for tests.
class NeoPixel:
    def __init__(self, pin, n, bpp=3, timing=1):
        self.pin = pin
        self.n = n
        self.buf = [(0, 0, 0)] * n
        self.shown = list(self.buf)

    def __setitem__(self, i, v):
        self.buf[i] = tuple(v)

    def write(self):
        self.shown = list(self.buf)
