# The ESP32 HAL: machine.I2S in non-blocking mode for mic and speaker, the BOOT
# button through a pin IRQ, the LED, and network.WLAN. Pins come from the
# board profile. Kept thin: everything above this file is tested on the host.
import asyncio
import gc
import os
import select
import time

import esp
import esp32
import machine
import network
from machine import I2S, Pin
from micropython import const

from firmware import clock, log
from firmware.hal.i2s_slots import i2s32_to_s16

_TAG = "hal"
_DEBOUNCE_MS = const(30)
_DMA_FRAMES = const(256)  # frames per DMA buffer (ports/esp32/machine_i2s.c)
# RX DMA always runs 32-bit stereo slots: 8 bytes a frame. 128 ms is two 60 ms
# frames of slack for the capture task.
_MIC_DMA_FRAME = const(8)
_MIC_BUF_MS = const(128)
# TX MONO at 16 bits takes 2 bytes a frame. The DMA is what still plays after
# the last write (and after an abort), so it is kept near 120 ms.
_SPK_DMA_FRAME = const(2)
_SPK_BUF_MS = const(120)
_PSRAM_MIN_HEAP = const(1024 * 1024)  # a SPIRAM build's heap on an 8 MB module is ~7 MB


def dma_ibuf(rate, frame_bytes, ms):
    """I2S ibuf for about ms of audio: whole DMA buffers, at least two."""
    return max(2, rate * ms // 1000 // _DMA_FRAMES) * _DMA_FRAMES * frame_bytes


def asyncio_mode(i2s):
    """Switch a machine.I2S to its non-blocking mode now. The port leaves
    blocking mode only on the first MP_STREAM_POLL (extmod/machine_i2s.c), and
    asyncio's StreamWriter.write() never polls while a blocking write takes
    everything: each write would then wait for the DMA inside the C call,
    freezing the whole event loop."""
    p = select.poll()
    p.register(i2s, select.POLLIN | select.POLLOUT)
    p.poll(0)
    p.unregister(i2s)


class _Frame:
    """What Mic.readinto() hands back: one awaitable reused for every frame.
    It is an iterator, as asyncio's own sleep object is: each step either
    sleeps (through asyncio.sleep_ms, which queues the task) or finishes the
    frame. So a frame costs no coroutine object and, read whole, no slice."""

    def __init__(self, mic):
        self.mic = mic
        self._done = StopIteration()

    def __iter__(self):
        return self

    def __next__(self):
        wait = self.mic._step()
        if wait >= 0:
            # On MicroPython sleep_ms() gives asyncio's reusable sleep object (the
            # stubs call it a coroutine); one step of it queues this task.
            return asyncio.sleep_ms(wait).__next__()  # type: ignore[attr-defined]
        self._done.__traceback__ = None  # reused: keep no traceback growing on it
        raise self._done


class Mic:
    """INMP441-style mic: 32-bit left slots converted to s16 with a shift.
    The I2S runs from boot to power-off: an INMP441 sends zeros for 2**18 SCK
    cycles (~256 ms) after its clock starts, which opening it per listen would
    cost the first syllable; and DMA memory taken once cannot run out later.
    A frame is read in one call once it is all in the DMA (`_due`), instead of
    one call per 16 ms DMA buffer as a StreamReader would wake for."""

    def __init__(self, board):
        self.board = board
        self.shift = board.MIC_SHIFT
        self.i2s = None
        self.raw = bytearray(0)  # one frame of 32-bit samples, sized on the first read
        self._views = {}  # offset -> view of raw from there, for the rare short read
        self._scratch = bytearray(_DMA_FRAMES * 4)
        self._frame = _Frame(self)
        self._buf = None  # the caller's buffer for the frame being read
        self._got = 0  # bytes of raw read so far
        self._due = None  # ticks when the frame being read is all in the DMA
        self._short = False  # the frame took more than one read
        # Data arrives one DMA buffer at a time.
        self._dma_ms = _DMA_FRAMES * 1000 // board.MIC_RATE + 1
        self._bytes_per_ms = board.MIC_RATE * 4 // 1000
        self._failed = False
        self._open()

    def _open(self):
        """-> the open I2S, or None (and one log line) when it cannot be had."""
        b = self.board
        try:
            self.i2s = I2S(b.MIC_I2S_ID, sck=Pin(b.MIC_SCK), ws=Pin(b.MIC_WS), sd=Pin(b.MIC_SD),
                           mode=I2S.RX, bits=32, format=I2S.MONO, rate=b.MIC_RATE,
                           ibuf=dma_ibuf(b.MIC_RATE, _MIC_DMA_FRAME, _MIC_BUF_MS))
        except OSError as e:  # ENOMEM: no DMA-capable RAM left; the mic stays silent, retried per listen
            if not self._failed:
                log.error(_TAG, "cannot open the mic I2S (%s): sending silence" % e)
            self._failed = True
            return None
        asyncio_mode(self.i2s)
        if self._failed:
            log.info(_TAG, "mic I2S open")
        self._failed = False
        return self.i2s

    def start(self):
        self._due = None
        i2s = self.i2s or self._open()
        if i2s is None:
            return
        # Drop what the DMA gathered before this listen (up to 128 ms, which may
        # hold the end of the last reply): the frame starts now.
        while i2s.readinto(self._scratch) == len(self._scratch):
            pass

    def stop(self):
        pass  # the clock keeps running (see the class comment)

    def readinto(self, buf):
        need = (len(buf) >> 1) * 4
        if len(self.raw) != need:
            self.raw = bytearray(need)
            self._views = {}
        self._buf = buf
        self._got = 0
        self._short = False
        return self._frame

    def _view(self, off):
        v = self._views.get(off)
        if v is None:
            v = self._views[off] = memoryview(self.raw)[off:]
        return v

    def _step(self):
        """One step of the frame under way: -> ms to sleep before the next
        step, or -1 once the caller's buffer holds the frame."""
        need = len(self.raw)
        frame_ms = need // self._bytes_per_ms
        now = time.ticks_ms()
        i2s = self.i2s
        if i2s is None:  # no DMA memory: a frame of silence (raw stays zero), in time
            if self._got == 0:
                self._got = need
                return frame_ms
        elif self._got < need:
            if self._due is None:  # the first frame of a listen; a DMA buffer of margin each side
                self._due = time.ticks_add(now, frame_ms + 2 * self._dma_ms)
            wait = time.ticks_diff(self._due, now)
            if self._got == 0 and wait > 0:
                return wait
            self._got += i2s.readinto(self.raw if self._got == 0 else self._view(self._got))
            if self._got < need:
                self._short = True  # our clock ran ahead of the I2S clock
                return self._dma_ms
            if self._short or time.ticks_diff(now, self._due) > _MIC_BUF_MS:
                self._due = time.ticks_add(now, frame_ms + self._dma_ms)  # resync after a short read or a stall
            else:
                self._due = time.ticks_add(self._due, frame_ms)
        i2s32_to_s16(self.raw, self._buf, need >> 2, self.shift)
        return -1


class Speaker:
    """MAX98357A-style amp. Writes go straight to the I2S in its non-blocking
    mode; the speaker keeps its own account of when the audio in the DMA
    will have played (`_end`), so write() can hand back one reusable sleep
    instead of polling, and stop() knows how long the tail still plays."""

    def __init__(self, board):
        b = board
        self.rate = b.SPEAKER_RATE
        ibuf = dma_ibuf(self.rate, _SPK_DMA_FRAME, _SPK_BUF_MS)
        self.buf_ms = ibuf // _SPK_DMA_FRAME * 1000 // self.rate
        self.i2s = I2S(b.SPK_I2S_ID, sck=Pin(b.SPK_SCK), ws=Pin(b.SPK_WS), sd=Pin(b.SPK_SD),
                       mode=I2S.TX, bits=16, format=I2S.MONO, rate=self.rate, ibuf=ibuf)
        asyncio_mode(self.i2s)
        self._end = time.ticks_ms()
        self._dma_ms = self._ms(_DMA_FRAMES * _SPK_DMA_FRAME) + 1
        self._views = {}

    def start(self):
        pass

    async def stop(self):
        """Return once the DMA has played what it holds (at most buf_ms): the
        app reports "drained" right after, and may open the mic then. It waits
        in asyncio, so the reader, keepalive and button run meanwhile."""
        left = time.ticks_diff(self._end, time.ticks_ms())
        if left > 0:
            await asyncio.sleep_ms(left)

    def _ms(self, nbytes):
        return nbytes * 1000 // (self.rate * _SPK_DMA_FRAME)

    def _queued(self, nbytes):
        now = time.ticks_ms()
        if time.ticks_diff(self._end, now) < 0:
            self._end = now  # the DMA ran dry: new audio starts now
        self._end = time.ticks_add(self._end, self._ms(nbytes))

    def write(self, mv):
        # A plain method returning asyncio's reusable sleep: no coroutine and
        # no allocation per frame while the DMA takes each frame whole.
        n = len(mv)
        got = self.i2s.write(mv)
        self._queued(got)
        if got < n:
            return self._write_rest(mv, got)
        # Back when the DMA has room for another frame of this size, plus one
        # DMA buffer: room frees a whole buffer at a time.
        wait = time.ticks_diff(self._end, time.ticks_ms()) - (self.buf_ms - self._ms(n) - self._dma_ms)
        return asyncio.sleep_ms(wait if wait > 0 else 0)

    async def _write_rest(self, mv, got):
        # Our account ran ahead of the I2S clock: finish as DMA buffers free up.
        n = len(mv)
        while got < n:
            await asyncio.sleep_ms(self._dma_ms)
            v = self._views.get(got)
            if v is None:
                v = self._views[got] = memoryview(mv)[got:]
            k = self.i2s.write(v)
            self._queued(k)
            got += k
        self._views.clear()  # views of the caller's buffer must not outlive the call


def check_psram(board):
    """One clear line when the board profile expects PSRAM and the heap shows
    none: a SPIRAM build on a module without PSRAM boots on internal RAM and
    then runs out of memory over and over."""
    if not getattr(board, "PSRAM", False):
        return True
    heap = gc.mem_free() + gc.mem_alloc()
    if heap >= _PSRAM_MIN_HEAP:
        return True
    log.error(_TAG, "board %s expects PSRAM, but the heap is only %d KB: this module has no PSRAM "
                    "(use an N8R8/N16R8 module) or the firmware is not a SPIRAM build"
              % (board.NAME, heap // 1024))
    log.event("psram_missing", {"heap_kb": heap // 1024})
    return False


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
        check_psram(board)
        self.wlan = network.WLAN(network.WLAN.IF_STA)
        self.ap = network.WLAN(network.WLAN.IF_AP)
        self.mic = Mic(board)
        self.speaker = Speaker(board)
        self.button = Button(board.BUTTON_PIN)
        self._led_pin = self._led_rgb = None
        self.has_led = board.LED_PIN is not None
        if self.has_led:
            if getattr(board, "LED_WS2812", False):
                import neopixel

                self._led_rgb = neopixel.NeoPixel(Pin(board.LED_PIN), 1)
            else:
                self._led_pin = Pin(board.LED_PIN, Pin.OUT)
        self.display = None  # the optional OLED (firmware/hal/ssd1306_display.py)
        if getattr(board, "DISPLAY_SDA", None) is not None:
            from firmware.hal.ssd1306_display import open_display

            self.display = open_display(board)
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

    def led_colour(self, rgb):
        """The status colour (firmware/status.py); a plain LED is lit for any colour but black."""
        if self._led_rgb is not None:
            self._led_rgb[0] = rgb
            self._led_rgb.write()
        else:
            self.led(rgb != (0, 0, 0))

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
