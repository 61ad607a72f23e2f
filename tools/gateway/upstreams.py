"""Upstream xiaozhi servers: ordered failover at connect time, health in the logs.

Each device session opens one upstream connection. connect() tries the
upstreams in order of health: healthy or untried ones first, then down ones
whose retry delay (counted from their last failure) has passed, and as a last
resort even those that failed recently (a refused attempt is cheap; a device
with no server at all is not). Every
state change is logged: "upstream ws://… is DOWN (ConnectionRefusedError …)".
"""

import logging
import time

import websockets
from websockets.asyncio.client import connect as ws_connect

log = logging.getLogger("gateway.upstream")

UNKNOWN, UP, DOWN = "unknown", "up", "down"


class NoUpstream(ConnectionError):
    """Every upstream refused; str() lists why, one reason per upstream."""


class Upstream:
    def __init__(self, url):
        self.url = url
        self.state = UNKNOWN
        self.failures = 0
        self.last_error = ""
        self.failed_at = None  # clock() of the last failed attempt; the retry delay counts from it


def _describe(e):
    if isinstance(e, websockets.InvalidStatus):
        return f"HTTP {e.response.status_code}"
    if isinstance(e, TimeoutError):
        return "connect timeout"
    text = str(e) or type(e).__name__
    return f"{type(e).__name__}: {text}" if text != type(e).__name__ else text


class UpstreamPool:
    def __init__(self, urls, connect_timeout_s=5.0, retry_s=15.0, clock=time.monotonic):
        if not urls:
            raise ValueError("at least one upstream is needed")
        self.upstreams = [Upstream(u) for u in urls]
        self.connect_timeout_s = connect_timeout_s
        self.retry_s = retry_s
        self.clock = clock

    def order(self):
        now = self.clock()
        fresh, retry, down = [], [], []
        for u in self.upstreams:
            if u.state != DOWN:
                fresh.append(u)
            elif now - u.failed_at >= self.retry_s:
                retry.append(u)
            else:
                down.append(u)
        return fresh + retry + down

    def mark_up(self, u):
        if u.state != UP:
            log.info("upstream %s is UP%s", u.url, f" again after {u.failures} failures" if u.failures else "")
        u.state = UP
        u.failures = 0
        u.last_error = ""
        u.failed_at = None

    def mark_down(self, u, reason):
        u.failures += 1
        u.last_error = reason
        u.failed_at = self.clock()
        if u.state != DOWN:
            log.warning("upstream %s is DOWN (%s)", u.url, reason)
        else:
            log.info("upstream %s still down (%s, %d failures)", u.url, reason, u.failures)
        u.state = DOWN

    async def connect(self, headers, **kwargs):
        """Open a WebSocket to the first upstream that accepts: (connection, Upstream)."""
        reasons = []
        for u in self.order():
            try:
                ws = await ws_connect(
                    u.url,
                    additional_headers=headers,
                    open_timeout=self.connect_timeout_s,
                    compression=None,  # the stock server would negotiate deflate; audio doesn't compress
                    max_size=2 ** 20,
                    user_agent_header="xiaozhi-mpy-gateway",
                    **kwargs,
                )
            except (TimeoutError, OSError, websockets.InvalidHandshake, websockets.InvalidURI, EOFError) as e:
                reason = _describe(e)
                self.mark_down(u, reason)
                reasons.append(f"{u.url}: {reason}")
                continue
            self.mark_up(u)
            return ws, u
        raise NoUpstream("; ".join(reasons))
