# What the settings in config.json may be: the defaults (every key there is),
# the checks a value must pass, and a redacted copy safe to print. The one
# source of truth for them, on the device and on the host (tools.dev config).
# Loaded for a job and dropped after it (firmware/config.py).
from firmware import boards
from firmware.config import MAX_NETWORKS, ConfigError

# 2: server-provided WebSocket settings and MQTT kept apart from the user's own
# (server_ws, mqtt), so a user-set URL can win over the OTA reply.
# 3: ws_max_message's default fell from 8192 to 4096 (firmware/config_file.py).
SCHEMA = 3

# Keys whose values are never printed or logged.
SECRETS = ("wifi", "ws_token", "device_secret", "server_ws", "mqtt")
# Members of dict-valued secrets that are safe to show.
_PUBLIC = ("url", "version", "endpoint", "ssid")

DEFAULTS = {
    "schema": SCHEMA,
    "board": "bread_compact_s3",
    "wifi": [],  # [{"ssid": ..., "password": ...}], tried in order
    "ota_url": "",
    "ws_url": "",
    "ws_token": "",
    # When false, a ws_url/ota_url the user set wins over one an OTA reply hands out.
    "server_managed_urls": False,
    "protocol_version": 1,
    # Written only by the OTA reply (docs/protocol.md §5.2): websocket {url, token, version}
    # and mqtt (kept for a later MQTT transport). The user's ws_url/ws_token win
    # over server_ws unless server_managed_urls is true.
    "server_ws": {},
    "mqtt": {},
    "language": "zh-CN",  # Accept-Language and OTA body "language"
    "audio_format": "pcm",
    "listen_mode": "auto",  # mode for a button click: auto | realtime
    "button_mode": "ptt",  # ptt: hold to talk (manual) | click: toggle like the reference
    # button: a session starts on a press | vad: also on speech while idle (firmware/vad.py)
    "listen_trigger": "button",
    "client_id": "",  # UUID v4, generated once on first boot
    "device_secret": "",  # per-device HMAC secret for signed tokens (never sent)
    "volume": 70,
    "jitter_frames": 3,
    # Liveness (firmware/channel.py): our WebSocket PING every keepalive_s while
    # a session is open; no frame at all for link_timeout_s means a dead link,
    # so a hung peer is found within 30 s. json_ping adds the stock server's
    # {"type":"ping"} (answered only with its enable_websocket_ping on).
    "keepalive_s": 10,
    "link_timeout_s": 25,
    "json_ping": False,
    # The WebSocket receive buffer: the largest server message the device takes
    # whole. A longer one is skipped as it streams in (an MCP request gets an
    # error reply) and the session goes on.
    "ws_max_message": 4096,
    "tls_verify": True,
    "ca_file": "",
    # NTP server that sets the clock after Wi-Fi (certificate dates need it); "" = off.
    "ntp_host": "pool.ntp.org",
    "log_level": "info",
}

CHOICES = {
    "protocol_version": (1, 2, 3),
    "audio_format": ("pcm", "adpcm"),
    "listen_mode": ("auto", "realtime"),
    "button_mode": ("ptt", "click"),
    "listen_trigger": ("button", "vad"),
    "log_level": ("debug", "info", "warn", "error"),
    "board": boards.NAMES,
}
# jitter_frames is the playback prefill; the app's jitter buffer holds at least 4 frames more behind the
# paced gateway, 16 otherwise (firmware/audio_path.py).
RANGES = {"volume": (0, 100), "jitter_frames": (1, 20), "keepalive_s": (1, 300), "link_timeout_s": (2, 600),
          "ws_max_message": (4096, 65536)}


def fresh():
    """The defaults, with copies of the list/dict ones, so no Config ever mutates DEFAULTS."""
    d = dict(DEFAULTS)
    for k in d:
        if isinstance(d[k], list):
            d[k] = list(d[k])
        elif isinstance(d[k], dict):
            d[k] = dict(d[k])
    return d


def _is_ws_url(url):
    return url.startswith("ws://") or url.startswith("wss://")


def check_network(net):
    """Raise ConfigError unless net is {"ssid", "password"} within the 802.11
    limits (ssid 1..32 bytes, password up to 64), as the reference portal
    enforces them."""
    ssid = net.get("ssid") if isinstance(net, dict) else None
    if not isinstance(ssid, str) or not 0 < len(ssid.encode()) <= 32:
        raise ConfigError("network name (ssid) must be 1 to 32 bytes")
    pw = net.get("password", "")
    if not isinstance(pw, str) or len(pw.encode()) > 64:
        raise ConfigError("password must be a string of at most 64 bytes")


def check(key, value):
    """Raise ConfigError naming the key when value is not acceptable for it."""
    if key not in DEFAULTS:
        raise ConfigError("unknown config key '%s'" % key)
    default = DEFAULTS[key]
    if type(value) is not type(default):
        raise ConfigError(
            "config key '%s' must be %s, got %s" % (key, type(default).__name__, type(value).__name__)
        )
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError("config key '%s' must be one of %s, got %r" % (key, CHOICES[key], value))
    if key in RANGES:
        lo, hi = RANGES[key]
        if not lo <= value <= hi:
            raise ConfigError("config key '%s' must be %d..%d, got %d" % (key, lo, hi, value))
    if key == "wifi":
        if len(value) > MAX_NETWORKS:
            raise ConfigError("config key 'wifi' holds at most %d networks" % MAX_NETWORKS)
        for net in value:
            try:
                check_network(net)
            except ConfigError as e:
                raise ConfigError("config key 'wifi': %s" % e)
    if key == "ws_url" and value and not _is_ws_url(value):
        raise ConfigError("config key 'ws_url' must be a ws:// or wss:// URL")
    if key == "ota_url" and value and not (
        value.startswith("http://") or value.startswith("https://")
    ):
        raise ConfigError("config key 'ota_url' must be an http:// or https:// URL")
    if key in ("server_ws", "mqtt"):
        for k in value:
            v = value[k]
            if not isinstance(k, str) or type(v) not in (str, int):
                raise ConfigError("config key '%s' members must be strings or numbers" % key)
        if key == "server_ws":
            url = value.get("url", "")
            if url and not (isinstance(url, str) and _is_ws_url(url)):
                raise ConfigError("config key 'server_ws' url must be a ws:// or wss:// URL")
            if value.get("version", 1) not in (1, 2, 3):
                raise ConfigError("config key 'server_ws' version must be 1, 2 or 3")


def check_all(values):
    """check() every value of a dict."""
    for k in values:
        check(k, values[k])


def redacted(data):
    """A copy of data safe to print: secrets replaced, Wi-Fi reduced to SSIDs."""
    out = dict(data)
    for k in SECRETS:
        v = data[k]
        if k == "wifi":
            out[k] = [n["ssid"] for n in v]
        elif isinstance(v, dict):
            out[k] = {m: (v[m] if m in _PUBLIC or not v[m] else "***") for m in v}
        elif v:
            out[k] = "***"
    return out
