# Minimal 16-bit PCM WAV reading and writing for the simulator's mic and
# speaker, to files or pipes (a piped mic gets raw PCM: firmware/hal/pcm_pipe.py).
# Runs on MicroPython: no wave module, reads via readinto. A file that is not
# a 16-bit PCM WAV raises ValueError.
import struct


class WavReader:
    """Open a 16-bit PCM WAV and stand at the start of its samples."""

    def __init__(self, path):
        self.f = open(path, "rb")
        head = self.f.read(12)
        if len(head) < 12 or head[0:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise ValueError("%s is not a RIFF/WAVE file" % path)
        self.rate = self.channels = 0
        while True:
            ch = self.f.read(8)
            if len(ch) < 8:
                raise ValueError("%s has no data chunk" % path)
            cid, size = ch[0:4], struct.unpack("<I", ch[4:8])[0]
            if cid == b"fmt ":
                fmt = self.f.read(size + (size & 1))
                tag, self.channels, self.rate = struct.unpack("<HHI", fmt[0:8])
                bits = struct.unpack("<H", fmt[14:16])[0]
                if tag != 1 or bits != 16:
                    raise ValueError("%s must be 16-bit PCM (format %d, %d bits)" % (path, tag, bits))
            elif cid == b"data":
                if not self.rate:
                    raise ValueError("%s: data before fmt chunk" % path)
                self.data_start = self.f.tell()
                self.data_len = size
                return
            else:
                self.f.seek(size + (size & 1), 1)

    def rewind(self):
        self.f.seek(self.data_start)
        self.remaining = self.data_len

    def readinto(self, mv):
        """Fill mv with samples; past the end of the data, with silence. Returns bytes of real audio."""
        want = len(mv)
        n = 0
        if self.remaining >= want:
            n = self.f.readinto(mv) or 0  # the common case: no slice, no allocation
        elif self.remaining > 0:
            n = self.f.readinto(memoryview(mv)[: self.remaining]) or 0
        self.remaining -= n
        for i in range(n, want):
            mv[i] = 0
        return n

    def close(self):
        self.f.close()


# Size fields of a WAV stream whose length is not known yet (what arecord writes).
_UNKNOWN = 0xFFFFFFFF


class WavWriter:
    """Write 16-bit mono PCM; the header is brought up to date on sync().
    A stream (a pipe, no seeking) gets one header with unknown sizes."""

    def __init__(self, path, rate, stream=False):
        self.f = open(path, "wb")
        self.rate = rate
        self.stream = stream
        self.data_len = 0
        self._hdr = bytearray(44)
        if stream:
            # No flush() for a pipe: MicroPython's flush is an fsync, which pipes
            # refuse (EINVAL); its file writes are unbuffered anyway.
            self._pack(_UNKNOWN, _UNKNOWN)
            self.f.write(self._hdr)
        else:
            self.sync()

    def write(self, mv):
        self.f.write(mv)
        self.data_len += len(mv)

    def _pack(self, riff_len, data_len):
        struct.pack_into(
            "<4sI4s4sIHHIIHH4sI", self._hdr, 0, b"RIFF", riff_len, b"WAVE", b"fmt ", 16,
            1, 1, self.rate, self.rate * 2, 2, 16, b"data", data_len,
        )

    def sync(self):
        if self.stream:
            return  # written as it came; nothing to bring up to date
        self._pack(36 + self.data_len, self.data_len)
        self.f.seek(0)
        self.f.write(self._hdr)
        self.f.seek(44 + self.data_len)
        self.f.flush()

    def close(self):
        self.sync()
        self.f.close()
