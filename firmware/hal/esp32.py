# The ESP32 HAL: machine.I2S in asyncio mode for mic and speaker, the BOOT
# button through a pin IRQ, the LED, and network.WLAN. Pins come from the
# board profile. Kept thin: everything above this file is tested on the host.
import asyncio
import gc
import os
import time

import esp
import esp32
import machine
import network
from machine import I2S, Pin
from micropython import const

from firmware import clock, dsp, log

_TAG = "hal"
_DEBOUNCE_MS = const(30)
# RX DMA always runs 32-bit stereo slots (8 bytes a frame): 16384 B is 128 ms
# at 16 kHz, two 60 ms frames of slack for the capture task.
_MIC_IBUF = const(16384)
# TX MONO is sent as 16-bit stereo (4 bytes a frame): 11520 B is 120 ms at 24 kHz.
_SPK_IBUF = const(11520)


class Mic:
    """INMP441-style mic: 32-bit left slots converted to s16 with a shift."""

    def __init__(self, board):
        self.board = board
        self.i2s = None
        self.shift = board.MIC_SHIFT
        self.raw = bytearray(1920 * 2)  # one 60 ms frame of 32-bit samples
        self.raw_mv = memoryview(self.raw)

    def start(self):
        b = self.board
        # Opened per listen so the DMA doesn't overflow (and hand us stale
        # audio) while the mic is off.
        self.i2s = I2S(b.MIC_I2S_ID, sck=Pin(b.MIC_SCK), ws=Pin(b.MIC_WS), sd=Pin(b.MIC_SD),
                       mode=I2S.RX, bits=32, format=I2S.MONO, rate=b.MIC_RATE, ibuf=_MIC_IBUF)
        self.reader = asyncio.StreamReader(self.i2s)

    def stop(self):
        if self.i2s is not None:
            self.i2s.deinit()
            self.i2s = None

    async def readinto(self, buf):
        samples = len(buf) >> 1
        need = samples * 4
        # Usually one read fills the frame; only a partial read pays for a view.
        got = await self.reader.readinto(self.raw) if need == len(self.raw) else 0
        while got < need:
            got += await self.reader.readinto(self.raw_mv[got:need])
        dsp.i2s32_to_s16(self.raw, buf, samples, self.shift)
        return len(buf)


class Speaker:
    def __init__(self, board):
        b = board
        self.i2s = I2S(b.SPK_I2S_ID, sck=Pin(b.SPK_SCK), ws=Pin(b.SPK_WS), sd=Pin(b.SPK_SD),
                       mode=I2S.TX, bits=16, format=I2S.MONO, rate=b.SPEAKER_RATE, ibuf=_SPK_IBUF)
        self.writer = asyncio.StreamWriter(self.i2s)

    def start(self):
        pass

    def stop(self):
        pass

    def write(self, mv):
        # A plain method handing back the stream's drain awaitable instead of an
        # async def wrapper: one coroutine object less per frame.
        self.writer.write(mv)
        return self.writer.drain()


class Button:
    """Active-low button: the IRQ only sets a flag; debouncing happens here in
    a task, because soft IRQs must stay short and Event.set() is not IRQ-safe."""

    def __init__(self, pin_no):
        self.pin = Pin(pin_no, Pin.IN, Pin.PULL_UP)
        self.flag = asyncio.ThreadSafeFlag()
        self.down = self.pin.value() == 0
        self.pin.irq(lambda p: self.flag.set(), Pin.IRQ_FALLING | Pin.IRQ_RISING)

    def pressed(self):
        return self.pin.value() == 0

    async def event(self):
        while True:
            await self.flag.wait()
            await asyncio.sleep_ms(_DEBOUNCE_MS)
            down = self.pin.value() == 0
            if down != self.down:
                self.down = down
                return "press" if down else "release"


class Hal:
    def __init__(self, board):
        self.board = board
        self.wlan = network.WLAN(network.WLAN.IF_STA)
        self.ap = network.WLAN(network.WLAN.IF_AP)
        self.mic = Mic(board)
        self.speaker = Speaker(board)
        self.button = Button(board.BUTTON_PIN)
        self._led_pin = self._led_rgb = None
        if board.LED_PIN is not None:
            if getattr(board, "LED_WS2812", False):
                import neopixel

                self._led_rgb = neopixel.NeoPixel(Pin(board.LED_PIN), 1)
            else:
                self._led_pin = Pin(board.LED_PIN, Pin.OUT)
        self._forever = asyncio.Event()
        self.exit_code = 0

    def mac(self):
        return self.wlan.config("mac")

    def random_bytes(self, n):
        return os.urandom(n)

    def led(self, on):
        if self._led_pin is not None:
            self._led_pin.value(1 if on else 0)
        elif self._led_rgb is not None:
            self._led_rgb[0] = (0, 24, 0) if on else (0, 0, 0)
            self._led_rgb.write()

    def sysinfo(self):
        gc.collect()
        info = {
            "chip": self.board.CHIP,
            "flash_size": esp.flash_size(),
            "free_heap": gc.mem_free(),
            "mac": ":".join("%02x" % b for b in self.mac()),
            "board": self.board.NAME,
            "uptime_ms": clock.now_ms(),
        }
        # The S3/C3 ports have mcu_temperature(); the original ESP32 has no usable sensor.
        read_temp = getattr(esp32, "mcu_temperature", None)
        if read_temp is not None:
            info["temperature"] = read_temp()
        return info

    def reboot(self):
        log.info(_TAG, "rebooting")
        time.sleep_ms(100)  # let the log line out of the UART
        machine.reset()

    async def until_shutdown(self):
        await self._forever.wait()  # a device runs until power-off or reboot()
