# Signed device tokens, the shape the stock xiaozhi server and the project's
# gateway verify:
#   "<base64url-nopad(HMAC-SHA256(secret, client_id|device_id|ts))>.<ts>"
# The per-device secret never leaves the device; a fresh token is minted for
# every connect, so a captured token is useless after the gateway's replay
# cache has seen it or its +-300 s window has passed.

try:
    import binascii
except ImportError:  # pragma: no cover
    import ubinascii as binascii

import hmac_hashlib
from firmware import clock

# A clock that was never set (no NTP, no OTA server_time) reads 2000/1970; a
# token minted from it is certain to be refused, so callers can check first.
_MIN_SANE = 1704067200  # 2024-01-01


_last_ts = 0


def token_ts():
    """Unix seconds (UTC, firmware/clock.py) for a token, but never the same
    second twice: the replay cache accepts a token once, and a reconnect
    within the same second would otherwise mint the identical token. Running
    up to a few seconds ahead is harmless inside the verifier's +-300 s
    window."""
    global _last_ts
    ts = clock.unix_time()
    if ts <= _last_ts:
        ts = _last_ts + 1
    _last_ts = ts
    return ts


def clock_ok(ts):
    return ts >= _MIN_SANE


def _b64url(raw):
    s = binascii.b2a_base64(raw).decode().strip()
    return s.replace("+", "-").replace("/", "_").rstrip("=")


def mint_token(secret, client_id, device_id, ts):
    """Token for one connect. secret: str or bytes; ts: Unix seconds (int)."""
    if isinstance(secret, str):
        secret = secret.encode()
    if not secret:
        raise ValueError("empty device secret")
    ts = int(ts)
    msg = "|".join((str(client_id), str(device_id), str(ts)))
    sig = hmac_hashlib.new(secret, msg.encode(), "sha256").digest()
    return _b64url(sig) + "." + str(ts)

