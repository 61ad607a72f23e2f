# Device configuration: one JSON file with defaults, validation, a schema
# version and atomic writes. A corrupt file never bricks the device: it is kept
# as a backup and the device starts from defaults.
import os

try:
    import json
except ImportError:  # pragma: no cover
    import ujson as json

from firmware import log

PATH = "config.json"
SCHEMA = 1
_TAG = "config"

# Keys whose values are never printed or logged.
SECRETS = ("wifi", "ws_token", "device_secret")

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
    "audio_format": "pcm",
    "listen_mode": "auto",  # mode for a button click: auto | realtime
    "button_mode": "ptt",  # ptt: hold to talk (manual) | click: toggle like the reference
    "client_id": "",  # UUID v4, generated once on first boot
    "device_secret": "",  # per-device HMAC secret for signed tokens (never sent)
    "volume": 70,
    "jitter_frames": 3,
    "tls_verify": True,
    "ca_file": "",
    "log_level": "info",
}

_CHOICES = {
    "protocol_version": (1, 2, 3),
    "audio_format": ("pcm",),
    "listen_mode": ("auto", "realtime"),
    "button_mode": ("ptt", "click"),
    "log_level": ("debug", "info", "warn", "error"),
}
_RANGES = {"volume": (0, 100), "jitter_frames": (1, 40)}


class ConfigError(ValueError):
    pass


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
        if len(value) > 5:
            raise ConfigError("config key 'wifi' holds at most 5 networks")
        for net in value:
            if not isinstance(net, dict) or not isinstance(net.get("ssid"), str) or not net["ssid"]:
                raise ConfigError("config key 'wifi' entries need a non-empty 'ssid'")
            if not isinstance(net.get("password", ""), str):
                raise ConfigError("config key 'wifi' password must be a string")
    if key in ("ws_url", "ota_url") and value and not (
        value.startswith("ws://") or value.startswith("wss://") or value.startswith("http://")
        or value.startswith("https://")
    ):
        raise ConfigError("config key '%s' must be a ws://, wss://, http:// or https:// URL" % key)


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


class Config:
    def __init__(self, path=PATH, data=None):
        self.path = path
        self.data = dict(DEFAULTS)
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
            if k == "wifi":
                out[k] = [n["ssid"] for n in self.data["wifi"]]
            elif out[k]:
                out[k] = "***"
        return out

    def save(self):
        """Write atomically: temp file, then rename. The old file survives a failed write."""
        tmp = self.path + ".tmp"
        text = json.dumps(self.data)
        try:
            with open(tmp, "w") as f:
                f.write(text)
            try:
                os.rename(tmp, self.path)
            except OSError:
                # FAT refuses to rename onto an existing file; LittleFS and POSIX replace it.
                os.remove(self.path)
                os.rename(tmp, self.path)
        except OSError as e:
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise ConfigError("could not save %s: %s %s" % (self.path, type(e).__name__, e))


def _parse(text):
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ConfigError("top level is not an object")
    schema = data.get("schema", 0)
    if not isinstance(schema, int) or schema > SCHEMA:
        raise ConfigError("unsupported schema %r" % (schema,))
    merged = dict(DEFAULTS)
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
            bad = candidate + ".bad"
            log.error(_TAG, "%s is corrupt (%s); kept as %s, using defaults" % (candidate, e, bad))
            try:
                os.rename(candidate, bad)
            except OSError:
                pass
            continue
        cfg = Config(path, data)
        if candidate != path:
            log.warn(_TAG, "recovered settings from an interrupted save")
            cfg.save()
        return cfg
    log.info(_TAG, "no %s; starting from defaults" % path)
    return Config(path)
