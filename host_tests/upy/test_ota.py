# ota: request facts, reply handling, URL precedence (no network here; the
# HTTP exchange and timing are covered by host_tests/test_boot_ota.py).
import os

from firmware import clock, config, ota

# Per run, so two runs on one machine never share the file.
_P = "/tmp/xz_ota_test_%d.json" % int.from_bytes(os.urandom(4), "big")


def _cfg(**kw):
    c = config.Config(_P)
    c.update(dict({"client_id": "5f1c7c52-5d0f-4c1e-9d2a-3c1b2a4f6e70"}, **kw))
    return c


INFO = {"chip": "esp32s3", "flash_size": 16777216, "free_heap": 8288524, "mac": b"\xcc\xba\x97\x04\x92\x94",
        "board": "bread-compact-s3"}


def test_request_headers_and_body():
    c = _cfg()
    h = dict(ota.request_headers(c, INFO))
    assert h["Device-Id"] == "cc:ba:97:04:92:94" and h["Client-Id"] == c.get("client_id")
    assert h["Activation-Version"] == "1" and h["User-Agent"] == "bread-compact-s3/" + ota.APP_VERSION
    assert h["Accept-Language"] == "zh-CN"
    b = ota.request_body(c, INFO, {"ssid": "home", "rssi": -50, "channel": 6, "ip": "192.168.0.13"})
    assert b["version"] == 2 and b["minimum_free_heap_size"] == "8288524"
    assert b["mac_address"] == "cc:ba:97:04:92:94" and b["chip_model_name"] == "esp32s3"
    assert b["application"]["name"] == "xiaozhi-mpy"
    assert b["board"] == {"type": "bread-compact-s3", "name": "bread-compact-s3", "mac": "cc:ba:97:04:92:94",
                          "ssid": "home", "rssi": -50, "channel": 6, "ip": "192.168.0.13"}
    # In config-AP mode (no network) the board facts leave the network out.
    assert "ssid" not in ota.request_body(c, INFO, None)["board"]


def test_activate_url():
    assert ota.activate_url("http://h/xiaozhi/ota/") == "http://h/xiaozhi/ota/activate"
    assert ota.activate_url("http://h/xiaozhi/ota") == "http://h/xiaozhi/ota/activate"
    assert ota.activate_url("http://h/ota/?x=1") == "http://h/ota/activate"


def test_apply_stores_websocket_and_mqtt_and_time():
    c = _cfg()
    reply = {
        "server_time": {"timestamp": 1772084756816, "timezone_offset": 480},
        "firmware": {"version": "9.9.9", "url": "http://evil/xiaozhi.bin", "force": 1},
        "websocket": {"url": "wss://srv/xiaozhi/v1/", "token": "t1", "version": 2, "junk": [1]},
        "mqtt": {"endpoint": "mq", "client_id": "GID@@@x", "password": "p", "keepalive": 240},
    }
    assert ota.apply(c, reply) is True
    assert c.get("server_ws") == {"url": "wss://srv/xiaozhi/v1/", "token": "t1", "version": 2}
    assert c.get("mqtt")["keepalive"] == 240 and c.get("mqtt")["endpoint"] == "mq"
    t = clock.epoch_ms()
    assert 1772084756816 <= t < 1772084756816 + 5000  # UTC: the RTC keeps UTC
    assert clock.tz_minutes_now == 480
    assert ota.apply(c, reply) is False  # nothing new: no write
    assert config.load(_P).get("server_ws")["token"] == "t1"
    os.remove(_P)


def test_apply_survives_a_failed_save():
    # A full or read-only filesystem must not stop the boot: the reply's
    # settings still serve this session.
    c = config.Config("/nonexistent-xz-dir/config.json", {"client_id": "x"})
    assert ota.apply(c, {"websocket": {"url": "ws://srv/", "token": "t"}}) is True
    assert c.get("server_ws") == {"url": "ws://srv/", "token": "t"}


def test_apply_ignores_a_malformed_ws_url():
    c = _cfg(server_ws={"url": "ws://good/"})
    ota.apply(c, {"websocket": {"url": "http://wrong/"}})
    assert c.get("server_ws") == {"url": "ws://good/"}


def test_session_settings_precedence():
    c = _cfg(server_ws={"url": "ws://srv/", "token": "srv-tok", "version": 3}, protocol_version=2)
    s = ota.session_settings(c)
    assert (s["ws_url"], s["ws_token"], s["protocol_version"], s["source"]) == ("ws://srv/", "srv-tok", 3, "server")
    c.update({"ws_url": "ws://mine/", "ws_token": "mine"})
    s = ota.session_settings(c)
    assert (s["ws_url"], s["ws_token"], s["protocol_version"], s["source"]) == ("ws://mine/", "mine", 2, "user")
    c.set("server_managed_urls", True)
    assert ota.session_settings(c)["ws_url"] == "ws://srv/"
    c.set("server_ws", {})
    assert ota.session_settings(c)["ws_url"] == "ws://mine/"
