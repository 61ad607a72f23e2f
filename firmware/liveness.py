# When to send a keepalive and when a link is dead, from two clocks: when
# we last pinged and when the last frame came in. Stock servers no longer
# ping (docs/protocol.md §1.6), so the device pings itself; the peer's PONG,
# like any other frame, is proof of life, so a server that is only slow (an
# LLM thinking for 25 s) is never taken for dead. Pure: the channel owns the
# timer and the socket, this only decides. Times are ticks_ms values.
from time import ticks_diff

from micropython import const

OK = const(0)
PING = const(1)
DEAD = const(2)


class Liveness:
    def __init__(self, keepalive_ms, timeout_ms):
        if keepalive_ms <= 0 or timeout_ms <= 0:
            raise ValueError("liveness: keepalive and timeout must be > 0 ms")
        self.keepalive_ms = keepalive_ms
        self.timeout_ms = timeout_ms
        self._last_ping = 0

    def start(self, now):
        """A session opened at `now`: the first keepalive is one interval away."""
        self._last_ping = now

    def check(self, now, last_rx):
        """-> DEAD when nothing came in for timeout_ms, PING when a keepalive
        is due (the caller sends it), else OK."""
        if ticks_diff(now, last_rx) >= self.timeout_ms:
            return DEAD
        if ticks_diff(now, self._last_ping) >= self.keepalive_ms:
            self._last_ping = now
            return PING
        return OK
