"""Audit log: one JSON object per line.

Events: connect, auth, upstream_fail, hello, session_start, listen, abort,
stt, tts, blocked, mcp_call, mcp_result, close (a refused connect is a close
with side "gateway": reason is what the client was told, detail the precise
cause; side "keepalive" is an upstream that stopped answering), session_end;
ota and activate from the OTA proxy.
Never audio, never secrets: fields named like a secret are dropped here as a
last line of defence, and callers pass no tokens.
"""

import json
import logging
import sys
import time

log = logging.getLogger("gateway.audit")

_SECRET_WORDS = ("token", "secret", "authorization", "password")


class Audit:
    def __init__(self, path=None, clock=time.time):
        """path: a file to append to, "-" for stdout, None/"" to keep records only in memory."""
        self.clock = clock
        self.records = []  # the last `keep` records, for find() (tests)
        self.keep = 1000
        self._fh = None
        if path == "-":
            self._fh = sys.stdout
        elif path:
            self._fh = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the gateway

    def write(self, event, **fields):
        rec = {"ts": round(self.clock(), 3), "event": event}
        for k, v in fields.items():
            if any(w in k.lower() for w in _SECRET_WORDS):
                continue
            if isinstance(v, (bytes, bytearray, memoryview)):
                continue  # audio or other raw payloads never go to the audit
            rec[k] = v
        self.records.append(rec)
        if len(self.records) > self.keep:
            del self.records[: len(self.records) - self.keep]
        if self._fh is not None:
            try:
                self._fh.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
            except (OSError, ValueError) as e:
                log.warning("audit log write failed: %s", e)
        return rec

    def find(self, event, **match):
        return [r for r in self.records if r["event"] == event and all(r.get(k) == v for k, v in match.items())]

    def close(self):
        if self._fh is not None and self._fh is not sys.stdout:
            self._fh.close()
        self._fh = None
