"""The simulator's mic and speaker as pipes (`--mic -`, `--out -`).

The firmware's stdout carries its log and events, so audio goes through two
FIFOs in the device's working directory instead:

- MicFeed reads a 16 kHz mono WAV stream (arecord's, or a file) from our stdin
  and passes its samples to the mic FIFO while the firmware's mic is on (the
  `mic` events). While it is off the samples are dropped, as a real mic's are,
  so the turn hears what is said after the press, not a backlog.
- SpeakerDrain copies the WAV stream the firmware writes to the speaker FIFO
  to our stdout (for aplay), as it comes.
"""

import os
import struct
import threading

CHUNK = 1920  # 60 ms at 16 kHz: what one mic frame reads
CONVERT_HINT = "convert it with: sox in.wav -r 16000 -c 1 -b 16 out.wav"


class PipeError(ValueError):
    """A mic stream we cannot use; the message is the one line the user sees."""


def _read_exactly(f, n):
    data = b""
    while len(data) < n:
        part = f.read(n - len(data))
        if not part:
            break
        data += part
    return data


def read_wav_header(f, rate=16000):
    """Read a WAV stream's header up to its samples; raise PipeError unless it
    is 16-bit PCM, mono, at `rate`. The data size is ignored: a live stream
    does not know it."""
    head = _read_exactly(f, 12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise PipeError("mic stream on stdin is not a WAV stream (arecord -t wav, or a .wav file)")
    fmt = None
    while True:
        ch = _read_exactly(f, 8)
        if len(ch) < 8:
            raise PipeError("mic stream on stdin ended before its data chunk")
        cid, size = ch[:4], struct.unpack("<I", ch[4:])[0]
        if cid == b"data":
            break
        body = _read_exactly(f, size + (size & 1))
        if cid == b"fmt ":
            fmt = struct.unpack("<HHI", body[:8]) + struct.unpack("<H", body[14:16])
    if fmt is None:
        raise PipeError("mic stream on stdin has no fmt chunk")
    tag, channels, got_rate, bits = fmt
    if tag != 1 or bits != 16:
        raise PipeError("mic stream must be 16-bit PCM (format %d, %d bits); %s" % (tag, bits, CONVERT_HINT))
    if got_rate != rate or channels != 1:
        raise PipeError("mic stream must be %d Hz mono, is %d Hz x%d; %s (or arecord -f S16_LE -r %d -c 1)"
                        % (rate, got_rate, channels, CONVERT_HINT, rate))


def make_fifo(workdir, name):
    path = os.path.join(workdir, name)
    if os.path.exists(path):
        os.unlink(path)
    os.mkfifo(path)
    return path


class MicFeed:
    """stdin WAV samples -> mic FIFO, only while the firmware's mic is on."""

    def __init__(self, src, fifo):
        self.src = src  # a binary stream positioned at the samples
        self.fifo = fifo
        self.on = threading.Event()
        self.ended = False  # the stream closed: the mic hears silence from then on
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()

    def on_event(self, ev):
        if ev["k"] == "mic":
            (self.on.set if (ev.get("d") or {}).get("on") else self.on.clear)()

    def _run(self):
        try:
            with open(self.fifo, "wb", buffering=0) as out:  # waits for the firmware to open it
                while True:
                    data = self.src.read(CHUNK)
                    if not data:
                        break
                    if self.on.is_set():
                        out.write(data)
                # Closing the FIFO gives the firmware's mic end-of-file: silence from there on.
                self.ended = True
        except (OSError, ValueError):  # the firmware is gone: nothing left to feed
            pass


class SpeakerDrain:
    """speaker FIFO -> our stdout, counting the bytes that went through."""

    def __init__(self, fifo, dst):
        self.fifo = fifo
        self.dst = dst  # a binary stream, usually sys.stdout.buffer
        self.bytes = 0
        self.broken = False  # the reader (aplay) went away
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()

    def _run(self):
        try:
            with open(self.fifo, "rb", buffering=0) as src:  # waits for the firmware to open it
                while True:
                    data = src.read(4096)
                    if not data:
                        return  # the firmware closed the speaker
                    self.bytes += len(data)
                    if not self.broken:
                        try:
                            self.dst.write(data)
                            self.dst.flush()
                        except (BrokenPipeError, ValueError):
                            self.broken = True  # keep draining so the firmware never blocks
        except OSError:
            pass

    def join(self, timeout):
        self._thread.join(timeout)

    def seconds(self, rate):
        return max(0, self.bytes - 44) / (2.0 * rate)


class LiveAudio:
    """Sets up the FIFOs and threads for `--mic -` and/or `--out -` and says
    which sim.json settings point the firmware at them."""

    def __init__(self, workdir, mic_stream=None, out_stream=None):
        self.feed = self.drain = None
        self.opts = {}
        if mic_stream is not None:
            self.feed = MicFeed(mic_stream, make_fifo(workdir, "mic.fifo"))
            self.opts.update(mic=self.feed.fifo, mic_pipe=True)
        if out_stream is not None:
            self.drain = SpeakerDrain(make_fifo(workdir, "out.fifo"), out_stream)
            self.opts.update(out=self.drain.fifo, out_pipe=True)

    def start(self, fw):
        """Start the threads; fw is the Firmware whose mic events gate the feed."""
        if self.feed:
            fw.taps.append(self.feed.on_event)
            self.feed.start()
        if self.drain:
            self.drain.start()
