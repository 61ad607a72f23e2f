# config: validation names the key, saves are atomic, corrupt files fall back.
import os

from firmware import config, config_file, config_schema
from host_tests.upy.checks import raises

# Per run, so two runs on one machine never share the files.
_P = "/tmp/xz_cfg_test_%d.json" % int.from_bytes(os.urandom(4), "big")


def _clean():
    for s in ("", ".tmp", ".bad", ".tmp.bad"):
        try:
            os.remove(_P + s)
        except OSError:
            pass


def _scratch(test):
    # Runs test with no config files at _P, and leaves none behind.
    def run():
        _clean()
        try:
            test()
        finally:
            _clean()

    return run


def _refused(c, pairs):
    # Each (key, value) is refused with the key named.
    for key, value in pairs:
        raises(lambda k=key, v=value: c.set(k, v), key)


@_scratch
def test_missing_file_gives_defaults():
    c = config.load(_P)
    assert c.get("volume") == 70 and c.get("protocol_version") == 1


@_scratch
def test_round_trip():
    c = config.load(_P)
    c.set("ws_url", "ws://127.0.0.1:8000/xiaozhi/v1/")
    c.save()
    assert config.load(_P).get("ws_url") == "ws://127.0.0.1:8000/xiaozhi/v1/"


def test_bad_value_names_the_key():
    _refused(config.Config(_P), (("volume", 101), ("protocol_version", 4), ("ws_url", "ftp://x"), ("nope", 1)))


def test_update_is_all_or_nothing():
    c = config.Config(_P)
    try:
        c.update({"volume": 10, "jitter_frames": 0})
    except config.ConfigError:
        pass
    assert c.get("volume") == 70


@_scratch
def test_corrupt_file_is_kept_and_defaults_used():
    with open(_P, "w") as f:
        f.write('{"volume": 5, "ws_u')
    c = config.load(_P)
    assert c.get("volume") == 70
    os.stat(_P + ".bad")


@_scratch
def test_interrupted_save_recovers_from_tmp():
    with open(_P + ".tmp", "w") as f:
        f.write('{"schema": 1, "volume": 33}')
    assert config.load(_P).get("volume") == 33
    os.stat(_P)


def test_redacted_hides_secrets():
    c = config.Config(_P)
    c.set("wifi", [{"ssid": "home", "password": "hunter2hunter2"}])
    c.set("ws_token", "tok-123456789")
    text = repr(config_schema.redacted(c.data))
    assert "hunter2" not in text and "tok-" not in text and "home" in text


@_scratch
def test_schema0_migration_from_flat_keys():
    with open(_P, "w") as f:
        f.write('{"ssid": "home", "password": "pw1", "ssid1": "work", "password1": "pw2",'
                ' "websocket": {"url": "ws://h/x/", "token": "t", "version": 2}}')
    c = config.load(_P)
    assert c.get("schema") == config_schema.SCHEMA
    assert c.get("wifi") == [{"ssid": "home", "password": "pw1"}, {"ssid": "work", "password": "pw2"}]
    assert c.get("server_ws") == {"url": "ws://h/x/", "token": "t", "version": 2}


@_scratch
def test_schema1_file_keeps_values():
    with open(_P, "w") as f:
        f.write('{"schema": 1, "ws_url": "ws://a/", "volume": 40}')
    c = config.load(_P)
    assert c.get("ws_url") == "ws://a/" and c.get("volume") == 40 and c.get("server_ws") == {}


@_scratch
@_scratch
def test_schema2_file_drops_the_old_receive_buffer_default():
    for saved, want in ((8192, 4096), (16384, 16384), (4096, 4096)):
        with open(_P, "w") as f:
            f.write('{"schema": 2, "ws_max_message": %d, "volume": 40}' % saved)
        c = config.load(_P)
        assert c.get("ws_max_message") == want and c.get("volume") == 40 and c.get("schema") == 3, (saved, c.data)


def test_future_schema_and_bad_key_fall_back():
    for text, word in (('{"schema": 99}', "schema"), ('{"volume": "loud"}', "volume")):
        _clean()
        with open(_P, "w") as f:
            f.write(text)
        c = config.load(_P)
        assert c.get("volume") == 70
        with open(_P + ".bad") as f:
            assert f.read() == text
        try:
            config_file._parse(text)
        except ValueError as e:
            assert word in str(e), str(e)
        else:
            raise AssertionError("parsed " + text)


def test_defaults_are_not_shared():
    a = config.Config(_P)
    a.get("wifi").append({"ssid": "x"})
    a.get("server_ws")["url"] = "ws://x/"
    b = config.Config(_P)
    assert b.get("wifi") == [] and b.get("server_ws") == {}
    assert config_schema.DEFAULTS["wifi"] == [] and config_schema.DEFAULTS["server_ws"] == {}


def test_url_schemes_and_wifi_limits():
    c = config.Config(_P)
    _refused(c, (
        ("ws_url", "http://x/"),
        ("ota_url", "ws://x/"),
        ("server_ws", {"url": "http://x"}),
        ("server_ws", {"version": 9}),
        ("mqtt", {"k": [1]}),
        ("wifi", [{"ssid": "x" * 33}]),
        ("wifi", [{"ssid": ""}]),
        ("wifi", [{"ssid": "a", "password": "p" * 65}]),
        ("wifi", [{"ssid": "a", "password": 5}]),
        ("wifi", ["just-a-name"]),
        ("wifi", [{"ssid": "n%d" % i} for i in range(6)]),
    ))
    c.set("ota_url", "https://api.example/xiaozhi/ota/")
    c.set("ws_url", "wss://example/xiaozhi/v1/")
    c.set("wifi", [{"ssid": "s" * 32, "password": "p" * 64}])


def test_check_network_says_which_limit():
    raises(lambda: config_schema.check_network({"ssid": "x" * 33}), "ssid", "32 bytes")
    raises(lambda: config_schema.check_network({"ssid": "a", "password": "p" * 65}), "password", "64 bytes")
    config_schema.check_network({"ssid": "a"})


def test_redacted_hides_server_secrets():
    c = config.Config(_P)
    c.set("server_ws", {"url": "ws://srv/x/", "token": "srv-token-abc", "version": 2})
    c.set("mqtt", {"endpoint": "mq.example", "password": "mq-pass-xyz", "username": "u-xyz"})
    c.set("device_secret", "sec-987")
    text = repr(config_schema.redacted(c.data))
    for secret in ("srv-token-abc", "mq-pass-xyz", "u-xyz", "sec-987"):
        assert secret not in text, text
    assert "ws://srv/x/" in text and "mq.example" in text


@_scratch
def test_save_is_atomic_on_failure():
    c = config.load(_P)
    c.set("volume", 20)
    c.save()
    orig = config_file._write

    def boom(f, text):
        f.write(text[: len(text) // 2])
        raise OSError(28)  # ENOSPC

    config_file._write = boom
    try:
        c.set("volume", 90)
        try:
            c.save()
        except config.ConfigError as e:
            assert "could not save" in str(e)
        else:
            raise AssertionError("save did not fail")
    finally:
        config_file._write = orig
    assert config.load(_P).get("volume") == 20
    try:
        os.stat(_P + ".tmp")
        raise AssertionError("tmp file left behind")
    except OSError:
        pass
