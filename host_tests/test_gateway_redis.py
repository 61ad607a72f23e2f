"""Shared gateway state in a real redis-server: a token accepted by one gateway
instance is refused by another, connect limits hold across instances, and
Redis going away gives the configured policy, logged, with no crash."""

import asyncio
import logging

import pytest
import redis
from gateway_fakes import CID, DEV, FakeUpstream, async_test, closed_with, open_device, open_session, serving
from services import RedisServer

from tools.gateway.auth import sign
from tools.gateway.config import Auth, Config, Limits, Redis
from tools.gateway.proxy import Gateway

SECRET = "redis-test-secret"


@pytest.fixture
def redis_server(tmp_path):
    r = RedisServer(tmp_path).start()
    yield r
    r.stop()


def _gateway(up, redis_url="", fail_open=False, **cfg):
    return Gateway(Config(listen_port=0, upstreams=[up.url], redis=Redis(redis_url, fail_open), **cfg))


def _auth():
    return Auth(enabled=True, window_s=300, devices={DEV: SECRET})


_last_ts = [2 ** 62]


def _headers(gw, dev=DEV):
    """A fresh token each call, so only a deliberate reuse is a replay: its ts is
    below every earlier one (now minus an age would repeat when a second passes
    between two calls on a loaded machine)."""
    ts = _last_ts[0] = min(int(gw.clock()), _last_ts[0] - 1)
    return {"Device-Id": dev, "Client-Id": CID, "Protocol-Version": "1",
            "Authorization": "Bearer " + sign(SECRET, CID, dev, ts)}


async def _accepted(gw, headers):
    ws, sh = await open_session(gw, headers=headers)
    await ws.close()
    return sh["type"] == "hello"


@async_test
async def test_token_replayed_against_a_second_instance_is_refused(redis_server):
    up = FakeUpstream()
    async with serving(up):
        a, b = _gateway(up, redis_server.url, auth=_auth()), _gateway(up, redis_server.url, auth=_auth())
        async with serving(a, b):
            h = _headers(a)
            assert await _accepted(a, h)
            assert await closed_with(await open_device(b, headers=h)) == (4401, "auth failed")
            assert await closed_with(await open_device(a, headers=h)) == (4401, "auth failed")
            # The device is told only "auth failed"; the audit of each instance has the reason.
            assert [r["reason"] for r in b.audit.find("auth")] == ["token replayed"]
            assert [r["reason"] for r in a.audit.find("auth")] == ["ok", "token replayed"]
            # One key per accepted token, expiring, and no bearer token stored in Redis.
            r = redis.Redis.from_url(redis_server.url)
            keys = r.keys("xzgw:replay:*")
            assert len(keys) == 1 and h["Authorization"].split()[1].encode() not in keys[0]
            assert 0 < r.ttl(keys[0]) <= 601
            r.close()
        # Control: without Redis each instance has its own replay cache and the replay gets through.
        a, b = _gateway(up, auth=_auth()), _gateway(up, auth=_auth())
        async with serving(a, b):
            h = _headers(a)
            assert await _accepted(a, h) and await _accepted(b, h)


@async_test
async def test_connect_limit_holds_across_instances(redis_server):
    limits = Limits(connections_per_minute_per_device=3, connections_per_minute_per_ip=0)
    up = FakeUpstream()
    async with serving(up):
        a, b = _gateway(up, redis_server.url, limits=limits), _gateway(up, redis_server.url, limits=limits)
        async with serving(a, b):
            for gw in (a, b, a):
                ws, sh = await open_session(gw)
                assert sh["type"] == "hello"
                await ws.close()
            for gw in (b, a):
                assert await closed_with(await open_device(gw)) == (
                    4429, "rate limit: connections per minute per device (3)")
            # Another device has its own window.
            other = {"Device-Id": "aa:bb:cc:dd:ee:01", "Client-Id": CID, "Protocol-Version": "1"}
            ws, sh = await open_session(b, headers=other)
            assert sh["type"] == "hello"
            await ws.close()


@async_test
async def test_failed_auths_through_one_instance_spend_the_ip_budget_of_another(redis_server):
    limits = Limits(connections_per_minute_per_ip=2)
    forged = {"Device-Id": DEV, "Client-Id": CID, "Protocol-Version": "1",
              "Authorization": "Bearer " + "A" * 43 + ".1795784743"}
    up = FakeUpstream()
    async with serving(up):
        for url in (redis_server.url, ""):
            a, b = (_gateway(up, url, auth=_auth(), limits=limits) for _ in range(2))
            async with serving(a, b):
                for _ in range(2):
                    assert await closed_with(await open_device(a, headers=forged)) == (4401, "auth failed")
                if url:  # shared: b counts a's failures, so even a valid token from that IP waits
                    ws = await open_device(b, headers=_headers(b))
                    assert await closed_with(ws) == (4429, "rate limit: connections per minute per IP (2)")
                    assert not b.audit.find("auth")  # refused before the token check
                    r = redis.Redis.from_url(redis_server.url)
                    assert r.zcard("xzgw:conn:ip:127.0.0.1") == 2
                    r.close()
                else:  # control: per process, b never saw them
                    assert await _accepted(b, _headers(b))


@async_test
async def test_parallel_failed_auths_cannot_overshoot_the_ip_budget(redis_server):
    """Twelve forged connects at once through two instances: the IP's budget (3)
    is taken atomically as each arrives, so only 3 reach the token check and the
    rest are refused by the rate limit, however the round trips interleave."""
    limits = Limits(connections_per_minute_per_ip=3)
    forged = {"Device-Id": DEV, "Client-Id": CID, "Protocol-Version": "1",
              "Authorization": "Bearer " + "A" * 43 + ".1795784743"}
    up = FakeUpstream()
    async with serving(up):
        a, b = (_gateway(up, redis_server.url, auth=_auth(), limits=limits) for _ in range(2))
        async with serving(a, b):
            async def attempt(gw):
                return await closed_with(await open_device(gw, headers=forged))

            results = await asyncio.gather(*(attempt(gw) for gw in (a, b) * 6))
            checked = len(a.audit.find("auth")) + len(b.audit.find("auth"))
            assert checked == 3 and sorted(c for c, _ in results) == [4401] * 3 + [4429] * 9
            r = redis.Redis.from_url(redis_server.url)
            assert r.zcard("xzgw:conn:ip:127.0.0.1") == 3
            r.close()
            # A valid token from that IP now waits too: the failures are the budget.
            assert (await closed_with(await open_device(a, headers=_headers(a))))[0] == 4429


@async_test
async def test_redis_going_away_fails_closed_logged_and_recovers(redis_server, caplog):
    caplog.set_level(logging.INFO, logger="gateway.redis")
    up = FakeUpstream()
    async with serving(up):
        gw = _gateway(up, redis_server.url, auth=_auth())
        async with serving(gw):
            assert await _accepted(gw, _headers(gw))
            redis_server.stop()
            for _ in range(2):
                assert await closed_with(await open_device(gw, headers=_headers(gw))) == (4401, "auth failed")
            assert [r["reason"] for r in gw.audit.find("auth")][1:] == ["replay cache unavailable"] * 2
            down = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
            assert len(down) == 1, down  # one line per outage, not one per connect
            assert "redis redis://127.0.0.1:%d/0 unreachable" % redis_server.port in down[0], down
            assert "refusing signed connects" in down[0] and "connect limits per process" in down[0], down
            assert gw.shared.errors >= 2
            redis_server.start()
            assert await _accepted(gw, _headers(gw))
            assert any("reachable again" in r.getMessage() for r in caplog.records)


@async_test
async def test_redis_fail_open_accepts_and_unreachable_at_start_is_logged(tmp_path, caplog):
    from services import free_port

    caplog.set_level(logging.INFO, logger="gateway.redis")
    up = FakeUpstream()
    url = "redis://:hunter2-password@127.0.0.1:%d/0" % free_port()  # nothing listens there
    async with serving(up):
        gw = _gateway(up, url, fail_open=True, auth=_auth(),
                      limits=Limits(connections_per_minute_per_device=1))
        async with serving(gw):
            msgs = [r.getMessage() for r in caplog.records]
            assert any("unreachable during start" in m and "accepting tokens unchecked" in m for m in msgs), msgs
            assert not any("hunter2" in m for m in msgs)
            h = _headers(gw)
            assert await _accepted(gw, h)
            # This process's own replay cache and connect window still hold.
            assert await closed_with(await open_device(gw, headers=h)) == (4401, "auth failed")
            assert gw.audit.find("auth")[-1]["reason"] == "token replayed"
            code, reason = await closed_with(await open_device(gw, headers=_headers(gw)))
            assert code == 4429 and "per device (1)" in reason
