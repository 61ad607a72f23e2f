"""Signed device auth at the gateway: valid, expired, future, replayed, forged,
missing and unknown-device tokens, with clear close reasons and audit entries."""

import json
import os
import subprocess
import sys

from gateway_fakes import CID, DEV, FakeClock, async_test, closed_with, gateway_for, open_device, open_session

from tools.common.tokens import bearer_token, sign
from tools.gateway.auth import ReplayCache, TokenVerifier
from tools.gateway.config import Auth

SECRET = "peer-test-secret"
NOW = 1795784743.0
VECTOR = "C038gKFvHKgGMKpofPx4JagVqNqZB9Gbs5HNZaB_Kng.1795784743"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sign_matches_stock_vector():
    assert sign(SECRET, CID, DEV, 1795784743) == VECTOR


def test_device_minted_token_verifies_at_the_gateway():
    # The firmware's minting under the real MicroPython binary, checked by the gateway.
    code = ("import sys; sys.path[:0]=['%s','%s/lib']\n"
            "from firmware import auth\n"
            "print(auth.mint_token('%s','%s','%s',%d))" % (ROOT, ROOT, SECRET, CID, DEV, 1795784800))
    mp = os.path.join(os.path.dirname(sys.executable), "micropython")
    out = subprocess.run([mp, "-c", code], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    tok = out.stdout.strip()
    v = TokenVerifier({DEV: SECRET}, 300, FakeClock(1795784800 + 299))
    assert v.verify("Bearer " + tok, CID, DEV) == (True, "ok")


def test_verifier_reasons():
    clock = FakeClock(NOW)
    v = TokenVerifier({DEV: SECRET}, 300, clock)
    assert v.verify(None, CID, DEV) == (False, "missing token")
    assert v.verify("Basic abc", CID, DEV) == (False, "missing token")
    assert v.verify("Bearer nodot", CID, DEV) == (False, "malformed token")
    assert v.verify("Bearer sig.notanumber", CID, DEV) == (False, "malformed token")
    assert v.verify("Bearer " + VECTOR, CID, "11:22:33:44:55:66") == (False, "unknown device")
    forged = "A" + VECTOR[1:]
    assert v.verify("Bearer " + forged, CID, DEV) == (False, "bad signature")
    # signed for another client id
    assert v.verify("Bearer " + VECTOR, "other-client", DEV) == (False, "bad signature")
    # a valid signature over a changed ts is still a forgery
    assert v.verify("Bearer " + VECTOR.split(".")[0] + ".1795784744", CID, DEV) == (False, "bad signature")
    ok = v.verify("Bearer " + VECTOR, CID, DEV)
    assert ok == (True, "ok")
    assert v.verify("Bearer " + VECTOR, CID, DEV) == (False, "token replayed")
    clock.t = NOW + 301
    tok = sign(SECRET, CID, DEV, int(NOW))
    ok, why = v.verify(tok, CID, DEV)
    assert not ok and why.startswith("token expired (301 s old")
    clock.t = NOW - 301
    ok, why = v.verify(tok, CID, DEV)
    assert not ok and why.startswith("token from the future (301 s ahead")
    fresh = TokenVerifier({DEV: SECRET}, 300, FakeClock(NOW - 300))
    assert fresh.verify(tok, CID, DEV) == (True, "ok")  # the window edge is inclusive
    fresh.clock = FakeClock(NOW + 300)
    assert fresh.verify(sign(SECRET, CID, DEV, int(NOW) + 1), CID, DEV) == (True, "ok")


def test_missing_client_id_signs_as_None_like_stock():
    v = TokenVerifier({DEV: SECRET}, 300, FakeClock(NOW))
    assert v.verify(sign(SECRET, "None", DEV, int(NOW)), "", DEV) == (True, "ok")


def test_replay_cache_forgets_tokens_only_after_their_window():
    c = ReplayCache(300, max_entries=2)
    c.add("a", 1000, 1000)
    c.add("b", 1000, 1000)
    c.add("c", 1200, 1200)  # full: purges nothing yet (a, b still inside their window)
    assert c.seen("a") and c.seen("b") and len(c) == 3
    c.add("d", 2000, 2000)  # a, b, c expired by now
    assert not c.seen("a") and c.seen("d") and len(c) == 1


def test_bearer_token_forms():
    assert bearer_token("Bearer  x.1 ") == "x.1"
    assert bearer_token("bearer x.1") == "x.1"
    assert bearer_token("x.1") == "x.1"
    assert bearer_token("") is None and bearer_token("Basic x") is None


def _auth_cfg():
    return Auth(enabled=True, window_s=300, devices={DEV: SECRET})


@async_test
async def test_gateway_accepts_valid_and_refuses_bad_tokens(tmp_path):
    audit_path = str(tmp_path / "audit.jsonl")
    async with gateway_for(None, auth=_auth_cfg(), audit_log=audit_path) as (up, gw):
        now = int(gw.clock())
        base = {"Device-Id": DEV, "Client-Id": CID, "Protocol-Version": "1"}
        good = "Bearer " + sign(SECRET, CID, DEV, now)

        ws, sh = await open_session(gw, headers=dict(base, Authorization=good))
        assert sh["type"] == "hello"
        # The device's gateway token is not forwarded to the upstream.
        assert "Authorization" not in up.connections[0]["headers"]
        await ws.close()

        cases = {
            "replayed": (good, "token replayed"),
            "missing": (None, "missing token"),
            "forged": ("Bearer " + sign("wrong-secret", CID, DEV, now), "bad signature"),
            "expired": ("Bearer " + sign(SECRET, CID, DEV, now - 400), "token expired (4"),
            "future": ("Bearer " + sign(SECRET, CID, DEV, now + 400), "token from the future"),
        }
        for name, (authz, _why) in cases.items():
            h = dict(base)
            if authz:
                h["Authorization"] = authz
            # The client learns only that auth failed; the precise reason is the audit's.
            assert await closed_with(await open_device(gw, headers=h)) == (4401, "auth failed"), name
        ws = await open_device(gw, headers={"Device-Id": "00:00:00:00:00:01", "Client-Id": CID,
                                            "Authorization": good})
        assert await closed_with(ws) == (4401, "auth failed")
        assert len(up.connections) == 1  # refused devices never reach the upstream
    lines = [json.loads(x) for x in open(audit_path, encoding="utf-8")]
    auths = [r for r in lines if r["event"] == "auth"]
    assert [a["ok"] for a in auths] == [True, False, False, False, False, False, False]
    reasons = [a["reason"] for a in auths[1:]]
    for (name, (_authz, why)), got in zip(cases.items(), reasons, strict=False):
        assert got.startswith(why), (name, got)
    assert reasons[-1] == "unknown device"
    closes = [r for r in lines if r["event"] == "close" and r["code"] == 4401]
    assert {r["reason"] for r in closes} == {"auth failed"}
    assert [r["detail"] for r in closes] == reasons
    text = open(audit_path, encoding="utf-8").read()
    assert SECRET not in text and good.split()[1] not in text and good.split(".")[0][7:] not in text
