# The simulator HAL: the same firmware on the MicroPython unix port, with a
# WAV file (or a pipe of raw PCM) as the mic, a WAV file (or a pipe) as the
# speaker, and control lines on stdin standing in for the button and the radio.
# Settings come from sim.json in the working directory (written by tools/sim.py).
# The speaker reports each reply it played ("speaker" event), which tools.sim
# times the turn by; a piped mic reports when it starts and stops ("mic"),
# which tools.sim feeds it by.
import asyncio
import gc
import os
import sys
import time

try:
    import json
except ImportError:  # pragma: no cover
    import ujson as json

from firmware import clock, log
from firmware.hal.wavfile import WavReader, WavWriter

SETTINGS = "sim.json"
_TAG = "sim"


class _Pacer:
    """Releases one audio buffer per its real-time duration (scaled by speed),
    like an I2S clock would, without drifting."""

    def __init__(self, rate, speed):
        self.rate = rate
        self.speed = speed
        self.next = None
        self._bytes = self._ms = 0  # last buffer size and its scaled duration

    def reset(self):
        self.next = None

    def wait(self, nbytes):
        """The awaitable that releases a buffer of nbytes. It is asyncio's
        reusable sleep_ms object, not a coroutine, and the duration is cached
        per buffer size (speed may be a float), so pacing a frame allocates
        nothing."""
        if nbytes != self._bytes:
            self._bytes = nbytes
            self._ms = int(nbytes * 500 // self.rate / self.speed)
        now = time.ticks_ms()
        if self.next is None or time.ticks_diff(now, self.next) > 200:
            self.next = now  # first buffer, or we fell far behind: restart the clock
        self.next = time.ticks_add(self.next, self._ms)
        return asyncio.sleep_ms(time.ticks_diff(self.next, now))  # a negative delay is 0


class Mic:
    """Each start() replays the WAV from its beginning, then silence follows.
    With pipe=True, path is a FIFO of raw s16le mono PCM at `rate` that
    tools.sim fills from its stdin while the mic is on."""

    def __init__(self, path, rate, speed, pipe=False):
        self.pipe = pipe
        if pipe:
            from firmware.hal.pcm_pipe import PcmPipeReader

            self.wav = PcmPipeReader(path)
        else:
            self.wav = WavReader(path)
        if self.wav.rate not in (0, rate) or self.wav.channels != 1:
            raise ValueError("mic WAV %s must be %d Hz mono, is %d Hz x%d"
                             % (path, rate, self.wav.rate, self.wav.channels))
        self.rate = rate
        self.pacer = _Pacer(rate, speed)
        self.wav.rewind()

    def start(self):
        self.wav.rewind()
        self.pacer.reset()
        if self.pipe:  # only then: the event's allocation would count in the benchmarks' uplink bytes
            log.event("mic", {"on": True})

    def stop(self):
        if self.pipe:
            log.event("mic", {"on": False})

    def readinto(self, mv):
        # A plain method returning the pacer's awaitable instead of an async
        # def: no coroutine object per frame. The samples are read now; the
        # caller only looks at them once the wait is over, like a real mic's.
        self.wav.readinto(mv)
        return self.pacer.wait(len(mv))


class Speaker:
    """A WAV file, or with pipe=True a FIFO that gets a WAV stream."""

    def __init__(self, path, rate, speed, pipe=False):
        self.wav = WavWriter(path, rate, stream=pipe)
        self.rate = rate
        self.pacer = _Pacer(rate, speed)
        self._start_ms = None  # virtual time of the reply's first write
        self._start_len = 0

    def start(self):
        self.pacer.reset()
        if self._start_ms is None:  # a cut-short reply restarts without a stop
            self._start_ms = clock.now_ms()
            self._start_len = self.wav.data_len

    async def stop(self):
        self.wav.sync()
        if self._start_ms is not None:
            # One event per reply, after its last write has played: the time
            # of the first and last sample heard, and where they sit in the WAV.
            log.event("speaker", {"start_ms": self._start_ms, "offset": self._start_len,
                                  "bytes": self.wav.data_len - self._start_len, "rate": self.rate})
            self._start_ms = None

    def write(self, mv):
        # Returns the pacer's awaitable (see Mic.readinto): no coroutine per frame.
        self.wav.write(mv)
        return self.pacer.wait(len(mv))


class Button:
    def __init__(self, held_at_boot):
        self._events = []
        self._flag = asyncio.Event()
        self._held = held_at_boot

    def pressed(self):
        """Whether the button is down now (read once at boot to force the portal)."""
        return self._held

    def push(self, kind):
        self._held = kind == "press"
        self._events.append(kind)
        self._flag.set()

    async def event(self):
        while not self._events:
            self._flag.clear()
            await self._flag.wait()
        return self._events.pop(0)


class Hal:
    def __init__(self, board):
        self.board = board
        try:
            with open(SETTINGS) as f:
                opts = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError("simulator settings %s unreadable: %s" % (SETTINGS, e))
        log.events = True  # tools.sim follows the run through event lines
        speed = opts.get("speed", 1)
        clock.speed = opts.get("clock_speed", 1)
        self._flash_size = opts.get("flash_size", 8 * 1024 * 1024)  # as an N8R8 module
        self._mac = bytes(int(x, 16) for x in opts.get("mac", "02:00:00:5a:4d:01").split(":"))
        self.mic = Mic(opts["mic"], board.MIC_RATE, speed, opts.get("mic_pipe", False))
        self.speaker = Speaker(opts["out"], board.SPEAKER_RATE, speed, opts.get("out_pipe", False))
        self.button = Button(opts.get("button_held", False))
        self.has_led = board.LED_PIN is not None  # the sim board has none: its led() only logs
        self.display = None
        if opts.get("display"):
            from firmware.hal.sim_display import SimDisplay

            self.display = SimDisplay(opts["display"])
        self.wlan = self.ap = None
        if "networks" in opts:
            from firmware.hal.sim_wlan import SimAP, SimWLAN

            self.wlan = SimWLAN(opts)
            self.ap = SimAP(opts)
        self._shutdown = asyncio.Event()
        self.exit_code = 0

    def mac(self):
        return self._mac

    def random_bytes(self, n):
        return os.urandom(n)

    def led(self, on):
        log.event("led", {"on": bool(on)})

    def led_colour(self, rgb):
        log.event("led", {"rgb": list(rgb)})

    def sysinfo(self):
        gc.collect()
        return {
            "chip": self.board.CHIP,
            "flash_size": self._flash_size,
            "free_heap": gc.mem_free(),
            "mac": ":".join("%02x" % b for b in self._mac),
            "board": self.board.NAME,
            "uptime_ms": clock.now_ms(),
        }

    def reboot(self):
        log.info(_TAG, "reboot requested; the simulator exits with code 3")
        self.exit_code = 3
        self._shutdown.set()

    async def control(self):
        """Read control lines from stdin: press, release, click, wifi <cmd>, quit.
        End of input also means quit, so the firmware never outlives its runner."""
        reader = asyncio.StreamReader(sys.stdin)
        while True:
            line = await reader.readline()
            if not line:
                break
            cmd = line.decode().strip()
            if cmd in ("press", "release"):
                self.button.push(cmd)
            elif cmd == "click":
                self.button.push("press")
                self.button.push("release")
            elif cmd.startswith("wifi ") and self.wlan is not None:
                self.wlan.control(cmd[5:])
            elif cmd == "quit":
                break
            elif cmd:
                log.warn(_TAG, "unknown control line %r" % cmd)
        self._shutdown.set()

    async def until_shutdown(self):
        asyncio.create_task(self.control())
        await self._shutdown.wait()
        await self.speaker.stop()
