"""Warm upstream connections (--upstream-pool): opened before any device with
the gateway's own headers only, handed to the next device session (whose hello
then crosses an already open connection), refilled behind it, and replaced
when the upstream closes an idle one."""

import asyncio
import time

from gateway_fakes import FakeUpstream, async_test, gateway_for, open_session, recv_until

T = 10


async def until(pred):
    deadline = time.monotonic() + T
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@async_test
async def test_warm_connections_serve_devices_and_are_refilled():
    up = FakeUpstream()
    async with gateway_for(up, upstream_pool=2, upstream_token="gw-token") as (_, gw):
        await until(lambda: len(up.connections) == 2)
        warm = up.connections[0]
        # Opened before any device: the gateway's headers only, never a device identity.
        assert "Device-Id" not in warm["headers"] and warm["headers"]["Authorization"] == "Bearer gw-token"
        ws, sh = await open_session(gw)
        assert sh["type"] == "hello"
        used = [c for c in up.connections if c["text"]]
        assert len(used) == 1 and '"hello"' in used[0]["text"][0]
        assert "Device-Id" not in used[0]["headers"]  # the documented caveat: no per-device handshake
        await ws.send('{"type":"listen","state":"stop"}')
        await recv_until(ws, lambda m: m.get("type") == "tts" and m.get("state") == "stop")
        await until(lambda: gw.warm.ready() == 2 and len(up.connections) == 3)  # refilled behind the device
        await ws.close()

        # The upstream closes an idle warm connection: it is replaced, not handed out dead.
        idle = next(c for c in up.connections if not c["text"])
        await idle["ws"].close(1000, "idle")
        await until(lambda: len(up.connections) == 4 and gw.warm.ready() == 2)
        ws, sh = await open_session(gw)
        assert sh["type"] == "hello"
        await ws.close()


@async_test
async def test_without_the_pool_each_device_gets_its_own_handshake():
    up = FakeUpstream()
    async with gateway_for(up) as (_, gw):
        assert gw.warm is None
        ws, sh = await open_session(gw)
        assert sh["type"] == "hello" and len(up.connections) == 1
        assert up.connections[0]["headers"]["Device-Id"] == "aa:bb:cc:dd:ee:ff"
        await ws.close()
