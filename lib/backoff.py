# Exponential backoff with jitter for reconnect loops. Nothing here knows what
# is being retried; callers sleep for next() ms and call reset() on success.
#   b = Backoff(1000, 60000)
#   while not ok: await sleep_ms(b.next())
try:
    from random import getrandbits
except ImportError:  # pragma: no cover - every supported port has random
    from urandom import getrandbits


class Backoff:
    def __init__(self, base_ms=1000, max_ms=60000, factor=2, jitter=0.25, limit=0, rand=None):
        """base_ms doubles (factor) per attempt up to max_ms. jitter is the share
        of each delay that is randomised (0.25 -> delay in [0.75d, d]), so many
        devices that lost the same AP do not come back in lockstep. limit > 0
        caps the number of attempts (next() then returns None)."""
        if base_ms <= 0 or max_ms < base_ms or factor < 1 or not 0 <= jitter <= 1:
            raise ValueError("bad backoff parameters")
        self.base_ms = base_ms
        self.max_ms = max_ms
        self.factor = factor
        self.jitter = jitter
        self.limit = limit
        self._rand = rand or _rand16
        self.attempts = 0

    def reset(self):
        self.attempts = 0

    def peek(self):
        """The un-jittered delay the next call to next() is based on."""
        d = self.base_ms
        for _ in range(self.attempts):
            d *= self.factor
            if d >= self.max_ms:
                return self.max_ms
        return min(d, self.max_ms)

    def next(self):
        """Delay in ms before the next attempt, or None when limit is reached."""
        if self.limit and self.attempts >= self.limit:
            return None
        d = self.peek()
        self.attempts += 1
        if self.jitter:
            d -= int(d * self.jitter * self._rand() / 65536)
        return int(d)

    @property
    def exhausted(self):
        return bool(self.limit) and self.attempts >= self.limit


def _rand16():
    return getrandbits(16)
