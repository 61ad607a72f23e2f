"""Signed device tokens: "<base64url-nopad(HMAC-SHA256(secret, client|device|ts))>.<ts>".

The same shape the stock server verifies (stock-server.md §3), with three
additions the gateway needs because the token travels on every connect:
a ±window on ts (not just an expiry), a replay cache (a token is accepted
once), and a constant-time signature compare.
"""

import base64
import hashlib
import hmac
import time


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


class ReplayCache:
    """Tokens already accepted, kept until their ts leaves the window (after
    that the window check refuses them anyway), so memory stays bounded by the
    connect rate × window."""

    def __init__(self, window_s, max_entries=100000):
        self.window_s = window_s
        self.max_entries = max_entries
        self._seen = {}  # token -> time after which it can be forgotten

    def _purge(self, now):
        for tok in [t for t, until in self._seen.items() if until < now]:
            del self._seen[tok]

    def seen(self, token):
        return token in self._seen

    def add(self, token, ts, now):
        if len(self._seen) >= self.max_entries:
            self._purge(now)
        self._seen[token] = ts + self.window_s + 1

    def __len__(self):
        return len(self._seen)


class TokenVerifier:
    """verify() -> (ok, reason). Reasons are short and meant for close frames,
    logs and the audit: they never contain the token or the secret."""

    def __init__(self, secrets, window_s=300, clock=time.time):
        self.secrets = dict(secrets)
        self.window_s = window_s
        self.clock = clock
        self.replay = ReplayCache(window_s)

    def verify(self, authorization, client_id, device_id):
        tok = bearer_token(authorization)
        if tok is None:
            return False, "missing token"
        sig, dot, ts_text = tok.rpartition(".")
        if not dot or not sig or not ts_text.isdigit() or len(ts_text) > 12:
            return False, "malformed token"
        secret = self.secrets.get(device_id or "")
        if secret is None:
            return False, "unknown device"
        ts = int(ts_text)
        now = self.clock()
        skew = int(now - ts)
        if skew > self.window_s:
            return False, f"token expired ({skew} s old, window {self.window_s} s)"
        if -skew > self.window_s:
            return False, f"token from the future ({-skew} s ahead, window {self.window_s} s)"
        # Stock semantics: a missing Client-Id signs as the string "None".
        want = sign(secret, client_id if client_id else "None", device_id, ts)
        if not hmac.compare_digest(tok.encode(), want.encode()):
            return False, "bad signature"
        if self.replay.seen(tok):
            return False, "token replayed"
        self.replay.add(tok, ts, now)
        return True, "ok"
