"""CLI and config file: --help, clear one-line errors naming the key, a real run."""

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from tools.gateway.config import Config, ConfigError, apply_dict, load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UP = "ws://127.0.0.1:8000/xiaozhi/v1/"


def cli(*args, timeout=20):
    return subprocess.run([sys.executable, "-m", "tools.gateway", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_help():
    p = cli("--help")
    assert p.returncode == 0
    for flag in ("--listen", "--upstream", "--upstream-ota", "--config", "--public-url", "--audit-log",
                 "--tls-cert", "--tls-key", "--log-format", "--trusted-proxy"):
        assert flag in p.stdout


@pytest.mark.parametrize("data, key", [
    ({"limits": {"messages_per_second_per_device": "x"}}, "'limits.messages_per_second_per_device'"),
    ({"limits": {"bogus": 1}}, "'limits.bogus'"),
    ({"auth": {"enabled": "yes"}}, "'auth.enabled'"),
    ({"auth": {"enabled": True}}, "'auth.devices'"),
    ({"auth": {"devices": {"aa:bb": "short"}}}, "'auth.devices.aa:bb'"),
    ({"upstreams": ["http://x/"]}, "'upstreams[0]'"),
    ({"upstreams": "ws://x/"}, "'upstreams'"),
    ({"upstream_ota": "ftp://x/"}, "'upstream_ota'"),
    ({"listen": "8765"}, "'listen'"),
    ({"opus": {"complexity": 11}}, "'opus.complexity'"),
    ({"opus": {"bitrate": False}}, "'opus.bitrate'"),
    ({"opus": {"bitrate": None}}, "'opus.bitrate'"),
    ({"opus": {"application": "music"}}, "'opus.application'"),
    ({"blocked_words": ["ok", ""]}, "'blocked_words'"),
    ({"ota": {"timezone_offset": 9999}}, "'ota.timezone_offset'"),
    ({"ota": {"tz": 1}}, "'ota.tz'"),
    ({"public_url": "http://x/"}, "'public_url'"),
    ({"nonsense": 1}, "'nonsense'"),
    ({"tls": {"cert": "a.crt"}}, "'tls.cert' and 'tls.key'"),
    ({"tls": {"ca": "x"}}, "'tls.ca'"),
    ({"keepalive": {"upstream_mode": "mqtt"}}, "'keepalive.upstream_mode'"),
    ({"keepalive": {"device_ping_s": -1}}, "'keepalive.device_ping_s'"),
    ({"keepalive": {"upstream_timeout_s": 0}}, "'keepalive.upstream_timeout_s'"),
])
def test_config_errors_name_the_key(data, key):
    with pytest.raises(ConfigError) as e:
        apply_dict(Config(), data)
    assert key in str(e.value)


def test_secret_is_never_echoed_in_errors():
    with pytest.raises(ConfigError) as e:
        apply_dict(Config(), {"auth": {"devices": {"d": "short"}}})
    assert "short" not in str(e.value)
    c = apply_dict(Config(), {"auth": {"enabled": True, "devices": {"d": "long-enough-secret"}},
                              "upstream_token": "tok-123"})
    assert "long-enough-secret" not in json.dumps(c.redacted()) and "tok-123" not in json.dumps(c.redacted())


def test_full_config_file_loads(tmp_path):
    p = tmp_path / "gw.json"
    p.write_text(json.dumps({
        "listen": "0.0.0.0:9000", "public_url": "ws://10.0.0.2:9000/xiaozhi/v1/",
        "upstreams": [UP, "wss://backup.example/xiaozhi/v1/"], "upstream_ota": "http://127.0.0.1:8003/xiaozhi/ota/",
        "auth": {"enabled": True, "window_s": 120, "devices": {"aa:bb:cc:dd:ee:ff": "0123456789abcdef"}},
        "limits": {"connections_per_minute_per_device": 5}, "blocked_words": ["x"],
        "opus": {"bitrate": 32000, "complexity": 8, "application": "audio"}, "ota": {"timezone_offset": 480},
        "upstream_connect_timeout_s": 2, "upstream_retry_s": 5,
        "tls": {"cert": "/etc/gw.crt", "key": "/etc/gw.key"},
        "keepalive": {"device_ping_s": 30, "upstream_ping_s": 0, "upstream_mode": "json"}}))
    c = load_file(str(p))
    assert c.tls.cert == "/etc/gw.crt" and c.keepalive.upstream_mode == "json" and c.keepalive.upstream_ping_s == 0
    assert c.keepalive.device_timeout_s == 20  # default kept
    assert (c.listen_host, c.listen_port) == ("0.0.0.0", 9000)
    assert c.auth.window_s == 120 and c.limits.connections_per_minute_per_device == 5
    assert c.limits.messages_per_second_per_device == 60  # default kept
    assert c.opus.bitrate == 32000 and c.ota_timezone_offset == 480 and len(c.upstreams) == 2


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"limits": {"messages_per_second_per_ip": -1}}')
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    cases = [
        ((), "no upstream"),
        (("--upstream", "http://x/"), "'--upstream' must be a ws:// or wss:// URL"),
        (("--upstream", UP, "--listen", "nowhere"), "'--listen' must be HOST:PORT"),
        (("--upstream", UP, "--opus-complexity", "12"), "'--opus-complexity' must be an integer 0..10"),
        (("--config", str(tmp_path / "missing.json")), "cannot read config file"),
        (("--config", str(broken)), "is not valid JSON"),
        (("--config", str(bad), "--upstream", UP), "'limits.messages_per_second_per_ip'"),
        (("--upstream", UP, "--trusted-proxy", "nginx"), "'--trusted-proxy[0]' must be an IP address or CIDR"),
    ]
    for args, want in cases:
        p = cli(*args)
        assert p.returncode == 2, (args, p.stderr)
        assert want in p.stderr and "Traceback" not in p.stderr, (args, p.stderr)
        assert p.stderr.startswith("gateway: error: ") and p.stderr.count("\n") == 1, p.stderr


def test_cli_without_libopus_says_what_to_install(tmp_path):
    # A shim that fails the way opuslib_next does on a host without libopus0.
    (tmp_path / "opuslib_next.py").write_text("raise ImportError('libopus.so.0: cannot open shared object file')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    p = subprocess.run([sys.executable, "-m", "tools.gateway", "--upstream", UP, "--listen", "127.0.0.1:0"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=20)
    assert p.returncode == 1, p.stderr
    assert p.stderr.startswith("gateway: FAILED: cannot load libopus (libopus.so.0"), p.stderr
    assert "run scripts/setup or install libopus0" in p.stderr
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1, p.stderr


def test_cli_listen_port_in_use_is_a_clear_error():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    try:
        p = cli("--listen", "127.0.0.1:%d" % port, "--upstream", UP)
    finally:
        s.close()
    assert p.returncode == 1 and p.stderr.startswith("gateway: FAILED: cannot listen on 127.0.0.1:%d" % port)
    assert "Traceback" not in p.stderr


def test_cli_runs_serves_ota_and_stops_on_sigterm(tmp_path):
    audit = tmp_path / "audit.jsonl"
    p = subprocess.Popen([sys.executable, "-m", "tools.gateway", "--listen", "127.0.0.1:0", "--upstream", UP,
                          "--audit-log", str(audit)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("gateway ready on ws://127.0.0.1:"), line
        port = int(line.split("ws://127.0.0.1:")[1].split("/")[0])
        req = urllib.request.Request("http://127.0.0.1:%d/xiaozhi/ota/" % port, data=b"{}", method="POST",
                                     headers={"Device-Id": "aa:bb:cc:dd:ee:ff", "Client-Id": "c"})
        with urllib.request.urlopen(req, timeout=10) as r:
            reply = json.loads(r.read())
        assert reply["websocket"]["url"] == "ws://127.0.0.1:%d/xiaozhi/v1/" % port
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
    assert p.returncode == 0, err
    assert json.loads(audit.read_text().splitlines()[0])["event"] == "ota"
