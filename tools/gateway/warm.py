"""Warm upstream connections: K WebSockets to the upstream with the TCP, TLS
and WebSocket handshakes done and no hello sent, so a device's hello does not
wait for them (three round trips over a slow link).

Opt-in ("upstream_pool": K), and only for upstreams that accept it: a warm
connection is opened before any device exists, so its handshake carries no
Device-Id, Client-Id or device Authorization. The stock xiaozhi server binds
those at handshake time and closes a connection without Device-Id, so it does
NOT work with a stock server; it suits an upstream that takes the device's
identity later (or does not need it). The gateway's own upstream_token is sent.
"""

import asyncio
import collections
import logging

import websockets

from .upstreams import NoUpstream

log = logging.getLogger("gateway.warm")


def warm_headers(upstream_token):
    h = [("Protocol-Version", "1")]  # the upstream always gets v1 (bare Opus) framing
    if upstream_token:
        h.append(("Authorization", upstream_token if " " in upstream_token else "Bearer " + upstream_token))
    return h


class WarmPool:
    def __init__(self, upstreams, size, upstream_token="", retry_s=1.0, check_s=1.0):
        self.upstreams = upstreams  # upstreams.UpstreamPool: failover and health stay in one place
        self.size = size
        self.headers = warm_headers(upstream_token)
        self.retry_s = retry_s
        self.check_s = check_s  # how often idle connections the upstream closed are replaced
        self._ready = collections.deque()  # (connection, Upstream)
        self._wake = asyncio.Event()
        self._task = None

    def start(self):
        self._task = asyncio.create_task(self._fill())
        log.info("keeping %d warm upstream connections", self.size)

    def take(self):
        """An open warm connection (connection, Upstream), or None when none is ready."""
        self._wake.set()  # refill behind the taker
        while self._ready:
            ws, u = self._ready.popleft()
            if ws.state is websockets.State.OPEN:
                return ws, u
        return None

    def ready(self):
        return sum(1 for ws, _ in self._ready if ws.state is websockets.State.OPEN)

    async def _fill(self):
        while True:
            self._ready = collections.deque(c for c in self._ready if c[0].state is websockets.State.OPEN)
            if len(self._ready) < self.size:
                try:
                    self._ready.append(await self.upstreams.connect(self.headers, ping_interval=None))
                except NoUpstream:  # UpstreamPool has logged which upstream failed and why
                    await asyncio.sleep(self.retry_s)
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.check_s)
            except TimeoutError:
                pass

    async def close(self):
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await asyncio.gather(*(ws.close(1001, "gateway stopping") for ws, _ in self._ready))
        self._ready.clear()
