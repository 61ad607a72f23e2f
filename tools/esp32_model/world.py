# What surrounds the modelled chip: the sound in the room (what the mic hears),
# the speaker (a WAV file), the BOOT button driven by control lines on stdin,
# the Wi-Fi networks in the air, the NTP server, and the free DMA-capable RAM.
#
# sim.json keys the model reads (tools/sim.py writes them):
#   "mic": WAV spoken into the room on each button press (16 kHz mono)
#   "out": WAV the speaker's DMA output is written to
#   "networks": [{"ssid", "password", "rssi", "channel"}]   APs in range
#   "ntp_port": UDP port on 127.0.0.1 standing in for NTP's port 123
#   "dma_free": bytes of internal RAM the I2S drivers may take (default 160 KB)
#   "control": read control lines from stdin, and speak "mic" again 300 ms after
#              each reply, as a person in auto mode would (tools.sim; tests
#              drive the World themselves)
# Control lines: press | release | click | quit (end of input also quits).
import sys

from tools.esp32_model import mtime

world = None  # the one World, set by World()


class Air:
    """The room: a sound starts at a moment of uptime and is heard once."""

    def __init__(self):
        self.pcm = None  # s16le samples
        self.rate = 16000
        self.start_ms = 0

    def say(self, pcm, rate=16000):
        self.pcm, self.rate, self.start_ms = pcm, rate, mtime._uptime_ms()

    def sample(self, t_us):
        """The s16 sample heard at t_us of uptime (0 when quiet)."""
        if self.pcm is None:
            return 0
        i = (t_us - self.start_ms * 1000) * self.rate // 1000000
        if i < 0 or 2 * i + 1 >= len(self.pcm):
            return 0
        v = self.pcm[2 * i] | (self.pcm[2 * i + 1] << 8)
        return v - 65536 if v & 0x8000 else v


class World:
    def __init__(self, opts):
        global world
        world = self
        self.opts = opts
        self.air = Air()
        self.dma_free = opts.get("dma_free", 160 * 1024)
        self.dma_fail = 0  # the next n DMA allocations fail (tests)
        self.pins = {}  # number -> machine.Pin, for the button
        self.i2s = {}  # id -> machine.I2S in use
        self.speaker_wav = None
        self.reply_end_ms = None  # when the speaker's last audio ends, until answered
        self._control = None
        self.mic_pcm = None
        self.mac = bytes(int(x, 16) for x in opts.get("mac", "02:00:00:5a:4d:01").split(":"))
        if opts.get("mic"):
            from firmware.hal.wavfile import WavReader

            r = WavReader(opts["mic"])
            self.mic_pcm = r.f.read(r.data_len)

    def speaker_sink(self, rate):
        if self.speaker_wav is None and self.opts.get("out"):
            from firmware.hal.wavfile import WavWriter

            self.speaker_wav = WavWriter(self.opts["out"], rate)
        return self.speaker_wav

    def heard_reply(self, end_ms):
        """The speaker took audio that plays until end_ms of uptime."""
        self.reply_end_ms = end_ms

    def answer(self):
        """Called as the mic samples: speak again once a reply has ended."""
        end = self.reply_end_ms
        if end is not None and self.opts.get("control") and self.mic_pcm is not None \
                and mtime._uptime_ms() > end + 300:
            self.reply_end_ms = None
            self.air.say(self.mic_pcm)

    def button(self, level):
        """Drive GPIO 0 (the BOOT button: 0 = pressed) as a finger would."""
        pin = self.pins.get(0)
        if pin is not None:
            pin._drive(level)
        if level == 0 and self.mic_pcm is not None:
            self.air.say(self.mic_pcm)

    def start_control(self):
        """Read control lines once the firmware's loop runs (asked for by the
        first Pin.irq(): the HAL is built inside asyncio.run)."""
        if self._control is None and self.opts.get("control"):
            import asyncio

            self._control = asyncio.create_task(self._read_control())

    async def _read_control(self):
        import asyncio

        reader = asyncio.StreamReader(sys.stdin)
        while True:
            line = await reader.readline()
            cmd = line.decode().strip() if line else "quit"
            if cmd == "press":
                self.button(0)
            elif cmd == "release":
                self.button(1)
            elif cmd == "click":
                self.button(0)
                await asyncio.sleep_ms(100)
                self.button(1)
            elif cmd == "quit":
                self.power_off()
            elif cmd:
                print("esp32-model: unknown control line %r" % cmd)

    def power_off(self, code=0):
        if self.speaker_wav is not None:
            self.speaker_wav.sync()
        raise SystemExit(code)  # not an Exception: leaves asyncio.run and main.py
