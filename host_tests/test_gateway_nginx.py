"""nginx in front of two gateways, for real: the shipped deploy/nginx config
(test ports and a test certificate swapped in) on real nginx, two gateway
processes behind it, the mock server (Opus only, as stock) upstream, and the
real firmware under micropython booting through the OTA endpoint over https
and talking over wss:// with the test CA. A turn completes; one gateway is
killed; the next turn completes through the other. The gateways trust nginx
(--trusted-proxy), so a client's own address reaches their audit, never the
one it claims in X-Real-IP / X-Forwarded-For."""

import asyncio
import http.client
import json
import os
import ssl
import sys
import urllib.request

from gateway_fakes import SPEECH_WAV
from services import GatewayCli, Nginx, free_port, make_pki

from tools.mock_server.server import MockServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SITE = os.path.join(ROOT, "deploy", "nginx", "xiaozhi-gateway.conf")
SIM_DEVICE = "02:00:00:5a:4d:01"  # the sim HAL's default MAC


def site_for(port, gw_ports, pki):
    """The shipped site config with this test's ports and certificate; every swap must hit once."""
    text = open(SITE).read()
    for old, new in (("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
                     ("server 127.0.0.1:8765 ", f"server 127.0.0.1:{gw_ports[0]} "),
                     ("server 127.0.0.1:8766 ", f"server 127.0.0.1:{gw_ports[1]} "),
                     ("/etc/ssl/xiaozhi/fullchain.pem", pki["crt"]),
                     ("/etc/ssl/xiaozhi/privkey.pem", pki["key"])):
        assert text.count(old) == 1, f"{SITE} no longer has {old!r} once"
        text = text.replace(old, new)
    return text


async def sim_turn(ota_url, ca, out):
    p = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools.sim", "--ota", ota_url, "--ca", ca, "--mic", SPEECH_WAV, "--out", str(out),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        so, se = await asyncio.wait_for(p.communicate(), 90)
    except TimeoutError:
        p.kill()
        so, se = await p.communicate()
    return p.returncode, so.decode() + se.decode()


def ota_reply(url, ca_pem):
    ctx = ssl.create_default_context(cafile=ca_pem)
    req = urllib.request.Request(url, data=b"{}", method="POST", headers={"Device-Id": SIM_DEVICE, "Client-Id": "c"})
    with urllib.request.urlopen(req, timeout=20, context=ctx) as r:
        return json.loads(r.read())


def ota_from(port, source_ip, ca_pem, claimed_ip):
    """An OTA POST to nginx from source_ip (any 127.x is local on Linux), claiming another address."""
    ctx = ssl.create_default_context(cafile=ca_pem)
    c = http.client.HTTPSConnection("localhost", port, timeout=20, context=ctx, source_address=(source_ip, 0))
    try:
        c.request("POST", "/xiaozhi/ota/", body=b"{}", headers={
            "Device-Id": SIM_DEVICE, "Client-Id": "c", "Content-Type": "application/json",
            "X-Real-IP": claimed_ip, "X-Forwarded-For": claimed_ip})
        return c.getresponse().status
    finally:
        c.close()


def audit_ips(path):
    with open(path) as f:
        return [r["ip"] for r in map(json.loads, f) if r["event"] == "ota"]


def test_turn_through_nginx_and_two_gateways_survives_one_gateway_dying(tmp_path):
    asyncio.run(asyncio.wait_for(_nginx_stack(tmp_path), 240))


async def _nginx_stack(tmp_path):
    pki = make_pki(tmp_path)
    port = free_port()
    public = f"wss://localhost:{port}/xiaozhi/v1/"
    ota = f"https://localhost:{port}/xiaozhi/ota/"
    mock = await MockServer(format="opus", mcp_list_delay=0.1).start()
    gws = []
    nginx = None
    try:
        audits = [tmp_path / f"audit{i}.jsonl" for i in range(2)]
        for audit in audits:
            gws.append(await asyncio.to_thread(GatewayCli, "--workers", "1", "--upstream", mock.url,
                                               "--public-url", public, "--trusted-proxy", "127.0.0.1",
                                               "--audit-log", str(audit)))
        (tmp_path / "nginx").mkdir()
        nginx = await asyncio.to_thread(Nginx(tmp_path / "nginx", site_for(port, [g.port for g in gws], pki),
                                              port).start)
        # The OTA reply, fetched through nginx, hands out the public wss:// URL.
        reply = await asyncio.to_thread(ota_reply, ota, pki["ca_pem"])
        assert reply["websocket"]["url"] == public, reply
        # nginx's X-Real-IP replaces the claim; the gateway trusts nginx, so it sees the real source.
        assert await asyncio.to_thread(ota_from, port, "127.0.0.2", pki["ca_pem"], "203.0.113.9") == 200
        assert sorted(audit_ips(audits[0]) + audit_ips(audits[1])) == ["127.0.0.1", "127.0.0.2"]

        code, out = await sim_turn(ota, pki["ca_der"], tmp_path / "reply1.wav")
        assert code == 0, out
        assert len(mock.sessions) == 1 and mock.sessions[0].turns, out
        served = [g for g in gws if f"{SIM_DEVICE} (127.0.0.1) connected via" in g.stderr()]
        assert len(served) == 1, [g.stderr() for g in gws]
        first = served[0]
        other = gws[1 - gws.index(first)]

        first.kill()
        code, out = await sim_turn(ota, pki["ca_der"], tmp_path / "reply2.wav")
        assert code == 0, out + nginx.log()[-3000:]
        assert len(mock.sessions) == 2 and mock.sessions[1].turns, out
        assert f"{SIM_DEVICE} (127.0.0.1) connected via" in other.stderr(), other.stderr()
    finally:
        if nginx:
            await asyncio.to_thread(nginx.stop)
        for g in gws:
            await asyncio.to_thread(g.stop)
        await mock.aclose()
