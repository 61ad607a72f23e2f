"""Gateway settings: a JSON config file (secrets, policies) plus CLI flags.

Every problem is a ConfigError whose message names the key, e.g.
"config key 'limits.messages_per_second_per_device' must be an integer >= 0, got 'x'".
The file is optional; CLI flags override it. Example file:

{
  "listen": "0.0.0.0:8765",
  "public_url": "ws://192.168.1.10:8765/xiaozhi/v1/",
  "upstreams": ["ws://192.168.1.20:8000/xiaozhi/v1/", "ws://192.168.1.21:8000/xiaozhi/v1/"],
  "upstream_ota": "http://192.168.1.20:8003/xiaozhi/ota/",
  "upstream_token": "",
  "auth": {"enabled": true, "window_s": 300, "devices": {"aa:bb:cc:dd:ee:ff": "per-device-secret"}},
  "limits": {"connections_per_minute_per_device": 10, "connections_per_minute_per_ip": 60,
             "messages_per_second_per_device": 50, "messages_per_second_per_ip": 200},
  "blocked_words": ["example"],
  "blocked_alert": "Sorry, I can't help with that.",
  "audit_log": "gateway-audit.jsonl",
  "opus": {"bitrate": 24000, "complexity": 5, "application": "voip"},
  "ota": {"timezone_offset": 480},
  "upstream_connect_timeout_s": 5,
  "upstream_retry_s": 15,
  "tls": {"cert": "/etc/xiaozhi/gateway.crt", "key": "/etc/xiaozhi/gateway.key"},
  "keepalive": {"device_ping_s": 20, "device_timeout_s": 20,
                "upstream_ping_s": 20, "upstream_timeout_s": 20, "upstream_mode": "ws"},
  "redis": {"url": "redis://127.0.0.1:6379/0", "fail_open": false},
  "workers": 2,
  "upstream_pool": 0,
  "trusted_proxies": ["127.0.0.1"]
}
keepalive.upstream_mode: "ws" (WebSocket PING, answered by any server) or
"json" ({"type":"ping"}, for a stock server with enable_websocket_ping on).
A *_ping_s of 0 turns that keepalive off.
trusted_proxies: addresses/CIDRs of reverse proxies (nginx) whose X-Real-IP /
X-Forwarded-For name the device's address (clientip.py); empty: use the TCP peer.
"""

import dataclasses
import ipaddress
import json
import urllib.parse


class RunError(Exception):
    """The gateway could not run, e.g. its port is taken (exit 1); bad settings are ConfigError (exit 2)."""


class ConfigError(ValueError):
    """A one-line message naming the offending key."""


@dataclasses.dataclass
class Limits:
    connections_per_minute_per_device: int = 20
    connections_per_minute_per_ip: int = 120
    messages_per_second_per_device: int = 60
    messages_per_second_per_ip: int = 300


@dataclasses.dataclass
class Opus:
    bitrate: int = 24000
    complexity: int = 5
    application: str = "voip"


@dataclasses.dataclass
class Auth:
    enabled: bool = False
    window_s: int = 300
    devices: dict = dataclasses.field(default_factory=dict)  # device id -> secret


# -- TLS and keepalive (gwsec) --------------------------------------------
@dataclasses.dataclass
class Tls:
    cert: str = ""  # PEM certificate chain; with key, the listener speaks wss:// and https://
    key: str = ""


@dataclasses.dataclass
class Keepalive:
    device_ping_s: float = 20.0
    device_timeout_s: float = 20.0
    upstream_ping_s: float = 20.0
    upstream_timeout_s: float = 20.0
    upstream_mode: str = "ws"


def check_keepalive_mode(key, v):
    if v not in ("ws", "json"):
        raise ConfigError(f"config key '{key}' must be 'ws' or 'json', got {v!r}")
    return v


def check_tls(tls):
    """Both or neither of cert and key."""
    if bool(tls.cert) != bool(tls.key):
        raise ConfigError("TLS needs both a certificate and a key (--tls-cert and --tls-key, "
                          "or config keys 'tls.cert' and 'tls.key')")
    return tls
# -------------------------------------------------------------------------


@dataclasses.dataclass
class Redis:
    url: str = ""  # empty: replay cache and connect limits live in each process
    fail_open: bool = False  # Redis unreachable: accept signed tokens unchecked for replay


@dataclasses.dataclass
class Config:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8765
    public_url: str = ""  # ws URL handed to devices by the OTA proxy; default: from the request's Host
    upstreams: list = dataclasses.field(default_factory=list)
    upstream_ota: str = ""
    upstream_token: str = ""
    auth: Auth = dataclasses.field(default_factory=Auth)
    limits: Limits = dataclasses.field(default_factory=Limits)
    blocked_words: list = dataclasses.field(default_factory=list)
    blocked_alert: str = "Sorry, I can't help with that."
    audit_log: str = ""
    opus: Opus = dataclasses.field(default_factory=Opus)
    ota_timezone_offset: int = 0
    upstream_connect_timeout_s: float = 5.0
    upstream_retry_s: float = 15.0
    tls: Tls = dataclasses.field(default_factory=Tls)
    keepalive: Keepalive = dataclasses.field(default_factory=Keepalive)
    # Scaling (deploy/README): shared state, processes, warm upstream connections.
    redis: Redis = dataclasses.field(default_factory=Redis)
    workers: int = 0  # 0: one per CPU core
    upstream_pool: int = 0  # warm upstream connections kept open; 0: connect per device
    trusted_proxies: list = dataclasses.field(default_factory=list)  # CIDR strings (clientip.py)

    def redacted(self):
        """A dict for logs: secrets replaced by their count/presence."""
        d = dataclasses.asdict(self)
        d["auth"]["devices"] = f"<{len(self.auth.devices)} device secrets>"
        d["upstream_token"] = "<set>" if self.upstream_token else ""
        d["redis"]["url"] = redacted_redis_url(self.redis.url)
        return d


def _int(key, v, lo=0, hi=None):
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"{lo}..{hi}"
        raise ConfigError(f"config key '{key}' must be an integer {rng}, got {v!r}")
    return v


def _num(key, v, lo):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < lo:
        raise ConfigError(f"config key '{key}' must be a number >= {lo}, got {v!r}")
    return float(v)


def _str(key, v):
    if not isinstance(v, str):
        raise ConfigError(f"config key '{key}' must be a string, got {v!r}")
    return v


def _bool(key, v):
    if not isinstance(v, bool):
        raise ConfigError(f"config key '{key}' must be true or false, got {v!r}")
    return v


def _check_url(key, v, schemes, kind):
    _str(key, v)
    u = urllib.parse.urlsplit(v)
    if u.scheme not in schemes or not u.hostname:
        raise ConfigError(f"config key '{key}' must be {kind} URL, got {v!r}")
    try:
        _ = u.port
    except ValueError:
        raise ConfigError(f"config key '{key}' has a bad port: {v!r}") from None
    return v


def check_ws_url(key, v):
    return _check_url(key, v, ("ws", "wss"), "a ws:// or wss://")


def check_http_url(key, v):
    return _check_url(key, v, ("http", "https"), "an http:// or https://")


def check_redis_url(key, v):
    _str(key, v)
    u = urllib.parse.urlsplit(v)
    if u.scheme not in ("redis", "rediss", "unix") or not (u.hostname or u.path):
        raise ConfigError(f"config key '{key}' must be a redis://, rediss:// or unix:// URL, "
                          f"got {redacted_redis_url(v)!r}")
    try:
        _ = u.port
    except ValueError:
        raise ConfigError(f"config key '{key}' has a bad port: {redacted_redis_url(v)!r}") from None
    return v


def redacted_redis_url(v):
    """The URL with its password replaced, for logs and error messages."""
    u = urllib.parse.urlsplit(v)
    if not u.password:
        return v
    return v.replace(":" + u.password + "@", ":***@", 1)


def check_trusted_proxies(key, v):
    """A list of addresses/CIDRs -> their normalised CIDR strings ("127.0.0.1" -> "127.0.0.1/32")."""
    if not isinstance(v, list):
        raise ConfigError(f"config key '{key}' must be a list of addresses or CIDRs, got {v!r}")
    out = []
    for i, text in enumerate(v):
        try:
            out.append(str(ipaddress.ip_network(text.strip(), strict=False)))
        except (AttributeError, ValueError):
            raise ConfigError(f"config key '{key}[{i}]' must be an IP address or CIDR "
                              f"(e.g. 127.0.0.1 or 10.0.0.0/8), got {text!r}") from None
    return out


def check_workers(key, v):
    return _int(key, v, 0, 256)


def check_opus_bitrate(key, v):
    """0 leaves the bitrate to libopus."""
    if v == 0 and type(v) is int:
        return 0
    if isinstance(v, bool) or not isinstance(v, int) or not 6000 <= v <= 510000:
        raise ConfigError(f"config key '{key}' must be 6000..510000 (or 0 for libopus' choice), got {v!r}")
    return v


def check_opus_complexity(key, v):
    return _int(key, v, 0, 10)


def parse_listen(key, v):
    _str(key, v)
    host, sep, port = v.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"config key '{key}' must be HOST:PORT (e.g. 127.0.0.1:8765), got {v!r}")
    return host.strip("[]"), int(port)


def _section(cfg_obj, key, value, fields):
    if not isinstance(value, dict):
        raise ConfigError(f"config key '{key}' must be an object, got {value!r}")
    for k, v in value.items():
        if k not in fields:
            raise ConfigError("unknown config key '{}.{}' (known: {})".format(key, k, ", ".join(sorted(fields))))
        setattr(cfg_obj, k, fields[k](f"{key}.{k}", v))


def _devices(key, v):
    if not isinstance(v, dict):
        raise ConfigError(f"config key '{key}' must be an object of device id -> secret")
    for dev, secret in v.items():
        if not isinstance(secret, str) or len(secret) < 8:
            # The secret itself is never echoed back.
            raise ConfigError(f"config key '{key}.{dev}' must be a secret string of at least 8 characters")
    return dict(v)


def _words(key, v):
    if not isinstance(v, list) or not all(isinstance(w, str) and w.strip() for w in v):
        raise ConfigError(f"config key '{key}' must be a list of non-empty strings")
    return [w.strip() for w in v]


def _upstreams(key, v):
    if not isinstance(v, list):
        raise ConfigError(f"config key '{key}' must be a list of ws:// URLs")
    return [check_ws_url(f"{key}[{i}]", u) for i, u in enumerate(v)]


def _application(key, v):
    if v not in ("voip", "audio"):
        raise ConfigError(f"config key '{key}' must be 'voip' or 'audio', got {v!r}")
    return v


def apply_dict(cfg, data):
    """Apply a parsed config file (dict) onto cfg, validating every key."""
    if not isinstance(data, dict):
        raise ConfigError("config file must hold a JSON object")
    for key, v in data.items():
        if key == "listen":
            cfg.listen_host, cfg.listen_port = parse_listen(key, v)
        elif key == "public_url":
            cfg.public_url = check_ws_url(key, v) if v else ""
        elif key == "upstreams":
            cfg.upstreams = _upstreams(key, v)
        elif key == "upstream_ota":
            cfg.upstream_ota = check_http_url(key, v) if v else ""
        elif key == "upstream_token":
            cfg.upstream_token = _str(key, v)
        elif key == "auth":
            _section(cfg.auth, key, v, {
                "enabled": _bool,
                "window_s": lambda k, x: _int(k, x, 1, 86400),
                "devices": _devices,
            })
        elif key == "limits":
            _section(cfg.limits, key, v, {f.name: _int for f in dataclasses.fields(Limits)})
        elif key == "blocked_words":
            cfg.blocked_words = _words(key, v)
        elif key == "blocked_alert":
            cfg.blocked_alert = _str(key, v)
        elif key == "audit_log":
            cfg.audit_log = _str(key, v)
        elif key == "opus":
            _section(cfg.opus, key, v, {
                "bitrate": check_opus_bitrate,
                "complexity": check_opus_complexity,
                "application": _application,
            })
        elif key == "ota":
            if not isinstance(v, dict):
                raise ConfigError(f"config key 'ota' must be an object, got {v!r}")
            for k, x in v.items():
                if k != "timezone_offset":
                    raise ConfigError(f"unknown config key 'ota.{k}' (known: timezone_offset)")
                cfg.ota_timezone_offset = _int("ota.timezone_offset", x, -720, 840)
        elif key == "upstream_connect_timeout_s":
            cfg.upstream_connect_timeout_s = _num(key, v, 0.1)
        elif key == "upstream_retry_s":
            cfg.upstream_retry_s = _num(key, v, 0)
        elif key == "tls":
            _section(cfg.tls, key, v, {"cert": _str, "key": _str})
        elif key == "keepalive":
            _section(cfg.keepalive, key, v, {
                "device_ping_s": lambda k, x: _num(k, x, 0),
                "device_timeout_s": lambda k, x: _num(k, x, 0.1),
                "upstream_ping_s": lambda k, x: _num(k, x, 0),
                "upstream_timeout_s": lambda k, x: _num(k, x, 0.1),
                "upstream_mode": check_keepalive_mode,
            })
        elif key == "redis":
            _section(cfg.redis, key, v, {"url": lambda k, x: check_redis_url(k, x) if x else "", "fail_open": _bool})
        elif key == "workers":
            cfg.workers = check_workers(key, v)
        elif key == "upstream_pool":
            cfg.upstream_pool = _int(key, v, 0, 1000)
        elif key == "trusted_proxies":
            cfg.trusted_proxies = check_trusted_proxies(key, v)
        else:
            raise ConfigError(f"unknown config key '{key}'")
    if cfg.auth.enabled and not cfg.auth.devices:
        raise ConfigError("config key 'auth.devices' must list at least one device when auth.enabled is true")
    check_tls(cfg.tls)
    return cfg


def load_file(path, cfg=None):
    cfg = cfg or Config()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"config file {path} is not valid JSON: {e}") from None
    return apply_dict(cfg, data)
