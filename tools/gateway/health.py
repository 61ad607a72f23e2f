"""GET /healthz: the gateway answers (liveness) and which upstreams accept a TCP connect.

A TCP connect is enough to tell "reachable" and costs the upstream no
WebSocket session. 200 while at least one upstream is reachable, else 503, so
a load balancer takes a gateway without servers out of rotation.
"""

import asyncio
import json
import time
import urllib.parse

PROBE_TIMEOUT_S = 2.0


async def _probe(url, timeout):
    u = urllib.parse.urlsplit(url)
    port = u.port or (443 if u.scheme == "wss" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(u.hostname, port), timeout)
    except TimeoutError:
        return {"url": url, "reachable": False, "error": "connect timeout"}
    except OSError as e:
        return {"url": url, "reachable": False, "error": e.strerror or type(e).__name__}
    writer.close()
    return {"url": url, "reachable": True}


class HealthCheck:
    """The answer is reused for CACHE_S, so a client hammering /healthz cannot make
    the gateway hammer its upstreams with connects."""

    CACHE_S = 1.0

    def __init__(self, urls, clock=time.monotonic, timeout=PROBE_TIMEOUT_S):
        self.urls = list(urls)
        self.clock = clock
        self.timeout = timeout
        self._last = None  # (clock() when probed, (status, body))
        self._lock = asyncio.Lock()

    async def check(self):
        """(HTTP status, JSON body bytes)."""
        async with self._lock:  # concurrent requests wait for one probe instead of starting their own
            if self._last is None or self.clock() - self._last[0] >= self.CACHE_S:
                upstreams = await asyncio.gather(*(_probe(u, self.timeout) for u in self.urls))
                ok = any(u["reachable"] for u in upstreams)
                body = {"status": "ok" if ok else "no upstream reachable", "upstreams": upstreams}
                self._last = (self.clock(), ((200 if ok else 503), json.dumps(body, separators=(",", ":")).encode()))
            return self._last[1]
