"""The mock's MCP call script: what to send to the device after tools/list.

A script is a JSON list; each entry is one of
  {"name": "self.get_device_status", "arguments": {...}}  tools/call, id from the
                                                          per-connection counter (1, 2, ...)
  {"payload": {...JSON-RPC...}, "wait": true}             sent verbatim inside
                                                          {"type":"mcp","payload":...}
  {"raw": "<text frame>"}                                 sent as-is (bad-request tests)
  {"sleep": 0.5}                                          pause (seconds)
Replies are awaited (tools/call always; a payload only if it carries a numeric
id and "wait" is not false) before the next entry is sent.
"""

import json


class ScriptError(ValueError):
    pass


def validate(entries, where="MCP script"):
    if not isinstance(entries, list):
        raise ScriptError(f"{where}: must be a JSON list of entries")
    out = []
    for i, e in enumerate(entries):
        at = f"{where} entry {i}"
        if not isinstance(e, dict):
            raise ScriptError(f"{at}: must be an object, got {type(e).__name__}")
        keys = [k for k in ("name", "payload", "raw", "sleep") if k in e]
        if len(keys) != 1:
            raise ScriptError(f'{at}: needs exactly one of "name", "payload", "raw", "sleep"')
        k = keys[0]
        if k == "name":
            if not isinstance(e["name"], str) or not e["name"]:
                raise ScriptError(f"{at}: name must be a non-empty string")
            if not isinstance(e.get("arguments", {}), dict):
                raise ScriptError(f"{at}: arguments must be an object")
        elif k == "payload":
            if not isinstance(e["payload"], (dict, list)):
                raise ScriptError(f"{at}: payload must be a JSON object (or a list, a batch)")
        elif k == "raw":
            if not isinstance(e["raw"], str):
                raise ScriptError(f"{at}: raw must be a string")
        elif k == "sleep" and (not isinstance(e["sleep"], (int, float))
                               or isinstance(e["sleep"], bool) or e["sleep"] < 0):
            raise ScriptError(f"{at}: sleep must be a number of seconds >= 0")
        out.append(e)
    return out


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ScriptError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScriptError(f"{path}: cannot read ({e})") from None
    except json.JSONDecodeError as e:
        raise ScriptError(f"{path}: invalid JSON ({e})") from None
    return validate(data, str(path))
