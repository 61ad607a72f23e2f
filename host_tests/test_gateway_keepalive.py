"""Keepalive on both links: an upstream that stops answering (WebSocket PING or
the stock JSON ping) ends the device's session with 1011 and a reason that
says so; one that answers is kept, and its pongs never reach the device; a
device that stops answering the gateway's PINGs is dropped and its upstream closed."""

import asyncio
import json

from gateway_fakes import FakeUpstream, T, async_test, closed_with, gateway_for, open_session, recv_until

from tools.gateway import metrics
from tools.gateway.config import Keepalive

# A short ping so tests are quick; a timeout long enough that a loaded machine never misses an answer.
FAST = {"upstream_ping_s": 0.2, "upstream_timeout_s": 3}


@async_test
async def test_upstream_that_stops_answering_pings_ends_the_session_clearly():
    before = metrics.UPSTREAM_KEEPALIVE_TIMEOUTS.value()
    async with gateway_for(None, keepalive=Keepalive(**FAST)) as (up, gw):
        ws, _ = await open_session(gw)
        up.stop_answering()
        assert await closed_with(ws) == (1011, "upstream not answering (no keepalive reply within 3 s)")
        close = gw.audit.find("close")[-1]
        assert close["side"] == "keepalive" and close["code"] == 1011
    assert metrics.UPSTREAM_KEEPALIVE_TIMEOUTS.value() - before == 1


@async_test
async def test_json_ping_mode_keeps_an_answering_upstream_and_hides_its_pongs():
    up = FakeUpstream()
    up.json_ping = True
    async with gateway_for(up, keepalive=Keepalive(upstream_mode="json", **FAST)) as (up, gw):
        ws, _ = await open_session(gw)
        for _ in range(3):  # three keepalive rounds answered: the session stays up
            up.pinged.clear()
            await asyncio.wait_for(up.pinged.wait(), T)
        await ws.send(json.dumps({"type": "listen", "state": "detect", "text": "hi"}))
        texts, _, _ = await recv_until(ws, lambda m: m.get("type") == "tts" and m.get("state") == "stop")
        assert all(json.loads(t).get("type") != "pong" for t in texts)  # the gateway's pongs stay with it
        up.stop_answering()
        assert await closed_with(ws) == (1011, "upstream not answering (no keepalive reply within 3 s)")


@async_test
async def test_json_ping_to_a_server_without_enable_websocket_ping_is_found_dead():
    # Stock default: JSON pings are ignored, so "json" mode is only for servers that enable them.
    async with gateway_for(None, keepalive=Keepalive(upstream_mode="json", **FAST)) as (up, gw):
        ws, _ = await open_session(gw)
        assert (await closed_with(ws))[0] == 1011
        assert up.json_pings >= 1


@async_test
async def test_device_that_stops_answering_pings_is_dropped():
    ka = Keepalive(device_ping_s=0.2, device_timeout_s=0.5)
    async with gateway_for(None, keepalive=ka) as (up, gw):
        ws, _ = await open_session(gw)
        ws.transport.pause_reading()  # a hung device: it reads nothing, answers no PING
        # Found within ping + timeout; websockets then waits its 10 s close_timeout for the dead
        # device's close reply before dropping the TCP connection.
        await asyncio.wait_for(up.closed.wait(), 10 + 2 * T)
        code, reason = up.connections[0]["close"]
        assert code == 1000 and reason.startswith("device session ended (device 1011 keepalive ping timeout"), reason
        assert gw.audit.find("session_end")
        ws.transport.abort()


def test_firmware_logs_why_the_gateway_ended_its_session_on_a_dead_upstream(tmp_path):
    from test_gateway_e2e import _firmware

    def drive(url, silence_upstream):
        fw = _firmware(url, tmp_path)
        try:
            fw.send("press")
            fw.wait_for("listening never started", "tx", 20, type="listen", state="start")
            silence_upstream()
            return fw.wait_for("no close after the upstream went silent", "closed", 20)["d"]["reason"]
        finally:
            fw.send("release")
            fw.stop()

    async def main():
        async with gateway_for(None, keepalive=Keepalive(**FAST)) as (up, gw):
            url = "ws://127.0.0.1:%d/xiaozhi/v1/" % gw.port
            loop = asyncio.get_running_loop()
            # stop_answering touches the upstream's transports: it runs on this loop, not the driver thread.
            reason = await asyncio.to_thread(drive, url, lambda: loop.call_soon_threadsafe(up.stop_answering))
            assert reason == "server closed (code 1011, upstream not answering (no keepalive reply within 3 s))"

    asyncio.run(main())


@async_test
async def test_reply_faster_than_real_time_is_not_taken_for_a_dead_upstream():
    # The whole reply arrives at once and the pacer lets it out at 60 ms a frame, so
    # the upstream's PONG waits behind ~3 s of audio: three times the timeout.
    # The frames themselves are the proof of life.
    up = FakeUpstream(tts_frames=50)
    async with gateway_for(up, keepalive=Keepalive(upstream_ping_s=0.2, upstream_timeout_s=1)) as (up, gw):
        ws, _ = await open_session(gw)
        await ws.send(json.dumps({"type": "listen", "state": "detect", "text": "hi"}))
        _, _, sizes = await recv_until(ws, lambda m: m.get("type") == "tts" and m.get("state") == "stop")
        assert len(sizes) == len(up.tts_packets) + len(up.prompt_packets) == 55
        assert not gw.audit.find("close")  # nobody ended the session
        await asyncio.wait_for(await ws.ping(), T)  # and it is still up
        await ws.close()
