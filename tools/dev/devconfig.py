"""Device config on the host: build, validate and show /config.json without echoing secrets.

Validation is firmware/config_schema.py itself (through firmware/config.py), imported here with MicroPython's ticks
shimmed in, so the host never keeps a second copy of the schema.
"""
import json
import os
import sys
import time

from tools.dev.build import ROOT
from tools.dev.errors import DevError

if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

if not hasattr(time, "ticks_ms"):
    # firmware/clock.py (imported by config through log) reads ticks_ms at import; CPython has no ticks.
    time.ticks_ms = lambda: int(time.monotonic() * 1000)  # type: ignore[attr-defined]
    time.ticks_diff = lambda a, b: a - b  # type: ignore[attr-defined]

from firmware import boards as fwboards  # noqa: E402
from firmware import config as fwconfig  # noqa: E402
from firmware import config_file as fwfile  # noqa: E402
from firmware import config_schema as fwschema  # noqa: E402

PATH = fwconfig.PATH
ENV_PASSWORD = "XIAOZHI_WIFI_PASSWORD"
ENV_TOKEN = "XIAOZHI_WS_TOKEN"
# Where changes_from_args puts the --ssid/--password network for merge(); not a config key, so a
# config file cannot set it (check() rejects it as unknown).
NETWORK = "_network"


def boards():
    return list(fwboards.NAMES)


def add_arguments(p):
    """The config flags shared by `deploy` and `config`."""
    g = p.add_argument_group("device config (written to /config.json; secrets are never printed)")
    g.add_argument("--config-file", metavar="FILE", help="JSON file with config keys to set")
    g.add_argument("--ssid", help="Wi-Fi network to add or update (tried first)")
    g.add_argument("--password", help="Wi-Fi password (or set $%s to keep it out of shell history)" % ENV_PASSWORD)
    g.add_argument("--ws-url", help="server WebSocket URL: the gateway, e.g. ws://192.168.1.10:8765/xiaozhi/v1/")
    g.add_argument("--ota-url", help="OTA/activation URL: the gateway's, e.g. http://192.168.1.10:8765/xiaozhi/ota/")
    g.add_argument("--token", help="WebSocket token (or set $%s)" % ENV_TOKEN)
    g.add_argument("--board", help="board profile (%s)" % ", ".join(boards()))


def changes_from_args(args):
    """The dict of config changes the flags ask for; validated key by key. {} when none."""
    values = {}
    if args.config_file:
        try:
            with open(args.config_file) as f:
                data = json.load(f)
        except OSError as e:
            raise DevError("cannot read config file %s: %s" % (args.config_file, e.strerror)) from None
        except ValueError as e:
            raise DevError("config file %s is not valid JSON: %s" % (args.config_file, e)) from None
        if not isinstance(data, dict):
            raise DevError("config file %s must hold a JSON object" % args.config_file)
        values.update(data)
    for key in ("ws_url", "ota_url", "board"):
        # `is not None`: an explicit --ws-url "" clears the key rather than being ignored.
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    token = args.token if args.token is not None else os.environ.get(ENV_TOKEN) or None
    if token is not None:
        values["ws_token"] = token
    if args.password is not None and not args.ssid:
        raise DevError("--password needs --ssid")
    check(values)
    if args.ssid:
        # $XIAOZHI_WIFI_PASSWORD is read only here, so an exported one never gets in the way of other commands.
        password = args.password if args.password is not None else os.environ.get(ENV_PASSWORD, "")
        network = {"ssid": args.ssid, "password": password}
        check({"wifi": [network]})
        values[NETWORK] = network
    return values


def check(values):
    """Raise DevError naming the first key firmware/config_schema.py would reject."""
    try:
        fwconfig.Config().update(values)
    except fwconfig.ConfigError as e:
        raise DevError(str(e)) from None


def merge(current, values):
    """New config dict: current device config with `values` applied, validated as a whole."""
    try:
        current = fwfile.migrate(dict(current or {}))  # as the device reads it, so its schema is current
    except fwconfig.ConfigError as e:
        raise DevError("the device's config.json: %s" % e) from None
    new = dict(fwschema.DEFAULTS)
    new.update({k: v for k, v in current.items() if k in fwschema.DEFAULTS})
    for k, v in values.items():
        if k != NETWORK:
            new[k] = v
    if NETWORK in values:
        net = values[NETWORK]
        check({"wifi": new["wifi"]})  # the device's list may be garbled: a clear error, not a crash below
        others = [n for n in new["wifi"] if n["ssid"] != net["ssid"]]
        new["wifi"] = [net] + others[:fwconfig.MAX_NETWORKS - 1]
    check(new)
    return new


def redacted(data):
    return fwschema.redacted(fwconfig.Config(data=data).data)


def describe_changes(old, new):
    """Lines like 'ws_url: ws://a -> ws://b' with secrets shown as *** only."""
    old = dict(fwschema.DEFAULTS, **(old or {}))
    a, b = redacted(old), redacted(new)
    lines = []
    for k in sorted(new):
        if old.get(k) == new[k]:
            continue
        if k in fwschema.SECRETS and (k != "wifi" or a[k] == b[k]):
            # Same SSIDs means only a password differs; say so without showing it.
            lines.append("%s: %s changed" % (k, "passwords" if k == "wifi" else "value"))
        else:
            lines.append("%s: %s -> %s" % (k, json.dumps(a.get(k)), json.dumps(b[k])))
    return lines


def parse_device_config(raw):
    """Parse the device's config.json bytes; (dict or None, warning or None)."""
    if raw is None:
        return None, None
    try:
        data = json.loads(raw)
    except ValueError:
        return None, "the device's %s is not valid JSON; starting from defaults" % PATH
    if not isinstance(data, dict):
        return None, "the device's %s is not an object; starting from defaults" % PATH
    return data, None


def encode(data):
    return json.dumps(data).encode()
