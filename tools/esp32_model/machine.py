# machine for the ESP32 model: Pin, I2S, RTC, reset.
import io

import micropython

from tools.esp32_model import mtime
from tools.esp32_model import world as _world

_POLL = 3  # MP_STREAM_POLL (py/stream.h)
_POLLIN = 1
_POLLOUT = 4
_ENOMEM = 12


def _world_now():
    return _world.world


class Pin:
    """GPIO as the port's docs/library/machine.Pin.rst: soft IRQs are queued
    with micropython.schedule() (ports/esp32/machine_pin.c, machine_pin_isr_handler
    -> mp_sched_schedule) and run between bytecodes, never inside the edge."""

    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1  # GPIO_INTR_POSEDGE
    IRQ_FALLING = 2  # GPIO_INTR_NEGEDGE

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.mode = mode
        self.pull = pull
        self._out = 0 if value is None else int(bool(value))
        self._driven = None  # level forced from outside (a finger on the button)
        self._handler = None
        self._trigger = 0
        _world_now().pins[id] = self

    def value(self, v=None):
        if v is None:
            if self.mode == Pin.OUT:
                return self._out
            if self._driven is not None:
                return self._driven
            return 1 if self.pull == Pin.PULL_UP else 0
        self._out = int(bool(v))
        return None

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, hard=False):
        if hard:
            raise ValueError("the model runs soft IRQs only")
        self._handler, self._trigger = handler, trigger
        _world_now().start_control()

    def _drive(self, level):
        before = self.value()
        self._driven = level
        if self._handler is None or level == before:
            return
        edge = Pin.IRQ_FALLING if level == 0 else Pin.IRQ_RISING
        if self._trigger & edge:
            micropython.schedule(self._handler, self)


class I2S(io.IOBase):
    """machine.I2S on ESP32 (docs/library/machine.I2S.rst, extmod/machine_i2s.c,
    ports/esp32/machine_i2s.c), modelled in real time:
    - blocking mode until the first MP_STREAM_POLL ioctl, then asyncio mode
      (extmod/machine_i2s.c's ioctl); blocking write()/readinto() wait for the
      DMA with portMAX_DELAY, asyncio ones take or give what fits now;
    - DMA in buffers of 256 frames (DMA_BUF_LEN_IN_I2S_FRAMES), ibuf // (256 *
      DMA frame bytes) of them; RX always clocks 32-bit stereo (8-byte frames),
      TX MONO uses bits/8 bytes a frame (get_dma_bits/get_dma_format);
    - TX room and RX data come one whole DMA buffer at a time, and a full RX
      DMA drops its oldest buffer;
    - RX MONO takes the left slot; the INMP441 sends zeros for its first 2**18
      SCK cycles (64 SCK a frame) after the clock starts (InvenSense INMP441
      datasheet, "startup time");
    - a failed DMA allocation raises OSError(ENOMEM) (check_esp_err maps
      ESP_ERR_NO_MEM, ports/esp32/mphalport.c)."""

    RX = 5  # I2S_MODE_MASTER | I2S_MODE_RX
    TX = 6  # I2S_MODE_MASTER | I2S_MODE_TX
    MONO = 0
    STEREO = 1
    DMA_FRAMES = 256
    WARMUP_FRAMES = (1 << 18) // 64
    MIC_GAIN_SHIFT = 12  # the room is calibrated so the reference >> 12 gives the WAV's level

    def __init__(self, id, *, sck, ws, sd, mck=None, mode, bits, format, rate, ibuf):
        w = _world_now()
        if id not in (0, 1):
            raise ValueError("invalid id")
        if mode not in (I2S.RX, I2S.TX) or bits not in (16, 32) or format not in (I2S.MONO, I2S.STEREO):
            raise ValueError("invalid mode, bits or format")
        old = w.i2s.get(id)
        if old is not None:
            old.deinit()  # the port re-initialises an id already in use
        self.mode, self.bits, self.format, self.rate = mode, bits, format, rate
        self.asyncio_mode = False
        self.dma_frame = 8 if mode == I2S.RX else bits // 8 * (2 if format == I2S.STEREO else 1)
        self.app_frame = bits // 8 * (2 if format == I2S.STEREO else 1)
        count = ibuf // (I2S.DMA_FRAMES * self.dma_frame)
        if count < 2:
            raise ValueError("ibuf too small")
        self.dma_bytes = count * I2S.DMA_FRAMES * self.dma_frame
        if w.dma_fail > 0 or self.dma_bytes > w.dma_free:
            w.dma_fail = max(0, w.dma_fail - 1)
            raise OSError(_ENOMEM)
        w.dma_free -= self.dma_bytes
        w.i2s[id] = self
        self.id = id
        self.stalled_ms = 0  # time write()/readinto() held the caller inside the C call
        self.calls = 0  # write()/readinto() calls, for tests
        self._t0_us = mtime._uptime_ms() * 1000  # the clock starts now
        self._done_us = self._t0_us  # TX: when the queued audio will have played
        self._taken = 0  # RX: frames handed out or dropped
        self.dropped = 0
        if mode == I2S.TX:
            self.sink = w.speaker_sink(rate)

    def deinit(self):
        w = _world_now()
        if w.i2s.get(self.id) is self:
            del w.i2s[self.id]
            w.dma_free += self.dma_bytes

    # -- TX ---------------------------------------------------------------
    def unplayed_ms(self):
        """Audio still in the DMA, in ms."""
        return max(0, self._done_us - mtime._uptime_ms() * 1000) // 1000

    def _room(self):
        # i2s_write() fills free DMA buffers, and a buffer frees only once it
        # has played whole: room comes in steps of one DMA buffer.
        queued = self.unplayed_ms() * self.rate * self.dma_frame // 1000
        step = I2S.DMA_FRAMES * self.dma_frame
        return max(0, self.dma_bytes - queued) // step * step

    def write(self, buf):
        self.calls += 1
        n = len(buf)
        room = self._room()
        if n > room:
            if self.asyncio_mode:
                n = room
            else:  # i2s_write(..., portMAX_DELAY): the whole VM waits here
                wait_ms = (n - room) * 1000 // (self.rate * self.dma_frame) + 1
                self.stalled_ms += wait_ms
                mtime.sleep_ms(wait_ms)
        if n == 0:
            return 0
        now_us = mtime._uptime_ms() * 1000
        self._done_us = max(self._done_us, now_us) + n * 1000000 // (self.rate * self.dma_frame)
        _world_now().heard_reply(self._done_us // 1000)
        if self.sink is not None:
            self.sink.write(memoryview(buf)[:n] if n < len(buf) else buf)
        return n

    # -- RX ---------------------------------------------------------------
    def _ready_frames(self):
        made = (mtime._uptime_ms() * 1000 - self._t0_us) * self.rate // 1000000
        done = made // I2S.DMA_FRAMES * I2S.DMA_FRAMES  # whole DMA buffers only
        keep = self.dma_bytes // self.dma_frame
        if done - self._taken > keep:  # full: the oldest buffers were overwritten
            self.dropped += done - self._taken - keep
            self._taken = done - keep
        return done - self._taken

    def readinto(self, buf):
        self.calls += 1
        want = len(buf) // self.app_frame
        ready = self._ready_frames()
        if ready < want:
            if self.asyncio_mode:
                want = ready
            else:  # i2s_read(..., portMAX_DELAY)
                wait_ms = (want - ready) * 1000 // self.rate + I2S.DMA_FRAMES * 1000 // self.rate + 1
                self.stalled_ms += wait_ms
                mtime.sleep_ms(wait_ms)
        w = _world_now()
        w.answer()
        air = w.air
        step = self.app_frame // (2 if self.format == I2S.STEREO else 1)
        j = 0
        for k in range(self._taken, self._taken + want):
            if k < I2S.WARMUP_FRAMES:
                v = 0
            else:
                v = air.sample(self._t0_us + k * 1000000 // self.rate) << I2S.MIC_GAIN_SHIFT
            if self.bits == 16:
                v >>= 16
            for _ in range(2 if self.format == I2S.STEREO else 1):  # an INMP441 has one channel
                for b in range(step):
                    buf[j + b] = (v >> (8 * b)) & 0xFF
                j += step
        self._taken += want
        return want * self.app_frame

    # -- stream protocol ----------------------------------------------------
    def ioctl(self, req, arg):
        if req != _POLL:
            return -1  # not a file descriptor, nothing else supported
        self.asyncio_mode = True  # the first poll switches the mode for good
        ready = 0
        if self.mode == I2S.TX and self._room() >= I2S.DMA_FRAMES * self.dma_frame:
            ready |= arg & _POLLOUT
        if self.mode == I2S.RX and self._ready_frames() > 0:
            ready |= arg & _POLLIN
        return ready


class RTC:
    """ports/esp32/machine_rtc.c: datetime() is (year, month, day, weekday,
    hours, minutes, seconds, subseconds); time.time() reads the same clock."""

    def datetime(self, dt=None):
        if dt is None:
            t = mtime.gmtime()
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        mtime.rtc_set(mtime.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6])))
        return None

    def init(self, dt):
        self.datetime(dt)


def reset():
    _world_now().power_off(3)  # the simulator's "rebooted" exit code
