"""--workers: N gateway processes on one port under a supervisor that restarts
a dead worker and stops them all on SIGTERM; with --redis a token replayed
across workers is still refused once accepted."""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import websockets
from gateway_fakes import CID, DEV, FakeUpstream, hello, serving
from services import GatewayCli as Cli
from services import RedisServer
from websockets.asyncio.client import connect

from tools.gateway.auth import sign

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T = 20
SECRET = "workers-test-secret"


def _ota(port):
    req = urllib.request.Request("http://127.0.0.1:%d/xiaozhi/ota/" % port, data=b"{}", method="POST",
                                 headers={"Device-Id": DEV, "Client-Id": CID})
    with urllib.request.urlopen(req, timeout=T) as r:
        return json.loads(r.read())


def _gone(pid):
    return not os.path.exists(f"/proc/{pid}")


def test_workers_share_a_port_dead_worker_is_restarted_sigterm_stops_all():
    gw = Cli("--workers", "2", "--upstream", "ws://127.0.0.1:9/xiaozhi/v1/")
    try:
        assert gw.ready.rstrip().endswith("with 2 workers"), gw.ready
        assert "2 workers without redis: each keeps its own replay cache" in gw.stderr()
        pids = {int(i): int(p) for i, p in re.findall(r"worker (\d) started \(pid (\d+)\)", gw.stderr())}
        assert sorted(pids) == [0, 1], gw.stderr()
        os.kill(pids[0], signal.SIGKILL)
        died = gw.wait_for(r"worker 0 \(pid %d\) died \(exit code -9\)" % pids[0])
        new = int(gw.wait_for(r"worker 0 started \(pid (\d+)\)", died.end()).group(1))
        gw.wait_for(r"worker 0 \(pid %d\) is listening again" % new)
        assert new != pids[0] and not _gone(new) and not _gone(pids[1])
        for _ in range(6):  # both workers answer on the one port
            assert _ota(gw.port)["websocket"]["url"] == "ws://127.0.0.1:%d/xiaozhi/v1/" % gw.port
    finally:
        code = gw.stop()
    assert code == 0, gw.stderr()
    assert _gone(new) and _gone(pids[1])
    assert "Traceback" not in gw.stderr()


def test_workers_port_in_use_is_one_clear_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    try:
        p = subprocess.run([sys.executable, "-m", "tools.gateway", "--workers", "2", "--listen",
                            "127.0.0.1:%d" % port, "--upstream", "ws://127.0.0.1:9/"],
                           cwd=ROOT, capture_output=True, text=True, timeout=T)
    finally:
        s.close()
    assert p.returncode == 1 and "gateway: FAILED: cannot listen on 127.0.0.1:%d" % port in p.stderr, p.stderr
    assert "Traceback" not in p.stderr


def test_bad_workers_and_redis_flags_are_usage_errors():
    for args, want in ((("--workers", "-1"), "'--workers' must be an integer 0..256"),
                       (("--redis", "http://x"), "'--redis' must be a redis://"),
                       (("--upstream-pool", "-2"), "--upstream-pool must be >= 0")):
        p = subprocess.run([sys.executable, "-m", "tools.gateway", "--upstream", "ws://127.0.0.1:9/", *args],
                           cwd=ROOT, capture_output=True, text=True, timeout=T)
        assert p.returncode == 2 and want in p.stderr and "Traceback" not in p.stderr, (args, p.stderr)


def test_token_replayed_across_workers_is_refused_with_redis(tmp_path):
    redis = RedisServer(tmp_path).start()
    try:
        asyncio.run(asyncio.wait_for(_replay_across_workers(tmp_path, redis.url), 60))
    finally:
        redis.stop()


async def _replay_across_workers(tmp_path, redis_url):
    up = FakeUpstream()
    async with serving(up):
        cfg = tmp_path / "gw.json"
        cfg.write_text(json.dumps({"auth": {"enabled": True, "devices": {DEV: SECRET}}, "redis": {"url": redis_url},
                                   "limits": {"connections_per_minute_per_device": 0}}))
        gw = await asyncio.to_thread(Cli, "--workers", "2", "--config", str(cfg), "--upstream", up.url)
        try:
            token = "Bearer " + sign(SECRET, CID, DEV, int(time.time()))
            results = []
            for _ in range(16):  # new connections: the kernel spreads them over both workers
                ws = await connect("ws://127.0.0.1:%d/xiaozhi/v1/" % gw.port, open_timeout=T, compression=None,
                                   additional_headers={"Device-Id": DEV, "Client-Id": CID, "Authorization": token})
                try:  # a refusal can close the socket before the hello is even sent
                    await ws.send(hello())
                    results.append(json.loads(await asyncio.wait_for(ws.recv(), T))["type"])
                    await ws.close()
                except websockets.ConnectionClosed:
                    await asyncio.wait_for(ws.wait_closed(), T)
                    results.append((ws.close_code, ws.close_reason))
        finally:
            assert await asyncio.to_thread(gw.stop) == 0, gw.stderr()
    assert results[0] == "hello" and results[1:] == [(4401, "auth failed")] * 15, results
    # Both workers saw the token (all 16 landing on one worker: odds 2 ** -15).
    served = {w for w in ("w0", "w1") if re.search(w + r" gateway: (refused|%s \()" % DEV, gw.stderr())}
    assert served == {"w0", "w1"}, gw.stderr()
    assert "without redis" not in gw.stderr()


def test_scaling_config_keys_are_checked_and_the_redis_password_never_echoed():
    from tools.gateway.config import Config, ConfigError, apply_dict

    cfg = apply_dict(Config(), {"redis": {"url": "redis://:pw-123456@10.0.0.5:6379/1", "fail_open": True},
                                "workers": 4, "upstream_pool": 3})
    assert (cfg.redis.url, cfg.redis.fail_open, cfg.workers, cfg.upstream_pool) == (
        "redis://:pw-123456@10.0.0.5:6379/1", True, 4, 3)
    assert "pw-123456" not in str(cfg.redacted())
    for bad, key in (({"redis": {"url": "http://x"}}, "'redis.url'"), ({"redis": {"bogus": 1}}, "'redis.bogus'"),
                     ({"redis": {"fail_open": "yes"}}, "'redis.fail_open'"), ({"workers": -1}, "'workers'"),
                     ({"upstream_pool": "x"}, "'upstream_pool'"),
                     ({"redis": {"url": "redis://:pw-123456@h:bad/0"}}, "'redis.url' has a bad port")):
        with pytest.raises(ConfigError) as e:
            apply_dict(Config(), bad)
        assert key in str(e.value) and "pw-123456" not in str(e.value), (bad, e.value)
