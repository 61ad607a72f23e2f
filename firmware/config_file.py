# config.json on flash: reading it (schema migrations, recovery from an
# interrupted save) and writing it atomically. A corrupt file never bricks the
# device: it is kept as a backup and the device starts from defaults.
# Loaded for a job and dropped after it (firmware/config.py).
import os

try:
    import json
except ImportError:  # pragma: no cover
    import ujson as json

from firmware import log
from firmware.config import Config, ConfigError

_TAG = "config"


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def save(path, data):
    """Write atomically: temp file, then rename. The old file survives a failed write."""
    tmp = path + ".tmp"
    text = json.dumps(data)
    try:
        with open(tmp, "w") as f:
            _write(f, text)
            f.flush()  # the data reaches the medium before the rename names it
        try:
            os.rename(tmp, path)
        except OSError:
            # FAT refuses to rename onto an existing file; LittleFS and POSIX replace it.
            os.remove(path)
            os.rename(tmp, path)
        _sync()
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise ConfigError("could not save %s: %s %s" % (path, type(e).__name__, e))


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


def _migrate_2(data):
    """Schema 2 files hold every key, so one saved before the receive buffer's
    default fell to 4096 keeps the old 8192, and 4 KB of heap with it. 8192 was
    that default, so it goes back to the new one; any other value was chosen
    and stays."""
    if data.get("ws_max_message") == 8192:
        del data["ws_max_message"]


# _MIGRATIONS[n] turns schema n into n + 1, in place.
_MIGRATIONS = (_migrate_0, _migrate_1, _migrate_2)


def migrate(data):
    """Bring a parsed config dict to the current schema, in place (tools.dev
    config does this too, before it merges a device's file); ConfigError for
    a schema this firmware does not know."""
    from firmware import config_schema as schema

    version = data.get("schema", 0)
    if not isinstance(version, int) or version < 0 or version > schema.SCHEMA:
        raise ConfigError("unsupported schema %r" % (version,))
    while version < schema.SCHEMA:
        _MIGRATIONS[version](data)
        version += 1
        log.info(_TAG, "migrated settings to schema %d" % version)
    data["schema"] = schema.SCHEMA
    return data


def _parse(text):
    # Only reading needs the checks (a save writes values already checked).
    from firmware import config_schema as schema

    data = json.loads(text)
    if not isinstance(data, dict):
        raise ConfigError("top level is not an object")
    migrate(data)
    merged = schema.fresh()
    for k in data:
        if k in schema.DEFAULTS:
            schema.check(k, data[k])
            merged[k] = data[k]
        else:
            log.warn(_TAG, "ignoring unknown key '%s'" % k)
    merged["schema"] = schema.SCHEMA
    return merged


def load(path):
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
            save(path, cfg.data)
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
