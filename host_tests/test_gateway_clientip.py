"""The device's address behind a reverse proxy: only a trusted proxy's X-Real-IP /
X-Forwarded-For count, so devices behind nginx get one per-IP budget each, and a
device talking to the gateway directly cannot pick its own address."""

import ipaddress

import pytest
from gateway_fakes import (
    CID,
    DEV,
    FakeClock,
    FakeOta,
    async_test,
    closed_with,
    gateway_for,
    http,
    open_device,
    open_session,
    serving,
)

from tools.common.tokens import sign
from tools.gateway.clientip import client_ip, networks
from tools.gateway.config import Auth, Config, ConfigError, Limits, apply_dict

LOCAL = ["127.0.0.1"]  # the test's "nginx" is the test itself, on loopback
SECRET = "peer-test-secret"
NOW = 1795784743.0


def headers(device, **extra):
    h = {"Device-Id": device, "Client-Id": CID, "Protocol-Version": "1"}
    h.update({k.replace("_", "-"): v for k, v in extra.items()})
    return h


def test_client_ip_rules():
    trusted = networks(["127.0.0.1/32", "10.0.0.0/8"])
    assert client_ip("127.0.0.1", [("X-Real-IP", "203.0.113.7")], trusted) == "203.0.113.7"
    # X-Forwarded-For: the last hop is the address the proxy saw; earlier ones are the client's say.
    assert client_ip("10.1.2.3", [("X-Forwarded-For", "1.1.1.1, 203.0.113.8")], trusted) == "203.0.113.8"
    assert client_ip("10.1.2.3", [("x-forwarded-for", "1.1.1.1"), ("X-Forwarded-For", "203.0.113.9")],
                     trusted) == "203.0.113.9"
    assert client_ip("::ffff:127.0.0.1", [("X-Real-IP", "2001:db8::1")], trusted) == "2001:db8::1"
    # Untrusted peer: headers ignored.
    assert client_ip("198.51.100.1", [("X-Real-IP", "203.0.113.7"), ("X-Forwarded-For", "203.0.113.7")],
                     trusted) == "198.51.100.1"
    # Not one IP address (a log-injection attempt, a list, a name): the peer's own address stays.
    for bad in ("203.0.113.7\nFAKE LOG LINE", "1.2.3.4 5.6.7.8", "nginx", ""):
        assert client_ip("127.0.0.1", [("X-Real-IP", bad)], trusted) == "127.0.0.1"
    assert client_ip("127.0.0.1", [], trusted) == "127.0.0.1"
    assert client_ip("127.0.0.1", [("X-Real-IP", "203.0.113.7")], []) == "127.0.0.1"


@pytest.mark.parametrize("value, key", [
    ("127.0.0.1", "'trusted_proxies'"),
    (["127.0.0.1", "nginx"], "'trusted_proxies[1]'"),
    ([10], "'trusted_proxies[0]'"),
    (["10.0.0.0/33"], "'trusted_proxies[0]'"),
])
def test_bad_trusted_proxies_name_the_key(value, key):
    with pytest.raises(ConfigError) as e:
        apply_dict(Config(), {"trusted_proxies": value})
    assert key in str(e.value)


def test_trusted_proxies_are_normalised():
    cfg = apply_dict(Config(), {"trusted_proxies": ["127.0.0.1", " 10.1.2.3/8", "::1"]})
    assert cfg.trusted_proxies == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    assert all(isinstance(n, ipaddress.IPv4Network | ipaddress.IPv6Network) for n in networks(cfg.trusted_proxies))


@async_test
async def test_devices_behind_a_trusted_proxy_have_a_budget_each():
    limits = Limits(connections_per_minute_per_ip=1)
    async with gateway_for(None, limits=limits, trusted_proxies=LOCAL) as (up, gw):
        a, _ = await open_session(gw, headers=headers("dev-a", X_Real_IP="203.0.113.1"))
        b, _ = await open_session(gw, headers=headers("dev-b", X_Forwarded_For="203.0.113.2"))
        # The same address again is over its budget of one.
        again = await open_device(gw, headers=headers("dev-c", X_Real_IP="203.0.113.1"))
        assert await closed_with(again) == (4429, "rate limit: connections per minute per IP (1)")
        ips = [(r["device"], r["ip"]) for r in gw.audit.find("connect")]
        assert ips == [("dev-a", "203.0.113.1"), ("dev-b", "203.0.113.2"), ("dev-c", "203.0.113.1")]
        await a.close()
        await b.close()


@async_test
async def test_spoofed_forwarding_headers_from_an_untrusted_peer_are_ignored():
    limits = Limits(connections_per_minute_per_ip=1)
    for trusted in ([], ["10.0.0.0/8"]):  # none, or a proxy that is not this peer
        async with gateway_for(None, limits=limits, trusted_proxies=trusted) as (up, gw):
            a, _ = await open_session(gw, headers=headers("dev-a", X_Forwarded_For="203.0.113.1",
                                                          X_Real_IP="203.0.113.1"))
            b = await open_device(gw, headers=headers("dev-b", X_Forwarded_For="203.0.113.2",
                                                      X_Real_IP="203.0.113.2"))
            assert await closed_with(b) == (4429, "rate limit: connections per minute per IP (1)")
            assert {r["ip"] for r in gw.audit.find("connect")} == {"127.0.0.1"}
            await a.close()


@async_test
async def test_failed_auths_behind_the_proxy_do_not_lock_other_devices_out():
    clock = FakeClock(NOW)
    auth = Auth(enabled=True, devices={DEV: SECRET})
    limits = Limits(connections_per_minute_per_ip=2)
    async with gateway_for(None, clock=clock, auth=auth, limits=limits, trusted_proxies=LOCAL) as (up, gw):
        attacker = headers(DEV, X_Real_IP="198.51.100.66", Authorization="Bearer forged.1795784743")
        for _ in range(2):
            ws = await open_device(gw, headers=attacker)
            assert (await closed_with(ws))[0] == 4401
        ws = await open_device(gw, headers=attacker)
        assert (await closed_with(ws))[0] == 4429  # the attacker's own budget is spent
        token = sign(SECRET, CID, DEV, int(NOW))
        ws, hello = await open_session(gw, headers=headers(DEV, X_Real_IP="203.0.113.1",
                                                           Authorization="Bearer " + token))
        assert hello["type"] == "hello"  # the real device, behind the same nginx, still gets in
        await ws.close()


@async_test
async def test_ota_forwards_the_resolved_address_not_the_clients_claim():
    for trusted, want in ((LOCAL, "203.0.113.5"), ([], "127.0.0.1")):
        ota = FakeOta()
        async with serving(ota):
            async with gateway_for(None, upstream_ota=ota.url, trusted_proxies=trusted) as (up, gw):
                status, _, _ = await http(gw.port, "POST", "/xiaozhi/ota/", b"{}",
                                          [("Device-Id", DEV), ("X-Real-IP", "203.0.113.5"),
                                           ("X-Forwarded-For", "203.0.113.5")])
                assert status == 200
                h = ota.requests[0]["headers"]
                assert h["x-forwarded-for"] == want and h["x-real-ip"] == want, h
                assert gw.audit.find("ota")[0]["ip"] == want
