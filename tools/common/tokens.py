"""Signed device tokens: "<base64url-nopad(HMAC-SHA256(secret, client|device|ts))>.<ts>".

The shape the stock server verifies (docs/protocol.md §1.2) and the firmware
mints (firmware/auth.py). The gateway and the mock server check tokens with
their own policies (auth.py in each); this module only mints and parses.
parse() is strict because the text comes from anyone who can reach the port.
"""

import base64
import hashlib
import hmac

SIG_CHARS = 43  # base64url-nopad of a 32-byte HMAC-SHA256
MAX_TS_DIGITS = 12  # a Unix time in seconds; longer is not a timestamp
_B64URL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_DIGITS = frozenset(b"0123456789")


def sign(secret, client_id, device_id, ts):
    """The token for one connect (the CPython twin of firmware/auth.py)."""
    if isinstance(secret, str):
        secret = secret.encode()
    msg = f"{client_id}|{device_id}|{int(ts)}"
    sig = hmac.new(secret, msg.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(sig).rstrip(b"=").decode() + f".{int(ts)}"


def bearer_token(authorization):
    """The token of an Authorization header value ("Bearer <tok>" or a bare token), or None."""
    if not authorization:
        return None
    value = authorization.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    elif " " in value:
        return None  # another scheme (Basic …)
    return value or None


def parse(token):
    """The timestamp (int) of a well-formed token, else None.

    Well-formed: exactly SIG_CHARS base64url characters, a dot, 1..MAX_TS_DIGITS
    ASCII digits. str.isdigit() is not enough: it accepts "²" and other Unicode
    digits that int() then refuses.
    """
    if not isinstance(token, str) or not token.isascii():
        return None
    sig, dot, ts = token.rpartition(".")
    raw_sig, raw_ts = sig.encode(), ts.encode()
    if not dot or len(raw_sig) != SIG_CHARS or not set(raw_sig) <= _B64URL:
        return None
    if not 1 <= len(raw_ts) <= MAX_TS_DIGITS or not set(raw_ts) <= _DIGITS:
        return None
    return int(ts)
