"""Several upstreams: failover when one refuses or dies at connect time, health in the logs."""

import asyncio
import logging

from gateway_fakes import FakeClock, FakeUpstream, async_test, closed_with, dead_port, open_device, open_session
from websockets.asyncio.server import serve

from tools.gateway.config import Config
from tools.gateway.proxy import Gateway
from tools.gateway.upstreams import DOWN, UP


def _url(port):
    return "ws://127.0.0.1:%d/xiaozhi/v1/" % port


async def _talks(gw):
    ws, sh = await open_session(gw)
    await ws.close()
    return sh["type"] == "hello"


@async_test
async def test_failover_to_second_upstream_and_health_logs(caplog):
    caplog.set_level(logging.INFO, logger="gateway")
    dead = _url(dead_port())

    # An upstream that accepts TCP and dies before the handshake.
    async def slam(reader, writer):
        writer.transport.abort()
    dier = await asyncio.start_server(slam, "127.0.0.1", 0)
    dier_url = _url(dier.sockets[0].getsockname()[1])

    # An upstream that refuses with HTTP 503.
    async def reject(conn, request):
        return conn.respond(503, "maintenance\n")
    busy = await serve(lambda ws: None, "127.0.0.1", 0, process_request=reject)
    busy_url = _url(busy.sockets[0].getsockname()[1])

    good = await FakeUpstream().start()
    mono = FakeClock()
    gw = await Gateway(Config(listen_port=0, upstreams=[dead, dier_url, busy_url, good.url],
                              upstream_retry_s=30), mono=mono).start()
    try:
        assert await _talks(gw)
        states = {u.url: u for u in gw.pool.upstreams}
        assert states[dead].state == DOWN and "Connect" in states[dead].last_error
        assert states[busy_url].state == DOWN and states[busy_url].last_error == "HTTP 503"
        assert states[dier_url].state == DOWN
        assert states[good.url].state == UP and len(good.connections) == 1
        logs = caplog.text
        for u in (dead, dier_url, busy_url):
            assert "upstream %s is DOWN" % u in logs
        assert "upstream %s is UP" % good.url in logs

        # While the others are marked down, the healthy one is tried first.
        caplog.clear()
        assert await _talks(gw)
        assert "DOWN" not in caplog.text and "still down" not in caplog.text
        assert len(good.connections) == 2

        # Down upstreams whose retry delay has passed are tried before ones that failed recently.
        mono.t += 31
        gw.pool.mark_down(states[dead], "refused")
        assert [u.url for u in gw.pool.order()] == [good.url, dier_url, busy_url, dead]
        mono.t += 31
        assert [u.url for u in gw.pool.order()] == [good.url, dead, dier_url, busy_url]
    finally:
        await gw.stop()
        await good.stop()
        busy.close()
        dier.close()


@async_test
async def test_all_upstreams_down_closes_device_with_reason():
    urls = [_url(dead_port()) for _ in range(2)]
    gw = await Gateway(Config(listen_port=0, upstreams=urls)).start()
    try:
        assert await closed_with(await open_device(gw)) == (1013, "no upstream reachable")
        fail = gw.audit.find("upstream_fail")[0]
        assert all(u in fail["reason"] for u in urls)
    finally:
        await gw.stop()


@async_test
async def test_recovered_upstream_is_marked_up_again(caplog):
    caplog.set_level(logging.INFO, logger="gateway")
    port = dead_port()
    url = _url(port)
    gw = await Gateway(Config(listen_port=0, upstreams=[url])).start()
    try:
        assert (await closed_with(await open_device(gw)))[0] == 1013
        assert gw.pool.upstreams[0].state == DOWN
        up = FakeUpstream()
        up._server = await serve(up._handle, "127.0.0.1", port, compression=None)
        up.port = port
        assert await _talks(gw)
        assert gw.pool.upstreams[0].state == UP
        assert "upstream %s is UP again after 1 failures" % url in caplog.text
        await up.stop()
    finally:
        await gw.stop()
