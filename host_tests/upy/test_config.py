# config: validation names the key, saves are atomic, corrupt files fall back.
import os

from firmware import config

_P = "/tmp/xz_cfg_test.json"


def _clean():
    for s in ("", ".tmp", ".bad", ".tmp.bad"):
        try:
            os.remove(_P + s)
        except OSError:
            pass


def test_missing_file_gives_defaults():
    _clean()
    c = config.load(_P)
    assert c.get("volume") == 70 and c.get("protocol_version") == 1


def test_round_trip():
    _clean()
    c = config.load(_P)
    c.set("ws_url", "ws://127.0.0.1:8000/xiaozhi/v1/")
    c.save()
    assert config.load(_P).get("ws_url") == "ws://127.0.0.1:8000/xiaozhi/v1/"


def test_bad_value_names_the_key():
    c = config.Config(_P)
    for key, value in (("volume", 101), ("protocol_version", 4), ("ws_url", "ftp://x"), ("nope", 1)):
        try:
            c.set(key, value)
        except config.ConfigError as e:
            assert key in str(e), str(e)
        else:
            raise AssertionError("accepted %s=%r" % (key, value))


def test_update_is_all_or_nothing():
    c = config.Config(_P)
    try:
        c.update({"volume": 10, "jitter_frames": 0})
    except config.ConfigError:
        pass
    assert c.get("volume") == 70


def test_corrupt_file_is_kept_and_defaults_used():
    _clean()
    with open(_P, "w") as f:
        f.write('{"volume": 5, "ws_u')
    c = config.load(_P)
    assert c.get("volume") == 70
    os.stat(_P + ".bad")


def test_interrupted_save_recovers_from_tmp():
    _clean()
    with open(_P + ".tmp", "w") as f:
        f.write('{"schema": 1, "volume": 33}')
    assert config.load(_P).get("volume") == 33
    os.stat(_P)


def test_redacted_hides_secrets():
    c = config.Config(_P)
    c.set("wifi", [{"ssid": "home", "password": "hunter2hunter2"}])
    c.set("ws_token", "tok-123456789")
    text = repr(c.redacted())
    assert "hunter2" not in text and "tok-" not in text and "home" in text
