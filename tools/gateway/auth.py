"""Signed device tokens at the gateway (tools/common/tokens.py has their shape).

Three checks beyond the stock server's, because the token travels on every
connect: a ±window on ts (not just an expiry), a replay cache (a token is
accepted once), and a constant-time signature compare. An unknown device costs
the same HMAC as a known one, so timing does not tell them apart either.
"""

import hmac
import time

from tools.common.tokens import bearer_token, parse, sign

# Signs the tokens of unknown devices, so their refusal takes as long as a bad signature's.
_DECOY_SECRET = b"\x00" * 32


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
    """verify() -> (ok, reason). The reason is precise, for the gateway's log
    and audit only: the client is told just "auth failed" (proxy.py), so it
    cannot learn which device ids exist. Reasons never contain the token or
    the secret."""

    def __init__(self, secrets, window_s=300, clock=time.time):
        self.secrets = dict(secrets)
        self.window_s = window_s
        self.clock = clock
        self.replay = ReplayCache(window_s)

    def verify(self, authorization, client_id, device_id):
        tok = bearer_token(authorization)
        if tok is None:
            return False, "missing token"
        ts = parse(tok)
        if ts is None:
            return False, "malformed token"
        secret = self.secrets.get(device_id or "")
        # Stock semantics: a missing Client-Id signs as the string "None".
        want = sign(secret if secret is not None else _DECOY_SECRET, client_id if client_id else "None",
                    device_id, ts)
        good_sig = hmac.compare_digest(tok.encode(), want.encode())
        if secret is None:
            return False, "unknown device"
        now = self.clock()
        skew = int(now - ts)
        if skew > self.window_s:
            return False, f"token expired ({skew} s old, window {self.window_s} s)"
        if -skew > self.window_s:
            return False, f"token from the future ({-skew} s ahead, window {self.window_s} s)"
        if not good_sig:
            return False, "bad signature"
        if self.replay.seen(tok):
            return False, "token replayed"
        self.replay.add(tok, ts, now)
        return True, "ok"
