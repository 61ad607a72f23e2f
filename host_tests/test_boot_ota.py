"""Boot through OTA and activation under micropython against tools.mock_ota:
the request the device sends, the activation timeline, the retry schedule and
the give-up path, all on the device's (sped-up) event clock."""

import json
import subprocess
import sys
import urllib.request

import pytest
from bootkit import REPO, device, kinds, output, wait

from tools.mock_ota import MockOta, serve_in_thread

NET = {"ssid": "home", "password": "correct horse", "rssi": -42, "channel": 11}


def _config(ota_url, **extra):
    cfg = {"schema": 3, "board": "sim", "wifi": [{"ssid": "home", "password": "correct horse"}], "ota_url": ota_url}
    cfg.update(extra)
    return cfg


def _sim(speed):
    return {"networks": [NET], "wifi_join_ms": 1000, "clock_speed": speed}


def _gaps(events):
    return [b["t"] - a["t"] for a, b in zip(events[:-1], events[1:], strict=True)]


def test_activation_flow_and_request(tmp_path):
    mock = MockOta(ws_url="ws://127.0.0.1:9/xiaozhi/v1/", token="tok-secret-1", code="424242", pending=2)
    with serve_in_thread(mock), device(tmp_path, _config(mock.url), _sim(20)) as dev:
        ready = wait(dev, "ready", timeout=30)["d"]
        assert ready == {"ws_url": "ws://127.0.0.1:9/xiaozhi/v1/", "ws_token": "***",
                         "protocol_version": 1, "source": "server"}
        assert kinds(dev, "activation")[0]["d"]["code"] == "424242"
        assert any("activation code 424242" in line for line in dev.log)
        rounds = kinds(dev, "activate")
        assert [r["d"]["status"] for r in rounds] == [202, 202, 200]
        # 3 s after each 202 (device time; a poll itself takes a few virtual ms).
        for gap in _gaps(rounds):
            assert 3000 <= gap <= 3600, _gaps(rounds)
        states = [e["d"]["to"] for e in kinds(dev, "state")]
        assert states == ["starting", "activating", "idle"], states

    checks, acts = mock.checks(), mock.activations()
    assert len(checks) == 2 and len(acts) == 3  # check, 3 polls, re-check without activation
    assert all(a["path"] == "/xiaozhi/ota/activate" and a["json"] == {} for a in acts)
    h, body = checks[0]["headers"], checks[0]["json"]
    saved = json.loads((tmp_path / "config.json").read_text())
    assert h["device-id"] == "02:11:22:33:ab:cd" and h["client-id"] == saved["client_id"]
    assert h["activation-version"] == "1" and h["user-agent"] == "sim/0.1.0"
    assert h["content-type"] == "application/json" and h["accept-language"] == "zh-CN"
    assert body["mac_address"] == "02:11:22:33:ab:cd" and body["uuid"] == saved["client_id"]
    assert body["chip_model_name"] == "unix" and body["flash_size"] == 8388608
    # The real free heap of the device, as the reference's string (docs/protocol.md §5.1).
    assert body["minimum_free_heap_size"].isdigit() and int(body["minimum_free_heap_size"]) > 10000
    assert body["application"] == {"name": "xiaozhi-mpy", "version": "0.1.0"}
    assert body["board"]["type"] == "sim" and body["board"]["ssid"] == "home" and body["board"]["rssi"] == -42
    assert saved["server_ws"] == {"url": "ws://127.0.0.1:9/xiaozhi/v1/", "token": "tok-secret-1"}
    # The token is a secret: never in the device's output.
    assert not any("tok-secret-1" in line for line in output(dev))


def test_retry_schedule_doubles_from_10s(tmp_path):
    mock = MockOta(fail_checks=2)
    with serve_in_thread(mock), device(tmp_path, _config(mock.url), _sim(50)) as dev:
        wait(dev, "ready", timeout=30)
        retries = kinds(dev, "ota_retry")
        assert [r["d"]["delay_ms"] for r in retries] == [10000, 20000]
        assert "HTTP 500" in retries[0]["d"]["error"] and retries[0]["d"]["cause"] == "server error"
        gaps = _gaps(kinds(dev, "ota_check"))
        assert len(gaps) == 2, gaps
        for gap, want in zip(gaps, (10000, 20000), strict=True):
            assert want <= gap <= want + 1500, gaps
        assert kinds(dev, "ota")[-1]["d"]["result"] == "ok"
        assert any("retry 1/2 in 10 s" in line for line in dev.log)


def test_falls_back_after_3_checks_and_keeps_retrying_in_background(tmp_path):
    # Checks 1-3 fail: the stored settings serve the boot within 2 minutes
    # (10 s + 20 s of waits, each check bounded by 30 s). Check 4 (background)
    # fails too, check 5 succeeds and its settings are stored.
    mock = MockOta(fail_checks=4, ws_url="ws://from-ota.example/xiaozhi/v1/")
    stored = {"url": "ws://stored.example/xiaozhi/v1/", "token": "old"}
    with serve_in_thread(mock), device(tmp_path, _config(mock.url, server_ws=stored), _sim(100)) as dev:
        ready = wait(dev, "ready", timeout=30)
        assert ready["d"]["ws_url"] == "ws://stored.example/xiaozhi/v1/"
        assert [r["d"]["delay_ms"] for r in kinds(dev, "ota_retry")] == [10000, 20000]
        fallback = kinds(dev, "ota")[-1]["d"]
        assert fallback["result"] == "fallback" and fallback["cause"] == "server error"
        assert any("OTA check failed 3 times: server error" in line for line in dev.log)
        back = wait(dev, "ota", timeout=30, background=True)["d"]
        assert back["result"] == "ok" and back["ws"] == "server"
        # The background waits: 60 s then 120 s, less up to 25 % jitter. Only
        # lower bounds: at this clock speed a loaded host stretches device time.
        gaps = _gaps(kinds(dev, "ota_check"))
        assert gaps[2] >= 45000 and gaps[3] >= 90000, gaps
    assert len(mock.checks()) == 5
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["server_ws"]["url"] == "ws://from-ota.example/xiaozhi/v1/"


@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1:1/xiaozhi/ota/", "refused"),
    ("http://no-such-host.invalid/xiaozhi/ota/", "DNS not resolved"),
])
def test_failure_line_names_the_cause(tmp_path, url, why):
    with device(tmp_path, _config(url), _sim(400)) as dev:
        wait(dev, "ready", timeout=60)
        assert [r["d"]["cause"] for r in kinds(dev, "ota_retry")] == [why, why]
        assert kinds(dev, "ota")[-1]["d"]["cause"] == why
        assert any(("OTA check failed 3 times: %s" % why) in line for line in dev.log), dev.log


@pytest.mark.parametrize("managed", [False, True])
def test_user_url_wins_unless_server_managed(tmp_path, managed):
    mock = MockOta(ws_url="ws://from-ota.example/xiaozhi/v1/", token="ota-token")
    cfg = _config("", ws_url="ws://mine.example/v1/", ws_token="", server_managed_urls=managed)
    with serve_in_thread(mock):
        cfg["ota_url"] = mock.url
        with device(tmp_path, cfg, _sim(20)) as dev:
            ready = wait(dev, "ready", timeout=30)["d"]
    # The token travels with the URL's source: the OTA server's token is never
    # sent to the user's own server.
    if managed:
        assert (ready["ws_url"], ready["ws_token"], ready["source"]) == (
            "ws://from-ota.example/xiaozhi/v1/", "***", "server")
    else:
        assert (ready["ws_url"], ready["ws_token"], ready["source"]) == ("ws://mine.example/v1/", "", "user")


@pytest.mark.parametrize(("args", "words"), [
    (["--port", "99999"], "port must be 0..65535"),
    (["--ws-url", "http://x/"], "must start with ws:// or wss://"),
    (["--code", "12ab"], "4 to 8 digits"),
    (["--pending", "-1"], "count >= 0"),
])
def test_mock_ota_cli_rejects_bad_input(args, words):
    p = subprocess.run([sys.executable, "-m", "tools.mock_ota", *args], cwd=REPO, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2 and words in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_mock_ota_cli_serves():
    p = subprocess.Popen([sys.executable, "-m", "tools.mock_ota", "--port", "0", "--code", "123456"], cwd=REPO,
                         stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("mock OTA listening on http://127.0.0.1:")
        url = line.split()[-1]
        req = urllib.request.Request(url, data=b"{}", headers={"Device-Id": "a", "Client-Id": "b"})
        with urllib.request.urlopen(req, timeout=10) as r:
            reply = json.loads(r.read())
        assert reply["activation"]["code"] == "123456" and reply["websocket"]["url"].startswith("ws://")
    finally:
        p.terminate()
        p.wait(10)
