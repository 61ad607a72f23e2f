"""tools.dev doctor against real hops: the gateway in front of the mock server in Opus mode (as stock),
the stock-like server reached directly, a gateway whose upstream is down, and no OTA service."""
import asyncio
import os
import sys

from gateway_fakes import async_test, dead_port

from tools.gateway.config import Config
from tools.gateway.proxy import Gateway
from tools.mock_server.server import MockServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


async def doctor(*args):
    p = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools.dev", "doctor", "--ssid", "home", *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    so, se = await asyncio.wait_for(p.communicate(), 60)
    return p.returncode, so.decode() + se.decode()


@async_test
async def test_all_hops_through_the_gateway():
    mock = await MockServer(format="opus").start()
    gw = await Gateway(Config(listen_port=0, upstreams=[mock.url])).start()
    try:
        code, out = await doctor("--ota-url", "http://127.0.0.1:%d/xiaozhi/ota/" % gw.port)
    finally:
        await gw.stop()
        await mock.aclose()
    assert code == 0, out
    for hop in ("config", "ota", "gateway", "upstream"):
        assert any(line.startswith("ok") and hop in line for line in out.splitlines()), (hop, out)
    assert "Traceback" not in out


@async_test
async def test_a_stock_server_reached_directly_is_named():
    mock = await MockServer(format="opus").start()
    try:
        code, out = await doctor("--ws-url", mock.url)
    finally:
        await mock.aclose()
    assert code == 1, out
    fail = [line for line in out.splitlines() if line.startswith("dev: FAILED:")]
    assert len(fail) == 1 and "opus" in fail[0].lower() and "tools.gateway" in fail[0], out


@async_test
async def test_a_dead_upstream_is_the_broken_hop():
    gw = await Gateway(Config(listen_port=0, upstreams=["ws://127.0.0.1:%d/xiaozhi/v1/" % dead_port()],
                              upstream_connect_timeout_s=1)).start()
    try:
        code, out = await doctor("--ws-url", "ws://127.0.0.1:%d/xiaozhi/v1/" % gw.port)
    finally:
        await gw.stop()
    assert code == 1, out
    assert "dev: FAILED: upstream:" in out and "Traceback" not in out, out


@async_test
async def test_no_ota_service_is_the_broken_hop():
    code, out = await doctor("--ota-url", "http://127.0.0.1:%d/xiaozhi/ota/" % dead_port())
    assert code == 1, out
    assert "dev: FAILED: ota: nothing answers" in out and "points at this PC" in out, out


@async_test
async def test_no_url_at_all_is_a_config_failure():
    code, out = await doctor()
    assert code == 1 and "dev: FAILED: config: neither ota_url nor ws_url" in out, out
