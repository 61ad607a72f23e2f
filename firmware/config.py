# Device configuration: one JSON file with defaults, validation, a schema
# version and atomic writes. A corrupt file never bricks the device: it is kept
# as a backup and the device starts from defaults.
import os

try:
    import json
except ImportError:  # pragma: no cover
    import ujson as json

from firmware import boards, log

PATH = "config.json"
# 2: server-provided WebSocket settings and MQTT kept apart from the user's own
# (server_ws, mqtt), so a user-set URL can win over the OTA reply.
SCHEMA = 2
MAX_NETWORKS = 5  # saved Wi-Fi networks, as the reference keeps
_TAG = "config"

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
    "ws_max_message": 8192,
    "tls_verify": True,
    "ca_file": "",
    # NTP server that sets the clock after Wi-Fi (certificate dates need it); "" = off.
    "ntp_host": "pool.ntp.org",
    "log_level": "info",
}

_CHOICES = {
    "protocol_version": (1, 2, 3),
    "audio_format": ("pcm", "adpcm"),
    "listen_mode": ("auto", "realtime"),
    "button_mode": ("ptt", "click"),
    "listen_trigger": ("button", "vad"),
    "log_level": ("debug", "info", "warn", "error"),
    "board": boards.NAMES,
}
# jitter_frames is the playback prefill; the app's jitter buffer holds 16 frames more.
_RANGES = {"volume": (0, 100), "jitter_frames": (1, 20), "keepalive_s": (1, 300), "link_timeout_s": (2, 600),
           "ws_max_message": (4096, 65536)}


class ConfigError(ValueError):
    pass


def _fresh():
    # Copies of the list/dict defaults, so no Config ever mutates DEFAULTS.
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


def _check(key, value):
    """Raise ConfigError naming the key when value is not acceptable for it."""
    if key not in DEFAULTS:
        raise ConfigError("unknown config key '%s'" % key)
    default = DEFAULTS[key]
    if type(value) is not type(default):
        raise ConfigError(
            "config key '%s' must be %s, got %s" % (key, type(default).__name__, type(value).__name__)
        )
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError("config key '%s' must be one of %s, got %r" % (key, _CHOICES[key], value))
    if key in _RANGES:
        lo, hi = _RANGES[key]
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


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


class Config:
    def __init__(self, path=PATH, data=None):
        self.path = path
        self.data = _fresh()
        if data:
            self.data.update(data)

    def get(self, key):
        return self.data[key]

    def set(self, key, value):
        _check(key, value)
        self.data[key] = value

    def update(self, values):
        """Validate every value first, so a bad one leaves the config unchanged."""
        for k in values:
            _check(k, values[k])
        self.data.update(values)

    def redacted(self):
        """A copy safe to print: secrets replaced, Wi-Fi reduced to SSIDs."""
        out = dict(self.data)
        for k in SECRETS:
            v = self.data[k]
            if k == "wifi":
                out[k] = [n["ssid"] for n in v]
            elif isinstance(v, dict):
                out[k] = {m: (v[m] if m in _PUBLIC or not v[m] else "***") for m in v}
            elif v:
                out[k] = "***"
        return out

    def save(self):
        """Write atomically: temp file, then rename. The old file survives a failed write."""
        tmp = self.path + ".tmp"
        text = json.dumps(self.data)
        try:
            with open(tmp, "w") as f:
                _write(f, text)
                f.flush()  # the data reaches the medium before the rename names it
            try:
                os.rename(tmp, self.path)
            except OSError:
                # FAT refuses to rename onto an existing file; LittleFS and POSIX replace it.
                os.remove(self.path)
                os.rename(tmp, self.path)
            _sync()
        except OSError as e:
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise ConfigError("could not save %s: %s %s" % (self.path, type(e).__name__, e))


def _sync():
    """Make the rename durable. What each port offers:
    - unix: f.flush() is fsync(fd); there is no os.sync and no way to open a
      directory, so the rename is as durable as the host filesystem makes it.
    - esp32 (LittleFS, the default): f.flush() is lfs_file_sync, and a rename
      is one atomic metadata commit; os.sync(), where built in, syncs every
      mounted filesystem (FAT's directory entry included).
    """
    sync = getattr(os, "sync", None)
    if sync:
        sync()


def _write(f, text):
    # One seam for tests that kill the process in the middle of a save.
    f.write(text)


def _migrate_0(data):
    """Schema 0: hand-written files in the reference firmware's NVS style, with
    flat ssid/password (ssid1..ssid4) keys and a websocket object."""
    if "wifi" not in data:
        nets = []
        for i in range(5):
            sfx = str(i) if i else ""
            ssid = data.pop("ssid" + sfx, None)
            pw = data.pop("password" + sfx, "")
            if isinstance(ssid, str) and ssid:
                nets.append({"ssid": ssid, "password": pw})
        data["wifi"] = nets
    ws = data.pop("websocket", None)
    if isinstance(ws, dict):
        data.setdefault("server_ws", ws)


def _migrate_1(data):
    """Schema 1 had no place for server-provided settings; nothing to convert,
    the new keys start from their defaults."""


# _MIGRATIONS[n] turns schema n into n + 1, in place.
_MIGRATIONS = (_migrate_0, _migrate_1)


def _parse(text):
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ConfigError("top level is not an object")
    schema = data.get("schema", 0)
    if not isinstance(schema, int) or schema < 0 or schema > SCHEMA:
        raise ConfigError("unsupported schema %r" % (schema,))
    while schema < SCHEMA:
        _MIGRATIONS[schema](data)
        schema += 1
        log.info(_TAG, "migrated settings to schema %d" % schema)
    merged = _fresh()
    for k in data:
        if k in DEFAULTS:
            _check(k, data[k])
            merged[k] = data[k]
        else:
            log.warn(_TAG, "ignoring unknown key '%s'" % k)
    merged["schema"] = SCHEMA
    return merged


def load(path=PATH):
    """Load the config; never raises. Corrupt files are kept as <path>.bad."""
    for candidate in (path, path + ".tmp"):
        # A power cut between remove and rename in save() leaves only the .tmp file.
        if not _exists(candidate):
            continue
        try:
            with open(candidate) as f:
                data = _parse(f.read())
        except (ValueError, OSError) as e:
            # ValueError covers bad JSON and ConfigError; the message names the key.
            bad = candidate + ".bad"
            log.error(_TAG, "%s is corrupt (%s); kept as %s, using defaults" % (candidate, e, bad))
            try:
                os.remove(bad)  # FAT will not rename onto an older backup
            except OSError:
                pass
            try:
                os.rename(candidate, bad)
            except OSError:
                pass
            continue
        cfg = Config(path, data)
        if candidate != path:
            log.warn(_TAG, "recovered settings from an interrupted save")
            cfg.save()
        elif _exists(path + ".tmp"):
            # A save that died before its rename: the previous settings stand.
            log.warn(_TAG, "discarding an unfinished save (%s.tmp); previous settings kept" % path)
            try:
                os.remove(path + ".tmp")
            except OSError:
                pass
        return cfg
    log.info(_TAG, "no %s; starting from defaults" % path)
    return Config(path)
