# Local prompt sounds: short clips on the device's filesystem, in the device
# codec, so the device can speak with no server (connecting, cannot reach the
# server, Wi-Fi lost, please set up Wi-Fi, the activation code digit by digit,
# the listening earcon). `python -m tools.dev prompts` makes them from text and
# `tools.dev deploy` uploads them; the README says how to record your own.
# The file format and the names are in firmware/prompt_file.py.
from firmware import codec, dsp, log
from firmware.prompt_file import HEADER, ROOT, parse_header, path

_TAG = "prompt"


class Player:
    """Plays a queue of prompts frame by frame.
    next_frame(pcm) -> bytes of s16le at RATE into pcm, 0 when the queue is done;
    next_render(gain) -> the next frame resampled to the speaker and at the
    volume (a view to write to the speaker), None when done. Both allocate
    nothing per frame."""

    RATE = 16000
    FRAME_SAMPLES = 960  # 60 ms at RATE

    def __init__(self, language, speaker_rate=RATE, root=ROOT, max_packet=1920):
        self.language = language
        self.root = root
        self.pkt = bytearray(max_packet)
        self.pcm = bytearray(2 * self.FRAME_SAMPLES)
        self._resampler = None
        self._out = self.pcm
        if speaker_rate != self.RATE:
            self._resampler = dsp.Resampler(self.RATE, speaker_rate, self.FRAME_SAMPLES)
            self._out = bytearray(2 * self._resampler.max_out(self.FRAME_SAMPLES))
        # Output samples -> memoryview of _out, made now for every size a frame can
        # come out as (the resampler's phase makes it vary by a sample).
        self._out_views = {}
        top = self._resampler.max_out(self.FRAME_SAMPLES) if self._resampler else self.FRAME_SAMPLES
        for k in range(max(1, top - 2), top + 1):
            self._out_views[k] = memoryview(self._out)[: 2 * k]
        self._views = {}  # packet size -> memoryview, made once per size
        self._head = bytearray(HEADER)
        self._queue = []
        self._file = None
        self._view = None  # the packet buffer's view for the open file's packet size
        self._codec = None
        self._left = 0  # frames left in the open file
        self.playing = None  # name of the prompt being played

    @property
    def active(self):
        return self._file is not None or bool(self._queue)

    def say(self, *names):
        """Queue prompts after whatever is playing."""
        self._queue.extend(names)

    def stop(self):
        """Cut the prompt short and forget the queue (a key press, a server reply)."""
        self._queue = []
        self._close()

    def _close(self):
        if self._resampler is not None:
            self._resampler.reset()
        if self._file is not None:
            self._file.close()
        self._file = None
        self.playing = None
        self._left = 0

    def _open_next(self):
        while self._queue:
            name = self._queue.pop(0)
            p = path(name, self.language, self.root)
            try:
                f = open(p, "rb")
            except OSError:
                log.warn(_TAG, "no prompt file %s (run: python -m tools.dev prompts, then deploy)" % p)
                continue
            try:
                if f.readinto(self._head) != HEADER:
                    raise ValueError("truncated header")
                fmt, frame_ms, rate, packet, frames = parse_header(self._head)
                if rate != self.RATE or packet > len(self.pkt):
                    raise ValueError("%d Hz, %d-byte packets (need %d Hz, <= %d)"
                                     % (rate, packet, self.RATE, len(self.pkt)))
                c = self._codec
                if c is None or c.fmt != fmt or c.frame_ms != frame_ms:
                    c = self._codec = codec.create(fmt, rate, frame_ms)
                c.reset()
            except ValueError as e:
                f.close()
                log.warn(_TAG, "prompt %s unusable: %s" % (p, e))
                continue
            if packet not in self._views:
                self._views[packet] = memoryview(self.pkt)[:packet]
            self._file = f
            self._view = self._views[packet]
            self._left = frames
            self.playing = name
            log.event("prompt", {"name": name, "file": p})
            return True
        return False

    def next_render(self, gain):
        n = self.next_frame(self.pcm)
        if not n:
            return None
        samples = n >> 1
        if self._resampler is not None:
            samples = self._resampler.process(self.pcm, samples, self._out)
        dsp.apply_gain(self._out, samples, gain)
        view = self._out_views.get(samples)
        if view is None:
            view = self._out_views[samples] = memoryview(self._out)[: 2 * samples]
        return view

    def next_frame(self, pcm):
        """Decode the next frame into pcm; 0 once every queued prompt has played."""
        while True:
            if self._file is None and not self._open_next():
                return 0
            if self._left > 0:
                n = self._file.readinto(self._view)
                if n == len(self._view):
                    self._left -= 1
                    return self._codec.decode_into(self.pkt, pcm, 0, n)
                log.warn(_TAG, "prompt %s is truncated" % self.playing)
            self._close()
