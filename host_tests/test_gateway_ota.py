"""OTA proxy on the gateway's WebSocket port: URL rewrite, firmware stripped,
upstream token kept for the upstream connection, activation pass-through,
answers from config, and clear errors."""

import asyncio
import contextlib
import json

from gateway_fakes import CID, DEV, FakeOta, T, async_test, dead_port, gateway_for, http, open_session, serving

from tools.gateway.ota_proxy import rewrite_ota_reply

OTA_HEADERS = (("Device-Id", DEV), ("Client-Id", CID), ("Content-Type", "application/json"),
               ("User-Agent", "bread-compact-s3/0.1.0"))
BODY = json.dumps({"version": 2, "mac_address": DEV, "uuid": CID,
                   "application": {"name": "xiaozhi-mpy", "version": "0.1.0"}}).encode()


@contextlib.asynccontextmanager
async def proxying(**cfg):
    """A FakeOta and a gateway whose upstream OTA it is: (ota, up, gw)."""
    async with serving(FakeOta()) as (ota,), gateway_for(None, upstream_ota=ota.url, **cfg) as (up, gw):
        yield ota, up, gw


def test_rewrite_ota_reply_unit():
    out, tok = rewrite_ota_reply({"firmware": {"url": "x"}, "websocket": {"url": "ws://a/", "token": "t",
                                                                          "version": 3},
                                  "server_time": {"timestamp": 1}, "activation": {"code": "123456"}},
                                 "ws://gw:1/xiaozhi/v1/")
    assert out == {"server_time": {"timestamp": 1}, "activation": {"code": "123456"},
                   "websocket": {"url": "ws://gw:1/xiaozhi/v1/"}}
    assert tok == "t"
    out, tok = rewrite_ota_reply({"mqtt": {"endpoint": "m"}}, "ws://gw/")
    assert out == {"websocket": {"url": "ws://gw/"}} and tok is None
    out, tok = rewrite_ota_reply({"server_time": {}}, "ws://gw/")
    assert out == {"server_time": {}} and tok is None


@async_test
async def test_ota_proxy_rewrites_url_strips_firmware_and_uses_upstream_token():
    async with proxying() as (ota, up, gw):
        status, hd, body = await http(gw.port, "POST", "/xiaozhi/ota/", BODY, OTA_HEADERS)
        assert status == 200 and hd["content-type"] == "application/json"
        reply = json.loads(body)
        assert reply == {"server_time": {"timestamp": 1795784881299, "timezone_offset": 480},
                         "websocket": {"url": "ws://127.0.0.1:%d/xiaozhi/v1/" % gw.port}}
        # Forwarded with the device's headers and body.
        req = ota.requests[0]
        assert req["method"] == "POST" and req["path"] == "/xiaozhi/ota/" and req["body"] == BODY
        assert req["headers"]["device-id"] == DEV and req["headers"]["client-id"] == CID
        assert req["headers"]["user-agent"] == "bread-compact-s3/0.1.0"
        assert req["headers"]["x-forwarded-for"] == "127.0.0.1"
        rec = gw.audit.find("ota", device=DEV)[0]
        assert rec["stripped_firmware"] is True and rec["got_upstream_auth"] is True
        assert "upstream-issued-token" not in json.dumps(gw.audit.records)
        # The upstream token from the OTA reply authenticates the device's upstream session.
        ws, _ = await open_session(gw)
        assert up.connections[0]["headers"]["Authorization"] == "Bearer upstream-issued-token"
        await ws.close()


@async_test
async def test_activation_passes_through():
    async with proxying() as (ota, up, gw):
        status, hd, body = await http(gw.port, "POST", "/xiaozhi/ota/activate", b"{}", OTA_HEADERS)
        assert status == 202 and json.loads(body) == {"pending": True}
        assert ota.requests[0]["path"] == "/xiaozhi/ota/activate"


@async_test
async def test_mqtt_reply_becomes_websocket_and_public_url_wins():
    async with proxying(public_url="wss://gw.example/xiaozhi/v1/") as (ota, up, gw):
        ota.mqtt = True
        status, _, body = await http(gw.port, "POST", "/xiaozhi/ota/", BODY, OTA_HEADERS)
        reply = json.loads(body)
        assert status == 200 and "mqtt" not in reply and "firmware" not in reply
        assert reply["websocket"] == {"url": "wss://gw.example/xiaozhi/v1/"}


@async_test
async def test_without_upstream_ota_the_gateway_answers_from_config():
    async with gateway_for(None, clock=lambda: 1795784881.299, ota_timezone_offset=480) as (up, gw):
        status, _, body = await http(gw.port, "POST", "/xiaozhi/ota/", BODY, OTA_HEADERS)
        assert status == 200
        assert json.loads(body) == {"server_time": {"timestamp": 1795784881299, "timezone_offset": 480},
                                    "websocket": {"url": "ws://127.0.0.1:%d/xiaozhi/v1/" % gw.port}}
        status, _, body = await http(gw.port, "POST", "/xiaozhi/ota/activate", b"{}", OTA_HEADERS)
        assert status == 200 and json.loads(body) == {"success": True}


@async_test
async def test_upstream_ota_down_is_a_clear_502():
    dead = dead_port()
    async with gateway_for(None, upstream_ota="http://127.0.0.1:%d/xiaozhi/ota/" % dead) as (up, gw):
        status, _, body = await http(gw.port, "POST", "/xiaozhi/ota/", BODY, OTA_HEADERS)
        msg = json.loads(body)
        assert status == 502 and msg["success"] is False
        assert msg["message"].startswith("upstream OTA http://127.0.0.1:%d/xiaozhi/ota/ failed" % dead)


@async_test
async def test_upstream_ota_broken_reply_is_a_clear_502():
    async with proxying() as (ota, up, gw):
        ota.raw_reply = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
        status, _, body = await http(gw.port, "POST", "/xiaozhi/ota/", BODY, OTA_HEADERS)
        assert status == 502 and json.loads(body)["message"] == "upstream OTA reply is not a JSON object"


@async_test
async def test_http_edge_cases_on_the_shared_port():
    async with proxying() as (ota, up, gw):
        status, _, body = await http(gw.port, "GET", "/xiaozhi/ota/")
        assert status == 200 and b"ws://127.0.0.1:%d/xiaozhi/v1/" % gw.port in body
        status, _, body = await http(gw.port, "GET", "/")
        assert status == 200 and body == b"Server is running\n"
        status, _, _ = await http(gw.port, "POST", "/elsewhere", b"{}")
        assert status == 404
        status, _, _ = await http(gw.port, "PUT", "/xiaozhi/ota/", b"{}")
        assert status == 405
        status, _, body = await http(gw.port, "POST", "/xiaozhi/ota/", b"", (("Content-Length", "99999999"),))
        assert status == 413 and b"65536" in body
        # chunked request body: refused with a reason
        r, w = await asyncio.open_connection("127.0.0.1", gw.port)
        w.write(b"POST /xiaozhi/ota/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        data = await asyncio.wait_for(r.read(), T)
        w.close()
        assert data.startswith(b"HTTP/1.1 411 ") and b"Content-Length" in data
        assert ota.requests == []
        # WebSocket still works on the same port afterwards
        ws, sh = await open_session(gw)
        assert sh["type"] == "hello"
        await ws.close()
