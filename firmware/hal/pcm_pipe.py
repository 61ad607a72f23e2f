# The simulator's live mic (tools.sim --mic -): raw s16le mono from a
# FIFO that tools.sim fills while the mic is on. Loaded only for a piped mic;
# a WAV file mic is firmware/hal/wavfile.py.


class PcmPipeReader:
    """Raw s16le mono PCM from a pipe (tools.sim checked the WAV header on its
    side). Blocks until data comes, which paces it; after the writer closes,
    silence."""

    rate = 0  # whatever the sender checked
    channels = 1

    def __init__(self, path):
        self.f = open(path, "rb")

    def rewind(self):
        pass  # a live stream has no beginning to go back to

    def readinto(self, mv):
        n = self.f.readinto(mv) or 0  # a blocking file read waits for the whole frame
        for i in range(n, len(mv)):
            mv[i] = 0
        return n

    def close(self):
        self.f.close()
