"""Stock-style WebSocket token check (stock-server.md §3).

token = "<sig>.<ts>", sig = base64url-nopad(HMAC-SHA256(key, "client_id|device_id|ts")).
A missing client-id counts as the string "None" (as stock); tokens older than
`expire_s` are refused, tokens from the future are accepted.
"""

import hmac
import time

from tools.common.tokens import bearer_token, parse, sign

EXPIRE_S = 30 * 24 * 3600


def check(authorization, client_id, device_id, key=None, token=None, allow_devices=(),
          now=None, expire_s=EXPIRE_S):
    """Return None if accepted, else a short reason string (for the log)."""
    if device_id in allow_devices:
        return None
    # Stock wants exactly "Bearer " in front (no bare token, no other case).
    tok = bearer_token(authorization) if authorization and authorization.startswith("Bearer ") else None
    if tok is None:
        return "no Bearer Authorization"
    if token is not None and hmac.compare_digest(tok.encode(), token.encode()):
        return None
    if key is None:
        return "token does not match"
    ts = parse(tok)
    if ts is None:
        return "malformed token"
    want = sign(key, client_id if client_id is not None else "None", device_id, ts)
    if not hmac.compare_digest(tok.encode(), want.encode()):
        return "bad signature"
    if (time.time() if now is None else now) - ts > expire_s:
        return "token expired"
    return None
