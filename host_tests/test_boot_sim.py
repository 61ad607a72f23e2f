"""The whole device (main.py, the lead's app and sim HAL) booting through
Wi-Fi, OTA and activation to a completed push-to-talk turn, and riding out a
Wi-Fi drop in the middle of a session."""

import os
import time

import pytest
from bootkit import REPO, device, kinds, wait

from tools.mock_ota import MockOta, serve_in_thread

MAIN = os.path.join(REPO, "main.py")
MIC = os.path.join(REPO, "tools", "assets", "weather_en_16k.wav")
NET = {"ssid": "sim-ap", "password": "simsimsim", "rssi": -45}
SPEED = 4  # mic/speaker pacing
MIC_S = 2.3  # the utterance, seconds

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
    cfg = {"schema": 3, "board": "sim", "ota_url": ota_url, "button_mode": "ptt",
           "wifi": [{"ssid": NET["ssid"], "password": NET["password"]}]}
    sim = {"mic": MIC, "out": str(tmp_path / "reply.wav"), "speed": SPEED, "clock_speed": clock_speed,
           "networks": [NET], "wifi_join_ms": 1000}
    return device(tmp_path, cfg, sim, script=MAIN, heap="4m")


def _turn(dev):
    dev.send("press")
    wait(dev, "tx", type="listen", state="start")
    time.sleep(MIC_S / SPEED + 0.2)  # hold the button while the utterance plays (pacing, not an assertion)
    dev.send("release")
    wait(dev, "rx", timeout=30, type="tts", state="stop")
    wait(dev, "audio", timeout=30, dir="play")


def test_boots_through_ota_and_activation_to_a_turn(tmp_path, server):
    ota = MockOta(ws_url=server.url, code="777000", pending=1)
    with serve_in_thread(ota), _device(tmp_path, ota.url) as dev:
        wait(dev, "ready", timeout=30)
        assert kinds(dev, "activation")[0]["d"]["code"] == "777000"
        assert [a["d"]["status"] for a in kinds(dev, "activate")] == [202, 200]
        states = [e["d"]["to"] for e in kinds(dev, "state")]
        assert states[:3] == ["starting", "activating", "idle"], states
        _turn(dev)
        # Power save off for the session, on again afterwards.
        assert [e["d"]["save"] for e in kinds(dev, "wifi_pm")][:2] == [True, False]
    assert len(ota.activations()) == 2


def test_wifi_drop_mid_session_then_next_turn(tmp_path, server):
    ota = MockOta(ws_url=server.url)
    with serve_in_thread(ota), _device(tmp_path, ota.url) as dev:
        wait(dev, "ready", timeout=30)
        _turn(dev)
        dev.send("press")
        wait(dev, "tx", type="listen", state="start")
        dev.send("wifi down")
        lost = wait(dev, "wifi", up=False)
        assert lost["d"]["reason"] == "lost the AP (beacon timeout)"
        wait(dev, "closed")
        dev.send("release")
        wait(dev, "wifi_retry", attempt=2)
        dev.send("wifi up")
        back = wait(dev, "wifi", timeout=30, up=True)
        assert back["d"]["ssid"] == "sim-ap"
        # Backoff: 1 s doubling, each delay shortened by up to 25 % jitter.
        retries = kinds(dev, "wifi_retry")
        assert len(retries) >= 2, retries
        for n, ev in enumerate(retries):
            assert ev["d"]["attempt"] == n + 1
            assert 750 << n <= ev["d"]["delay_ms"] <= 1000 << n, retries
        _turn(dev)
        assert dev.proc.poll() is None
