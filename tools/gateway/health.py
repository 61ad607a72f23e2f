"""GET /healthz: the gateway answers (liveness) and which upstreams accept a TCP connect.

A TCP connect is enough to tell "reachable" and costs the upstream no
WebSocket session. 200 while at least one upstream is reachable, else 503, so
a load balancer takes a gateway without servers out of rotation.
"""

import asyncio
import json
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


async def healthz(urls, timeout=PROBE_TIMEOUT_S):
    """(HTTP status, JSON body bytes)."""
    upstreams = await asyncio.gather(*(_probe(u, timeout) for u in urls))
    ok = any(u["reachable"] for u in upstreams)
    body = {"status": "ok" if ok else "no upstream reachable", "upstreams": upstreams}
    return (200 if ok else 503), json.dumps(body, separators=(",", ":")).encode()
