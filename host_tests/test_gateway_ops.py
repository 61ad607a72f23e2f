"""Observability: /metrics scraped during a real session moves with it, /healthz
tells a reachable upstream from a dead one, one structured "session end" log
line per session, and the CLI's JSON log format and loopback note."""

import json
import logging
import os
import re
import signal
import subprocess
import sys

from gateway_fakes import (
    FakeClock,
    T,
    async_test,
    dead_port,
    gateway_for,
    http,
    open_session,
    recv_until,
    serving,
    speech_pcm,
)

from tools.gateway.config import Config
from tools.gateway.proxy import Gateway

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# One sample line of the Prometheus text format: name{labels} value
_SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*",?)*\})? [-+0-9.eInf]+$')


async def scrape(gw):
    status, headers, body = await http(gw.port, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    values = {}
    for line in body.decode().splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) \w+ .+$", line), line
            continue
        assert _SAMPLE.match(line), line
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    return values


def _delta(after, before, name):
    return after.get(name, 0) - before.get(name, 0)


@async_test
async def test_metrics_move_with_a_real_session():
    async with gateway_for(None) as (up, gw):
        m0 = await scrape(gw)
        ws, _ = await open_session(gw)
        await ws.send('{"type":"listen","state":"start","mode":"manual"}')
        pcm = speech_pcm()[: 1920 * 20]
        for i in range(0, len(pcm), 1920):
            await ws.send(pcm[i:i + 1920])
        await ws.send('{"type":"listen","state":"stop"}')
        _, audio, sizes = await recv_until(ws, lambda m: m.get("type") == "tts" and m.get("state") == "stop")
        m1 = await scrape(gw)  # during the session
        assert _delta(m1, m0, "xiaozhi_gateway_sessions_open") == 1
        assert _delta(m1, m0, 'xiaozhi_gateway_frames_total{direction="up"}') == 20
        assert _delta(m1, m0, 'xiaozhi_gateway_frames_total{direction="down"}') == len(sizes) > 0
        assert _delta(m1, m0, "xiaozhi_gateway_turns_total") == 1
        assert _delta(m1, m0, 'xiaozhi_gateway_transcode_microseconds_count{direction="up"}') == 20
        assert _delta(m1, m0, 'xiaozhi_gateway_transcode_microseconds_sum{direction="up"}') > 0
        assert _delta(m1, m0, 'xiaozhi_gateway_transcode_microseconds_bucket{direction="up",le="+Inf"}') == 20
        await ws.close()
        await up.closed.wait()
        m2 = await scrape(gw)
        while _delta(m2, m0, "xiaozhi_gateway_sessions_open"):  # the session's end lands just after the close
            m2 = await scrape(gw)
        assert _delta(m2, m0, 'xiaozhi_gateway_sessions_total{side="device"}') == 1
        for name in ("xiaozhi_gateway_redis_errors_total", "xiaozhi_gateway_upstream_failovers_total"):
            assert name in m2  # present at 0 before anything happened, as Prometheus expects


@async_test
async def test_healthz_reports_upstream_reachability():
    async with gateway_for(None) as (up, gw):
        status, _, body = await http(gw.port, "GET", "/healthz")
        assert status == 200
        assert json.loads(body) == {"status": "ok", "upstreams": [{"url": up.url, "reachable": True}]}
        status, _, _ = await http(gw.port, "POST", "/healthz")
        assert status == 405
    dead = "ws://127.0.0.1:%d/xiaozhi/v1/" % dead_port()
    async with serving(Gateway(Config(listen_port=0, upstreams=[dead]))) as (gw,):
        status, _, body = await http(gw.port, "GET", "/healthz")
        reply = json.loads(body)
        assert status == 503 and reply["status"] == "no upstream reachable"
        assert reply["upstreams"][0]["reachable"] is False and reply["upstreams"][0]["error"]


@async_test
async def test_healthz_probes_upstreams_at_most_once_a_second():
    mono = FakeClock(100.0)
    async with gateway_for(None, mono=mono) as (up, gw):
        assert (await http(gw.port, "GET", "/healthz"))[0] == 200
        await up.stop()  # the upstream goes away ...
        assert (await http(gw.port, "GET", "/healthz"))[0] == 200  # ... a hammering client gets the cached answer
        mono.t += 1.0
        assert (await http(gw.port, "GET", "/healthz"))[0] == 503
        await up.start()  # serving() stops it again on the way out


@async_test
async def test_one_structured_log_line_per_session_end(caplog):
    caplog.set_level(logging.INFO, logger="gateway.session")
    async with gateway_for(None) as (up, gw):
        ws, _ = await open_session(gw)
        await ws.send(bytes(1920))
        await ws.send(bytes(1920))
        await ws.close(1000, "bye")
        await up.closed.wait()
    ends = [r for r in caplog.records if r.name == "gateway.session"]
    assert len(ends) == 1
    f = ends[0].fields
    assert f["event"] == "session_end" and f["frames_up"] == 2 and f["side"] == "device"
    assert (f["code"], f["reason"]) == (1000, "bye") and f["seconds"] >= 0
    assert ends[0].getMessage().startswith("session end aa:bb:cc:dd:ee:ff: ")


def test_cli_json_logs_and_loopback_note():
    p = subprocess.Popen([sys.executable, "-m", "tools.gateway", "--listen", "127.0.0.1:0", "--log-format", "json",
                          "--upstream", "ws://127.0.0.1:%d/xiaozhi/v1/" % dead_port()],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = p.stdout.readline()
        note = p.stdout.readline()
        assert ready.startswith("gateway ready on ws://127.0.0.1:"), ready
        assert note.startswith("gateway: note: 127.0.0.1 is loopback, so devices on the network cannot reach it")
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=T)
    assert p.returncode == 0, err
    lines = [json.loads(x) for x in err.splitlines()]  # every log line is a JSON object
    assert any(x["logger"] == "gateway" and x["msg"].startswith("gateway listening on") for x in lines)


def test_cli_no_loopback_note_on_all_interfaces():
    p = subprocess.Popen([sys.executable, "-m", "tools.gateway", "--listen", "0.0.0.0:0",
                          "--upstream", "ws://127.0.0.1:%d/xiaozhi/v1/" % dead_port()],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().startswith("gateway ready on ws://0.0.0.0:")
    finally:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=T)
    assert "loopback" not in out


def test_exposition_escapes_label_values_and_counts_buckets():
    from tools.gateway.metrics import Counter, Histogram, Registry

    reg = Registry()
    c = reg.add(Counter("t_total", "A test counter.", ("reason",)))
    h = reg.add(Histogram("t_us", "A test histogram.", (10, 100)))
    c.inc(reason='say "hi"\nagain\\')
    for v in (5, 50, 500):
        h.observe(v)
    lines = reg.render().splitlines()
    assert 't_total{reason="say \\"hi\\"\\nagain\\\\"} 1' in lines
    assert [x for x in lines if x.startswith("t_us")] == [
        't_us_bucket{le="10"} 1', 't_us_bucket{le="100"} 2', 't_us_bucket{le="+Inf"} 3', "t_us_sum 555", "t_us_count 3"]
