"""The whole device (main.py, the lead's app and sim HAL) booting through
Wi-Fi, OTA and activation to a completed push-to-talk turn, and riding out a
Wi-Fi drop in the middle of a session."""

import os
import time

import pytest
from bootkit import REPO, Device

from tools.mock_ota import MockOta, serve_in_thread

MAIN = os.path.join(REPO, "main.py")
MIC = os.path.join(REPO, "tools", "assets", "weather_en_16k.wav")
NET = {"ssid": "sim-ap", "password": "simsimsim", "rssi": -45}
SPEED = 4  # mic/speaker pacing
MIC_S = 2.3  # the utterance, seconds

with open(os.path.join(REPO, "firmware", "app.py")) as _f:
    _WIRED = "startup" in _f.read()
pytestmark = pytest.mark.skipif(
    not _WIRED, reason="firmware/app.py does not call firmware.startup.bring_up yet (boot engineer's report)")


@pytest.fixture
def server():
    from tools.mock_server.server import MockServer

    srv = MockServer(host="127.0.0.1", port=0)
    srv.start_in_thread()
    try:
        yield srv
    finally:
        srv.stop()


def _device(tmp_path, ota_url, clock_speed=10):
    cfg = {"schema": 2, "board": "sim", "ota_url": ota_url, "button_mode": "ptt",
           "wifi": [{"ssid": NET["ssid"], "password": NET["password"]}]}
    sim = {"mic": MIC, "out": str(tmp_path / "reply.wav"), "speed": SPEED, "clock_speed": clock_speed,
           "networks": [NET], "wifi_join_ms": 1000}
    return Device(tmp_path, cfg, sim, script=MAIN, heap="4m")


def _turn(dev):
    dev.send("press")
    dev.wait_event("tx", lambda d: d.get("type") == "listen" and d.get("state") == "start")
    time.sleep(MIC_S / SPEED + 0.2)  # hold the button while the utterance plays (pacing, not an assertion)
    dev.send("release")
    dev.wait_event("rx", lambda d: d.get("type") == "tts" and d.get("state") == "stop", timeout=30)
    dev.wait_event("audio", lambda d: d.get("dir") == "play", timeout=30)


def test_boots_through_ota_and_activation_to_a_turn(tmp_path, server):
    ota = MockOta(ws_url=server.url, code="777000", pending=1)
    with serve_in_thread(ota), _device(tmp_path, ota.url) as dev:
        dev.wait_event("ready", timeout=30)
        assert dev.kinds("activation")[0]["d"]["code"] == "777000"
        assert [a["d"]["status"] for a in dev.kinds("activate")] == [202, 200]
        states = [e["d"]["to"] for e in dev.kinds("state")]
        assert states[:3] == ["starting", "activating", "idle"], states
        _turn(dev)
        # Power save off for the session, on again afterwards.
        assert [e["d"]["save"] for e in dev.kinds("wifi_pm")][:2] == [True, False]
    assert len(ota.activations()) == 2


def test_wifi_drop_mid_session_then_next_turn(tmp_path, server):
    ota = MockOta(ws_url=server.url)
    with serve_in_thread(ota), _device(tmp_path, ota.url) as dev:
        dev.wait_event("ready", timeout=30)
        _turn(dev)
        dev.send("press")
        dev.wait_event("tx", lambda d: d.get("type") == "listen" and d.get("state") == "start")
        dev.send("wifi down")
        lost = dev.wait_event("wifi", lambda d: not d["up"])
        assert lost["d"]["reason"] == "lost the AP (beacon timeout)"
        dev.wait_event("closed")
        dev.send("release")
        dev.wait_event("wifi_retry", lambda d: d["attempt"] == 2)
        dev.send("wifi up")
        back = dev.wait_event("wifi", lambda d: d["up"], timeout=30)
        assert back["d"]["ssid"] == "sim-ap"
        # Backoff: 1 s doubling, each delay shortened by up to 25 % jitter.
        for n, ev in enumerate(dev.kinds("wifi_retry")):
            assert ev["d"]["attempt"] == n + 1
            assert 750 << n <= ev["d"]["delay_ms"] <= 1000 << n, dev.kinds("wifi_retry")
        _turn(dev)
        assert dev.proc.poll() is None
